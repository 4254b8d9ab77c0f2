//! [`AuthService`]: every authentication flow, in one place.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::{earlier_by, later_by, now_micros};
use crate::event::{Action, AuthEvent, EmailDigest, EventKey, EventSink, NoEventSink, Outcome, Refusal, Subject};
use crate::hash::{HashError, Verification};
use crate::{
    AccessClaims, Argon2Hasher, AuthError, AuthStore, Bucket, ClientInfo, Clock, Delivery, Email, HashPool,
    HashedPassword, MemoryRateLimiter, OneTimeToken, OpaqueToken, Password, PasswordHasher, PasswordPolicy,
    RateDecision, RateLimiter, RateLimits, Role, Session, SessionId, StoreError, SystemClock, TokenError, TokenKind,
    TokenPair, TokenPurpose, Tokens, User, UserId,
};

/// Default idle timeout of a session: 7 days without a refresh ends it (the seeds'
/// refresh-token lifetime).
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default absolute lifetime of a session: 30 days after login, however active.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default lifetime of a password-reset token: 1 hour.
pub const DEFAULT_PASSWORD_RESET_TTL: Duration = Duration::from_secs(3600);
/// The largest page [`AuthService::list_users`] returns.
pub const MAX_LIST_USERS: u32 = 1000;
/// Default lifetime of an email-verification token: 24 hours.
pub const DEFAULT_EMAIL_VERIFICATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Runs every authentication flow against an [`AuthStore`].
///
/// Framework glue stays thin: a handler extracts the input, calls one method, and maps the
/// [`AuthError`] with its [`code`](AuthError::code) and [`http_status`](AuthError::http_status).
/// Every rule (normalization, policy, equal work, rotation, revocation) lives here.
///
/// Construct it with the required parts, then adjust with `with_*`; each default is
/// secure and documented on its method:
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{AuthService, ClientInfo, MemoryStore, Password, PasswordPolicy, SigningKey, Tokens};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), auth_core::AuthError> {
/// let tokens = Tokens::new(
///     SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap(),
///     "https://auth.example.com",
///     "example-api",
/// );
/// let auth = Arc::new(
///     AuthService::new(MemoryStore::new(), tokens)
///         .with_password_policy(PasswordPolicy::default().with_min_length(12)),
/// );
///
/// let user = auth.register("Ada@Example.com", Password::new("analytical-engine"), &ClientInfo::default()).await?;
/// assert_eq!(user.email.as_str(), "ada@example.com");
///
/// let login = auth.login(" ADA@example.com", Password::new("analytical-engine"), &ClientInfo::default()).await?;
/// let me = auth.authenticate(login.tokens.access_token.expose_secret()).await?;
/// assert_eq!(me.user.id, user.id);
///
/// // Refresh tokens rotate: each works once.
/// let refreshed = auth.refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::default()).await?;
/// assert!(auth.refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::default()).await.is_err());
/// # let _ = refreshed;
/// # Ok(())
/// # }
/// ```
///
/// # What revokes what
///
/// | event | access tokens issued before | sessions (refresh tokens) | pending reset tokens |
/// |---|---|---|---|
/// | [`change_password`](Self::change_password), [`reset_password`](Self::reset_password) | rejected by `authenticate` | all revoked | dead |
/// | [`set_active`](Self::set_active)`(false)` | rejected | all revoked | dead |
/// | [`logout_all`](Self::logout_all) | rejected | all revoked | dead |
/// | [`set_roles`](Self::set_roles) | rejected (they carry the old roles) | kept: the next refresh carries the new roles | dead |
/// | [`logout`](Self::logout), [`revoke_session`](Self::revoke_session) | that session's rejected; the account's others kept | that session revoked | kept |
/// | refresh-token reuse | that session's rejected | that session revoked | kept |
/// | a session's idle timeout or absolute lifetime passes | that session's rejected | that session ended | kept |
/// | a newer [`request_password_reset`](Self::request_password_reset) | — | — | the older one dies |
///
/// "Rejected by `authenticate`": every access token carries the account's token version,
/// which the account-wide events above increment, and its session (`sid`), which
/// `authenticate` reads on every request. [`Tokens::verify`] alone does not see
/// revocation: a revoked token passes it until it expires (15 min by default); see
/// [`TokenVerifier`](crate::TokenVerifier) for that trade-off. Email-verification tokens
/// are bound to the address they were sent to, and die only with it (or when used or
/// expired).
///
/// # Rate limits and events
///
/// Every flow an attacker repeats (login, registration, reset requests, token
/// confirmations) draws on [`RateLimits`] before any expensive work, keyed by the
/// normalized email and by [`ClientInfo::rate_limit_key`]; see each method. Every call of
/// every flow (not `authenticate`, `list_sessions` or `purge_expired`, which are reads or
/// maintenance) records exactly one [`AuthEvent`], to `tracing` and to the
/// [`EventSink`] given to [`with_event_sink`](Self::with_event_sink).
///
/// Share one service per process (behind an `Arc`): it owns the [`HashPool`] that bounds
/// hashing work and the in-memory rate limiter. It needs a Tokio runtime with the time
/// driver (see [`HashPool`]).
pub struct AuthService<S> {
    store: S,
    tokens: Tokens,
    policy: PasswordPolicy,
    hasher: Arc<dyn PasswordHasher>,
    pool: HashPool,
    clock: Arc<dyn Clock>,
    limiter: Arc<dyn RateLimiter>,
    /// The limits of the built-in limiter, kept to rebuild it when the clock changes;
    /// `None` once the application supplies its own limiter.
    rate_limits: Option<RateLimits>,
    events: Arc<dyn EventSink>,
    event_key: EventKey,
    session_idle_timeout: Duration,
    session_lifetime: Duration,
    password_reset_ttl: Duration,
    email_verification_ttl: Duration,
    require_verified_email: bool,
}

/// A successful login.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginSuccess {
    /// The account, as stored after the login (with its upgraded hash, if any).
    pub user: User,
    /// The access token, the refresh token and the new session.
    pub tokens: TokenPair,
}

/// The result of [`AuthService::register_enumeration_safe`]. Answer the client the same
/// way for both variants.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Registration {
    /// A new account.
    Created(User),
    /// The email already has an account; nothing was created. Tell its owner (a mail to
    /// `notify`: "someone tried to sign up with your address; log in or reset your
    /// password"), not the client.
    AlreadyRegistered {
        /// The stored address of the existing account, to mail; `None` when the mail
        /// limits ([`Bucket::MailsPerAccount`], [`Bucket::MailsPerClient`]) are exhausted:
        /// send nothing, and still answer the client as for a new account.
        notify: Option<Email>,
        /// The existing account.
        user_id: UserId,
    },
}

/// What [`AuthService::purge_expired`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purged {
    /// Ended sessions (with their refresh tokens).
    pub sessions: u64,
    /// Used or expired single-use tokens (decoys included).
    pub one_time_tokens: u64,
}

/// The account behind a valid access token, and what the token says.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authenticated {
    /// The account as stored now.
    pub user: User,
    /// The token's claims (its session, for instance).
    pub claims: AccessClaims,
}

