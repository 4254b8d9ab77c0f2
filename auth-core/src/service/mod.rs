//! [`AuthService`]: every authentication flow, one module per flow.
//!
//! | module | flows |
//! |---|---|
//! | `registration` | [`register`](AuthService::register), [`register_enumeration_safe`](AuthService::register_enumeration_safe) |
//! | `login` | [`login`](AuthService::login), [`start_session`](AuthService::start_session), and the password check that login and a password change share |
//! | `sessions` | [`authenticate`](AuthService::authenticate), [`resume_session`](AuthService::resume_session), [`refresh`](AuthService::refresh), [`logout`](AuthService::logout), [`logout_all`](AuthService::logout_all), [`list_sessions`](AuthService::list_sessions), [`revoke_session`](AuthService::revoke_session) |
//! | `passwords` | [`change_password`](AuthService::change_password), [`request_password_reset`](AuthService::request_password_reset), [`reset_password`](AuthService::reset_password) |
//! | `verification` | [`request_email_verification`](AuthService::request_email_verification), [`verify_email`](AuthService::verify_email) |
//! | `administration` | [`Accounts`]: enable and disable accounts, roles, the account listing, the store's health |
//! | `browser` | [`open_browser_session`](AuthService::open_browser_session), [`check_browser_session`](AuthService::check_browser_session), [`close_browser_session`](AuthService::close_browser_session) (stores with [`BrowserSessionStore`](crate::BrowserSessionStore)) |
//! | `second_factor` | [`with_totp`](AuthService::with_totp), [`begin_totp_enrolment`](AuthService::begin_totp_enrolment), [`confirm_totp`](AuthService::confirm_totp), [`complete_login`](AuthService::complete_login), [`disable_totp`](AuthService::disable_totp), [`regenerate_recovery_codes`](AuthService::regenerate_recovery_codes), [`second_factor_status`](AuthService::second_factor_status), and the step-up rule (stores with [`SecondFactorStore`](crate::SecondFactorStore)) |
//! | `external` | [`with_identity_provider`](AuthService::with_identity_provider), [`begin_external_login`](AuthService::begin_external_login), [`begin_identity_link`](AuthService::begin_identity_link), [`finish_external_login`](AuthService::finish_external_login), [`exchange_external_login`](AuthService::exchange_external_login), [`list_identities`](AuthService::list_identities), [`unlink_identity`](AuthService::unlink_identity) (stores with [`IdentityStore`](crate::IdentityStore)) |
//! | `maintenance` | [`purge_expired`](AuthService::purge_expired), [`purge_every`](AuthService::purge_every) |
//!
//! The machinery they share is written once: `audit` records the one event of every
//! call, `limits` keys and draws the rate-limit allowances, `mail` issues the single-use
//! tokens that mails carry and draws the mail allowances.
//!
//! Conventions: every public method is one flow, and records its event through
//! `audited` with its body inline; a private method is a step that several flows share,
//! named for what that step does, never a second name of a public flow. An email address
//! typed by the client is parsed once, where the flow begins.

mod administration;
mod audit;
mod audit_log;
mod browser;
mod busy;
mod deletion;
mod email_change;
mod export;
mod external;
mod limits;
mod login;
mod mail;
mod maintenance;
#[cfg(feature = "passkeys")]
mod passkeys;
mod passwords;
mod registration;
mod second_factor;
mod sessions;
mod verification;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::event::{EventKey, EventSink};
use crate::hash::{Argon2Hasher, HashPool, PasswordHasher};
use crate::notice::{NoticeSink, SecurityNotice, SecurityNoticeKind};
use crate::one_time::Delivery;
use crate::password::PasswordPolicy;
use crate::rate_limit::{MemoryRateLimiter, RateLimiter, RateLimits};
use crate::role::Role;
use crate::session::ClientInfo;
use crate::store::AuthStore;
use crate::token::Tokens;
use crate::user::User;

