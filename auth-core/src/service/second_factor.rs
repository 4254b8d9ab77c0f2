//! Second factors: TOTP enrolment, the login challenge and its completion, recovery
//! codes, and the step-up rule of sensitive actions.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::AuthService;
use super::audit::Audit;
use super::login::{LoginSuccess, SecondFactorChallenge};
use super::sessions::Caller;
use crate::auth_method::{AuthMethod, AuthMethods};
use crate::clock::later_by;
use crate::error::AuthError;
use crate::event::{Action, Refusal, Subject};
use crate::id::{SessionId, UserId};
use crate::notice::SecurityNoticeKind;
use crate::password::Password;
use crate::rate_limit::Bucket;
use crate::second_factor::{
    LOGIN_CHALLENGE_TTL, LoginChallenge, MAX_LOGIN_CHALLENGE_ATTEMPTS, RecoveryCodes, SecondFactorCode,
    SecondFactorMethod, SecondFactorStatus, SecretCipher, TOTP_ENROLMENT_TTL, TOTP_SECRET_BYTES, TotpEnrolment,
    TotpFactor, matching_step, presented_recovery_code, totp,
};
use crate::session::ClientInfo;
use crate::store::{AuthStore, SecondFactorStore};
use crate::token::{OpaqueToken, TokenError, TokenHash, TokenKind};
use crate::user::User;

/// Default window of the step-up rule: an authentication less than 10 minutes old
/// counts as recent.
pub const DEFAULT_STEP_UP_WINDOW: Duration = Duration::from_secs(10 * 60);

/// How TOTP factors are made and kept: the name authenticator apps show beside the
/// account (the issuer), and the cipher that keeps secrets encrypted at rest.
///
/// ```
/// use auth_core::{EncryptionKey, SecretCipher, TotpSettings};
///
/// let key = EncryptionKey::new(&[7; 32]).unwrap(); // from the environment, in a real service
/// let settings = TotpSettings::new("Example", SecretCipher::new(key));
/// assert_eq!(settings.issuer(), "Example");
/// ```
#[derive(Clone, Debug)]
pub struct TotpSettings {
    issuer: String,
    cipher: SecretCipher,
}

impl TotpSettings {
    /// TOTP factors labelled `issuer` (a `:` in it becomes a space: the URI format
    /// reserves it), secrets sealed by `cipher`.
    pub fn new(issuer: impl Into<String>, cipher: SecretCipher) -> Self {
        Self {
            issuer: issuer.into(),
            cipher,
        }
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }
}

/// What a confirmed factor or new codes give the caller: the recovery codes to show once
/// (the account's owner is told through the service's
/// [`NoticeSink`](crate::NoticeSink)).
#[derive(Debug)]
#[non_exhaustive]
pub struct NewRecoveryCodes {
    /// Shown once; stored only hashed.
    pub recovery_codes: RecoveryCodes,
}

pub(super) type BoxedFlow<'a, T> = Pin<Box<dyn Future<Output = Result<T, AuthError>> + Send + 'a>>;

/// Issues a login challenge: set by [`AuthService::with_totp`], where the store is known
/// to keep challenges, and called by `login`, which is written for every store.
pub(super) type IssueChallenge<S> =
    for<'a> fn(&'a AuthService<S>, &'a User, AuthMethod, &'a ClientInfo) -> BoxedFlow<'a, SecondFactorChallenge>;

/// Checks (and spends) a second factor, for the step-up rule of flows written for every
/// store (a password change).
pub(super) type CheckCode<S> = for<'a> fn(
    &'a AuthService<S>,
    &'a User,
    &'a SecondFactorCode,
    &'a ClientInfo,
) -> BoxedFlow<'a, Result<AuthMethod, Refusal>>;

