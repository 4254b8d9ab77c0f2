//! Test doubles shared by the integration tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use auth_core::{
    Email, HashedPassword, MemoryStore, OneTimeToken, OneTimeTokenStore, PurgeStore, RefreshTokenRecord, Role,
    RoleStore, Session, SessionId, SessionStore, StoreError, TokenHash, TokenPurpose, User, UserDirectory, UserId,
    UserStore,
};
use auth_core::{EncryptionKey, LoginChallenge, SecondFactorStore, SecretCipher, TotpFactor, TotpSettings};
use std::sync::atomic::AtomicUsize;

use auth_core::{
    Argon2Hasher, Argon2Params, AuthEvent, AuthService, ClientInfo, EventSink, HashError, HashPool, LoginSuccess,
    ManualClock, Password, PasswordHasher, RateLimits, SigningKey, Tokens, Verification,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// Work another request does right after a revoking write (a password change, a disable,
/// a version bump) lands, before the service's next step.
pub type AfterHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// What another request does between the service's read of an account and its write.
#[derive(Clone)]
pub enum Interference {
    ChangePassword(HashedPassword),
    Disable,
}

/// A `MemoryStore` that records the methods called, can be taken down (every call answers `Unavailable`) or made to
/// perform an [`Interference`] right before the next password write, to race the service
/// deterministically.
#[derive(Clone, Default)]
pub struct HookedStore {
    pub inner: MemoryStore,
    down: Arc<AtomicBool>,
    next: Arc<Mutex<Option<Interference>>>,
    after: Arc<Mutex<Option<AfterHook>>>,
    after_rotation: Arc<Mutex<Option<AfterHook>>>,
    after_session_insert: Arc<Mutex<Option<AfterHook>>>,
    calls: Arc<Mutex<Vec<&'static str>>>,
    records_ignored: Arc<AtomicBool>,
    outage_known: Arc<AtomicBool>,
}

impl HookedStore {
    /// Acts as a store that does not take the audit records handed to its writes (one
    /// of an application's own): they are dropped before the call reaches the memory store.
    pub fn set_records_ignored(&self, ignored: bool) {
        self.records_ignored.store(ignored, Ordering::SeqCst);
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Whether the store, while down, knows it (`UserStore::known_unavailable`), as
    /// `auth-store-postgres`'s outage watch does; off by default, as in `MemoryStore`.
    pub fn set_outage_known(&self, known: bool) {
        self.outage_known.store(known, Ordering::SeqCst);
    }

    pub fn interfere_before_next_password_write(&self, interference: Interference) {
        *self.next.lock().unwrap() = Some(interference);
    }

    pub fn after_next_revoking_write(&self, hook: AfterHook) {
        *self.after.lock().unwrap() = Some(hook);
    }

    /// Work another request does right after the next refresh-token rotation lands.
    /// Work another request does right after the next session is stored.
    pub fn after_next_session_insert(&self, hook: AfterHook) {
        *self.after_session_insert.lock().unwrap() = Some(hook);
    }

    pub fn after_next_rotation(&self, hook: AfterHook) {
        *self.after_rotation.lock().unwrap() = Some(hook);
    }

    async fn run_after_hook(&self) {
        let hook = self.after.lock().unwrap().take();
        if let Some(hook) = hook {
            hook().await;
        }
    }

    /// The store methods called so far, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }

    fn up(&self, method: &'static str) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(method);
        if self.records_ignored.load(Ordering::SeqCst) {
            drop(auth_core::PendingRecords::take());
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("connection refused"));
        }
        Ok(())
    }

    async fn interfere(&self, id: UserId) {
        let next = self.next.lock().unwrap().take();
        let Some(next) = next else { return };
        let user = self.inner.find_user_by_id(id).await.unwrap().unwrap();
        match next {
            Interference::ChangePassword(hash) => {
                let changed = self
                    .inner
                    .set_password_hash(id, &hash, user.token_version, user.updated_at)
                    .await;
                changed.unwrap().unwrap();
            }
            Interference::Disable => {
                self.inner
                    .set_active(id, false, user.updated_at)
                    .await
                    .unwrap()
                    .unwrap();
            }
        }
    }
}

#[async_trait]
impl UserStore for HookedStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        self.up("insert_user")?;
        self.inner.insert_user(user).await
    }

    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.up("find_user_by_id")?;
        self.inner.find_user_by_id(id).await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        self.up("find_user_by_email")?;
        self.inner.find_user_by_email(email).await
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        current: &HashedPassword,
        upgraded: &HashedPassword,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.up("upgrade_password_hash")?;
        self.interfere(id).await;
        self.inner.upgrade_password_hash(id, current, upgraded, at).await
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &HashedPassword,
        if_token_version: i64,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        self.up("set_password_hash")?;
        self.interfere(id).await;
        let result = self.inner.set_password_hash(id, hash, if_token_version, at).await;
        self.run_after_hook().await;
        result
    }

    async fn set_active(&self, id: UserId, active: bool, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        self.up("set_active")?;
        let result = self.inner.set_active(id, active, at).await;
        self.run_after_hook().await;
        result
    }

    async fn revoke_access_tokens(&self, id: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        self.up("revoke_access_tokens")?;
        let result = self.inner.revoke_access_tokens(id, at).await;
        self.run_after_hook().await;
        result
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        self.up("mark_email_verified")?;
        self.inner.mark_email_verified(id, email, at).await
    }

    async fn known_unavailable(&self) -> bool {
        self.outage_known.load(Ordering::SeqCst) && self.down.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl SessionStore for HookedStore {
    async fn insert_session(&self, session: &Session, refresh_token: &TokenHash) -> Result<(), StoreError> {
        self.up("insert_session")?;
        let result = self.inner.insert_session(session, refresh_token).await;
        let hook = self.after_session_insert.lock().unwrap().take();
        if let Some(hook) = hook {
            hook().await;
        }
        result
    }

    async fn find_refresh_token(&self, refresh_token: &TokenHash) -> Result<Option<RefreshTokenRecord>, StoreError> {
        self.up("find_refresh_token")?;
        self.inner.find_refresh_token(refresh_token).await
    }

    async fn rotate_refresh_token(
        &self,
        session: SessionId,
        presented: &TokenHash,
        replacement: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.up("rotate_refresh_token")?;
        let result = self
            .inner
            .rotate_refresh_token(session, presented, replacement, at)
            .await;
        let hook = self.after_rotation.lock().unwrap().take();
        if let Some(hook) = hook {
            hook().await;
        }
        result
    }

    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        self.up("list_sessions")?;
        self.inner.list_sessions(user).await
    }

    async fn find_session(&self, session: SessionId) -> Result<Option<Session>, StoreError> {
        self.up("find_session")?;
        self.inner.find_session(session).await
    }

    async fn revoke_session(&self, user: UserId, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.up("revoke_session")?;
        self.inner.revoke_session(user, session, at).await
    }

    async fn revoke_all_sessions(&self, user: UserId, at: OffsetDateTime) -> Result<u64, StoreError> {
        self.up("revoke_all_sessions")?;
        self.inner.revoke_all_sessions(user, at).await
    }
}

