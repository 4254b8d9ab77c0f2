//! [`AuthService`]: every authentication flow, in one place.

use std::fmt;
use std::sync::Arc;

use crate::clock::now_micros;
use crate::hash::{HashError, Verification};
use crate::{
    AccessToken, Argon2Hasher, AuthError, Clock, Email, HashPool, HashedPassword, Password, PasswordHasher,
    PasswordPolicy, SystemClock, TokenError, Tokens, User, UserId, UserStore,
};

/// Runs every authentication flow against a [`UserStore`].
///
/// Framework glue stays thin: a handler extracts the input, calls one method, and maps the
/// [`AuthError`] with its [`code`](AuthError::code) and [`http_status`](AuthError::http_status).
/// Every rule (normalization, policy, equal work, revocation) lives here.
///
/// Construct it with the required parts, then adjust with `with_*`; each default is
/// secure and documented on its method:
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{AuthService, MemoryStore, Password, PasswordPolicy, SigningKey, Tokens};
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
/// let user = auth.register("Ada@Example.com", Password::new("analytical-engine")).await?;
/// assert_eq!(user.email.as_str(), "ada@example.com");
///
/// let login = auth.login(" ADA@example.com", Password::new("analytical-engine")).await?;
/// let me = auth.authenticate(login.access_token.expose_secret()).await?;
/// assert_eq!(me.id, user.id);
///
/// let wrong = auth.login("ada@example.com", Password::new("difference-engine")).await;
/// assert_eq!(wrong.unwrap_err().code(), "invalid_credentials");
/// # Ok(())
/// # }
/// ```
///
/// Share one service per process (behind an `Arc`): it owns the [`HashPool`] that bounds
/// hashing work.
pub struct AuthService<S> {
    store: S,
    tokens: Tokens,
    policy: PasswordPolicy,
    hasher: Arc<dyn PasswordHasher>,
    pool: HashPool,
    clock: Arc<dyn Clock>,
}

/// A successful login.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginSuccess {
    /// The account, as stored after the login (with its upgraded hash, if any).
    pub user: User,
    /// The access token to hand to the client.
    pub access_token: AccessToken,
}