impl<S: AuthStore> AuthService<S> {
    /// A service over `store`, issuing tokens with `tokens`, with these defaults:
    ///
    /// - [`PasswordPolicy::default`]: 8 to 256 characters, common passwords and the
    ///   email refused;
    /// - [`Argon2Hasher::default`]: argon2id with OWASP's parameters;
    /// - [`HashPool::default`]: one concurrent hash per core, a bounded queue;
    /// - sessions end after 7 days idle or 30 days in all; reset tokens live 1 hour,
    ///   verification tokens 24 hours; login does not require a verified email;
    /// - [`RateLimits::default`] in a [`MemoryRateLimiter`];
    /// - events to `tracing` only, email digests under a random per-process key;
    /// - [`SystemClock`].
    pub fn new(store: S, tokens: Tokens) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let rate_limits = RateLimits::default();
        Self {
            store,
            tokens,
            policy: PasswordPolicy::default(),
            hasher: Arc::new(Argon2Hasher::default()),
            pool: HashPool::default(),
            limiter: Arc::new(MemoryRateLimiter::with_clock(rate_limits.clone(), Arc::clone(&clock))),
            rate_limits: Some(rate_limits),
            events: Arc::new(NoEventSink),
            event_key: EventKey::random(),
            clock,
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            password_reset_ttl: DEFAULT_PASSWORD_RESET_TTL,
            email_verification_ttl: DEFAULT_EMAIL_VERIFICATION_TTL,
            require_verified_email: false,
        }
    }

    /// Replaces the password policy applied to new passwords.
    #[must_use]
    pub fn with_password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Replaces the hasher (other argon2 parameters or limits, or a wrapper).
    #[must_use]
    pub fn with_hasher(mut self, hasher: impl PasswordHasher) -> Self {
        self.hasher = Arc::new(hasher);
        self
    }

    /// Replaces the pool that runs hashing work.
    #[must_use]
    pub fn with_hash_pool(mut self, pool: HashPool) -> Self {
        self.pool = pool;
        self
    }

    /// Uses `clock` for every timestamp, including token issue and expiry and the built-in
    /// rate limiter.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.tokens = self.tokens.with_clock(Arc::clone(&clock));
        if let Some(limits) = &self.rate_limits {
            self.limiter = Arc::new(MemoryRateLimiter::with_clock(limits.clone(), Arc::clone(&clock)));
        }
        self.clock = clock;
        self
    }

    /// Replaces the limits of the built-in in-memory limiter ([`RateLimits::default`]
    /// otherwise). [`RateLimits::disabled`] turns limiting off, for benchmarks only.
    #[must_use]
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.limiter = Arc::new(MemoryRateLimiter::with_clock(limits.clone(), Arc::clone(&self.clock)));
        self.rate_limits = Some(limits);
        self
    }

    /// Uses `limiter` (a shared store for several servers, say) instead of the built-in
    /// in-memory one.
    #[must_use]
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Self {
        self.limiter = limiter;
        self.rate_limits = None;
        self
    }

    /// Also sends every [`AuthEvent`] to `sink` (they always go to `tracing`).
    #[must_use]
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = sink;
        self
    }

    /// Sets the secret under which events digest email addresses, so digests stay
    /// comparable across restarts and servers (random per process otherwise).
    #[must_use]
    pub fn with_event_key(mut self, key: EventKey) -> Self {
        self.event_key = key;
        self
    }

    /// Sets how long a session survives without a refresh (`idle`, default 7 days) and
    /// at most (`absolute`, default 30 days).
    #[must_use]
    pub fn with_session_lifetimes(mut self, idle: Duration, absolute: Duration) -> Self {
        self.session_idle_timeout = idle;
        self.session_lifetime = absolute;
        self
    }

    /// Sets how long a password-reset token works (default 1 hour). Longer than a day is
    /// logged as a warning.
    #[must_use]
    pub fn with_password_reset_ttl(mut self, ttl: Duration) -> Self {
        if ttl > Duration::from_secs(24 * 3600) {
            tracing::warn!(ttl_secs = ttl.as_secs(), "password-reset tokens live longer than a day");
        }
        self.password_reset_ttl = ttl;
        self
    }

    /// Sets how long an email-verification token works (default 24 hours).
    #[must_use]
    pub fn with_email_verification_ttl(mut self, ttl: Duration) -> Self {
        self.email_verification_ttl = ttl;
        self
    }

    /// Requires a verified email before login issues tokens (default: not required).
    /// An unverified account then answers [`EmailNotVerified`](AuthError::EmailNotVerified),
    /// only after the correct password.
    #[must_use]
    pub fn with_require_verified_email(mut self, required: bool) -> Self {
        self.require_verified_email = required;
        self
    }

    /// The token issuer and verifier, for extractors that only need [`Tokens::verify`].
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The password policy.
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.policy
    }

    fn now(&self) -> OffsetDateTime {
        now_micros(&*self.clock)
    }

    // ---------------------------------------------------------------- events and limits

    fn audit_email(&self, action: Action, raw: &str) -> Audit {
        // The identity key, as the store finds it: also for accounts older than the rules.
        let subject = Email::parse_existing(raw).map_or(Subject::Unknown, |email| {
            Subject::Email(EmailDigest::of(&self.event_key, &email))
        });
        Audit::new(action, subject)
    }

    /// Records the one event of this call and hands the result back.
    fn finish<T>(&self, audit: Audit, result: Result<T, AuthError>, client: &ClientInfo) -> Result<T, AuthError> {
        let outcome = match &result {
            Ok(_) => audit.outcome.clone().unwrap_or(Outcome::Success),
            Err(error) => outcome_of(error, audit.refusal.clone()),
        };
        self.emit(audit, outcome, client);
        result
    }

    fn emit(&self, audit: Audit, outcome: Outcome, client: &ClientInfo) {
        let event = AuthEvent {
            at: self.now(),
            action: audit.action,
            outcome,
            subject: audit.subject,
            session_id: audit.session_id,
            client: client.clone(),
        };
        event.trace();
        self.events.record(&event);
    }

    /// The key of `client` in per-client buckets. Clients without an address share one
    /// key, so a caller that forgets to pass addresses gets one strict limit rather than
    /// none; that is logged once, since it throttles every such client together.
    fn client_key(client: &ClientInfo) -> String {
        static WARNED: std::sync::Once = std::sync::Once::new();
        client.rate_limit_key().unwrap_or_else(|| {
            WARNED.call_once(|| {
                tracing::warn!(
                    "a request came without a client IP address: per-client rate limits apply to all such \
                     requests together; pass the peer address in ClientInfo"
                );
            });
            "unknown-client".to_owned()
        })
    }

    /// The key of an account in per-account buckets: the keyed digest of its normalized
    /// email, so a shared limiter backend never sees addresses. Malformed emails share one
    /// key (they have no owner to lock out).
    fn account_key(&self, email: Option<&Email>) -> String {
        email.map_or_else(
            || "malformed-email".to_owned(),
            |email| EmailDigest::of(&self.event_key, email).to_string(),
        )
    }

    /// Takes one unit of `key`'s allowance in `bucket`, before any expensive work.
    async fn take(&self, bucket: Bucket, key: &str) -> Result<(), AuthError> {
        match self.limiter.acquire(bucket, key).await {
            Ok(RateDecision::Allowed) => Ok(()),
            Ok(RateDecision::Limited { retry_after }) => Err(AuthError::RateLimited { retry_after }),
            // Fail closed: without a working limiter, nothing is checked.
            Err(error) => Err(AuthError::Unavailable(StoreError::Unavailable(error))),
        }
    }

    /// Draws on [`Bucket::ConsecutiveLoginFailuresPerAccount`]. Its refusal is a lock,
    /// not a wait: waiting does not refill it (a retry-after of years says nothing
    /// useful), only a successful reset does, so it answers
    /// [`AccountLocked`](AuthError::AccountLocked).
    async fn take_consecutive_failure(&self, account_key: &str) -> Result<(), AuthError> {
        match self.take(Bucket::ConsecutiveLoginFailuresPerAccount, account_key).await {
            Err(AuthError::RateLimited { .. }) => Err(AuthError::AccountLocked),
            other => other,
        }
    }

    /// Draws one mail to `recipient` requested by `client` from the mail allowances.
    /// `Ok(false)` over either: the caller answers as usual and sends nothing, since a
    /// refusal would tell the client, and mail bombing is the attack.
    /// The event then records the call as rate limited.
    async fn mail_allowed(&self, recipient: &Email, client: &ClientInfo, audit: &mut Audit) -> Result<bool, AuthError> {
        for (bucket, key) in [
            (Bucket::MailsPerClient, Self::client_key(client)),
            (Bucket::MailsPerAccount, self.account_key(Some(recipient))),
        ] {
            match self.take(bucket, &key).await {
                Ok(()) => {}
                Err(AuthError::RateLimited { retry_after }) => {
                    audit.outcome = Some(Outcome::RateLimited { retry_after });
                    return Ok(false);
                }
                Err(error) => return Err(error),
            }
        }
        Ok(true)
    }

    /// Refills the account's login allowance (after a success, or a completed reset).
    async fn refill_login_allowance(&self, email: &Email) {
        let key = self.account_key(Some(email));
        for bucket in [
            Bucket::LoginFailuresPerAccount,
            Bucket::ConsecutiveLoginFailuresPerAccount,
        ] {
            if let Err(error) = self.limiter.reset(bucket, &key).await {
                tracing::warn!(%bucket, %error, "could not refill a login allowance");
            }
        }
    }

    // ---------------------------------------------------------------- registration

    /// Creates an account; a duplicate email answers [`EmailTaken`](AuthError::EmailTaken)
    /// (HTTP 409), as in the seeds. See [`register_enumeration_safe`](Self::register_enumeration_safe)
    /// for the variant that does not reveal which emails have accounts.
    ///
    /// Registrations are limited per client ([`Bucket::RegistrationsPerClient`]) before any
    /// work. The email is normalized and the password checked against the policy (with the
    /// email) before any hashing; the new account is active, unverified and has no roles,
    /// and its login allowances start full: failed logins against the address before it
    /// was registered do not count against the new account.
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`InvalidEmail`](AuthError::InvalidEmail),
    /// [`WeakPassword`](AuthError::WeakPassword), [`EmailTaken`](AuthError::EmailTaken)
    /// (decided by the store's unique constraint), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn register(&self, email: &str, password: Password, client: &ClientInfo) -> Result<User, AuthError> {
        let mut audit = self.audit_email(Action::Register, email);
        let result = self.create_account(email, password, client, &mut audit).await;
        self.finish(audit, result, client)
    }

    /// Creates an account without revealing whether the email already had one: an
    /// existing email returns [`Registration::AlreadyRegistered`] instead of an error,
    /// after the same work (the password is hashed either way), so the caller answers
    /// both identically (say, 202 "check your inbox") and mails the existing account's
    /// owner instead. Everything else is as in [`register`](Self::register).
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register), but never [`EmailTaken`](AuthError::EmailTaken).
    pub async fn register_enumeration_safe(
        &self,
        email: &str,
        password: Password,
        client: &ClientInfo,
    ) -> Result<Registration, AuthError> {
        let mut audit = self.audit_email(Action::Register, email);
        let result = match self.create_account(email, password, client, &mut audit).await {
            Ok(user) => {
                // The same work as the other answer, which must look the owner up and draw
                // on the mail allowances: one lookup by email and one draw either way.
                // Their results do not matter: the account exists, no mail is due.
                let _ = self.store.find_user_by_email(&user.email).await;
                let _ = self.mail_allowed(&user.email, client, &mut audit).await;
                Ok(Registration::Created(user))
            }
            Err(AuthError::EmailTaken) => match Email::parse(email) {
                Ok(email) => match self.store.find_user_by_email(&email).await {
                    Ok(Some(existing)) => {
                        audit.subject = Subject::User(existing.id);
                        audit.refusal = Some(Refusal::EmailTaken);
                        self.mail_allowed(&existing.email, client, &mut audit)
                            .await
                            .map(|allowed| Registration::AlreadyRegistered {
                                notify: allowed.then_some(existing.email),
                                user_id: existing.id,
                            })
                    }
                    // Deleted in between: nothing to tell anyone.
                    Ok(None) => Err(AuthError::Conflict),
                    Err(error) => Err(error.into()),
                },
                Err(error) => Err(error.into()),
            },
            Err(error) => Err(error),
        };
        let outcome = match (&result, audit.refusal.clone()) {
            (Ok(Registration::AlreadyRegistered { .. }), Some(refusal)) => Outcome::Refused(refusal),
            (Ok(_), _) => Outcome::Success,
            (Err(error), refusal) => outcome_of(error, refusal),
        };
        self.emit(audit, outcome, client);
        result
    }

    async fn create_account(
        &self,
        email: &str,
        password: Password,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<User, AuthError> {
        self.take(Bucket::RegistrationsPerClient, &Self::client_key(client))
            .await?;
        let email = Email::parse(email)?;
        self.policy.check(&password, Some(&email))?;
        let hasher = Arc::clone(&self.hasher);
        let hash = self
            .pool
            .run(move || hasher.hash(&password))
            .await?
            .map_err(AuthError::internal)?;
        let user = User::new(email, Some(hash), self.now());
        self.store.insert_user(&user).await?;
        audit.subject = Subject::User(user.id);
        // Failures counted against the address before it had an account were nobody's:
        // the owner starts with a clean allowance. Only a new account gets here, so trying
        // to register an existing address refills nothing.
        self.refill_login_allowance(&user.email).await;
        Ok(user)
    }

    // ---------------------------------------------------------------- login and sessions

    /// Checks an email and password and starts a session: an access token and a refresh
    /// token. `client` (user agent, IP) labels the session and keys the per-client limit.
    ///
    /// Before any hashing, the attempt draws on three allowances: the client's
    /// ([`Bucket::LoginAttemptsPerClient`]) and the account's, per minute and in a row
    /// ([`Bucket::LoginFailuresPerAccount`], [`Bucket::ConsecutiveLoginFailuresPerAccount`]),
    /// keyed by a digest of the normalized email whether or not an account exists. Over a
    /// limit, the answer is [`RateLimited`](AuthError::RateLimited) and nothing is hashed.
    /// Drawing before checking keeps concurrent guesses within the limit; a successful
    /// login (or a completed password reset) refills the account's allowances, so only
    /// failures accumulate. A refused draw is not given back to the buckets drawn before
    /// it: a refused attempt still counts as an attempt.
    ///
    /// Every failure to identify the account answers [`InvalidCredentials`](AuthError::InvalidCredentials)
    /// after exactly one password verification: a malformed or unknown email, an
    /// oversized password and an account without a password are checked against a dummy
    /// hash with the current parameters, so neither the answer nor the work reveals
    /// whether an account exists. (The cost is exactly equal for accounts whose hash has
    /// the current parameters; an account still holding a legacy hash costs what its old
    /// scheme costs until its next successful login upgrades it.) A disabled account
    /// answers [`AccountDisabled`](AuthError::AccountDisabled), and an unverified one
    /// [`EmailNotVerified`](AuthError::EmailNotVerified) when verification is required,
    /// but only after the correct password.
    ///
    /// When the stored hash is a legacy format or weaker than the current parameters, a
    /// successful login replaces it with a fresh argon2id hash of the normalized password
    /// (compared and set, so a concurrent password change wins). A failed login never
    /// writes.
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`InvalidCredentials`](AuthError::InvalidCredentials),
    /// [`AccountDisabled`](AuthError::AccountDisabled), [`EmailNotVerified`](AuthError::EmailNotVerified),
    /// [`Busy`](AuthError::Busy), [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn login(&self, email: &str, password: Password, client: &ClientInfo) -> Result<LoginSuccess, AuthError> {
        let mut audit = self.audit_email(Action::Login, email);
        let result = self.log_in(email, password, client, &mut audit).await;
        self.finish(audit, result, client)
    }

    async fn log_in(
        &self,
        email: &str,
        password: Password,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<LoginSuccess, AuthError> {
        // Looked up with the identity rules only: an account registered before the
        // new-address rules (an address mail cannot reach, say) can still log in.
        let email = Email::parse_existing(email).ok();
        let account_key = self.account_key(email.as_ref());
        self.take(Bucket::LoginAttemptsPerClient, &Self::client_key(client))
            .await?;
        self.take(Bucket::LoginFailuresPerAccount, &account_key).await?;
        self.take_consecutive_failure(&account_key).await?;

        let oversized = self.policy.exceeds_max_length(&password);
        let account = match &email {
            Some(email) if !oversized => self.store.find_user_by_email(email).await?,
            _ => None,
        };
        // An oversized password never reaches the hasher: the dummy verification (the same
        // work as any other failure) runs on an empty one instead.
        let password = if oversized {
            Password::new(String::new())
        } else {
            password
        };
        let stored = account.as_ref().and_then(|user| user.password_hash.clone());
        let may_upgrade = account.as_ref().is_some_and(|user| user.is_active);
        let hasher = Arc::clone(&self.hasher);
        let user_id = account.as_ref().map(|user| user.id);
        let outcome = self
            .pool
            .run(move || check_password(&*hasher, &password, stored.as_ref(), may_upgrade, user_id))
            .await?;

        let (mut user, upgrade) = match (account, outcome) {
            (Some(user), PasswordCheck::Match { upgrade }) => (user, upgrade),
            (account, outcome) => {
                if let Some(user) = &account {
                    audit.subject = Subject::User(user.id);
                }
                audit.refusal = Some(match outcome {
                    PasswordCheck::Mismatch(refusal) => refusal,
                    // The dummy hash matched: cannot happen, and is no account either way.
                    PasswordCheck::Match { .. } => Refusal::UnknownAccount,
                });
                return Err(AuthError::InvalidCredentials);
            }
        };
        audit.subject = Subject::User(user.id);
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        if let (Some(upgraded), Some(current)) = (upgrade, user.password_hash.as_ref()) {
            let now = self.now();
            // The login has succeeded either way: a failed upgrade is retried at the next one.
            match self.store.upgrade_password_hash(user.id, current, &upgraded, now).await {
                Ok(true) => {
                    tracing::info!(user_id = %user.id, from = current.scheme(), "password hash upgraded");
                    user.password_hash = Some(upgraded);
                    user.updated_at = now;
                }
                Ok(false) => tracing::info!(user_id = %user.id, "password hash changed concurrently; upgrade skipped"),
                Err(error) => tracing::warn!(user_id = %user.id, %error, "could not store the upgraded password hash"),
            }
        }
        if self.require_verified_email && !user.email_verified() {
            return Err(AuthError::EmailNotVerified);
        }
        let tokens = self.start_session(&user, client).await?;
        audit.session_id = Some(tokens.session.id);
        self.refill_login_allowance(&user.email).await;
        Ok(LoginSuccess { user, tokens })
    }

    async fn start_session(&self, user: &User, client: &ClientInfo) -> Result<TokenPair, AuthError> {
        let now = self.now();
        let (refresh_token, hash) = OpaqueToken::generate(TokenKind::Refresh)?;
        let session = Session {
            id: SessionId::new_at(now),
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            expires_at: later_by(now, self.session_lifetime),
            user_agent: client.user_agent().map(str::to_owned),
            ip: client.ip(),
            revoked_at: None,
        };
        self.store.insert_session(&session, &hash).await?;
        let access_token = self.tokens.issue(user, Some(session.id))?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            session,
        })
    }

    /// Trades a refresh token for a new access token and a new refresh token of the same
    /// session (rotation, RFC 9700 §4.14). Each refresh token works once.
    ///
    /// Presenting a refresh token that was already rotated is reuse: someone holds a copy.
    /// The whole session is revoked (and stays revoked, although this call fails), and the
    /// event records [`TokenError::Reused`]; the thief's and the owner's tokens both stop
    /// working and the owner logs in again. There is no grace window: two concurrent
    /// refreshes with one token are reuse too, so at most one of them succeeds and the
    /// session then ends; clients must serialize their refreshes.
    ///
    /// The session must also be within its idle timeout and absolute lifetime, and its
    /// account must exist and be active. The new access token carries the account's
    /// current roles.
    ///
    /// # Errors
    ///
    /// [`InvalidToken`](AuthError::InvalidToken) (malformed, unknown, expired, revoked or
    /// reused), [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> Result<TokenPair, AuthError> {
        let mut audit = Audit::new(Action::Refresh, Subject::Unknown);
        let result = self.rotate(refresh_token, &mut audit).await;
        self.finish(audit, result, client)
    }

    async fn rotate(&self, refresh_token: &str, audit: &mut Audit) -> Result<TokenPair, AuthError> {
        let hash = OpaqueToken::hash_presented(TokenKind::Refresh, refresh_token)
            .ok_or(AuthError::InvalidToken(TokenError::Malformed))?;
        let record = self
            .store
            .find_refresh_token(&hash)
            .await?
            .ok_or(AuthError::InvalidToken(TokenError::Unknown))?;
        let session = record.session;
        audit.subject = Subject::User(session.user_id);
        audit.session_id = Some(session.id);
        let now = self.now();
        if record.used_at.is_some() {
            return Err(self.reuse_detected(&session, now).await);
        }
        if session.revoked_at.is_some() {
            return Err(AuthError::InvalidToken(TokenError::Revoked));
        }
        if !session.is_live(now, self.session_idle_timeout) {
            return Err(AuthError::InvalidToken(TokenError::Expired));
        }
        let user = self
            .store
            .find_user_by_id(session.user_id)
            .await?
            .filter(|user| user.is_active)
            .ok_or(AuthError::InvalidToken(TokenError::Revoked))?;
        let (refresh_token, replacement) = OpaqueToken::generate(TokenKind::Refresh)?;
        if !self
            .store
            .rotate_refresh_token(session.id, &hash, &replacement, now)
            .await?
        {
            // Another use of this token won the race: that is reuse as well.
            return Err(self.reuse_detected(&session, now).await);
        }
        let access_token = self.tokens.issue(&user, Some(session.id))?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            session: Session {
                last_used_at: now,
                ..session
            },
        })
    }

    async fn reuse_detected(&self, session: &Session, now: OffsetDateTime) -> AuthError {
        match self.store.revoke_session(session.user_id, session.id, now).await {
            Ok(_) => AuthError::InvalidToken(TokenError::Reused),
            Err(error) => error.into(),
        }
    }

    /// Ends the session of `refresh_token`. Idempotent: an unknown, malformed or already
    /// revoked token is not an error, so the caller can always answer "logged out".
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn logout(&self, refresh_token: &str, client: &ClientInfo) -> Result<(), AuthError> {
        let mut audit = Audit::new(Action::Logout, Subject::Unknown);
        let result = self.end_session_of(refresh_token, &mut audit).await;
        self.finish(audit, result, client)
    }

    async fn end_session_of(&self, refresh_token: &str, audit: &mut Audit) -> Result<(), AuthError> {
        let Some(hash) = OpaqueToken::hash_presented(TokenKind::Refresh, refresh_token) else {
            return Ok(());
        };
        if let Some(record) = self.store.find_refresh_token(&hash).await? {
            let session = record.session;
            audit.subject = Subject::User(session.user_id);
            audit.session_id = Some(session.id);
            self.store
                .revoke_session(session.user_id, session.id, self.now())
                .await?;
        }
        Ok(())
    }

    /// Ends every session of the account and revokes every access token issued so far.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn logout_all(&self, user_id: UserId, client: &ClientInfo) -> Result<(), AuthError> {
        let audit = Audit::new(Action::LogoutAll, Subject::User(user_id));
        let result = async {
            let now = self.now();
            // Sessions first, then the version: a refresh racing this cannot outlive it.
            self.store.revoke_all_sessions(user_id, now).await?;
            self.store
                .revoke_access_tokens(user_id, now)
                .await?
                .ok_or(AuthError::UserNotFound)?;
            Ok(())
        }
        .await;
        self.finish(audit, result, client)
    }

    /// The account's live sessions (not revoked, not expired), oldest first.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn list_sessions(&self, user_id: UserId) -> Result<Vec<Session>, AuthError> {
        let now = self.now();
        let mut sessions = self.store.list_sessions(user_id).await?;
        sessions.retain(|session| session.is_live(now, self.session_idle_timeout));
        Ok(sessions)
    }

    /// Ends one of the account's sessions (signing out a device). Access tokens already
    /// issued to it keep working until they expire.
    ///
    /// # Errors
    ///
    /// [`SessionNotFound`](AuthError::SessionNotFound) when the session does not exist,
    /// belongs to another account or has already ended; [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn revoke_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let mut audit = Audit::new(Action::RevokeSession, Subject::User(user_id));
        audit.session_id = Some(session_id);
        let result = match self.store.revoke_session(user_id, session_id, self.now()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuthError::SessionNotFound),
            Err(error) => Err(error.into()),
        };
        self.finish(audit, result, client)
    }

    /// Deletes what can no longer be used: sessions that were revoked, passed their
    /// absolute lifetime or their idle timeout (with their refresh tokens), and single-use
    /// tokens that were used or expired. Nothing live is touched. Call it periodically
    /// (hourly, say) so the tables do not grow without bound.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn purge_expired(&self) -> Result<Purged, AuthError> {
        let now = self.now();
        let sessions = self
            .store
            .delete_ended_sessions(now, earlier_by(now, self.session_idle_timeout))
            .await?;
        let one_time_tokens = self.store.delete_spent_one_time_tokens(now).await?;
        tracing::info!(sessions, one_time_tokens, "purged ended sessions and spent tokens");
        Ok(Purged {
            sessions,
            one_time_tokens,
        })
    }

    /// Resolves an access token to the current account. (No event: this runs on every
    /// request; refusals are the API's 401s.)
    ///
    /// Beyond [`Tokens::verify`], this checks that the account still exists, is active,
    /// and has not revoked the token since it was issued: a password change or reset, a
    /// disable, a role change or a logout everywhere increments the account's token
    /// version, and a token issued before does not match it, even within the same second.
    ///
    /// It also checks the token's session (`sid`): a logout, a revoked session, a detected
    /// refresh-token reuse or a session past its idle timeout or absolute lifetime ends the
    /// session's access tokens on the next request, not when they expire. The account and
    /// the session are read concurrently (two store reads per request).
    /// A token without `sid` (issued by [`Tokens::issue`] without a session, for a
    /// service account say) is checked against its account only.
    ///
    /// [`TokenVerifier`](crate::TokenVerifier), for services that verify tokens without
    /// the store, checks none of this: a revoked token passes it until it expires.
    ///
    /// # Errors
    ///
    /// [`InvalidToken`](AuthError::InvalidToken) (with the reason as its source),
    /// [`AccountDisabled`](AuthError::AccountDisabled), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn authenticate(&self, access_token: &str) -> Result<Authenticated, AuthError> {
        let claims = self.tokens.verify(access_token).map_err(AuthError::InvalidToken)?;
        let session = async {
            match claims.session_id() {
                Some(id) => self.store.find_session(id).await.map(Some),
                None => Ok(None),
            }
        };
        let (user, session) = tokio::join!(self.store.find_user_by_id(claims.user_id()), session);
        let user = user?
            .filter(|user| user.token_version == claims.token_version())
            .ok_or(AuthError::InvalidToken(TokenError::Revoked))?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        if claims.session_id().is_some() {
            let now = self.now();
            session?
                .flatten()
                .filter(|session| session.user_id == user.id && session.is_live(now, self.session_idle_timeout))
                .ok_or(AuthError::InvalidToken(TokenError::Revoked))?;
        }
        Ok(Authenticated { user, claims })
    }

    // ---------------------------------------------------------------- passwords

    /// Changes the password of `user_id`, which must prove it knows the current one.
    ///
    /// The new password is checked against the policy first (no hashing if it fails);
    /// then the current password is verified and the new one hashed, in one job on the
    /// pool. The write is compare-and-set on the account's token version, so a concurrent
    /// password change or disable is never overwritten. On success every session and
    /// every access token issued before is revoked; the caller logs in again.
    ///
    /// Guesses of the current password draw on the account's login allowances, as
    /// [`login`](Self::login) does, so a stolen access token is no unlimited guessing
    /// oracle; success refills them.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`RateLimited`](AuthError::RateLimited),
    /// [`WeakPassword`](AuthError::WeakPassword), [`InvalidCredentials`](AuthError::InvalidCredentials)
    /// (wrong current password), [`Conflict`](AuthError::Conflict) (the account changed
    /// meanwhile: another password change, a revocation), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn change_password(
        &self,
        user_id: UserId,
        current: Password,
        new: Password,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        let mut audit = Audit::new(Action::ChangePassword, Subject::User(user_id));
        let result = self.replace_known_password(user_id, current, new, &mut audit).await;
        self.finish(audit, result, client)
    }

    async fn replace_known_password(
        &self,
        user_id: UserId,
        current: Password,
        new: Password,
        audit: &mut Audit,
    ) -> Result<User, AuthError> {
        let user = self
            .store
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        self.policy.check(&new, Some(&user.email))?;
        // A stolen access token must not become an unlimited password oracle: guesses
        // of the current password draw on the account's login allowances.
        let account_key = self.account_key(Some(&user.email));
        self.take(Bucket::LoginFailuresPerAccount, &account_key).await?;
        self.take_consecutive_failure(&account_key).await?;
        let stored = user.password_hash.clone();
        let hasher = Arc::clone(&self.hasher);
        let new_hash = self
            .pool
            .run(
                move || match check_password(&*hasher, &current, stored.as_ref(), false, Some(user_id)) {
                    PasswordCheck::Match { .. } => hasher.hash(&new).map(Ok),
                    PasswordCheck::Mismatch(refusal) => Ok(Err(refusal)),
                },
            )
            .await?
            .map_err(AuthError::internal)?
            .map_err(|refusal| {
                audit.refusal = Some(refusal);
                AuthError::InvalidCredentials
            })?;
        let updated = self.replace_password(&user, &new_hash).await?;
        self.refill_login_allowance(&updated.email).await;
        Ok(updated)
    }

    /// Ends `user`'s sessions, then stores `hash` if `user` is unchanged since it was read
    /// (which also revokes earlier access tokens).
    ///
    /// Sessions end first: a refresh racing this change then fails, where in the other
    /// order it could mint an access token under the new token version that outlives the
    /// change. A failure between the two steps fails closed (sessions gone, password kept).
    async fn replace_password(&self, user: &User, hash: &HashedPassword) -> Result<User, AuthError> {
        let now = self.now();
        self.store.revoke_all_sessions(user.id, now).await?;
        let Some(updated) = self
            .store
            .set_password_hash(user.id, hash, user.token_version, now)
            .await?
        else {
            return Err(self.lost_race(user.id).await);
        };
        Ok(updated)
    }

    /// Why a compare-and-set on `user_id` found the account changed.
    async fn lost_race(&self, user_id: UserId) -> AuthError {
        match self.store.find_user_by_id(user_id).await {
            Ok(None) => AuthError::UserNotFound,
            Ok(Some(user)) if !user.is_active => AuthError::AccountDisabled,
            Ok(Some(_)) => AuthError::Conflict,
            Err(error) => error.into(),
        }
    }

    /// Starts a password reset (OWASP Forgot Password Cheat Sheet).
    ///
    /// Limited per client ([`Bucket::ResetRequestsPerClient`]: over it, the answer is
    /// [`RateLimited`](AuthError::RateLimited)) and per account
    /// ([`Bucket::ResetRequestsPerAccount`]). Over the account's limit the call still
    /// succeeds, returning `None` and sending nothing (its event says `rate_limited`):
    /// a refusal would let anyone block the owner's reset by requesting it for them,
    /// whereas the owner already holds the newest of the mails sent within the limit,
    /// which works. The account limit applies to unknown emails exactly as to known ones,
    /// and is separate from the login limits, so a throttled owner can always reset.
    /// The request then draws on the mail allowances every mail shares
    /// ([`Bucket::MailsPerClient`], [`Bucket::MailsPerAccount`]), answered the same way:
    /// `None`, nothing sent.
    ///
    /// Returns the message to deliver only when `email` belongs to an active account,
    /// addressed to the stored address, never to the string typed. Answer the client the
    /// same way whatever this returns: both paths do the same work, with no early return
    /// (one lookup, one token generated, hashed and stored; without an account the stored
    /// token is a decoy that nobody receives). Deliver the mail off the request path, so
    /// sending it does not show in the response time either.
    ///
    /// The token works once, for [`password_reset_ttl`](Self::with_password_reset_ttl)
    /// (1 hour by default), and dies when a newer reset is requested or the password
    /// changes by any route.
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal); never anything that depends on whether the
    /// account exists.
    pub async fn request_password_reset(
        &self,
        email: &str,
        client: &ClientInfo,
    ) -> Result<Option<Delivery>, AuthError> {
        let mut audit = self.audit_email(Action::RequestPasswordReset, email);
        let result = self.issue_reset(email, client, &mut audit).await;
        self.finish(audit, result, client)
    }

    async fn issue_reset(
        &self,
        email: &str,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<Option<Delivery>, AuthError> {
        // As for logins: an account older than the new-address rules is still found (and
        // if mail cannot reach it, the mailer logs the failed send).
        let email = Email::parse_existing(email).ok();
        self.take(Bucket::ResetRequestsPerClient, &Self::client_key(client))
            .await?;
        // Over the account's limit, the request is answered as usual but sends nothing:
        // refusing it would let anyone block the owner's reset, and the owner already
        // holds the newest of the mails sent within the limit, which still works.
        if let Err(AuthError::RateLimited { retry_after }) = self
            .take(Bucket::ResetRequestsPerAccount, &self.account_key(email.as_ref()))
            .await
        {
            audit.outcome = Some(Outcome::RateLimited { retry_after });
            return Ok(None);
        }
        // Malformed addresses receive nothing anyway; the decoy path below does their work.
        if let Some(recipient) = &email
            && !self.mail_allowed(recipient, client, audit).await?
        {
            return Ok(None);
        }
        let account = match &email {
            Some(email) => self.store.find_user_by_email(email).await?,
            None => None,
        };
        let target = account.filter(|user| user.is_active);
        // Both answers do the same work: a token is generated, hashed and stored either way.
        // Without an account it is a decoy for the nil account, which cannot exist (ids are
        // UUIDv7), and its token is handed to nobody.
        let decoy = User {
            id: UserId::from_uuid(uuid::Uuid::nil()),
            ..User::new(Email::decoy(), None, self.now())
        };
        let owner = target.as_ref().unwrap_or(&decoy);
        let (token, hash) = OpaqueToken::generate(TokenKind::PasswordReset)?;
        let delivery = self
            .issue_one_time_token(
                owner,
                TokenPurpose::PasswordReset,
                token,
                &hash,
                self.password_reset_ttl,
            )
            .await?;
        Ok(target.map(|user| {
            audit.subject = Subject::User(user.id);
            delivery
        }))
    }

    async fn issue_one_time_token(
        &self,
        user: &User,
        purpose: TokenPurpose,
        token: OpaqueToken,
        hash: &crate::TokenHash,
        ttl: Duration,
    ) -> Result<Delivery, AuthError> {
        let now = self.now();
        let record = OneTimeToken {
            user_id: user.id,
            purpose,
            email: user.email.clone(),
            token_version: user.token_version,
            created_at: now,
            expires_at: later_by(now, ttl),
        };
        self.store.insert_one_time_token(hash, &record).await?;
        Ok(Delivery {
            to: record.email,
            user_id: user.id,
            purpose,
            token,
            expires_at: record.expires_at,
        })
    }

    /// Sets a new password with a password-reset token.
    ///
    /// Limited per client ([`Bucket::ConfirmationsPerClient`]). The token must be unused,
    /// unexpired, the newest one requested, and issued since the last password change.
    /// The new password is checked against the policy before the token is spent, so a
    /// weak choice can be corrected with the same link. On success the token is spent (of
    /// concurrent uses, exactly one succeeds), every session and access token is revoked,
    /// the email counts as verified (the owner just proved they read mail there), and the
    /// account's login allowance is refilled. The user is not logged in: they log in with
    /// the new password.
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`InvalidOneTimeToken`](AuthError::InvalidOneTimeToken),
    /// [`WeakPassword`](AuthError::WeakPassword), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn reset_password(&self, token: &str, new: Password, client: &ClientInfo) -> Result<(), AuthError> {
        let mut audit = Audit::new(Action::ResetPassword, Subject::Unknown);
        let result = self.apply_reset(token, new, client, &mut audit).await;
        self.finish(audit, result, client)
    }

    async fn apply_reset(
        &self,
        token: &str,
        new: Password,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<(), AuthError> {
        const PURPOSE: TokenPurpose = TokenPurpose::PasswordReset;
        let invalid = AuthError::InvalidOneTimeToken;
        self.take(Bucket::ConfirmationsPerClient, &Self::client_key(client))
            .await?;
        let hash = OpaqueToken::hash_presented(PURPOSE.kind(), token).ok_or(invalid(TokenError::Malformed))?;
        let record = self
            .store
            .find_one_time_token(&hash, PURPOSE)
            .await?
            .ok_or(invalid(TokenError::Unknown))?;
        audit.subject = Subject::User(record.user_id);
        if self.now() >= record.expires_at {
            return Err(invalid(TokenError::Expired));
        }
        let user = self
            .store
            .find_user_by_id(record.user_id)
            .await?
            .filter(|user| user.is_active && user.token_version == record.token_version && user.email == record.email)
            .ok_or(invalid(TokenError::Revoked))?;
        self.policy.check(&new, Some(&user.email))?;
        let hasher = Arc::clone(&self.hasher);
        let new_hash = self
            .pool
            .run(move || hasher.hash(&new))
            .await?
            .map_err(AuthError::internal)?;
        let now = self.now();
        self.store
            .consume_one_time_token(&hash, PURPOSE, now)
            .await?
            .ok_or(invalid(TokenError::Reused))?;
        let user = self
            .replace_password(&user, &new_hash)
            .await
            .map_err(|error| match error {
                // The account changed since the token was issued.
                AuthError::Conflict | AuthError::UserNotFound | AuthError::AccountDisabled => {
                    invalid(TokenError::Revoked)
                }
                other => other,
            })?;
        self.store.mark_email_verified(user.id, &record.email, now).await?;
        self.refill_login_allowance(&user.email).await;
        Ok(())
    }

    // ---------------------------------------------------------------- email verification

    /// Starts an email verification for the account: the message to deliver to its stored
    /// address, or `None` when the address is already verified. The token works once, for
    /// [`email_verification_ttl`](Self::with_email_verification_ttl) (24 hours by default),
    /// and only while the account keeps this address; a newer request replaces it.
    ///
    /// Each mail draws on [`Bucket::MailsPerClient`] and [`Bucket::MailsPerAccount`]: over
    /// either, this returns `None` and sends nothing (its event says `rate_limited`), so
    /// repeated requests cannot flood the address; answer the client as usual.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn request_email_verification(
        &self,
        user_id: UserId,
        client: &ClientInfo,
    ) -> Result<Option<Delivery>, AuthError> {
        let mut audit = Audit::new(Action::RequestEmailVerification, Subject::User(user_id));
        let result = async {
            let user = self
                .store
                .find_user_by_id(user_id)
                .await?
                .ok_or(AuthError::UserNotFound)?;
            if user.email_verified() {
                return Ok(None);
            }
            if !self.mail_allowed(&user.email, client, &mut audit).await? {
                return Ok(None);
            }
            let (token, hash) = OpaqueToken::generate(TokenKind::EmailVerification)?;
            let purpose = TokenPurpose::EmailVerification;
            let ttl = self.email_verification_ttl;
            self.issue_one_time_token(&user, purpose, token, &hash, ttl)
                .await
                .map(Some)
        }
        .await;
        self.finish(audit, result, client)
    }

    /// Marks the email verified with an email-verification token (spent by this call; of
    /// concurrent uses, exactly one succeeds). Limited per client
    /// ([`Bucket::ConfirmationsPerClient`]). Returns the updated account.
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`InvalidOneTimeToken`](AuthError::InvalidOneTimeToken)
    /// (malformed, unknown, used, expired, or the account's email changed),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> Result<User, AuthError> {
        let mut audit = Audit::new(Action::VerifyEmail, Subject::Unknown);
        let result = self.apply_verification(token, client, &mut audit).await;
        self.finish(audit, result, client)
    }

    async fn apply_verification(&self, token: &str, client: &ClientInfo, audit: &mut Audit) -> Result<User, AuthError> {
        const PURPOSE: TokenPurpose = TokenPurpose::EmailVerification;
        let invalid = AuthError::InvalidOneTimeToken;
        self.take(Bucket::ConfirmationsPerClient, &Self::client_key(client))
            .await?;
        let hash = OpaqueToken::hash_presented(PURPOSE.kind(), token).ok_or(invalid(TokenError::Malformed))?;
        let now = self.now();
        let record = self
            .store
            .consume_one_time_token(&hash, PURPOSE, now)
            .await?
            .ok_or(invalid(TokenError::Unknown))?;
        audit.subject = Subject::User(record.user_id);
        if now >= record.expires_at {
            return Err(invalid(TokenError::Expired));
        }
        self.store
            .mark_email_verified(record.user_id, &record.email, now)
            .await?
            .ok_or(invalid(TokenError::Revoked))
    }

    // ---------------------------------------------------------------- administration

    /// Enables or disables an account (an administrator's action). Disabling ends every
    /// session and revokes every access token issued before; a disabled account cannot
    /// log in.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn set_active(&self, user_id: UserId, active: bool, client: &ClientInfo) -> Result<User, AuthError> {
        let action = if active {
            Action::EnableAccount
        } else {
            Action::DisableAccount
        };
        let audit = Audit::new(action, Subject::User(user_id));
        let result = async {
            let now = self.now();
            if !active {
                // Sessions first, as in a password change: nothing racing the disable survives it.
                self.store.revoke_all_sessions(user_id, now).await?;
            }
            self.store
                .set_active(user_id, active, now)
                .await?
                .ok_or(AuthError::UserNotFound)
        }
        .await;
        self.finish(audit, result, client)
    }

    /// Accounts in registration order, `limit` at a time (at most
    /// [`MAX_LIST_USERS`]), after the account `after` (the last id of the previous page).
    /// An administrator's listing: check the caller's role first
    /// ([`AccessClaims::require_role`]). Records no event (a read).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, AuthError> {
        Ok(self.store.list_users(after, limit.min(MAX_LIST_USERS)).await?)
    }

    /// Whether the store answers, with one cheap read: for a health endpoint (503 when it
    /// does not).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn check_store(&self) -> Result<(), AuthError> {
        self.store.find_user_by_id(UserId::from_uuid(uuid::Uuid::nil())).await?;
        Ok(())
    }

    /// Replaces the account's roles (an administrator's action). Access tokens issued
    /// before carry the old roles and stop working; sessions continue, and their next
    /// refresh carries the new roles. An account holds at most
    /// [`Role::MAX_PER_ACCOUNT`] roles, so its tokens always fit the verifier's size limit.
    ///
    /// # Errors
    ///
    /// [`TooManyRoles`](AuthError::TooManyRoles) (nothing written),
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn set_roles(
        &self,
        user_id: UserId,
        roles: BTreeSet<Role>,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        let audit = Audit::new(Action::SetRoles, Subject::User(user_id));
        if roles.len() > Role::MAX_PER_ACCOUNT {
            let error = AuthError::TooManyRoles {
                max: Role::MAX_PER_ACCOUNT,
            };
            return self.finish(audit, Err(error), client);
        }
        let result = match self.store.set_roles(user_id, &roles, self.now()).await {
            Ok(Some(user)) => Ok(user),
            Ok(None) => Err(AuthError::UserNotFound),
            Err(error) => Err(error.into()),
        };
        self.finish(audit, result, client)
    }
}