#[async_trait]
impl OneTimeTokenStore for HookedStore {
    async fn insert_one_time_token(&self, hash: &TokenHash, token: &OneTimeToken) -> Result<(), StoreError> {
        self.up("insert_one_time_token")?;
        self.inner.insert_one_time_token(hash, token).await
    }

    async fn find_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        self.up("find_one_time_token")?;
        self.inner.find_one_time_token(hash, purpose).await
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        at: OffsetDateTime,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        self.up("consume_one_time_token")?;
        self.inner.consume_one_time_token(hash, purpose, at).await
    }
}

#[async_trait]
impl auth_core::AuditLogStore for HookedStore {
    async fn insert_audit_records(&self, records: &[auth_core::AuditRecord]) -> Result<(), StoreError> {
        self.up("insert_audit_records")?;
        self.inner.insert_audit_records(records).await
    }

    async fn list_audit_records(
        &self,
        query: &auth_core::AuditQuery,
    ) -> Result<Vec<auth_core::AuditRecord>, StoreError> {
        self.up("list_audit_records")?;
        self.inner.list_audit_records(query).await
    }

    async fn delete_audit_records_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.up("delete_audit_records_before")?;
        self.inner.delete_audit_records_before(before).await
    }
}

#[async_trait]
impl auth_core::AccountDeletionStore for HookedStore {
    async fn delete_user(&self, id: UserId, pseudonym: &auth_core::EmailDigest) -> Result<Option<User>, StoreError> {
        self.up("delete_user")?;
        self.inner.delete_user(id, pseudonym).await
    }
}

