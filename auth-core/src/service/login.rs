//! Login: an email and a password for a new session (or a request for a second factor),
//! a session for a principal another flow has proven, and the password check that login
//! and a password change share.

use std::sync::Arc;

use super::AuthService;
use super::audit::Audit;
use crate::auth_method::{AuthMethod, AuthMethods};
use crate::email::Email;
use crate::error::AuthError;
use crate::event::{Action, Outcome, Refusal, Subject};
use crate::hash::{HashError, HashedPassword, PasswordHasher, Verification};
use crate::id::UserId;
use crate::password::Password;
use crate::rate_limit::Bucket;
use crate::second_factor::SecondFactorMethod;
use crate::session::{ClientInfo, Session, TokenPair};
use crate::store::AuthStore;
use crate::token::OpaqueToken;
use crate::user::User;
use time::OffsetDateTime;

/// A successful login: a new session.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginSuccess {
    /// The account, as stored after the login (with its upgraded hash, if any).
    pub user: User,
    /// The access token, the refresh token and the new session.
    pub tokens: TokenPair,
}

/// What a login with the right password leads to: a session, or a request for more.
///
/// ```
/// use auth_core::{AuthService, ClientInfo, LoginOutcome, MemoryStore, Password, SigningKey, Tokens};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), auth_core::AuthError> {
/// # let tokens = Tokens::new(SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap(), "https://a.example", "api");
/// # let auth = AuthService::new(MemoryStore::new(), tokens);
/// # let client = ClientInfo::unknown();
/// # auth.register("ada@example.com", Password::new("analytical-engine"), &client).await?;
/// match auth.login("ada@example.com", Password::new("analytical-engine"), &client).await? {
///     LoginOutcome::SignedIn(login) => assert_eq!(login.user.email.as_str(), "ada@example.com"),
///     LoginOutcome::SecondFactorRequired(challenge) => unreachable!("no second factor: {challenge:?}"),
///     _ => unreachable!("no other outcome in this release"),
/// }
///
/// // An application with no second-factor step takes the session, or refuses the login.
/// let login = auth.login("ada@example.com", Password::new("analytical-engine"), &client).await?.signed_in()?;
/// # let _ = login;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
#[must_use]
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per login and matched at once; boxing would only add an allocation"
)]
pub enum LoginOutcome {
    /// Signed in: a new session and its tokens.
    SignedIn(LoginSuccess),
    /// The password was right, but the account asks for a second factor before any
    /// session begins: no session and no access or refresh token, only a challenge that
    /// [`AuthService::complete_login`] completes (see [`AuthService::with_totp`]).
    SecondFactorRequired(SecondFactorChallenge),
}

impl LoginOutcome {
    /// The new session, for an application that has no second-factor step: a login that
    /// asks for more is refused.
    ///
    /// # Errors
    ///
    /// [`SecondFactorRequired`](AuthError::SecondFactorRequired) when the login needs a
    /// second factor.
    pub fn signed_in(self) -> Result<LoginSuccess, AuthError> {
        match self {
            Self::SignedIn(success) => Ok(success),
            Self::SecondFactorRequired(_) => Err(AuthError::SecondFactorRequired),
        }
    }
}

/// A login waiting for its second factor: [`LoginOutcome::SecondFactorRequired`]. Hand
/// [`token`](Self::token) to the client, which completes the login with it and a code
/// ([`AuthService::complete_login`]); no session exists yet.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SecondFactorChallenge {
    /// The account whose password was right.
    pub user_id: UserId,
    /// The challenge's token (`mfa_…`), stored only hashed; works once.
    pub token: OpaqueToken,
    /// When it stops working (5 minutes after the password).
    pub expires_at: OffsetDateTime,
    /// How long it works from now: for a client's `expires_in`.
    pub expires_in: std::time::Duration,
    /// What completes it.
    pub methods: Vec<SecondFactorMethod>,
}