/// What one call is about, filled in as the flow learns it, for its one event.
struct Audit {
    action: Action,
    subject: Subject,
    session_id: Option<SessionId>,
    /// A more precise refusal than the error says (`WrongPassword` behind
    /// `InvalidCredentials`, say).
    refusal: Option<Refusal>,
    /// The outcome of a call that succeeds for its caller but not really (a reset
    /// request over the account's limit, answered as usual).
    outcome: Option<Outcome>,
}

impl Audit {
    fn new(action: Action, subject: Subject) -> Self {
        Self {
            action,
            subject,
            session_id: None,
            refusal: None,
            outcome: None,
        }
    }
}

/// The event outcome of a failed call.
fn outcome_of(error: &AuthError, refusal: Option<Refusal>) -> Outcome {
    let refused = |fallback: Refusal| Outcome::Refused(refusal.clone().unwrap_or(fallback));
    match error {
        AuthError::RateLimited { retry_after } => Outcome::RateLimited {
            retry_after: *retry_after,
        },
        AuthError::Busy { .. } => Outcome::Busy,
        AuthError::Unavailable(_) | AuthError::Internal(_) => Outcome::Failed,
        AuthError::InvalidEmail(_) => refused(Refusal::InvalidEmail),
        AuthError::WeakPassword(violation) => refused(Refusal::WeakPassword(*violation)),
        AuthError::EmailTaken => refused(Refusal::EmailTaken),
        AuthError::InvalidCredentials => refused(Refusal::WrongPassword),
        AuthError::AccountDisabled => refused(Refusal::AccountDisabled),
        AuthError::EmailNotVerified => refused(Refusal::EmailNotVerified),
        AuthError::InvalidToken(reason) | AuthError::InvalidOneTimeToken(reason) => {
            refused(Refusal::InvalidToken(reason.clone()))
        }
        AuthError::UserNotFound | AuthError::SessionNotFound | AuthError::Forbidden { .. } => {
            refused(Refusal::NotFound)
        }
        AuthError::Conflict => refused(Refusal::Conflict),
        AuthError::TooManyRoles { .. } => refused(Refusal::TooManyRoles),
        AuthError::AccountLocked => refused(Refusal::AccountLocked),
    }
}

