use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    AccountDeletionStore, AuditLogStore, BrowserSessionStore, EmailChange, EmailChangeStore, EmailConfirmation,
    IdentityRemoval, IdentityStore, OneTimeTokenStore, PasskeyRemoval, PasskeyStore, PurgeStore, RoleStore,
    SecondFactorStore, SessionStore, UserDirectory, UserStore,
};
use crate::audit::{AuditQuery, AuditRecord, PendingRecords};
use crate::email::Email;
use crate::error::StoreError;
use crate::event::EmailDigest;
use crate::hash::HashedPassword;
use crate::id::{IdentityId, PasskeyId, SessionId, UserId};
use crate::identity::{ExternalLoginCode, ExternalLoginPurpose, ExternalLoginState, LinkedIdentity, ProviderName};
use crate::one_time::{OneTimeToken, TokenPurpose};
use crate::passkey::{PasskeyCeremony, PasskeyCredential};
use crate::role::Role;
use crate::second_factor::{LoginChallenge, TotpFactor};
use crate::session::{RefreshTokenRecord, Session};
use crate::token::TokenHash;
use crate::user::User;

/// The reference store: everything in process memory, lost on exit.
///
/// For unit tests, documentation and prototypes. It keeps every contract of the store
/// traits (it runs the same conformance suite as the database backends), but a real
/// service needs `auth-store-sqlite` or `auth-store-postgres`. Clones share the data.
///
/// ```
/// use auth_core::{MemoryStore, UserStore, Email};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryStore::new();
/// let email = Email::parse("nobody@example.com").unwrap();
/// assert!(store.find_user_by_email(&email).await.unwrap().is_none());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    users: HashMap<UserId, User>,
    ids_by_email: HashMap<Email, UserId>,
    sessions: HashMap<SessionId, Session>,
    /// Refresh-token hash → (session, when it was rotated away).
    refresh_tokens: HashMap<TokenHash, (SessionId, Option<OffsetDateTime>)>,
    /// One-time-token hash → (token, when it was used).
    one_time_tokens: HashMap<TokenHash, (OneTimeToken, Option<OffsetDateTime>)>,
    /// Browser-session hash → its session.
    browser_sessions: HashMap<TokenHash, SessionId>,
    totp_factors: HashMap<UserId, TotpFactor>,
    /// Recovery-code hash → (account, when it was used).
    recovery_codes: HashMap<(UserId, TokenHash), Option<OffsetDateTime>>,
    /// Challenge hash → challenge; at most one per account.
    login_challenges: HashMap<TokenHash, LoginChallenge>,
    identities: HashMap<IdentityId, LinkedIdentity>,
    /// (provider, subject) → identity: the uniqueness constraint.
    identity_keys: HashMap<(ProviderName, String), IdentityId>,
    login_states: HashMap<TokenHash, ExternalLoginState>,
    login_codes: HashMap<TokenHash, ExternalLoginCode>,
    email_changes: Vec<StoredEmailChange>,
    passkeys: HashMap<PasskeyId, PasskeyCredential>,
    /// Credential id → passkey: the uniqueness constraint.
    passkey_ids: HashMap<Vec<u8>, PasskeyId>,
    /// Ceremony token hash → ceremony.
    passkey_ceremonies: HashMap<TokenHash, PasskeyCeremony>,
    /// The audit log, in the order of ids.
    audit: Vec<AuditRecord>,
}

/// A requested address change with its token hashes and what became of it.
struct StoredEmailChange {
    change: EmailChange,
    confirm: TokenHash,
    undo: TokenHash,
    confirmed: bool,
    undone: bool,
}

impl State {
    /// Gives the account `email`, verified at `at`, and bumps its token version: `None`
    /// if there is no such account, `DuplicateEmail` (nothing changed) if another account
    /// has the address.
    fn switch_email(&mut self, id: UserId, email: &Email, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let Some(old) = self.users.get(&id).map(|user| user.email.clone()) else {
            return Ok(None);
        };
        if self.ids_by_email.get(email).is_some_and(|owner| *owner != id) {
            return Err(StoreError::DuplicateEmail);
        }
        self.ids_by_email.remove(&old);
        self.ids_by_email.insert(email.clone(), id);
        Ok(self.update_user(id, |user| {
            user.email = email.clone();
            user.email_verified_at = Some(at);
            user.token_version += 1;
            user.updated_at = at;
        }))
    }