#[async_trait]
impl auth_core::EmailChangeStore for HookedStore {
    async fn insert_email_change(
        &self,
        change: &auth_core::EmailChange,
        confirm: &TokenHash,
        undo: &TokenHash,
    ) -> Result<(), StoreError> {
        self.up("insert_email_change")?;
        self.inner.insert_email_change(change, confirm, undo).await
    }

    async fn confirm_email_change(
        &self,
        confirm: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Option<auth_core::EmailConfirmation>, StoreError> {
        self.up("confirm_email_change")?;
        self.inner.confirm_email_change(confirm, at).await
    }

    async fn undo_email_change(
        &self,
        undo: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Option<(auth_core::EmailChange, User)>, StoreError> {
        self.up("undo_email_change")?;
        self.inner.undo_email_change(undo, at).await
    }
}

#[async_trait]
impl UserDirectory for HookedStore {
    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        self.up("list_users")?;
        self.inner.list_users(after, limit).await
    }

    async fn search_users(
        &self,
        email_prefix: &str,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        self.up("search_users")?;
        self.inner.search_users(email_prefix, after, limit).await
    }
}

#[async_trait]
impl RoleStore for HookedStore {
    async fn set_roles(
        &self,
        id: UserId,
        roles: &BTreeSet<Role>,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        self.up("set_roles")?;
        self.inner.set_roles(id, roles, at).await
    }

    async fn grant_role(
        &self,
        id: UserId,
        role: &Role,
        max_roles: usize,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        self.up("grant_role")?;
        self.inner.grant_role(id, role, max_roles, at).await
    }

    async fn revoke_role(&self, id: UserId, role: &Role, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        self.up("revoke_role")?;
        self.inner.revoke_role(id, role, at).await
    }
}

/// Forwarded as is, each call recorded (and refused while down).
#[async_trait]
impl SecondFactorStore for HookedStore {
    async fn insert_totp_factor(&self, factor: &TotpFactor) -> Result<bool, StoreError> {
        self.up("insert_totp_factor")?;
        self.inner.insert_totp_factor(factor).await
    }

    async fn find_totp_factor(&self, user: UserId) -> Result<Option<TotpFactor>, StoreError> {
        self.up("find_totp_factor")?;
        self.inner.find_totp_factor(user).await
    }

    async fn confirm_totp_factor(
        &self,
        user: UserId,
        sealed_secret: &str,
        step: i64,
        recovery_codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        self.up("confirm_totp_factor")?;
        self.inner
            .confirm_totp_factor(user, sealed_secret, step, recovery_codes, at)
            .await
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        self.up("use_totp_step")?;
        self.inner.use_totp_step(user, step).await
    }

    async fn reseal_totp_factor(&self, user: UserId, current: &str, resealed: &str) -> Result<bool, StoreError> {
        self.up("reseal_totp_factor")?;
        self.inner.reseal_totp_factor(user, current, resealed).await
    }

    async fn delete_totp_factor(&self, user: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        self.up("delete_totp_factor")?;
        self.inner.delete_totp_factor(user, at).await
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        recovery_codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.up("replace_recovery_codes")?;
        self.inner.replace_recovery_codes(user, recovery_codes, at).await
    }