impl<S> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("tokens", &self.tokens)
            .field("policy", &self.policy)
            .field("hasher", &self.hasher)
            .field("pool", &self.pool)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .field("session_lifetime", &self.session_lifetime)
            .field("password_reset_ttl", &self.password_reset_ttl)
            .field("email_verification_ttl", &self.email_verification_ttl)
            .field("require_verified_email", &self.require_verified_email)
            .finish_non_exhaustive()
    }
}

/// What the hashing job found.
enum PasswordCheck {
    /// No match, and why (for the event, never for the client).
    Mismatch(Refusal),
    Match {
        upgrade: Option<HashedPassword>,
    },
}

/// Verifies `password` against `stored`, or against the dummy hash when there is nothing
/// usable to verify, so that every call does the same work. Runs on the hash pool.
fn check_password(
    hasher: &dyn PasswordHasher,
    password: &Password,
    stored: Option<&HashedPassword>,
    may_upgrade: bool,
    user_id: Option<UserId>,
) -> PasswordCheck {
    let verification = match stored.map(|hash| hasher.verify(password, hash)) {
        Some(Ok(verification)) => verification,
        unusable => {
            let refusal = match (&unusable, user_id) {
                (Some(Err(error)), _) => {
                    log_unusable_hash(user_id, error);
                    Refusal::UnusableHash
                }
                (_, Some(_)) => Refusal::NoPassword,
                (_, None) => Refusal::UnknownAccount,
            };
            let _ = hasher.verify(password, hasher.dummy_hash());
            return PasswordCheck::Mismatch(refusal);
        }
    };
    match verification {
        Verification::Mismatch => PasswordCheck::Mismatch(Refusal::WrongPassword),
        Verification::Match { needs_rehash } => {
            let upgrade = if needs_rehash && may_upgrade {
                hasher
                    .hash(password)
                    .inspect_err(|error| tracing::warn!(%error, "could not compute the upgraded password hash"))
                    .ok()
            } else {
                None
            };
            PasswordCheck::Match { upgrade }
        }
    }
}

fn log_unusable_hash(user_id: Option<UserId>, error: &HashError) {
    let user_id = user_id.map(|id| id.to_string()).unwrap_or_default();
    tracing::error!(%user_id, %error, "stored password hash is unusable; the account cannot log in");
}