    /// Keeps `records` in the audit log, in the order of their ids; one naming an account
    /// that does not exist is kept without it or its client.
    fn keep_records(&mut self, records: &[AuditRecord]) {
        for record in records {
            let mut record = record.clone();
            if record.user_id.is_some_and(|id| !self.users.contains_key(&id)) {
                record.user_id = None;
                record.user_agent = None;
                record.ip = None;
            }
            let at = self.audit.partition_point(|kept| kept.id < record.id);
            self.audit.insert(at, record);
        }
    }

    /// Keeps the records pending for the change just made, in the critical section that
    /// made it (the memory store's transaction).
    fn record(&mut self, pending: Option<PendingRecords>) {
        if let Some(pending) = pending {
            self.keep_records(pending.records());
            pending.written();
        }
    }

    /// [`record`](Self::record) if `changed`.
    fn record_if(&mut self, changed: bool, pending: Option<PendingRecords>) {
        if changed {
            self.record(pending);
        }
    }

    /// Applies `change` to the account and returns its new state.
    fn update_user(&mut self, id: UserId, change: impl FnOnce(&mut User)) -> Option<User> {
        self.users.get_mut(&id).map(|user| {
            change(user);
            user.clone()
        })
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // The lock is never held across an await, and every critical section leaves the
    // state consistent, so a poisoned lock (a panic elsewhere) is safe to keep using.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("users", &self.state().users.len())
            .finish()
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let State {
            users, ids_by_email, ..
        } = &mut *state;
        if users.contains_key(&user.id) {
            return Err(StoreError::backend(format!("duplicate user id {}", user.id)));
        }
        match ids_by_email.entry(user.email.clone()) {
            Entry::Occupied(_) => Err(StoreError::DuplicateEmail),
            Entry::Vacant(slot) => {
                slot.insert(user.id);
                users.insert(user.id, user.clone());
                state.record(pending);
                Ok(())
            }
        }
    }

    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.state().users.get(&id).cloned())
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let state = self.state();
        Ok(state
            .ids_by_email
            .get(email)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        current: &HashedPassword,
        upgraded: &HashedPassword,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.users.get_mut(&id) {
            Some(user) if user.password_hash.as_ref() == Some(current) => {
                user.password_hash = Some(upgraded.clone());
                user.updated_at = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &HashedPassword,
        if_token_version: i64,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let updated = match state.users.get_mut(&id) {
            Some(user) if user.token_version == if_token_version => {
                user.password_hash = Some(hash.clone());
                user.token_version += 1;
                user.updated_at = at;
                user.clone()
            }
            _ => return Ok(None),
        };
        state.record(pending);
        Ok(Some(updated))
    }

    async fn set_active(&self, id: UserId, active: bool, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let updated = state.update_user(id, |user| {
            user.is_active = active;
            if !active {
                user.token_version += 1;
            }
            user.updated_at = at;
        });
        state.record_if(updated.is_some(), pending);
        Ok(updated)
    }

    async fn revoke_access_tokens(&self, id: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let updated = state.update_user(id, |user| {
            user.token_version += 1;
            user.updated_at = at;
        });
        state.record_if(updated.is_some(), pending);
        Ok(updated)
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if state.users.get(&id).is_none_or(|user| user.email != *email) {
            return Ok(None);
        }
        let updated = state.update_user(id, |user| {
            user.email_verified_at.get_or_insert(at);
            user.updated_at = at;
        });
        state.record_if(updated.is_some(), pending);
        Ok(updated)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert_session(&self, session: &Session, refresh_token: &TokenHash) -> Result<(), StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if state.sessions.contains_key(&session.id) || state.refresh_tokens.contains_key(refresh_token) {
            return Err(StoreError::backend(format!("duplicate session {}", session.id)));
        }
        state.sessions.insert(session.id, session.clone());
        state.refresh_tokens.insert(*refresh_token, (session.id, None));
        state.record(pending);
        Ok(())
    }

    async fn find_refresh_token(&self, refresh_token: &TokenHash) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let state = self.state();
        Ok(state.refresh_tokens.get(refresh_token).and_then(|(session, used_at)| {
            let session = state.sessions.get(session)?.clone();
            Some(RefreshTokenRecord::new(session, *used_at))
        }))
    }

    async fn rotate_refresh_token(
        &self,
        session: SessionId,
        presented: &TokenHash,
        replacement: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let State {
            sessions,
            refresh_tokens,
            ..
        } = &mut *state;
        if refresh_tokens.contains_key(replacement) {
            return Err(StoreError::backend("duplicate refresh token"));
        }
        let Some(live) = sessions.get_mut(&session).filter(|s| s.revoked_at.is_none()) else {
            return Ok(false);
        };
        match refresh_tokens.get_mut(presented) {
            Some((owner, used_at @ None)) if *owner == session => {
                *used_at = Some(at);
                live.last_used_at = at;
            }
            _ => return Ok(false),
        }
        refresh_tokens.insert(*replacement, (session, None));
        state.record(pending);
        Ok(true)
    }

    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let mut sessions: Vec<Session> = self
            .state()
            .sessions
            .values()
            .filter(|s| s.user_id == user && s.revoked_at.is_none())
            .cloned()
            .collect();
        sessions.sort_by_key(|s| (s.created_at, s.id));
        Ok(sessions)
    }

    async fn find_session(&self, session: SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.state().sessions.get(&session).cloned())
    }

    async fn find_user_and_session(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<Option<(Option<User>, Option<Session>)>, StoreError> {
        let state = self.state();
        Ok(Some((
            state.users.get(&user).cloned(),
            state.sessions.get(&session).cloned(),
        )))
    }

    async fn revoke_session(&self, user: UserId, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let revoked = match state.sessions.get_mut(&session) {
            Some(s) if s.user_id == user && s.revoked_at.is_none() => {
                s.revoked_at = Some(at);
                true
            }
            _ => false,
        };
        state.record_if(revoked, pending);
        Ok(revoked)
    }

    async fn revoke_all_sessions(&self, user: UserId, at: OffsetDateTime) -> Result<u64, StoreError> {
        let mut revoked = 0;
        for session in self.state().sessions.values_mut() {
            if session.user_id == user && session.revoked_at.is_none() {
                session.revoked_at = Some(at);
                revoked += 1;
            }
        }
        Ok(revoked)
    }
}