    async fn use_recovery_code(&self, user: UserId, code: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.up("use_recovery_code")?;
        self.inner.use_recovery_code(user, code, at).await
    }

    async fn count_recovery_codes(&self, user: UserId) -> Result<u32, StoreError> {
        self.up("count_recovery_codes")?;
        self.inner.count_recovery_codes(user).await
    }

    async fn insert_login_challenge(&self, hash: &TokenHash, challenge: &LoginChallenge) -> Result<(), StoreError> {
        self.up("insert_login_challenge")?;
        self.inner.insert_login_challenge(hash, challenge).await
    }

    async fn find_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError> {
        self.up("find_login_challenge")?;
        self.inner.find_login_challenge(hash).await
    }

    async fn record_login_challenge_attempt(&self, hash: &TokenHash) -> Result<Option<u32>, StoreError> {
        self.up("record_login_challenge_attempt")?;
        self.inner.record_login_challenge_attempt(hash).await
    }

    async fn take_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError> {
        self.up("take_login_challenge")?;
        self.inner.take_login_challenge(hash).await
    }
}

/// The key TOTP secrets are sealed under in the fixtures.
pub const ENCRYPTION_KEY: [u8; 32] = [42; 32];

/// The fixtures' TOTP settings.
pub fn totp_settings() -> TotpSettings {
    TotpSettings::new(
        "Auth Test",
        SecretCipher::new(EncryptionKey::new(&ENCRYPTION_KEY).unwrap()),
    )
}

#[async_trait]
impl PurgeStore for HookedStore {
    async fn delete_ended_sessions(
        &self,
        ended_before: OffsetDateTime,
        idle_since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.up("delete_ended_sessions")?;
        self.inner.delete_ended_sessions(ended_before, idle_since).await
    }

    async fn delete_spent_one_time_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.up("delete_spent_one_time_tokens")?;
        self.inner.delete_spent_one_time_tokens(before).await
    }
}

#[async_trait]
impl auth_core::BrowserSessionStore for HookedStore {
    async fn insert_browser_session(
        &self,
        token: &TokenHash,
        session: auth_core::SessionId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.up("insert_browser_session")?;
        self.inner.insert_browser_session(token, session, at).await
    }

    async fn find_browser_session(&self, token: &TokenHash) -> Result<Option<Session>, StoreError> {
        self.up("find_browser_session")?;
        self.inner.find_browser_session(token).await
    }

    async fn delete_browser_session(&self, token: &TokenHash) -> Result<(), StoreError> {
        self.up("delete_browser_session")?;
        self.inner.delete_browser_session(token).await
    }

    async fn touch_session(&self, session: auth_core::SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.up("touch_session")?;
        self.inner.touch_session(session, at).await
    }
}

#[async_trait]
impl auth_core::PasskeyStore for HookedStore {
    async fn insert_passkey(&self, passkey: &auth_core::PasskeyCredential) -> Result<(), StoreError> {
        self.up("insert_passkey")?;
        self.inner.insert_passkey(passkey).await
    }

    async fn find_passkey(&self, credential_id: &[u8]) -> Result<Option<auth_core::PasskeyCredential>, StoreError> {
        self.up("find_passkey")?;
        self.inner.find_passkey(credential_id).await
    }

    async fn list_passkeys(&self, user: UserId) -> Result<Vec<auth_core::PasskeyCredential>, StoreError> {
        self.up("list_passkeys")?;
        self.inner.list_passkeys(user).await
    }

    async fn record_passkey_use(
        &self,
        id: auth_core::PasskeyId,
        if_counter: u32,
        credential: &str,
        counter: u32,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.up("record_passkey_use")?;
        self.inner
            .record_passkey_use(id, if_counter, credential, counter, at)
            .await
    }

    async fn rename_passkey(&self, user: UserId, id: auth_core::PasskeyId, name: &str) -> Result<bool, StoreError> {
        self.up("rename_passkey")?;
        self.inner.rename_passkey(user, id, name).await
    }