impl<S: UserStore> AuthService<S> {
    /// A service over `store`, issuing tokens with `tokens`, with these defaults:
    ///
    /// - [`PasswordPolicy::default`]: 8 to 256 characters, common passwords and the
    ///   email refused;
    /// - [`Argon2Hasher::default`]: argon2id with OWASP's parameters;
    /// - [`HashPool::default`]: one concurrent hash per core, a bounded queue;
    /// - [`SystemClock`].
    pub fn new(store: S, tokens: Tokens) -> Self {
        Self {
            store,
            tokens,
            policy: PasswordPolicy::default(),
            hasher: Arc::new(Argon2Hasher::default()),
            pool: HashPool::default(),
            clock: Arc::new(SystemClock),
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

    /// Uses `clock` for every timestamp, including token issue and expiry.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.tokens = self.tokens.with_clock(Arc::clone(&clock));
        self.clock = clock;
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

    /// Creates an account.
    ///
    /// The email is normalized and the password checked against the policy (with the
    /// email) before any hashing; the new account is active, unverified and has no roles.
    ///
    /// # Errors
    ///
    /// [`InvalidEmail`](AuthError::InvalidEmail), [`WeakPassword`](AuthError::WeakPassword),
    /// [`EmailTaken`](AuthError::EmailTaken) (decided by the store's unique constraint),
    /// [`Busy`](AuthError::Busy), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn register(&self, email: &str, password: Password) -> Result<User, AuthError> {
        let email = Email::parse(email)?;
        self.policy.check(&password, Some(&email))?;
        let hasher = Arc::clone(&self.hasher);
        let hash = self
            .pool
            .run(move || hasher.hash(&password))
            .await?
            .map_err(AuthError::internal)?;
        let now = now_micros(&*self.clock);
        let user = User::new(email, Some(hash), now);
        self.store.insert_user(&user).await?;
        tracing::info!(user_id = %user.id, "account registered");
        Ok(user)
    }

    /// Checks an email and password and issues an access token.
    ///
    /// Every failure to identify the account answers [`InvalidCredentials`](AuthError::InvalidCredentials)
    /// after exactly one password verification: a malformed or unknown email, an
    /// oversized password and an account without a password are checked against a dummy
    /// hash with the current parameters, so neither the answer nor the work reveals
    /// whether an account exists. (The cost is exactly equal for accounts whose hash has
    /// the current parameters; an account still holding a legacy hash costs what its old
    /// scheme costs until its next successful login upgrades it.) A disabled account answers
    /// [`AccountDisabled`](AuthError::AccountDisabled), but only after the correct password.
    ///
    /// When the stored hash is a legacy format or has outdated parameters, a successful
    /// login replaces it with a fresh argon2id hash of the normalized password (compared
    /// and set, so a concurrent password change wins). A failed login never writes.
    ///
    /// # Errors
    ///
    /// [`InvalidCredentials`](AuthError::InvalidCredentials), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`Busy`](AuthError::Busy), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn login(&self, email: &str, password: Password) -> Result<LoginSuccess, AuthError> {
        let oversized = self.policy.exceeds_max_length(&password);
        let account = match Email::parse(email) {
            Ok(email) if !oversized => self.store.find_user_by_email(&email).await?,
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

        let (Some(mut user), PasswordCheck::Match { upgrade }) = (account, outcome) else {
            tracing::info!("login failed");
            return Err(AuthError::InvalidCredentials);
        };
        if !user.is_active {
            tracing::info!(user_id = %user.id, "login refused: account disabled");
            return Err(AuthError::AccountDisabled);
        }
        if let (Some(upgraded), Some(current)) = (upgrade, user.password_hash.as_ref()) {
            let now = now_micros(&*self.clock);
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
        let access_token = self.tokens.issue(&user)?;
        tracing::info!(user_id = %user.id, "login succeeded");
        Ok(LoginSuccess { user, access_token })
    }

    /// Resolves an access token to the current account.
    ///
    /// Beyond [`Tokens::verify`], this checks that the account still exists, is active,
    /// and has not revoked the token since it was issued (a password change or a disable
    /// increments the account's token version; a token issued before does not match it,
    /// even within the same second).
    ///
    /// # Errors
    ///
    /// [`InvalidToken`](AuthError::InvalidToken) (with the reason as its source),
    /// [`AccountDisabled`](AuthError::AccountDisabled), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn authenticate(&self, access_token: &str) -> Result<User, AuthError> {
        let claims = self.tokens.verify(access_token).map_err(AuthError::InvalidToken)?;
        let user = self
            .store
            .find_user_by_id(claims.user_id())
            .await?
            .filter(|user| user.token_version == claims.token_version())
            .ok_or(AuthError::InvalidToken(TokenError::Revoked))?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        Ok(user)
    }

    /// Changes the password of `user_id`, which must prove it knows the current one.
    ///
    /// The new password is checked against the policy first (no hashing if it fails);
    /// then the current password is verified and the new one hashed, in one job on the
    /// pool. The write is compare-and-set on the account's token version, so a concurrent
    /// password change or disable is never overwritten. On success every access token
    /// issued before stops working; the caller logs in again.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`WeakPassword`](AuthError::WeakPassword), [`InvalidCredentials`](AuthError::InvalidCredentials)
    /// (wrong current password), [`Conflict`](AuthError::Conflict) (the account changed
    /// meanwhile: another password change, a revocation), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn change_password(&self, user_id: UserId, current: Password, new: Password) -> Result<User, AuthError> {
        let user = self
            .store
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        self.policy.check(&new, Some(&user.email))?;
        let stored = user.password_hash.clone();
        let hasher = Arc::clone(&self.hasher);
        let new_hash = self
            .pool
            .run(
                move || match check_password(&*hasher, &current, stored.as_ref(), false, Some(user_id)) {
                    PasswordCheck::Match { .. } => hasher.hash(&new).map(Some),
                    PasswordCheck::Mismatch => Ok(None),
                },
            )
            .await?
            .map_err(AuthError::internal)?
            .ok_or(AuthError::InvalidCredentials)?;
        let now = now_micros(&*self.clock);
        let Some(user) = self
            .store
            .set_password_hash(user_id, &new_hash, user.token_version, now)
            .await?
        else {
            return Err(self.lost_race(user_id).await);
        };
        tracing::info!(user_id = %user.id, "password changed; earlier access tokens revoked");
        Ok(user)
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

    /// Enables or disables an account (an administrator's action). Disabling revokes
    /// every access token issued before; a disabled account cannot log in.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn set_active(&self, user_id: UserId, active: bool) -> Result<User, AuthError> {
        let now = now_micros(&*self.clock);
        let user = self
            .store
            .set_active(user_id, active, now)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        tracing::info!(user_id = %user.id, active, "account activity changed");
        Ok(user)
    }
}

impl<S> fmt::Debug for AuthService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthService")
            .field("tokens", &self.tokens)
            .field("policy", &self.policy)
            .field("hasher", &self.hasher)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// What the hashing job found.
enum PasswordCheck {
    Mismatch,
    Match { upgrade: Option<HashedPassword> },
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
            if let Some(Err(error)) = unusable {
                log_unusable_hash(user_id, &error);
            }
            let _ = hasher.verify(password, hasher.dummy_hash());
            return PasswordCheck::Mismatch;
        }
    };
    match verification {
        Verification::Mismatch => PasswordCheck::Mismatch,
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