impl<S: AuthStore> AuthService<S> {
    /// Checks an email and password and starts a session: an access token and a refresh
    /// token, in [`LoginOutcome::SignedIn`]. An account with a second factor
    /// ([`User::requires_second_factor`]) gets [`LoginOutcome::SecondFactorRequired`]
    /// instead, with a challenge that [`complete_login`](Self::complete_login) completes,
    /// when the service has [`with_totp`](Self::with_totp), and
    /// [`SecondFactorRequired`](AuthError::SecondFactorRequired) otherwise: never a session
    /// on the password alone. Its password step refills no allowance (only the completed
    /// login does). With TOTP on, a password login reads the account once more after
    /// storing its session, so that a factor confirmed meanwhile ends that session too. `client` (user agent, IP) labels the session and keys the per-client
    /// limit. The session records [`AuthMethod::PASSWORD`], now.
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
    pub async fn login(&self, email: &str, password: Password, client: &ClientInfo) -> Result<LoginOutcome, AuthError> {
        // Looked up with the identity rules only: an account registered before the
        // new-address rules (an address mail cannot reach, say) can still log in.
        let email = Email::parse_existing(email).ok();
        let subject = self.accounts.email_subject(email.as_ref());
        self.audited(Audit::new(Action::Login, subject), client, async |audit| {
            let email = email.as_ref();
            self.take(Bucket::LoginAttemptsPerClient, client, email).await?;
            self.take(Bucket::LoginFailuresPerAccount, client, email).await?;
            if let Err(error) = self.take_consecutive_failure(client, email).await {
                if matches!(error, AuthError::AccountLocked) {
                    self.tell_of_lock(email, client).await;
                }
                return Err(error);
            }

            // The pool's permit first: under a flood beyond its queue, the refusal costs no
            // account read (and says nothing about the account either way).
            let slot = self.pool.reserve().await?;
            let oversized = self.policy.exceeds_max_length(&password);
            let account = match email {
                Some(email) if !oversized => self.store().find_user_by_email(email).await?,
                _ => None,
            };
            // An oversized password never reaches the hasher: the dummy verification (the
            // same work as any other failure) runs on an empty one instead.
            let password = if oversized {
                Password::new(String::new())
            } else {
                password
            };
            let stored = account.as_ref().and_then(|user| user.password_hash.clone());
            let may_upgrade = account.as_ref().is_some_and(|user| user.is_active);
            let hasher = Arc::clone(&self.hasher);
            let user_id = account.as_ref().map(|user| user.id);
            let outcome = slot
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
            if let Some(upgraded) = upgrade {
                self.store_upgraded_hash(&mut user, upgraded).await;
            }
            if self.require_verified_email && !user.email_verified() {
                return Err(AuthError::EmailNotVerified);
            }
            if user.requires_second_factor {
                let Some(factors) = &self.second_factors else {
                    return Err(AuthError::SecondFactorRequired);
                };
                let challenge = (factors.issue_challenge)(self, &user, AuthMethod::PASSWORD, client).await?;
                audit.outcome = Some(Outcome::SecondFactorRequired);
                return Ok(LoginOutcome::SecondFactorRequired(challenge));
            }
            let tokens = self
                .session_with_tokens(&user, AuthMethods::from(AuthMethod::PASSWORD), client, audit)
                .await?;
            if let Some(factors) = &self.second_factors {
                // A factor confirmed after this login read the account: the confirmation
                // ended the sessions it saw, and this one, stored since, is ended here (the
                // flag is written before the confirmation lists the sessions, and read
                // here after this session is stored, so one of the two sees the other).
                let now_required = self
                    .store()
                    .find_user_by_id(user.id)
                    .await?
                    .is_some_and(|current| current.requires_second_factor);
                if now_required {
                    self.store()
                        .revoke_session(user.id, tokens.session.id, self.now())
                        .await?;
                    // The session's record (a sign-in) stands: it was created. The call's
                    // own event, the challenge, is recorded after it.
                    audit.recorded = false;
                    let challenge = (factors.issue_challenge)(self, &user, AuthMethod::PASSWORD, client).await?;
                    audit.outcome = Some(Outcome::SecondFactorRequired);
                    return Ok(LoginOutcome::SecondFactorRequired(challenge));
                }
            }
            audit.session_id = Some(tokens.session.id);
            self.refill_login_allowance(&user.email).await;
            Ok(LoginOutcome::SignedIn(LoginSuccess { user, tokens }))
        })
        .await
    }