    async fn delete_passkey(
        &self,
        user: UserId,
        id: auth_core::PasskeyId,
    ) -> Result<auth_core::PasskeyRemoval, StoreError> {
        self.up("delete_passkey")?;
        self.inner.delete_passkey(user, id).await
    }

    async fn insert_passkey_ceremony(
        &self,
        token: &TokenHash,
        ceremony: &auth_core::PasskeyCeremony,
    ) -> Result<(), StoreError> {
        self.up("insert_passkey_ceremony")?;
        self.inner.insert_passkey_ceremony(token, ceremony).await
    }

    async fn take_passkey_ceremony(&self, token: &TokenHash) -> Result<Option<auth_core::PasskeyCeremony>, StoreError> {
        self.up("take_passkey_ceremony")?;
        self.inner.take_passkey_ceremony(token).await
    }

    async fn delete_expired_passkey_ceremonies(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.up("delete_expired_passkey_ceremonies")?;
        self.inner.delete_expired_passkey_ceremonies(before).await
    }
}

/// The origin the fixtures' passkeys are bound to (its host is the RP id).
pub const PASSKEY_ORIGIN: &str = "https://auth.test";

/// A browser on a laptop, as the session tests label their sessions.
pub fn laptop() -> ClientInfo {
    ClientInfo::new(Some("Firefox/133.0 on Linux"), Some("203.0.113.7".parse().unwrap()))
}

pub const SECRET: &[u8] = b"test secret that is at least 32 bytes long";
pub const PASSWORD: &str = "correct horse battery staple";

/// Wraps the real hasher and counts its calls: verifications that computed, verifications
/// refused up front (an unusable stored hash; the hasher's own tests prove those do no
/// work), new hashes, and the longest password it was ever given.
#[derive(Debug, Clone)]
pub struct CountingHasher {
    pub inner: Argon2Hasher,
    pub verifies: Arc<AtomicUsize>,
    pub refused: Arc<AtomicUsize>,
    pub hashes: Arc<AtomicUsize>,
    pub longest_password: Arc<AtomicUsize>,
}

impl CountingHasher {
    fn saw(&self, password: &Password) {
        self.longest_password
            .fetch_max(password.expose_secret().len(), Ordering::SeqCst);
    }
}

impl PasswordHasher for CountingHasher {
    fn hash(&self, password: &Password) -> Result<HashedPassword, HashError> {
        self.saw(password);
        self.hashes.fetch_add(1, Ordering::SeqCst);
        self.inner.hash(password)
    }

    fn verify(&self, password: &Password, hash: &HashedPassword) -> Result<Verification, HashError> {
        self.saw(password);
        let result = self.inner.verify(password, hash);
        let counter = if result.is_ok() { &self.verifies } else { &self.refused };
        counter.fetch_add(1, Ordering::SeqCst);
        result
    }

    fn dummy_hash(&self) -> &HashedPassword {
        self.inner.dummy_hash()
    }
}

pub struct Fixture {
    pub auth: AuthService<HookedStore>,
    pub store: HookedStore,
    pub clock: ManualClock,
    pub hasher: CountingHasher,
    pub events: RecordingSink,
    pub notices: Notices,
}

/// Keeps every security notice the service hands over.
#[derive(Debug, Clone, Default)]
pub struct Notices(Arc<Mutex<Vec<auth_core::SecurityNotice>>>);

impl Notices {
    /// The notices handed over since the last call: (kind, address).
    pub fn take(&self) -> Vec<(auth_core::SecurityNoticeKind, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|notice| (notice.kind, notice.to.as_str().to_owned()))
            .collect()
    }

    /// Every notice since the last call, whole.
    pub fn take_whole(&self) -> Vec<auth_core::SecurityNotice> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Keeps every event the service records.
#[derive(Debug, Clone, Default)]
pub struct RecordingSink(Arc<Mutex<Vec<AuthEvent>>>);