#[async_trait]
impl OneTimeTokenStore for MemoryStore {
    async fn insert_one_time_token(&self, hash: &TokenHash, token: &OneTimeToken) -> Result<(), StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if state.one_time_tokens.contains_key(hash) {
            return Err(StoreError::backend("duplicate one-time token"));
        }
        state.one_time_tokens.retain(|_, (held, used_at)| {
            used_at.is_some() || held.user_id != token.user_id || held.purpose != token.purpose
        });
        state.one_time_tokens.insert(*hash, (token.clone(), None));
        state.record(pending);
        Ok(())
    }

    async fn find_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        Ok(self
            .state()
            .one_time_tokens
            .get(hash)
            .filter(|(token, used_at)| token.purpose == purpose && used_at.is_none())
            .map(|(token, _)| token.clone()))
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        at: OffsetDateTime,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        match self.state().one_time_tokens.get_mut(hash) {
            Some((token, used_at @ None)) if token.purpose == purpose => {
                *used_at = Some(at);
                Ok(Some(token.clone()))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl UserDirectory for MemoryStore {
    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        let mut users: Vec<User> = self
            .state()
            .users
            .values()
            .filter(|user| after.is_none_or(|after| user.id > after))
            .cloned()
            .collect();
        users.sort_by_key(|user| user.id);
        users.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(users)
    }

    async fn search_users(
        &self,
        email_prefix: &str,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let mut users: Vec<User> = self
            .state()
            .users
            .values()
            .filter(|user| after.is_none_or(|after| user.id > after) && user.email.as_str().starts_with(email_prefix))
            .cloned()
            .collect();
        users.sort_by_key(|user| user.id);
        users.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(users)
    }
}

#[async_trait]
impl RoleStore for MemoryStore {
    async fn set_roles(
        &self,
        id: UserId,
        roles: &BTreeSet<Role>,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let updated = state.update_user(id, |user| {
            user.roles.clone_from(roles);
            user.token_version += 1;
            user.updated_at = at;
        });
        state.record_if(updated.is_some(), pending);
        Ok(updated)
    }

    async fn grant_role(
        &self,
        id: UserId,
        role: &Role,
        max_roles: usize,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let Some(user) = state.users.get_mut(&id) else {
            return Ok(None);
        };
        let granted = role.grant_within(&mut user.roles, max_roles);
        if granted {
            user.token_version += 1;
            user.updated_at = at;
        }
        let user = user.clone();
        state.record_if(granted, pending);
        Ok(Some(user))
    }

    async fn revoke_role(&self, id: UserId, role: &Role, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let Some(user) = state.users.get_mut(&id) else {
            return Ok(None);
        };
        let revoked = user.roles.remove(role);
        if revoked {
            user.token_version += 1;
            user.updated_at = at;
        }
        let user = user.clone();
        state.record_if(revoked, pending);
        Ok(Some(user))
    }
}

#[async_trait]
impl PurgeStore for MemoryStore {
    async fn delete_ended_sessions(
        &self,
        ended_before: OffsetDateTime,
        idle_since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        let ended: Vec<SessionId> = state
            .sessions
            .values()
            .filter(|s| {
                s.revoked_at.is_some_and(|at| at <= ended_before)
                    || s.expires_at <= ended_before
                    || s.last_used_at <= idle_since
            })
            .map(|s| s.id)
            .collect();
        for id in &ended {
            state.sessions.remove(id);
        }
        state.refresh_tokens.retain(|_, (session, _)| !ended.contains(session));
        state.browser_sessions.retain(|_, session| !ended.contains(session));
        Ok(u64::try_from(ended.len()).unwrap_or(u64::MAX))
    }

    async fn delete_spent_one_time_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut state = self.state();
        let held = state.one_time_tokens.len();
        state
            .one_time_tokens
            .retain(|_, (token, used_at)| used_at.is_none_or(|at| at > before) && token.expires_at > before);
        Ok(u64::try_from(held - state.one_time_tokens.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl BrowserSessionStore for MemoryStore {
    async fn insert_browser_session(
        &self,
        token: &TokenHash,
        session: SessionId,
        _at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.browser_sessions.contains_key(token) {
            return Err(StoreError::backend("duplicate browser session"));
        }
        if !state.sessions.contains_key(&session) {
            return Err(StoreError::backend("no such session"));
        }
        state.browser_sessions.insert(*token, session);
        Ok(())
    }

    async fn find_browser_session(&self, token: &TokenHash) -> Result<Option<Session>, StoreError> {
        let state = self.state();
        Ok(state
            .browser_sessions
            .get(token)
            .and_then(|session| state.sessions.get(session))
            .cloned())
    }

    async fn delete_browser_session(&self, token: &TokenHash) -> Result<(), StoreError> {
        self.state().browser_sessions.remove(token);
        Ok(())
    }

    async fn touch_session(&self, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.sessions.get_mut(&session) {
            Some(s) if s.revoked_at.is_none() && s.last_used_at < at => {
                s.last_used_at = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl SecondFactorStore for MemoryStore {
    async fn insert_totp_factor(&self, factor: &TotpFactor) -> Result<bool, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if !state.users.contains_key(&factor.user_id) {
            return Err(StoreError::backend(format!("no account {}", factor.user_id)));
        }
        if state
            .totp_factors
            .get(&factor.user_id)
            .is_some_and(TotpFactor::is_confirmed)
        {
            return Ok(false);
        }
        state.totp_factors.insert(factor.user_id, factor.clone());
        state.record(pending);
        Ok(true)
    }

    async fn find_totp_factor(&self, user: UserId) -> Result<Option<TotpFactor>, StoreError> {
        Ok(self.state().totp_factors.get(&user).cloned())
    }

    async fn confirm_totp_factor(
        &self,
        user: UserId,
        sealed_secret: &str,
        step: i64,
        recovery_codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        match state.totp_factors.get_mut(&user) {
            Some(factor) if !factor.is_confirmed() && factor.sealed_secret == sealed_secret => {
                factor.confirmed_at = Some(at);
                factor.last_used_step = Some(step);
            }
            _ => return Ok(None),
        }
        state.recovery_codes.retain(|(owner, _), _| *owner != user);
        for code in recovery_codes {
            state.recovery_codes.insert((user, *code), None);
        }
        let updated = state.update_user(user, |u| {
            u.requires_second_factor = true;
            u.updated_at = at;
        });
        state.record(pending);
        Ok(updated)
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.totp_factors.get_mut(&user) {
            Some(factor) if factor.is_confirmed() && factor.last_used_step.is_none_or(|last| last < step) => {
                factor.last_used_step = Some(step);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn reseal_totp_factor(&self, user: UserId, current: &str, resealed: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.totp_factors.get_mut(&user) {
            Some(factor) if factor.sealed_secret == current => {
                resealed.clone_into(&mut factor.sealed_secret);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_totp_factor(&self, user: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if state.totp_factors.remove(&user).is_none() {
            return Ok(None);
        }
        state.recovery_codes.retain(|(owner, _), _| *owner != user);
        let updated = state.update_user(user, |u| {
            u.requires_second_factor = false;
            u.updated_at = at;
        });
        state.record(pending);
        Ok(updated)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        recovery_codes: &[TokenHash],
        _at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if !state.totp_factors.get(&user).is_some_and(TotpFactor::is_confirmed) {
            return Ok(false);
        }
        state.recovery_codes.retain(|(owner, _), _| *owner != user);
        for code in recovery_codes {
            state.recovery_codes.insert((user, *code), None);
        }
        state.record(pending);
        Ok(true)
    }

    async fn use_recovery_code(&self, user: UserId, code: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.recovery_codes.get_mut(&(user, *code)) {
            Some(used_at @ None) => {
                *used_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn count_recovery_codes(&self, user: UserId) -> Result<u32, StoreError> {
        let state = self.state();
        let unused = state
            .recovery_codes
            .iter()
            .filter(|((owner, _), used_at)| *owner == user && used_at.is_none())
            .count();
        Ok(u32::try_from(unused).unwrap_or(u32::MAX))
    }

    async fn insert_login_challenge(&self, hash: &TokenHash, challenge: &LoginChallenge) -> Result<(), StoreError> {
        let mut state = self.state();
        if !state.users.contains_key(&challenge.user_id) {
            return Err(StoreError::backend(format!("no account {}", challenge.user_id)));
        }
        if state.login_challenges.contains_key(hash) {
            return Err(StoreError::backend("duplicate login challenge"));
        }
        state.login_challenges.retain(|_, c| c.user_id != challenge.user_id);
        state.login_challenges.insert(*hash, challenge.clone());
        Ok(())
    }

    async fn find_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError> {
        Ok(self.state().login_challenges.get(hash).cloned())
    }

    async fn record_login_challenge_attempt(&self, hash: &TokenHash) -> Result<Option<u32>, StoreError> {
        Ok(self.state().login_challenges.get_mut(hash).map(|challenge| {
            challenge.attempts = challenge.attempts.saturating_add(1);
            challenge.attempts
        }))
    }

    async fn take_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError> {
        Ok(self.state().login_challenges.remove(hash))
    }
}

#[async_trait]
impl IdentityStore for MemoryStore {
    async fn insert_user_with_identity(&self, user: &User, identity: &LinkedIdentity) -> Result<(), StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let key = (identity.provider.clone(), identity.subject.clone());
        if state.identity_keys.contains_key(&key) {
            return Err(StoreError::DuplicateIdentity);
        }
        if state.users.contains_key(&user.id) {
            return Err(StoreError::backend(format!("duplicate user id {}", user.id)));
        }
        if state.ids_by_email.contains_key(&user.email) {
            return Err(StoreError::DuplicateEmail);
        }
        state.ids_by_email.insert(user.email.clone(), user.id);
        state.users.insert(user.id, user.clone());
        state.identity_keys.insert(key, identity.id);
        state.identities.insert(identity.id, identity.clone());
        state.record(pending);
        Ok(())
    }

    async fn insert_identity(&self, identity: &LinkedIdentity) -> Result<(), StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if !state.users.contains_key(&identity.user_id) {
            return Err(StoreError::backend(format!("no account {}", identity.user_id)));
        }
        match state
            .identity_keys
            .entry((identity.provider.clone(), identity.subject.clone()))
        {
            Entry::Occupied(_) => Err(StoreError::DuplicateIdentity),
            Entry::Vacant(slot) => {
                slot.insert(identity.id);
                state.identities.insert(identity.id, identity.clone());
                state.record(pending);
                Ok(())
            }
        }
    }

    async fn find_identity(
        &self,
        provider: &ProviderName,
        subject: &str,
    ) -> Result<Option<LinkedIdentity>, StoreError> {
        let state = self.state();
        Ok(state
            .identity_keys
            .get(&(provider.clone(), subject.to_owned()))
            .and_then(|id| state.identities.get(id))
            .cloned())
    }

    async fn list_identities(&self, user: UserId) -> Result<Vec<LinkedIdentity>, StoreError> {
        let mut identities: Vec<_> = self
            .state()
            .identities
            .values()
            .filter(|identity| identity.user_id == user)
            .cloned()
            .collect();
        identities.sort_by_key(|identity| (identity.created_at, identity.id));
        Ok(identities)
    }

    async fn record_identity_use(&self, id: IdentityId, at: OffsetDateTime) -> Result<bool, StoreError> {
        Ok(self
            .state()
            .identities
            .get_mut(&id)
            .map(|identity| identity.last_used_at = Some(at))
            .is_some())
    }

    async fn delete_identity(&self, user: UserId, id: IdentityId) -> Result<IdentityRemoval, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if state
            .identities
            .get(&id)
            .is_none_or(|identity| identity.user_id != user)
        {
            return Ok(IdentityRemoval::NotFound);
        }
        let has_password = state
            .users
            .get(&user)
            .is_some_and(|account| account.password_hash.is_some());
        let others = state
            .identities
            .values()
            .filter(|identity| identity.user_id == user && identity.id != id)
            .count()
            + state
                .passkeys
                .values()
                .filter(|passkey| passkey.user_id == user)
                .count();
        if !has_password && others == 0 {
            return Ok(IdentityRemoval::LastSignInMethod);
        }
        if let Some(identity) = state.identities.remove(&id) {
            state.identity_keys.remove(&(identity.provider, identity.subject));
        }
        // As SQL's `ON DELETE CASCADE`: the identity's pending codes go with it.
        state.login_codes.retain(|_, code| code.identity_id != id);
        state.record(pending);
        Ok(IdentityRemoval::Removed)
    }

    async fn insert_login_state(&self, state: &TokenHash, record: &ExternalLoginState) -> Result<(), StoreError> {
        let mut store = self.state();
        if let ExternalLoginPurpose::Link { user_id, .. } = record.purpose
            && !store.users.contains_key(&user_id)
        {
            return Err(StoreError::backend(format!("no account {user_id}")));
        }
        match store.login_states.entry(*state) {
            Entry::Occupied(_) => Err(StoreError::backend("duplicate login state")),
            Entry::Vacant(slot) => {
                slot.insert(record.clone());
                Ok(())
            }
        }
    }

    async fn take_login_state(&self, state: &TokenHash) -> Result<Option<ExternalLoginState>, StoreError> {
        Ok(self.state().login_states.remove(state))
    }

    async fn insert_login_code(&self, code: &TokenHash, record: &ExternalLoginCode) -> Result<(), StoreError> {
        let mut state = self.state();
        if !state.users.contains_key(&record.user_id) || !state.identities.contains_key(&record.identity_id) {
            return Err(StoreError::backend(format!(
                "no account {} or identity",
                record.user_id
            )));
        }
        match state.login_codes.entry(*code) {
            Entry::Occupied(_) => Err(StoreError::backend("duplicate login code")),
            Entry::Vacant(slot) => {
                slot.insert(record.clone());
                Ok(())
            }
        }
    }

    async fn take_login_code(&self, code: &TokenHash) -> Result<Option<ExternalLoginCode>, StoreError> {
        Ok(self.state().login_codes.remove(code))
    }

    async fn delete_expired_logins(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut state = self.state();
        let count = state.login_states.len() + state.login_codes.len();
        state.login_states.retain(|_, record| record.expires_at >= before);
        state.login_codes.retain(|_, record| record.expires_at >= before);
        let left = state.login_states.len() + state.login_codes.len();
        Ok(u64::try_from(count - left).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl EmailChangeStore for MemoryStore {
    async fn insert_email_change(
        &self,
        change: &EmailChange,
        confirm: &TokenHash,
        undo: &TokenHash,
    ) -> Result<(), StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if !state.users.contains_key(&change.user_id) {
            return Err(StoreError::backend(format!("no account {}", change.user_id)));
        }
        if state.email_changes.iter().any(|stored| {
            [stored.confirm, stored.undo]
                .iter()
                .any(|hash| hash == confirm || hash == undo)
        }) {
            return Err(StoreError::backend("duplicate email change token"));
        }
        state.email_changes.retain(|stored| {
            stored.change.user_id != change.user_id || stored.change.undo_expires_at > change.requested_at
        });
        state.email_changes.push(StoredEmailChange {
            change: change.clone(),
            confirm: *confirm,
            undo: *undo,
            confirmed: false,
            undone: false,
        });
        state.record(pending);
        Ok(())
    }

    async fn confirm_email_change(
        &self,
        confirm: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Option<EmailConfirmation>, StoreError> {
        let mut pending = PendingRecords::take();
        let mut state = self.state();
        let Some(index) = state
            .email_changes
            .iter()
            .position(|stored| stored.confirm == *confirm && !stored.confirmed && !stored.undone)
        else {
            return Ok(None);
        };
        let change = state.email_changes[index].change.clone();
        if at >= change.confirm_expires_at {
            return Ok(Some(EmailConfirmation::Expired(change)));
        }
        let current = state.users.get(&change.user_id).map(|user| user.token_version);
        if current != Some(change.token_version) {
            return Ok(Some(EmailConfirmation::Stale(change)));
        }
        let Some(user) = state.switch_email(change.user_id, &change.new_email, at)? else {
            return Ok(Some(EmailConfirmation::Stale(change)));
        };
        state.email_changes[index].confirmed = true;
        if let Some(pending) = &mut pending {
            pending.about(user.id);
        }
        state.record(pending);
        Ok(Some(EmailConfirmation::Switched { change, user }))
    }

    async fn undo_email_change(
        &self,
        undo: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Option<(EmailChange, User)>, StoreError> {
        let mut pending = PendingRecords::take();
        let mut state = self.state();
        let Some(index) = state
            .email_changes
            .iter()
            .position(|stored| stored.undo == *undo && !stored.undone && at < stored.change.undo_expires_at)
        else {
            return Ok(None);
        };
        let change = state.email_changes[index].change.clone();
        let Some(user) = state.switch_email(change.user_id, &change.old_email, at)? else {
            return Ok(None);
        };
        // Kept in the order stored: this one and every later one of the account.
        for stored in &mut state.email_changes[index..] {
            if stored.change.user_id == change.user_id {
                stored.undone = true;
            }
        }
        if let Some(pending) = &mut pending {
            pending.about(user.id);
        }
        state.record(pending);
        Ok(Some((change, user)))
    }
}

#[async_trait]
impl AccountDeletionStore for MemoryStore {
    async fn delete_user(&self, id: UserId, pseudonym: &EmailDigest) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        let Some(user) = state.users.remove(&id) else {
            return Ok(None);
        };
        for record in state.audit.iter_mut().filter(|record| record.user_id == Some(id)) {
            record.user_id = None;
            record.email_digest = Some(pseudonym.to_string());
            record.user_agent = None;
            record.ip = None;
        }
        state.ids_by_email.remove(&user.email);
        let sessions: BTreeSet<SessionId> = state
            .sessions
            .values()
            .filter(|session| session.user_id == id)
            .map(|session| session.id)
            .collect();
        state.sessions.retain(|session, _| !sessions.contains(session));
        state
            .refresh_tokens
            .retain(|_, (session, _)| !sessions.contains(session));
        state.browser_sessions.retain(|_, session| !sessions.contains(session));
        state.one_time_tokens.retain(|_, (token, _)| token.user_id != id);
        state.totp_factors.remove(&id);
        state.recovery_codes.retain(|(user, _), _| *user != id);
        state.login_challenges.retain(|_, challenge| challenge.user_id != id);
        let identities: Vec<IdentityId> = state
            .identities
            .values()
            .filter(|identity| identity.user_id == id)
            .map(|identity| identity.id)
            .collect();
        for identity in identities {
            if let Some(removed) = state.identities.remove(&identity) {
                state.identity_keys.remove(&(removed.provider, removed.subject));
            }
        }
        state.login_states.retain(|_, login| match login.purpose {
            ExternalLoginPurpose::Link { user_id, .. } => user_id != id,
            _ => true,
        });
        state.login_codes.retain(|_, code| code.user_id != id);
        state.email_changes.retain(|stored| stored.change.user_id != id);
        let passkeys: Vec<PasskeyId> = state
            .passkeys
            .values()
            .filter(|passkey| passkey.user_id == id)
            .map(|passkey| passkey.id)
            .collect();
        for passkey in passkeys {
            if let Some(removed) = state.passkeys.remove(&passkey) {
                state.passkey_ids.remove(&removed.credential_id);
            }
        }
        state
            .passkey_ceremonies
            .retain(|_, ceremony| ceremony.user_id != Some(id));
        state.record(pending);
        Ok(Some(user))
    }
}

#[async_trait]
impl AuditLogStore for MemoryStore {
    async fn insert_audit_records(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        self.state().keep_records(records);
        Ok(())
    }

    async fn list_audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let state = self.state();
        Ok(state
            .audit
            .iter()
            .filter(|record| query.after.is_none_or(|after| record.id > after))
            .filter(|record| query.user.is_none_or(|user| record.user_id == Some(user)))
            .filter(|record| query.kind.as_ref().is_none_or(|kind| record.kind == *kind))
            .take(query.limit as usize)
            .cloned()
            .collect())
    }

    async fn delete_audit_records_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut state = self.state();
        let count = state.audit.len();
        state.audit.retain(|record| record.at >= before);
        Ok((count - state.audit.len()) as u64)
    }
}

#[async_trait]
impl PasskeyStore for MemoryStore {
    async fn insert_passkey(&self, passkey: &PasskeyCredential) -> Result<(), StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if !state.users.contains_key(&passkey.user_id) {
            return Err(StoreError::backend(format!("no account {}", passkey.user_id)));
        }
        if state.passkeys.contains_key(&passkey.id) {
            return Err(StoreError::backend(format!("duplicate passkey id {}", passkey.id)));
        }
        match state.passkey_ids.entry(passkey.credential_id.clone()) {
            Entry::Occupied(_) => Err(StoreError::DuplicateCredential),
            Entry::Vacant(slot) => {
                slot.insert(passkey.id);
                state.passkeys.insert(passkey.id, passkey.clone());
                state.record(pending);
                Ok(())
            }
        }
    }

    async fn find_passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyCredential>, StoreError> {
        let state = self.state();
        Ok(state
            .passkey_ids
            .get(credential_id)
            .and_then(|id| state.passkeys.get(id))
            .cloned())
    }

    async fn list_passkeys(&self, user: UserId) -> Result<Vec<PasskeyCredential>, StoreError> {
        let mut passkeys: Vec<_> = self
            .state()
            .passkeys
            .values()
            .filter(|passkey| passkey.user_id == user)
            .cloned()
            .collect();
        passkeys.sort_by_key(|passkey| (passkey.created_at, passkey.id));
        Ok(passkeys)
    }

    async fn record_passkey_use(
        &self,
        id: PasskeyId,
        if_counter: u32,
        credential: &str,
        counter: u32,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.passkeys.get_mut(&id) {
            Some(passkey) if passkey.counter == if_counter => {
                credential.clone_into(&mut passkey.credential);
                passkey.counter = counter;
                passkey.last_used_at = Some(at);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn rename_passkey(&self, user: UserId, id: PasskeyId, name: &str) -> Result<bool, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        match state.passkeys.get_mut(&id) {
            Some(passkey) if passkey.user_id == user => {
                name.clone_into(&mut passkey.name);
                state.record(pending);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_passkey(&self, user: UserId, id: PasskeyId) -> Result<PasskeyRemoval, StoreError> {
        let pending = PendingRecords::take();
        let mut state = self.state();
        if state.passkeys.get(&id).is_none_or(|passkey| passkey.user_id != user) {
            return Ok(PasskeyRemoval::NotFound);
        }
        let has_password = state
            .users
            .get(&user)
            .is_some_and(|account| account.password_hash.is_some());
        let others = state
            .passkeys
            .values()
            .filter(|passkey| passkey.user_id == user && passkey.id != id)
            .count()
            + state
                .identities
                .values()
                .filter(|identity| identity.user_id == user)
                .count();
        if !has_password && others == 0 {
            return Ok(PasskeyRemoval::LastSignInMethod);
        }
        if let Some(removed) = state.passkeys.remove(&id) {
            state.passkey_ids.remove(&removed.credential_id);
        }
        state.record(pending);
        Ok(PasskeyRemoval::Removed)
    }

    async fn insert_passkey_ceremony(&self, token: &TokenHash, ceremony: &PasskeyCeremony) -> Result<(), StoreError> {
        let mut state = self.state();
        match state.passkey_ceremonies.entry(*token) {
            Entry::Occupied(_) => Err(StoreError::backend("duplicate passkey ceremony token")),
            Entry::Vacant(slot) => {
                slot.insert(ceremony.clone());
                Ok(())
            }
        }
    }

    async fn take_passkey_ceremony(&self, token: &TokenHash) -> Result<Option<PasskeyCeremony>, StoreError> {
        Ok(self.state().passkey_ceremonies.remove(token))
    }

    async fn delete_expired_passkey_ceremonies(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut state = self.state();
        let count = state.passkey_ceremonies.len();
        state
            .passkey_ceremonies
            .retain(|_, ceremony| ceremony.expires_at >= before);
        Ok((count - state.passkey_ceremonies.len()) as u64)
    }
}