pub use administration::{Accounts, MAX_LIST_USERS};
pub use browser::{BrowserCheck, BrowserSession};
pub use email_change::EMAIL_CHANGE_UNDO_WINDOW;
pub use export::AccountExport;
pub use external::{ExchangeProof, ExternalCallback, ExternalLoginFailure, ExternalLoginFinish, ExternalLoginStart};
pub use login::{LoginOutcome, LoginSuccess, SecondFactorChallenge};
pub use maintenance::Purged;
#[cfg(feature = "passkeys")]
pub use passkeys::{PasskeyChallenge, PasskeySettings, PasskeySettingsError};
pub use registration::{INVITATION_TTL, Invitation, Registration};
pub use second_factor::{DEFAULT_STEP_UP_WINDOW, NewRecoveryCodes, TotpSettings};
pub use sessions::{Authenticated, Caller, ResumedSession, SessionCheck};

/// Default idle timeout of a session: 7 days without a refresh ends it (the seeds'
/// refresh-token lifetime).
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default absolute lifetime of a session: 30 days after login, however active.
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default lifetime of a password-reset token: 1 hour.
pub const DEFAULT_PASSWORD_RESET_TTL: Duration = Duration::from_secs(3600);
/// Default lifetime of an email-verification token: 24 hours.
pub const DEFAULT_EMAIL_VERIFICATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Runs every authentication flow against an [`AuthStore`].
///
/// Framework glue stays thin: a handler extracts the input, calls one method, and maps the
/// [`AuthError`](crate::AuthError) with its [`code`](crate::AuthError::code) and
/// [`http_status`](crate::AuthError::http_status) (or whole, with
/// [`http::ErrorResponse`](crate::http::ErrorResponse)). Every rule (normalization,
/// policy, equal work, rotation, revocation) lives here.
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
/// let user = auth.register("Ada@Example.com", Password::new("analytical-engine"), &ClientInfo::unknown()).await?;
/// assert_eq!(user.email.as_str(), "ada@example.com");
///
/// let login = auth.login(" ADA@example.com", Password::new("analytical-engine"), &ClientInfo::unknown()).await?.signed_in()?;
/// let me = auth.authenticate(login.tokens.access_token.expose_secret()).await?;
/// assert_eq!(me.user.id, user.id);
///
/// // Refresh tokens rotate: each works once.
/// let refreshed = auth.refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::unknown()).await?;
/// assert!(auth.refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::unknown()).await.is_err());
/// # let _ = refreshed;
/// # Ok(())
/// # }
/// ```
///
/// # What the store must do
///
/// Every flow needs the three base traits ([`AuthStore`]). The flows of an optional
/// capability are there when the store has it too, and only then: an application whose
/// store lacks one still compiles and runs everything else. See the
/// [storage traits](crate::UserStore) for which flow needs which trait.
///
/// # What revokes what
///
/// | event | access tokens issued before | sessions (refresh tokens) | pending reset tokens |
/// |---|---|---|---|
/// | [`change_password`](Self::change_password), [`reset_password`](Self::reset_password) | rejected by `authenticate` | all revoked | dead |
/// | [`set_active`](Self::set_active)`(false)` | rejected | all revoked | dead |
/// | [`logout_all`](Self::logout_all) | rejected | all revoked | dead |
/// | [`set_roles`](Self::set_roles), and a [`grant_role`](Self::grant_role) or [`revoke_role`](Self::revoke_role) that changes something | rejected (they carry the old roles) | kept: the next refresh carries the new roles | dead |
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
/// normalized email and by [`ClientInfo::rate_limit_key`](crate::ClientInfo::rate_limit_key);
/// see each method. Every call of every flow (not `authenticate`, `list_sessions` or
/// `purge_expired`, which are reads or maintenance) records exactly one
/// [`AuthEvent`](crate::AuthEvent), to `tracing` and to the [`EventSink`] given to
/// [`with_event_sink`](Self::with_event_sink).
///
/// Share one service per process (behind an `Arc`): it owns the [`HashPool`] that bounds
/// hashing work and the in-memory rate limiter. It needs a Tokio runtime with the time
/// driver (see [`HashPool`]).
pub struct AuthService<S> {
    /// The store, the clock and the events: all that administration needs.
    accounts: Accounts<S>,
    tokens: Tokens,
    policy: PasswordPolicy,
    hasher: Arc<dyn PasswordHasher>,
    pool: HashPool,
    limiter: Arc<dyn RateLimiter>,
    /// The limits of the built-in limiter, kept to rebuild it when the clock changes;
    /// `None` once the application supplies its own limiter.
    rate_limits: Option<RateLimits>,
    session_idle_timeout: Duration,
    session_lifetime: Duration,
    password_reset_ttl: Duration,
    email_verification_ttl: Duration,
    require_verified_email: bool,
    /// TOTP, when [`with_totp`](Self::with_totp) turned it on.
    second_factors: Option<second_factor::SecondFactors<S>>,
    step_up_window: Duration,
    second_factor_roles: Arc<BTreeSet<Role>>,
    /// The providers of [`with_identity_provider`](Self::with_identity_provider).
    identity_providers: external::IdentityProviders,
    /// Passkeys, when [`with_passkeys`](Self::with_passkeys) turned them on.
    #[cfg(feature = "passkeys")]
    passkeys: Option<passkeys::Passkeys<S>>,
    /// Where security notices go ([`with_security_notices`](Self::with_security_notices)).
    notices: Option<Arc<dyn NoticeSink>>,
    /// Whether a sign-in from an unrecognized device is told
    /// ([`with_new_device_notices`](Self::with_new_device_notices)).
    new_device_notices: bool,
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
            limiter: Arc::new(MemoryRateLimiter::with_clock(rate_limits.clone(), Arc::clone(&clock))),
            accounts: Accounts::new(store).with_clock(clock),
            tokens,
            policy: PasswordPolicy::default(),
            hasher: Arc::new(Argon2Hasher::default()),
            pool: HashPool::default(),
            rate_limits: Some(rate_limits),
            session_idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            password_reset_ttl: DEFAULT_PASSWORD_RESET_TTL,
            email_verification_ttl: DEFAULT_EMAIL_VERIFICATION_TTL,
            require_verified_email: false,
            second_factors: None,
            step_up_window: DEFAULT_STEP_UP_WINDOW,
            second_factor_roles: Arc::default(),
            identity_providers: external::IdentityProviders::default(),
            #[cfg(feature = "passkeys")]
            passkeys: None,
            notices: None,
            new_device_notices: false,
        }
    }
}