/// The second-factor part of a service: its settings, and the steps that need the
/// store's [`SecondFactorStore`] for flows written for every store.
pub(super) struct SecondFactors<S> {
    pub(super) settings: TotpSettings,
    pub(super) issue_challenge: IssueChallenge<S>,
    pub(super) check_code: CheckCode<S>,
}

impl<S> fmt::Debug for SecondFactors<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecondFactors")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn issue_challenge<'a, S: AuthStore + SecondFactorStore>(
    service: &'a AuthService<S>,
    user: &'a User,
    first_factor: AuthMethod,
    client: &'a ClientInfo,
) -> BoxedFlow<'a, SecondFactorChallenge> {
    Box::pin(service.issue_login_challenge(user, first_factor, client))
}

fn check_code<'a, S: AuthStore + SecondFactorStore>(
    service: &'a AuthService<S>,
    user: &'a User,
    code: &'a SecondFactorCode,
    client: &'a ClientInfo,
) -> BoxedFlow<'a, Result<AuthMethod, Refusal>> {
    Box::pin(service.check_second_factor(user, code, client))
}

/// What a TOTP secret is bound to when sealed: its account.
fn seal_context(user: UserId) -> Vec<u8> {
    format!("auth-core totp {user}").into_bytes()
}

impl<S: AuthStore + SecondFactorStore> AuthService<S> {
    /// Turns TOTP on: accounts can enrol an authenticator app
    /// ([`begin_totp_enrolment`](Self::begin_totp_enrolment)), and a login to an account
    /// with a confirmed factor answers [`LoginOutcome::SecondFactorRequired`](crate::LoginOutcome::SecondFactorRequired)
    /// with a challenge that [`complete_login`](Self::complete_login) completes.
    ///
    /// Without it, a login to an account with a factor (enrolled under a service that had
    /// it) is refused with [`SecondFactorRequired`](AuthError::SecondFactorRequired):
    /// never let in on the password alone.
    ///
    /// ```
    /// use auth_core::{
    ///     AuthService, ClientInfo, EncryptionKey, LoginOutcome, MemoryStore, Password, SecondFactorCode,
    ///     SecretCipher, SigningKey, Tokens, TotpSettings,
    /// };
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tokens = Tokens::new(SigningKey::hs256(b"an example secret of at least 32 bytes!")?, "https://a.example", "api");
    /// let cipher = SecretCipher::new(EncryptionKey::new(&[7; 32])?);
    /// let auth = AuthService::new(MemoryStore::new(), tokens).with_totp(TotpSettings::new("Example", cipher));
    /// # let client = ClientInfo::unknown();
    /// # auth.register("ada@example.com", Password::new("analytical-engine"), &client).await?;
    /// let login = auth.login("ada@example.com", Password::new("analytical-engine"), &client).await?.signed_in()?;
    /// let me = auth.authenticate(login.tokens.access_token.expose_secret()).await?;
    ///
    /// // Enrol: the app scans `otpauth_uri`; a first code confirms.
    /// let enrolment = auth.begin_totp_enrolment(&(&me).into(), Password::new("analytical-engine"), &client).await?;
    /// # let code = |at: time::OffsetDateTime| {
    /// #     let secret = totp_rs::Secret::try_from_base32(enrolment.expose_secret()).unwrap();
    /// #     totp_rs::Builder::new().with_secret(secret).build().unwrap().generate(at.unix_timestamp() as u64).to_string()
    /// # };
    /// let confirmed = auth.confirm_totp(&(&me).into(), &code(time::OffsetDateTime::now_utc()), &client).await?;
    /// assert_eq!(confirmed.recovery_codes.len(), 10);
    ///
    /// // The next login asks for a code, and a recovery code completes it.
    /// let LoginOutcome::SecondFactorRequired(challenge) =
    ///     auth.login("ada@example.com", Password::new("analytical-engine"), &client).await?
    /// else {
    ///     panic!("a second factor is required");
    /// };
    /// let rescue = confirmed.recovery_codes.expose_secrets().next().unwrap_or_default();
    /// let login = auth
    ///     .complete_login(challenge.token.expose_secret(), SecondFactorCode::recovery_code(rescue), &client)
    ///     .await?;
    /// assert!(login.tokens.session.auth_methods.to_string().contains("mfa"));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_totp(mut self, settings: TotpSettings) -> Self {
        self.second_factors = Some(SecondFactors {
            settings,
            issue_challenge: issue_challenge::<S>,
            check_code: check_code::<S>,
        });
        self
    }

    /// Begins enrolling an authenticator app for the caller's account, who types the
    /// password again (an account without one, signed up through an identity provider,
    /// needs a recent sign-in instead: [`StepUpRequired`](AuthError::StepUpRequired)
    /// otherwise): returns the secret and its `otpauth://` URI, shown once. Nothing
    /// changes for login until [`confirm_totp`](Self::confirm_totp); beginning again
    /// replaces an unconfirmed secret. The secret is stored sealed by the
    /// [`TotpSettings`]' cipher, never in the clear.
    ///
    /// The password draws on the account's login allowances, as a login does.
    ///
    /// # Errors
    ///
    /// [`InvalidCredentials`](AuthError::InvalidCredentials), [`SecondFactorAlreadyEnrolled`](AuthError::SecondFactorAlreadyEnrolled)
    /// (disable the factor first), [`RateLimited`](AuthError::RateLimited), [`AccountLocked`](AuthError::AccountLocked),
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`Busy`](AuthError::Busy), [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal)
    /// (also without [`with_totp`](Self::with_totp)).
    pub async fn begin_totp_enrolment(
        &self,
        caller: &Caller,
        password: Password,
        client: &ClientInfo,
    ) -> Result<TotpEnrolment, AuthError> {
        let audit = Audit::new(Action::BeginTotpEnrolment, Subject::User(caller.user_id()));
        self.audited(audit, client, async |audit| {
            let settings = self.totp_settings()?;
            let user = self.active_account(caller.user_id()).await?;
            self.reauthenticate(caller, &user, password, client, audit).await?;
            if self.confirmed_factor(user.id).await?.is_some() {
                audit.refusal = Some(Refusal::AlreadyEnrolled);
                return Err(AuthError::SecondFactorAlreadyEnrolled);
            }
            let mut secret = Zeroizing::new([0u8; TOTP_SECRET_BYTES]);
            getrandom::fill(secret.as_mut()).map_err(AuthError::internal)?;
            let sealed = settings
                .cipher
                .seal(secret.as_ref(), &seal_context(user.id))
                .map_err(AuthError::internal)?;
            let factor = TotpFactor::new(user.id, sealed, self.now());
            if !self
                .record_change(audit, client, self.store().insert_totp_factor(&factor))
                .await?
            {
                audit.refusal = Some(Refusal::AlreadyEnrolled);
                return Err(AuthError::SecondFactorAlreadyEnrolled);
            }
            let generator =
                totp(secret.as_ref(), &settings.issuer, user.email.as_str()).map_err(AuthError::internal)?;
            let uri = generator.to_url().map_err(AuthError::internal)?;
            self.refill_login_allowance(&user.email).await;
            Ok(TotpEnrolment {
                secret: SecretString::from(generator.secret().to_base32()),
                otpauth_uri: SecretString::from(uri),
            })
        })
        .await
    }

    /// Confirms the caller's pending enrolment with a current `code` of the app: from
    /// now on, login asks for a second factor. Returns ten recovery codes (shown once,
    /// stored hashed) and a notice to mail; ends the account's other sessions (the
    /// caller's own stays). The code's time step counts as used.
    ///
    /// # Errors
    ///
    /// [`InvalidCode`](AuthError::InvalidCode), [`SecondFactorNotEnrolled`](AuthError::SecondFactorNotEnrolled)
    /// (no enrolment begun), [`SecondFactorAlreadyEnrolled`](AuthError::SecondFactorAlreadyEnrolled),
    /// [`Conflict`](AuthError::Conflict) (a new enrolment began meanwhile), [`RateLimited`](AuthError::RateLimited),
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn confirm_totp(
        &self,
        caller: &Caller,
        code: &str,
        client: &ClientInfo,
    ) -> Result<NewRecoveryCodes, AuthError> {
        let audit = Audit::new(Action::ConfirmTotp, Subject::User(caller.user_id()));
        self.audited(audit, client, async |audit| {
            self.take(Bucket::ConfirmationsPerClient, client, None).await?;
            let settings = self.totp_settings()?;
            let user = self.active_account(caller.user_id()).await?;
            let Some(factor) = self.store().find_totp_factor(user.id).await? else {
                audit.refusal = Some(Refusal::NotEnrolled);
                return Err(AuthError::SecondFactorNotEnrolled);
            };
            if factor.is_confirmed() {
                audit.refusal = Some(Refusal::AlreadyEnrolled);
                return Err(AuthError::SecondFactorAlreadyEnrolled);
            }
            let now = self.now();
            if now - factor.created_at >= TOTP_ENROLMENT_TTL {
                // Abandoned: begin again (a new secret), rather than guess at an old one.
                audit.refusal = Some(Refusal::InvalidToken(TokenError::Expired));
                return Err(AuthError::SecondFactorNotEnrolled);
            }
            // Whoever holds a session could guess here without the password: these guesses
            // are the account's, whatever the client.
            self.take(Bucket::SecondFactorFailuresPerAccount, client, Some(&user.email))
                .await?;
            let secret = settings
                .cipher
                .open(&factor.sealed_secret, &seal_context(user.id))
                .map_err(AuthError::internal)?;
            let generator = totp(&secret, &settings.issuer, user.email.as_str()).map_err(AuthError::internal)?;
            let Some(step) = matching_step(&generator, code, now) else {
                return Err(AuthError::InvalidCode);
            };
            let (recovery_codes, hashes) = RecoveryCodes::generate()?;
            let confirmation = self
                .store()
                .confirm_totp_factor(user.id, &factor.sealed_secret, step, &hashes, now);
            let updated = self
                .record_change(audit, client, confirmation)
                .await?
                .ok_or(AuthError::Conflict)?;
            self.end_other_sessions(user.id, caller.session_id(), now).await?;
            self.refill_second_factor_allowance(&user.email).await;
            self.notify(&updated, SecurityNoticeKind::TotpEnabled, client, None);
            Ok(NewRecoveryCodes { recovery_codes })
        })
        .await
    }

    /// Completes a login that asked for a second factor: `challenge` is the token of
    /// [`SecondFactorChallenge`], `code` a current TOTP code or an unused recovery code.
    /// Starts the session, its access tokens carrying `amr` (`pwd`, `otp` or
    /// `recovery_code`, and `mfa`) and `auth_time`.
    ///
    /// A challenge works once, for 5 minutes, from the client (user agent and address) it
    /// was issued to, while the account's token version is the one of its password step (a
    /// password change or reset kills it), and takes at most 5 codes, counted before each
    /// is checked (so concurrent guesses stay within it). Each code draws on the client's
    /// login allowance, the account's login-failure allowances and the account's
    /// [`Bucket::SecondFactorFailuresPerAccount`], which only a completed second-factor
    /// login (or time) refills: neither a new password login nor a password reset buys new
    /// guesses. A TOTP code works once: its time step is recorded, and an earlier or equal
    /// step is refused; one step of drift either way is accepted. Every refusal of the code
    /// or the challenge is one answer, [`LoginChallengeFailed`](AuthError::LoginChallengeFailed);
    /// its event says why.
    ///
    /// # Errors
    ///
    /// [`LoginChallengeFailed`](AuthError::LoginChallengeFailed), [`RateLimited`](AuthError::RateLimited),
    /// [`AccountLocked`](AuthError::AccountLocked), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn complete_login(
        &self,
        challenge: &str,
        code: SecondFactorCode,
        client: &ClientInfo,
    ) -> Result<LoginSuccess, AuthError> {
        let action = match code {
            SecondFactorCode::RecoveryCode(_) => Action::CompleteLoginWithRecoveryCode,
            SecondFactorCode::Totp(_) => Action::CompleteLogin,
        };
        self.audited(Audit::new(action, Subject::Unknown), client, async |audit| {
            self.complete_challenge(challenge, client, audit, async |user| {
                self.check_second_factor(user, &code, client).await
            })
            .await
        })
        .await
    }

    /// Removes the caller's TOTP factor and recovery codes: login asks for the password
    /// alone again. Needs the password and a current code (or an unused recovery code);
    /// ends the account's other sessions and tells the account's owner.
    ///
    /// # Errors
    ///
    /// [`InvalidCredentials`](AuthError::InvalidCredentials), [`InvalidCode`](AuthError::InvalidCode),
    /// [`SecondFactorNotEnrolled`](AuthError::SecondFactorNotEnrolled), [`RateLimited`](AuthError::RateLimited),
    /// [`AccountLocked`](AuthError::AccountLocked), [`UserNotFound`](AuthError::UserNotFound),
    /// [`AccountDisabled`](AuthError::AccountDisabled), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn disable_totp(
        &self,
        caller: &Caller,
        password: Password,
        code: SecondFactorCode,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let audit = Audit::new(Action::DisableTotp, Subject::User(caller.user_id()));
        self.audited(audit, client, async |audit| {
            let user = self.active_account(caller.user_id()).await?;
            self.reauthenticate(caller, &user, password, client, audit).await?;
            if self.confirmed_factor(user.id).await?.is_none() {
                audit.refusal = Some(Refusal::NotEnrolled);
                return Err(AuthError::SecondFactorNotEnrolled);
            }
            if let Err(refusal) = self.check_second_factor(&user, &code, client).await? {
                audit.refusal = Some(refusal);
                return Err(AuthError::InvalidCode);
            }
            let now = self.now();
            let updated = self
                .record_change(audit, client, self.store().delete_totp_factor(user.id, now))
                .await?
                .ok_or(AuthError::SecondFactorNotEnrolled)?;
            self.end_other_sessions(user.id, caller.session_id(), now).await?;
            self.refill_login_allowance(&user.email).await;
            self.refill_second_factor_allowance(&user.email).await;
            self.notify(&updated, SecurityNoticeKind::TotpDisabled, client, None);
            Ok(())
        })
        .await
    }

    /// Replaces the caller's recovery codes with ten new ones (the old ones stop working),
    /// after the password and the step-up rule (a recent authentication, or a second
    /// factor in `caller`). Returns the codes, shown once, and tells the account's owner.
    ///
    /// # Errors
    ///
    /// [`InvalidCredentials`](AuthError::InvalidCredentials), [`StepUpRequired`](AuthError::StepUpRequired),
    /// [`InvalidCode`](AuthError::InvalidCode), [`SecondFactorNotEnrolled`](AuthError::SecondFactorNotEnrolled),
    /// [`RateLimited`](AuthError::RateLimited), [`AccountLocked`](AuthError::AccountLocked),
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`Busy`](AuthError::Busy), [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn regenerate_recovery_codes(
        &self,
        caller: &Caller,
        password: Password,
        client: &ClientInfo,
    ) -> Result<NewRecoveryCodes, AuthError> {
        let audit = Audit::new(Action::RegenerateRecoveryCodes, Subject::User(caller.user_id()));
        self.audited(audit, client, async |audit| {
            let user = self.active_account(caller.user_id()).await?;
            self.reauthenticate(caller, &user, password, client, audit).await?;
            if self.confirmed_factor(user.id).await?.is_none() {
                audit.refusal = Some(Refusal::NotEnrolled);
                return Err(AuthError::SecondFactorNotEnrolled);
            }
            self.step_up(caller, &user, client, audit).await?;
            let (recovery_codes, hashes) = RecoveryCodes::generate()?;
            let now = self.now();
            let replacement = self.store().replace_recovery_codes(user.id, &hashes, now);
            if !self.record_change(audit, client, replacement).await? {
                return Err(AuthError::SecondFactorNotEnrolled);
            }
            self.refill_login_allowance(&user.email).await;
            self.notify(&user, SecurityNoticeKind::RecoveryCodesRegenerated, client, None);
            Ok(NewRecoveryCodes { recovery_codes })
        })
        .await
    }

    /// The second factors of `user` (the account as just read, as
    /// [`Authenticated::user`](crate::Authenticated) is): whether TOTP is on, and how many
    /// recovery codes are left. An account without [`User::requires_second_factor`] has
    /// none, answered without a read (the flag is written with the factor); otherwise one
    /// read. (A read: no event.)
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn second_factor_status(&self, user: &User) -> Result<SecondFactorStatus, AuthError> {
        if !user.requires_second_factor {
            return Ok(SecondFactorStatus::default());
        }
        Ok(SecondFactorStatus {
            totp: true,
            recovery_codes_left: self.store().count_recovery_codes(user.id).await?,
        })
    }

    /// Completes a login challenge with the second factor `check` verifies (and spends):
    /// the challenge's checks, its allowance, and the session, which every way of
    /// completing a login shares.
    pub(super) async fn complete_challenge(
        &self,
        challenge: &str,
        client: &ClientInfo,
        audit: &mut Audit,
        check: impl AsyncFnOnce(&User) -> Result<Result<AuthMethod, Refusal>, AuthError>,
    ) -> Result<LoginSuccess, AuthError> {
        self.take(Bucket::LoginAttemptsPerClient, client, None).await?;
        let (hash, record, user) = self.live_challenge(challenge, client, audit).await?;
        self.take(Bucket::LoginFailuresPerAccount, client, Some(&user.email))
            .await?;
        self.take_consecutive_failure(client, Some(&user.email)).await?;
        // Counted before the code is checked: of concurrent codes, at most the
        // challenge's allowance are checked at all.
        match self.store().record_login_challenge_attempt(&hash).await? {
            None => {
                audit.refusal = Some(Refusal::InvalidToken(TokenError::Reused));
                return Err(AuthError::LoginChallengeFailed);
            }
            Some(attempt) if attempt > MAX_LOGIN_CHALLENGE_ATTEMPTS => {
                audit.refusal = Some(Refusal::ChallengeExhausted);
                return Err(AuthError::LoginChallengeFailed);
            }
            Some(_) => {}
        }
        let method = match check(&user).await? {
            Ok(method) => method,
            Err(refusal) => {
                audit.refusal = Some(refusal);
                return Err(AuthError::LoginChallengeFailed);
            }
        };
        if self.store().take_login_challenge(&hash).await?.is_none() {
            // Completed concurrently with another code: that one won.
            audit.refusal = Some(Refusal::InvalidToken(TokenError::Reused));
            return Err(AuthError::LoginChallengeFailed);
        }
        let methods = AuthMethods::from(record.first_factor.clone())
            .with(method)
            .with(AuthMethod::MULTI_FACTOR);
        let tokens = self.session_with_tokens(&user, methods, client, audit).await?;
        audit.session_id = Some(tokens.session.id);
        self.refill_login_allowance(&user.email).await;
        self.refill_second_factor_allowance(&user.email).await;
        Ok(LoginSuccess { user, tokens })
    }

    /// The login challenge `challenge` names, if it still works for `client` (not expired,
    /// not exhausted, from the client it was issued to, the account's token version
    /// unchanged), with its hash and its active account.
    pub(super) async fn live_challenge(
        &self,
        challenge: &str,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<(TokenHash, LoginChallenge, User), AuthError> {
        let mut refuse = |refusal| {
            audit.refusal = Some(refusal);
            AuthError::LoginChallengeFailed
        };
        let hash = OpaqueToken::hash_presented(TokenKind::LoginChallenge, challenge)
            .ok_or_else(|| refuse(Refusal::InvalidToken(TokenError::Malformed)))?;
        let now = self.now();
        let record = self
            .store()
            .find_login_challenge(&hash)
            .await?
            .ok_or_else(|| refuse(Refusal::InvalidToken(TokenError::Unknown)))?;
        let refusal = if record.expires_at <= now {
            Some(Refusal::InvalidToken(TokenError::Expired))
        } else if record.attempts >= MAX_LOGIN_CHALLENGE_ATTEMPTS {
            Some(Refusal::ChallengeExhausted)
        } else if record.user_agent.as_deref() != client.user_agent() || record.ip != client.ip() {
            Some(Refusal::ChallengeFromAnotherClient)
        } else {
            None
        };
        audit.subject = Subject::User(record.user_id);
        if let Some(refusal) = refusal {
            audit.refusal = Some(refusal);
            return Err(AuthError::LoginChallengeFailed);
        }
        let user = self.active_account(record.user_id).await?;
        if user.token_version != record.token_version {
            // A password change or reset (or a revocation) since the password step.
            audit.refusal = Some(Refusal::InvalidToken(TokenError::Revoked));
            return Err(AuthError::LoginChallengeFailed);
        }
        Ok((hash, record, user))
    }

    /// Stores a challenge for `user`, whose password was just right, bound to `client`.
    async fn issue_login_challenge(
        &self,
        user: &User,
        first_factor: AuthMethod,
        client: &ClientInfo,
    ) -> Result<SecondFactorChallenge, AuthError> {
        let now = self.now();
        let (token, hash) = OpaqueToken::generate(TokenKind::LoginChallenge)?;
        let record = LoginChallenge::new(user.id, now, later_by(now, LOGIN_CHALLENGE_TTL), user.token_version)
            .with_user_agent(client.user_agent().map(str::to_owned))
            .with_ip(client.ip())
            .with_first_factor(first_factor);
        self.store().insert_login_challenge(&hash, &record).await?;
        let mut methods = vec![SecondFactorMethod::Totp, SecondFactorMethod::RecoveryCode];
        if self.has_passkeys(user.id).await? {
            methods.push(SecondFactorMethod::Passkey);
        }
        Ok(SecondFactorChallenge {
            user_id: user.id,
            token,
            expires_at: record.expires_at,
            expires_in: LOGIN_CHALLENGE_TTL,
            methods,
        })
    }

    /// Checks a second factor of `user`, spending it when right (a TOTP code's time step,
    /// a recovery code): the method it proved, or why not. Draws first on the account's
    /// [`Bucket::SecondFactorFailuresPerAccount`].
    async fn check_second_factor(
        &self,
        user: &User,
        code: &SecondFactorCode,
        client: &ClientInfo,
    ) -> Result<Result<AuthMethod, Refusal>, AuthError> {
        self.take(Bucket::SecondFactorFailuresPerAccount, client, Some(&user.email))
            .await?;
        let now = self.now();
        match code {
            SecondFactorCode::Totp(code) => {
                let Some(factor) = self.confirmed_factor(user.id).await? else {
                    return Ok(Err(Refusal::NotEnrolled));
                };
                let settings = self.totp_settings()?;
                let context = seal_context(user.id);
                let secret = settings
                    .cipher
                    .open(&factor.sealed_secret, &context)
                    .map_err(AuthError::internal)?;
                let generator = totp(&secret, &settings.issuer, user.email.as_str()).map_err(AuthError::internal)?;
                let Some(step) = matching_step(&generator, code.expose_secret(), now) else {
                    return Ok(Err(Refusal::WrongCode));
                };
                if !self.store().use_totp_step(user.id, step).await? {
                    return Ok(Err(Refusal::CodeReused));
                }
                if settings.cipher.needs_reseal(&factor.sealed_secret) {
                    self.reseal(user.id, &factor.sealed_secret, &secret, &settings.cipher, &context)
                        .await;
                }
                Ok(Ok(AuthMethod::ONE_TIME_PASSWORD))
            }
            SecondFactorCode::RecoveryCode(code) => {
                let Some(hash) = presented_recovery_code(code.expose_secret()) else {
                    return Ok(Err(Refusal::WrongCode));
                };
                if self.store().use_recovery_code(user.id, &hash, now).await? {
                    Ok(Ok(AuthMethod::RECOVERY_CODE))
                } else {
                    Ok(Err(Refusal::WrongCode))
                }
            }
        }
    }

    async fn confirmed_factor(&self, user: UserId) -> Result<Option<TotpFactor>, AuthError> {
        Ok(self
            .store()
            .find_totp_factor(user)
            .await?
            .filter(TotpFactor::is_confirmed))
    }

    /// Seals the secret again under the current key (a key rotation); a failure leaves
    /// it for the next use.
    async fn reseal(&self, user: UserId, current: &str, secret: &[u8], cipher: &SecretCipher, context: &[u8]) {
        let result = match cipher.seal(secret, context) {
            Ok(resealed) => self
                .store()
                .reseal_totp_factor(user, current, &resealed)
                .await
                .map(drop)
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(%user, %error, "could not reseal a TOTP secret under the current key");
        }
    }

    /// Revokes every session of `user` but `keep` (the caller's own).
    async fn end_other_sessions(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        now: time::OffsetDateTime,
    ) -> Result<(), AuthError> {
        for session in self.store().list_sessions(user).await? {
            if Some(session.id) != keep {
                self.store().revoke_session(user, session.id, now).await?;
            }
        }
        Ok(())
    }
}

impl<S: AuthStore> AuthService<S> {
    /// The step-up rule of sensitive actions, for an account with a second factor: the
    /// caller authenticated recently (within [`with_step_up_window`](Self::with_step_up_window)),
    /// or gives the second factor again. For an account without one, the password the
    /// flow checks is the re-authentication.
    pub(super) async fn step_up(
        &self,
        caller: &Caller,
        user: &User,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<(), AuthError> {
        // Recent, and with the second factor: a session begun on the password alone
        // (before the factor was enrolled, say) is no step-up for an account that has one.
        if !user.requires_second_factor || caller.proved_second_factor_within(self.step_up_window, self.now()) {
            return Ok(());
        }
        let Some(code) = caller.second_factor() else {
            audit.refusal = Some(Refusal::StepUpRequired);
            return Err(AuthError::StepUpRequired {
                max_age: self.step_up_window,
            });
        };
        let Some(factors) = &self.second_factors else {
            // A factor enrolled under a service with TOTP; this one cannot check it.
            return Err(AuthError::SecondFactorRequired);
        };
        match (factors.check_code)(self, user, code, client).await? {
            Ok(_) => Ok(()),
            Err(refusal) => {
                audit.refusal = Some(refusal);
                Err(AuthError::InvalidCode)
            }
        }
    }
}

impl<S> AuthService<S> {
    fn totp_settings(&self) -> Result<&TotpSettings, AuthError> {
        self.second_factors
            .as_ref()
            .map(|factors| &factors.settings)
            .ok_or_else(|| AuthError::internal("TOTP is not configured: call AuthService::with_totp"))
    }

    /// Whether [`with_totp`](AuthService::with_totp) turned TOTP on.
    pub fn serves_totp(&self) -> bool {
        self.second_factors.is_some()
    }
}