impl RecordingSink {
    /// The events recorded since the last call.
    pub fn take(&self) -> Vec<AuthEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl EventSink for RecordingSink {
    fn record(&self, event: &AuthEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_hasher(Argon2Hasher::new(Argon2Params::new(64, 1, 1).unwrap()))
    }

    pub fn with_hasher(inner: Argon2Hasher) -> Self {
        Self::build(inner, RateLimits::default())
    }

    /// A fixture whose service enforces `limits`.
    pub fn with_limits(limits: RateLimits) -> Self {
        Self::build(Argon2Hasher::new(Argon2Params::new(64, 1, 1).unwrap()), limits)
    }

    fn build(inner: Argon2Hasher, limits: RateLimits) -> Self {
        let store = HookedStore::default();
        let clock = ManualClock::new(datetime!(2026-06-01 09:00 UTC));
        let hasher = CountingHasher {
            inner,
            verifies: Arc::default(),
            refused: Arc::default(),
            hashes: Arc::default(),
            longest_password: Arc::default(),
        };
        let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
        let events = RecordingSink::default();
        let notices = Notices::default();
        let kept = notices.0.clone();
        let auth = AuthService::new(store.clone(), tokens)
            .with_security_notices(move |notice| kept.lock().unwrap().push(notice))
            .with_hasher(hasher.clone())
            // The hasher's calls are counted, and at idle priority a job that a loaded
            // machine stalls runs a second time (HashPool::with_idle_scheduling).
            .with_hash_pool(HashPool::default().with_idle_scheduling(false))
            .with_clock(Arc::new(clock.clone()))
            .with_rate_limits(limits)
            .with_event_sink(Arc::new(events.clone()))
            .with_totp(totp_settings())
            .with_passkeys(auth_core::PasskeySettings::new("auth.test", PASSKEY_ORIGIN).unwrap());
        Self {
            auth,
            store,
            clock,
            hasher,
            events,
            notices,
        }
    }

    /// (verifications that computed, new hashes) since the last call.
    pub fn work(&self) -> (usize, usize) {
        (
            self.hasher.verifies.swap(0, Ordering::SeqCst),
            self.hasher.hashes.swap(0, Ordering::SeqCst),
        )
    }

    /// Verifications refused without computing, since the last call.
    pub fn refused(&self) -> usize {
        self.hasher.refused.swap(0, Ordering::SeqCst)
    }

    /// Registers `email` and logs it in with the password, from [`laptop`].
    pub async fn logged_in(&self, email: &str) -> (User, LoginSuccess) {
        let user = self.register(email).await;
        let login = self
            .auth
            .login(email, Password::new(PASSWORD), &laptop())
            .await
            .unwrap()
            .signed_in()
            .unwrap();
        (user, login)
    }

    pub async fn register(&self, email: &str) -> User {
        let user = self
            .auth
            .register(email, Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .unwrap();
        self.work();
        user
    }

    /// Stores an account directly, as a migration from another stack would: with the
    /// identity rules only, as an account older than the new-address rules has.
    pub async fn insert(&self, email: &str, hash: Option<&str>, active: bool) -> User {
        let user = User::new(
            Email::parse_existing(email).unwrap(),
            hash.map(HashedPassword::new),
            datetime!(2026-06-01 09:00 UTC),
        )
        .with_active(active);
        self.store.insert_user(&user).await.unwrap();
        user
    }

    /// The injected clock's time.
    #[allow(dead_code)] // not every test file reads it
    pub fn now(&self) -> OffsetDateTime {
        auth_core::Clock::now(&self.clock)
    }

    /// The caller a login's access token authenticates as.
    #[allow(dead_code)] // not every test file signs in this way
    pub async fn caller(&self, login: &auth_core::LoginSuccess) -> auth_core::Caller {
        let me = self
            .auth
            .authenticate(login.tokens.access_token.expose_secret())
            .await
            .unwrap();
        auth_core::Caller::from(&me)
    }

    pub async fn stored(&self, id: UserId) -> User {
        self.store.find_user_by_id(id).await.unwrap().unwrap()
    }
}