impl<S> AuthService<S> {
    /// Hands a [`SecurityNotice`] to `sink` at every change an account's owner should know
    /// of: a password changed or reset, two-factor authentication turned on or off, new
    /// recovery codes, a sign-in provider linked or unlinked, the account locked by
    /// failed sign-ins (with a reset link, drawn from the mail allowances). Without a sink
    /// (the default) nothing is told; an application that mails should always set one.
    #[must_use]
    pub fn with_security_notices(mut self, sink: impl NoticeSink) -> Self {
        self.notices = Some(Arc::new(sink));
        self
    }

    /// Tells `user`'s owner of `kind`, made by `client`, with `link` when it has one.
    pub(super) fn notify(&self, user: &User, kind: SecurityNoticeKind, client: &ClientInfo, link: Option<Delivery>) {
        if let Some(sink) = &self.notices {
            let notice =
                SecurityNotice::new(user.email.clone(), user.id, kind, self.now(), client.clone()).with_link(link);
            sink.notify(notice);
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
        self.accounts = self.accounts.with_clock(clock);
        self
    }

    /// Replaces the limits of the built-in in-memory limiter ([`RateLimits::default`]
    /// otherwise). [`RateLimits::disabled`] turns limiting off, for benchmarks only.
    #[must_use]
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.limiter = Arc::new(MemoryRateLimiter::with_clock(
            limits.clone(),
            Arc::clone(&self.accounts.clock),
        ));
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

    /// Also sends every [`AuthEvent`](crate::AuthEvent) to `sink` (they always go to
    /// `tracing`).
    #[must_use]
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.accounts = self.accounts.with_event_sink(sink);
        self
    }