    /// Starts a session for an account whose owner has just proven who they are by
    /// another flow than a password login (an external identity provider, a passkey),
    /// recording how (`methods`) and when (now): the session keeps both, and its access
    /// tokens carry them as `amr` and `auth_time`, also after a refresh.
    ///
    /// The caller's flow has verified the proof and drawn on its own limits: this draws
    /// on none, and refills no password allowance. The account must exist and be active,
    /// and have a verified email when
    /// [`with_require_verified_email`](Self::with_require_verified_email) says so; the
    /// event is [`Action::StartSession`].
    ///
    /// ```
    /// use auth_core::{AuthMethod, AuthMethods, AuthService, ClientInfo, MemoryStore, Password, SigningKey, Tokens};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), auth_core::AuthError> {
    /// # let tokens = Tokens::new(SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap(), "https://a.example", "api");
    /// # let auth = AuthService::new(MemoryStore::new(), tokens);
    /// # let client = ClientInfo::unknown();
    /// # let user = auth.register("ada@example.com", Password::new("analytical-engine"), &client).await?;
    /// // A passkey assertion was verified for `user`: possession of a key, verified user.
    /// let methods = AuthMethods::from(AuthMethod::HARDWARE_KEY).with(AuthMethod::MULTI_FACTOR);
    /// let login = auth.start_session(user.id, methods.clone(), &client).await?;
    /// let me = auth.authenticate(login.tokens.access_token.expose_secret()).await?;
    /// assert_eq!(me.claims.auth_methods(), Some(&methods));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`EmailNotVerified`](AuthError::EmailNotVerified), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn start_session(
        &self,
        user_id: UserId,
        methods: AuthMethods,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        self.audited(
            Audit::new(Action::StartSession, Subject::User(user_id)),
            client,
            async |audit| {
                let user = self.active_account(user_id).await?;
                if self.require_verified_email && !user.email_verified() {
                    return Err(AuthError::EmailNotVerified);
                }
                let tokens = self.session_with_tokens(&user, methods, client, audit).await?;
                audit.session_id = Some(tokens.session.id);
                Ok(LoginSuccess { user, tokens })
            },
        )
        .await
    }

    /// Starts a new session carrying on `previous`, a session of the account that a
    /// password change has just ended, for the same client: the same methods (`amr`) and
    /// the same `auth_time`, since the change proved the password again and nothing more,
    /// so it opens no new step-up window. For a browser that stays signed in after
    /// changing its password. The event is [`Action::StartSession`].
    ///
    /// # Errors
    ///
    /// As [`start_session`](Self::start_session).
    pub async fn continue_session(&self, previous: &Session, client: &ClientInfo) -> Result<LoginSuccess, AuthError> {
        self.audited(
            Audit::new(Action::StartSession, Subject::User(previous.user_id)),
            client,
            async |audit| {
                let user = self.active_account(previous.user_id).await?;
                if self.require_verified_email && !user.email_verified() {
                    return Err(AuthError::EmailNotVerified);
                }
                let tokens = self
                    .session_with_tokens_since(
                        &user,
                        previous.auth_methods.clone(),
                        Some(previous.auth_time),
                        client,
                        audit,
                    )
                    .await?;
                audit.session_id = Some(tokens.session.id);
                Ok(LoginSuccess { user, tokens })
            },
        )
        .await
    }

    /// Replaces `user`'s stored hash by `upgraded` (compared and set: a password changed
    /// meanwhile wins). The login has succeeded either way: a failed upgrade is retried at
    /// the next one.
    async fn store_upgraded_hash(&self, user: &mut User, upgraded: HashedPassword) {
        let Some(current) = user.password_hash.as_ref() else {
            return;
        };
        let now = self.now();
        match self
            .store()
            .upgrade_password_hash(user.id, current, &upgraded, now)
            .await
        {
            Ok(true) => {
                tracing::info!(user_id = %user.id, from = current.scheme(), "password hash upgraded");
                user.password_hash = Some(upgraded);
                user.updated_at = now;
            }
            Ok(false) => tracing::info!(user_id = %user.id, "password hash changed concurrently; upgrade skipped"),
            Err(error) => tracing::warn!(user_id = %user.id, %error, "could not store the upgraded password hash"),
        }
    }
}

impl<S: AuthStore> AuthService<S> {
    /// The re-authentication of a sensitive action: the password typed again, or, for an
    /// account without one (signed up through an identity provider), a recent sign-in
    /// (within the step-up window; with the second factor where the account has one),
    /// whatever `password` says.
    pub(super) async fn reauthenticate(
        &self,
        caller: &super::Caller,
        user: &User,
        password: Password,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<(), AuthError> {
        if user.password_hash.is_none() {
            return self.recent_authentication(caller, user, audit);
        }
        self.check_current_password(user, password, client, audit).await
    }

    /// Checks the password `user` types again for a sensitive action, drawing on the
    /// account's login allowances first (a stolen session is no unlimited password
    /// oracle). Refills nothing: the flow refills when all of it succeeded.
    pub(super) async fn check_current_password(
        &self,
        user: &User,
        password: Password,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<(), AuthError> {
        self.take(Bucket::LoginFailuresPerAccount, client, Some(&user.email))
            .await?;
        self.take_consecutive_failure(client, Some(&user.email)).await?;
        let stored = user.password_hash.clone();
        let hasher = Arc::clone(&self.hasher);
        let user_id = user.id;
        match self
            .pool
            .run(move || check_password(&*hasher, &password, stored.as_ref(), false, Some(user_id)))
            .await?
        {
            PasswordCheck::Match { .. } => Ok(()),
            PasswordCheck::Mismatch(refusal) => {
                audit.refusal = Some(refusal);
                Err(AuthError::InvalidCredentials)
            }
        }
    }
}

/// What the hashing job found.
pub(super) enum PasswordCheck {
    /// No match, and why (for the event, never for the client).
    Mismatch(Refusal),
    Match {
        upgrade: Option<HashedPassword>,
    },
}

/// Verifies `password` against `stored`, or against the dummy hash when there is nothing
/// usable to verify, so that every call does the same work. Runs on the hash pool.
pub(super) fn check_password(
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::token::TokenKind;

    #[test]
    fn a_login_that_asks_for_a_second_factor_is_refused_where_none_is_asked_for() {
        let (token, _) = OpaqueToken::generate(TokenKind::LoginChallenge).unwrap();
        let challenge = SecondFactorChallenge {
            user_id: UserId::new_at(datetime!(2026-06-01 09:00 UTC)),
            token,
            expires_at: datetime!(2026-06-01 09:05 UTC),
            expires_in: std::time::Duration::from_secs(300),
            methods: vec![SecondFactorMethod::Totp],
        };
        let error = LoginOutcome::SecondFactorRequired(challenge).signed_in().unwrap_err();
        assert!(matches!(error, AuthError::SecondFactorRequired));
        assert_eq!((error.code(), error.http_status()), ("mfa_required", 403));
        assert!(!error.is_transient() && !error.is_server_error());
    }
}