    /// Keeps every event in `log`, the store's audit log ([`AuditLog`](crate::AuditLog)):
    /// the record of each change in the change's own transaction, where the store takes
    /// it ([`PendingRecords`](crate::PendingRecords); the shipped stores do), every other
    /// event queued for the log's writer. `log` should write to this service's store;
    /// reading the log back needs the store to be an
    /// [`AuditLogStore`](crate::AuditLogStore) ([`events_of`](Self::events_of)).
    #[must_use]
    pub fn with_audit_log(mut self, log: crate::AuditLog) -> Self {
        self.accounts = self.accounts.with_audit_log(log);
        self
    }

    /// Sets the secret under which events digest email addresses, so digests stay
    /// comparable across restarts and servers (random per process otherwise). The rate
    /// limits key accounts under it too.
    #[must_use]
    pub fn with_event_key(mut self, key: EventKey) -> Self {
        self.accounts = self.accounts.with_event_key(key);
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
    /// An unverified account then answers
    /// [`EmailNotVerified`](crate::AuthError::EmailNotVerified), only after the correct
    /// password.
    #[must_use]
    pub fn with_require_verified_email(mut self, required: bool) -> Self {
        self.require_verified_email = required;
        self
    }

    /// Tells the owner (through the [notice sink](Self::with_security_notices)) of every
    /// sign-in from a device the account has no live session from, by its user agent
    /// ([`NewSignIn`](crate::SecurityNoticeKind::NewSignIn)); off by default. A first
    /// sign-in, and one from a device whose sessions have all ended, count as new: this
    /// is a signal for the owner, not a device registry. Each sign-in then reads the
    /// account's sessions once more.
    #[must_use]
    pub fn with_new_device_notices(mut self, enabled: bool) -> Self {
        self.new_device_notices = enabled;
        self
    }

    /// Sets how recent an authentication with the second factor must be for a sensitive
    /// action of an account that has one (a password change, new recovery codes) to go
    /// ahead without the factor typed again: the step-up rule (default
    /// [`DEFAULT_STEP_UP_WINDOW`], 10 minutes). Measured from the session's `auth_time`
    /// (its login), which a refresh keeps; a session begun on the password alone does not
    /// count.
    #[must_use]
    pub fn with_step_up_window(mut self, window: Duration) -> Self {
        self.step_up_window = window;
        self
    }

    /// Names roles whose routes need a login with a second factor:
    /// [`Authenticated::require_role`] of such a role refuses a token whose `amr` lacks
    /// `mfa` with [`SecondFactorRequired`](crate::AuthError::SecondFactorRequired) (403
    /// `mfa_required`), so an administrator without a second factor must enrol one first.
    /// None by default.
    #[must_use]
    pub fn with_second_factor_required_for(mut self, roles: impl IntoIterator<Item = Role>) -> Self {
        self.second_factor_roles = Arc::new(roles.into_iter().collect());
        self
    }

    /// The step-up window ([`with_step_up_window`](Self::with_step_up_window)).
    pub fn step_up_window(&self) -> Duration {
        self.step_up_window
    }

    /// The token issuer and verifier, for extractors that only need [`Tokens::verify`].
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.accounts.store
    }

    /// The password policy.
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.policy
    }

    /// The administration of the accounts, with this service's store, clock and events
    /// (the same flows as [`Accounts`] built on its own, for a command-line tool say).
    pub fn accounts(&self) -> &Accounts<S> {
        &self.accounts
    }

    fn now(&self) -> OffsetDateTime {
        self.accounts.now()
    }
}

#[cfg(not(feature = "passkeys"))]
impl<S> AuthService<S> {
    /// Without the `passkeys` feature no account has a passkey the service can check.
    #[allow(clippy::unused_async)]
    async fn has_passkeys(&self, _user: crate::id::UserId) -> Result<bool, crate::AuthError> {
        Ok(false)
    }

    /// Without the `passkeys` feature there is no ceremony to purge.
    #[allow(clippy::unused_async)]
    async fn purge_passkey_ceremonies(&self, _before: OffsetDateTime) -> Result<u64, crate::AuthError> {
        Ok(0)
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
            .field("second_factors", &self.second_factors)
            .field("step_up_window", &self.step_up_window)
            .field("second_factor_roles", &self.second_factor_roles)
            .field("identity_providers", &self.identity_providers)
            .field("security_notices", &self.notices.is_some())
            .finish_non_exhaustive()
    }
}
