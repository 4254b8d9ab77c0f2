//! Security events: one typed record per outcome of every flow, to `tracing` and to an
//! [`EventSink`] the application provides.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::email::Email;
use crate::id::{SessionId, UserId};
use crate::password::PolicyViolation;
use crate::session::ClientInfo;
use crate::token::TokenError;

/// What was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// [`register`](crate::AuthService::register) and its enumeration-safe variant.
    Register,
    /// [`login`](crate::AuthService::login).
    Login,
    /// [`start_session`](crate::AuthService::start_session): a session for an account
    /// another flow proved.
    StartSession,
    /// [`refresh`](crate::AuthService::refresh).
    Refresh,
    /// [`logout`](crate::AuthService::logout).
    Logout,
    /// [`logout_all`](crate::AuthService::logout_all).
    LogoutAll,
    /// [`revoke_session`](crate::AuthService::revoke_session).
    RevokeSession,
    /// [`change_password`](crate::AuthService::change_password).
    ChangePassword,
    /// [`request_password_reset`](crate::AuthService::request_password_reset).
    RequestPasswordReset,
    /// [`reset_password`](crate::AuthService::reset_password).
    ResetPassword,
    /// [`request_email_verification`](crate::AuthService::request_email_verification).
    RequestEmailVerification,
    /// [`verify_email`](crate::AuthService::verify_email).
    VerifyEmail,
    /// [`set_active`](crate::AuthService::set_active)`(false)`.
    DisableAccount,
    /// [`set_active`](crate::AuthService::set_active)`(true)`.
    EnableAccount,
    /// [`set_roles`](crate::AuthService::set_roles).
    SetRoles,
    /// [`grant_role`](crate::Accounts::grant_role).
    GrantRole,
    /// [`revoke_role`](crate::Accounts::revoke_role).
    RevokeRole,
    /// [`begin_totp_enrolment`](crate::AuthService::begin_totp_enrolment).
    BeginTotpEnrolment,
    /// [`confirm_totp`](crate::AuthService::confirm_totp).
    ConfirmTotp,
    /// [`disable_totp`](crate::AuthService::disable_totp).
    DisableTotp,
    /// [`regenerate_recovery_codes`](crate::AuthService::regenerate_recovery_codes).
    RegenerateRecoveryCodes,
    /// [`complete_login`](crate::AuthService::complete_login) with a TOTP code.
    CompleteLogin,
    /// [`complete_login`](crate::AuthService::complete_login) with a recovery code.
    CompleteLoginWithRecoveryCode,
    /// [`begin_external_login`](crate::AuthService::begin_external_login) and
    /// [`begin_identity_link`](crate::AuthService::begin_identity_link): a redirect to a
    /// provider.
    BeginExternalLogin,
    /// [`finish_external_login`](crate::AuthService::finish_external_login) of a sign-in:
    /// the provider's callback checked, a known identity.
    ExternalLogin,
    /// The callback of a sign-in that created an account for a new identity.
    RegisterThroughProvider,
    /// The callback of a link: an identity linked to a signed-in account.
    LinkIdentity,
    /// [`exchange_external_login`](crate::AuthService::exchange_external_login): a
    /// one-time code traded for a session.
    ExchangeExternalLogin,
    /// [`unlink_identity`](crate::AuthService::unlink_identity).
    UnlinkIdentity,
    /// [`invite`](crate::AuthService::invite): an administrator created an account.
    InviteAccount,
    /// [`request_email_change`](crate::AuthService::request_email_change).
    RequestEmailChange,
    /// [`confirm_email_change`](crate::AuthService::confirm_email_change).
    ConfirmEmailChange,
    /// [`undo_email_change`](crate::AuthService::undo_email_change).
    UndoEmailChange,
    /// [`delete_account`](crate::AuthService::delete_account): the owner deleted it.
    DeleteAccount,
    /// [`delete_user`](crate::AuthService::delete_user): an administrator deleted it.
    DeleteUser,
    /// [`export_account`](crate::AuthService::export_account).
    ExportAccount,
    /// [`begin_passkey_registration`](crate::AuthService::begin_passkey_registration).
    BeginPasskeyRegistration,
    /// [`finish_passkey_registration`](crate::AuthService::finish_passkey_registration).
    RegisterPasskey,
    /// [`begin_passkey_login`](crate::AuthService::begin_passkey_login).
    BeginPasskeyLogin,
    /// [`begin_passkey_second_factor`](crate::AuthService::begin_passkey_second_factor).
    BeginPasskeySecondFactor,
    /// [`finish_passkey_login`](crate::AuthService::finish_passkey_login).
    PasskeyLogin,
    /// [`complete_login_with_passkey`](crate::AuthService::complete_login_with_passkey).
    CompleteLoginWithPasskey,
    /// [`rename_passkey`](crate::AuthService::rename_passkey).
    RenamePasskey,
    /// [`delete_passkey`](crate::AuthService::delete_passkey).
    DeletePasskey,
    /// [`authorize`](crate::AuthService::authorize): only its refusals are recorded.
    Authorize,
}

/// Why a passkey ceremony was refused (in [`Refusal::Passkey`]). The client is told
/// less: see [`AuthError::PasskeyRefused`](crate::AuthError::PasskeyRefused).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasskeyRefusal {
    /// No ceremony under the token given (never issued, already finished, or purged).
    UnknownCeremony,
    /// The ceremony expired (5 minutes).
    ExpiredCeremony,
    /// The ceremony is another kind (a sign-in's presented to a registration), or another
    /// account's.
    WrongCeremony,
    /// The credential is not the JSON of a WebAuthn `PublicKeyCredential`.
    MalformedCredential,
    /// No registered passkey has the assertion's credential id.
    UnknownCredential,
    /// The assertion's user handle names another account than the credential's.
    WrongAccount,
    /// webauthn-rs refused the attestation or assertion: its reason (a wrong origin, RP id
    /// or challenge, a bad signature, no user verification).
    Verification(String),
    /// The assertion's sign counter is at or below the stored one: possibly a cloned
    /// authenticator.
    CounterRegressed,
}

impl Action {
    /// A stable snake_case name (`login`, `request_password_reset`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::StartSession => "start_session",
            Self::Refresh => "refresh",
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::RevokeSession => "revoke_session",
            Self::ChangePassword => "change_password",
            Self::RequestPasswordReset => "request_password_reset",
            Self::ResetPassword => "reset_password",
            Self::RequestEmailVerification => "request_email_verification",
            Self::VerifyEmail => "verify_email",
            Self::DisableAccount => "disable_account",
            Self::EnableAccount => "enable_account",
            Self::SetRoles => "set_roles",
            Self::GrantRole => "grant_role",
            Self::RevokeRole => "revoke_role",
            Self::BeginTotpEnrolment => "begin_totp_enrolment",
            Self::ConfirmTotp => "confirm_totp",
            Self::DisableTotp => "disable_totp",
            Self::RegenerateRecoveryCodes => "regenerate_recovery_codes",
            Self::CompleteLogin => "complete_login",
            Self::CompleteLoginWithRecoveryCode => "complete_login_with_recovery_code",
            Self::BeginExternalLogin => "begin_external_login",
            Self::ExternalLogin => "external_login",
            Self::RegisterThroughProvider => "register_through_provider",
            Self::LinkIdentity => "link_identity",
            Self::ExchangeExternalLogin => "exchange_external_login",
            Self::UnlinkIdentity => "unlink_identity",
            Self::InviteAccount => "invite_account",
            Self::RequestEmailChange => "request_email_change",
            Self::ConfirmEmailChange => "confirm_email_change",
            Self::UndoEmailChange => "undo_email_change",
            Self::DeleteAccount => "delete_account",
            Self::DeleteUser => "delete_user",
            Self::ExportAccount => "export_account",
            Self::BeginPasskeyRegistration => "begin_passkey_registration",
            Self::RegisterPasskey => "register_passkey",
            Self::BeginPasskeyLogin => "begin_passkey_login",
            Self::BeginPasskeySecondFactor => "begin_passkey_second_factor",
            Self::PasskeyLogin => "passkey_login",
            Self::CompleteLoginWithPasskey => "complete_login_with_passkey",
            Self::RenamePasskey => "rename_passkey",
            Self::DeletePasskey => "delete_passkey",
            Self::Authorize => "authorize",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was refused: detail for the operator, never shown to the client (who
/// sees one generic answer where it matters, such as `invalid_credentials`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Login for an email with no account (or a malformed one).
    UnknownAccount,
    /// Login with the wrong password.
    WrongPassword,
    /// Login to an account without a password.
    NoPassword,
    /// Login to an account whose stored hash cannot be used.
    UnusableHash,
    /// The account is disabled.
    AccountDisabled,
    /// Login requires a verified email.
    EmailNotVerified,
    /// The email is not acceptable.
    InvalidEmail,
    /// The new password breaks the policy.
    WeakPassword(PolicyViolation),
    /// Registration with an existing email.
    EmailTaken,
    /// A token was refused; for refresh tokens, [`TokenError::Reused`] is reuse detection.
    InvalidToken(TokenError),
    /// The account changed during the request.
    Conflict,
    /// The account or session does not exist.
    NotFound,
    /// More roles than an account can hold.
    TooManyRoles,
    /// Too many consecutive login failures: locked until a password reset.
    AccountLocked,
    /// The login needs a second factor the application does not ask for (or a route
    /// needs one the token lacks).
    SecondFactorRequired,
    /// A wrong TOTP or recovery code.
    WrongCode,
    /// A TOTP code of a time step already used (a replay), or a spent recovery code.
    CodeReused,
    /// A login challenge presented by another client than the one it was issued to.
    ChallengeFromAnotherClient,
    /// A login challenge that took too many wrong codes.
    ChallengeExhausted,
    /// The account already has a second factor.
    AlreadyEnrolled,
    /// The account has no second factor.
    NotEnrolled,
    /// A sensitive action without a recent authentication or the second factor.
    StepUpRequired,
    /// No identity provider of that name.
    UnknownProvider,
    /// A `next` that is not a path on this site.
    InvalidReturnPath,
    /// A native app's `code_challenge` that is not an `S256` challenge.
    InvalidCodeChallenge,
    /// A provider's callback refused, and why.
    ExternalLogin(crate::identity::ExternalLoginRefusal),
    /// A passkey ceremony refused, and why.
    Passkey(PasskeyRefusal),
    /// A passkey name out of bounds.
    InvalidPasskeyName,
    /// A new external identity with the email of an existing account: not linked.
    AccountExists,
    /// A new external identity without an email the provider verified: no account.
    ProviderEmailUnverified,
    /// An external identity linked to another account.
    IdentityInUse,
    /// An unlink that would leave the account no way to sign in.
    LastSignInMethod,
    /// A route for a role the caller does not hold ([`AuthService::authorize`](crate::AuthService::authorize)).
    Forbidden,
}

/// How it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Done.
    Success,
    /// Refused for a reason of the request's own.
    Refused(Refusal),
    /// Refused by a rate limit, before any expensive work.
    RateLimited {
        /// When the client may retry.
        retry_after: Duration,
    },
    /// Refused because password hashing was saturated.
    Busy,
    /// A server-side failure (store unavailable, internal error).
    Failed,
    /// The password was right and a second factor is asked for: a login challenge was
    /// issued, no session yet.
    SecondFactorRequired,
}

impl Outcome {
    /// A stable name: `success`, `refused`, `rate_limited`, `busy`, `failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Refused(_) => "refused",
            Self::RateLimited { .. } => "rate_limited",
            Self::Busy => "busy",
            Self::Failed => "failed",
            Self::SecondFactorRequired => "second_factor_required",
        }
    }
}

/// Every kind of security event, one per outcome that matters to an operator:
/// [`AuthEvent::kind`] classifies an event by its action and outcome. Match on this to
/// count, alert or audit; the stable names ([`as_str`](Self::as_str)) are what the
/// `tracing` line carries as `event`.
///
/// ```
/// use auth_core::EventKind;
///
/// assert_eq!(EventKind::RefreshReuseDetected.as_str(), "refresh_reuse_detected");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// An account was created.
    Registered,
    /// A login issued tokens (a password login, or a session started for an account
    /// another flow proved).
    LoginSucceeded,
    /// A login was refused: unknown account, wrong password, disabled, unverified (the
    /// reason is in [`Outcome::Refused`], never shown to the client).
    LoginFailed,
    /// A rate limit refused a request (any action) before any expensive work.
    RateLimited,
    /// A refresh token was rotated.
    TokenRefreshed,
    /// A spent refresh token was presented again: its whole session was revoked.
    RefreshReuseDetected,
    /// One session was revoked by its owner.
    SessionRevoked,
    /// One session ended by logout.
    LoggedOut,
    /// Every session of an account ended.
    LoggedOutAll,
    /// A password was changed with the current one.
    PasswordChanged,
    /// A password reset was requested (whether or not the account exists).
    ResetRequested,
    /// A password was set with a reset token.
    ResetCompleted,
    /// An email-verification mail was requested.
    EmailVerificationRequested,
    /// An email address was verified.
    EmailVerified,
    /// An account was disabled.
    AccountDisabled,
    /// An account was enabled.
    AccountEnabled,
    /// An account's roles were replaced, or one was granted or revoked.
    RolesChanged,
    /// A right password asked for a second factor: a login challenge was issued.
    SecondFactorChallenged,
    /// A second factor was refused at login (a wrong or replayed code, a dead, expired or
    /// foreign challenge).
    SecondFactorFailed,
    /// A login was completed with a recovery code (one fewer left).
    RecoveryCodeUsed,
    /// A TOTP enrolment began (a secret was issued, not yet confirmed).
    TotpEnrolmentStarted,
    /// A TOTP factor was confirmed: login now asks for it.
    TotpEnabled,
    /// A TOTP factor was removed.
    TotpDisabled,
    /// New recovery codes replaced the old.
    RecoveryCodesRegenerated,
    /// A sign-in through an identity provider began (a redirect to it).
    ExternalLoginStarted,
    /// A provider's callback proved a known identity: its account may start a session
    /// (with the one-time code, and a second factor where the account has one).
    ExternalLoginVerified,
    /// A provider's callback created an account for a new identity.
    RegisteredThroughProvider,
    /// An external identity was linked to an account.
    IdentityLinked,
    /// An external identity was unlinked from an account.
    IdentityUnlinked,
    /// An administrator created an account, to be completed through its set-password link.
    AccountInvited,
    /// A change of an account's address was asked for (links mailed to both addresses).
    EmailChangeRequested,
    /// An account's address was changed (the new one confirmed).
    EmailChanged,
    /// A change of an account's address was undone from the old address.
    EmailChangeUndone,
    /// An account was deleted by its owner; the event names it by the digest of its
    /// address.
    AccountDeleted,
    /// An account was deleted by an administrator; named as in [`AccountDeleted`](Self::AccountDeleted).
    AccountDeletedByAdministrator,
    /// An account's data was exported for its owner.
    AccountExported,
    /// A passkey registration began (creation options issued).
    PasskeyRegistrationStarted,
    /// A passkey was registered to an account.
    PasskeyAdded,
    /// A passkey sign-in (or a passkey second factor) began (request options issued).
    PasskeyLoginStarted,
    /// An assertion carried a sign counter at or below the stored one: the authenticator
    /// may have been cloned. The sign-in was refused.
    PasskeyCounterRegressed,
    /// A passkey was renamed.
    PasskeyRenamed,
    /// A passkey was removed from an account.
    PasskeyRemoved,
    /// A route refused for a role the caller does not hold (a 403).
    AccessDenied,
    /// Password hashing was saturated and the request was refused at once.
    Busy,
    /// Any other refusal of a request of its own (an invalid token, a weak new password,
    /// a taken email); the reason is in [`Outcome::Refused`].
    Refused,
    /// A server-side failure (store unavailable, internal error).
    Failed,
}

impl EventKind {
    /// A stable snake_case name (`login_failed`, `refresh_reuse_detected`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::RateLimited => "rate_limited",
            Self::TokenRefreshed => "token_refreshed",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::SessionRevoked => "session_revoked",
            Self::LoggedOut => "logged_out",
            Self::LoggedOutAll => "logged_out_all",
            Self::PasswordChanged => "password_changed",
            Self::ResetRequested => "reset_requested",
            Self::ResetCompleted => "reset_completed",
            Self::EmailVerificationRequested => "email_verification_requested",
            Self::EmailVerified => "email_verified",
            Self::AccountDisabled => "account_disabled",
            Self::AccountEnabled => "account_enabled",
            Self::RolesChanged => "roles_changed",
            Self::SecondFactorChallenged => "second_factor_challenged",
            Self::SecondFactorFailed => "second_factor_failed",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::TotpEnrolmentStarted => "totp_enrolment_started",
            Self::TotpEnabled => "totp_enabled",
            Self::TotpDisabled => "totp_disabled",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::ExternalLoginStarted => "external_login_started",
            Self::ExternalLoginVerified => "external_login_verified",
            Self::RegisteredThroughProvider => "registered_through_provider",
            Self::IdentityLinked => "identity_linked",
            Self::IdentityUnlinked => "identity_unlinked",
            Self::AccountInvited => "account_invited",
            Self::EmailChangeRequested => "email_change_requested",
            Self::EmailChanged => "email_changed",
            Self::EmailChangeUndone => "email_change_undone",
            Self::AccountDeleted => "account_deleted",
            Self::AccountDeletedByAdministrator => "account_deleted_by_administrator",
            Self::AccountExported => "account_exported",
            Self::PasskeyRegistrationStarted => "passkey_registration_started",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyLoginStarted => "passkey_login_started",
            Self::PasskeyCounterRegressed => "passkey_counter_regressed",
            Self::PasskeyRenamed => "passkey_renamed",
            Self::PasskeyRemoved => "passkey_removed",
            Self::AccessDenied => "access_denied",
            Self::Busy => "busy",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A keyed digest of a normalized email: correlates events about an address that has no
/// account without recording the address. HMAC-SHA256 under the service's event key,
/// truncated to 128 bits; `Display` is hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EmailDigest([u8; 16]);

impl EmailDigest {
    pub(crate) fn of(key: &EventKey, email: &Email) -> Self {
        let mut digest = [0u8; 16];
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key.0) {
            mac.update(email.as_str().as_bytes());
            digest.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        }
        Self(digest)
    }
}

impl fmt::Display for EmailDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for EmailDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailDigest({self})")
    }
}

/// The secret under which [`EmailDigest`]s are computed. Keep it stable (from the
/// environment) to correlate events across restarts; the default is random per process.
#[derive(Clone)]
pub struct EventKey(zeroize::Zeroizing<Vec<u8>>);

impl EventKey {
    /// A key from secret bytes (at least 16 recommended).
    pub fn new(secret: &[u8]) -> Self {
        Self(zeroize::Zeroizing::new(secret.to_vec()))
    }

    /// The digest of `email` under this key, as events carry it.
    ///
    /// ```
    /// use auth_core::{Email, EventKey};
    ///
    /// let key = EventKey::new(b"a stable secret of some length");
    /// let email = Email::parse("ada@example.com").unwrap();
    /// assert_eq!(key.digest(&email), key.digest(&email));
    /// assert_eq!(key.digest(&email).to_string().len(), 32);
    /// ```
    pub fn digest(&self, email: &crate::email::Email) -> EmailDigest {
        EmailDigest::of(self, email)
    }

    /// A random key, for one process.
    pub(crate) fn random() -> Self {
        let mut bytes = zeroize::Zeroizing::new(vec![0u8; 32]);
        if getrandom::fill(&mut bytes).is_err() {
            tracing::error!("no randomness for the event key; email digests are unkeyed");
        }
        Self(bytes)
    }
}

impl fmt::Debug for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventKey([redacted])")
    }
}

/// Whom an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// A known account.
    User(UserId),
    /// An address without an account, or not yet resolved (keyed digest, never the address).
    Email(EmailDigest),
    /// Nobody identifiable (a malformed email, an unknown token).
    Unknown,
}

/// One security event: every call of an [`AuthService`](crate::AuthService) flow records
/// exactly one, but for [`Outcome::Busy`]: under a flood, the first busy refusal of each
/// action in a second is recorded, and the others of that second as one event that says
/// how many ([`repeats`](Self::repeats)). Never carries a password, token or hash; an
/// address only as a keyed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthEvent {
    /// When (UTC).
    pub at: OffsetDateTime,
    /// What was attempted.
    pub action: Action,
    /// How it ended.
    pub outcome: Outcome,
    /// Whom it is about.
    pub subject: Subject,
    /// The session concerned, if any.
    pub session_id: Option<SessionId>,
    /// The client, as the caller described it.
    pub client: ClientInfo,
    /// 0 for the event of one call. The event that sums up a second's busy refusals of an
    /// action after the first (which was recorded whole) says here how many it stands for;
    /// its subject and client are unknown, its time is the end of that second.
    pub repeats: u64,
}

impl AuthEvent {
    /// An event (the service makes its own; for tests and for sinks' examples).
    pub fn new(
        at: OffsetDateTime,
        action: Action,
        outcome: Outcome,
        subject: Subject,
        session_id: Option<SessionId>,
        client: ClientInfo,
    ) -> Self {
        Self {
            at,
            action,
            outcome,
            subject,
            session_id,
            client,
            repeats: 0,
        }
    }

    /// The event standing for `repeats` calls like it (see [`repeats`](Self::repeats)).
    ///
    /// ```
    /// use auth_core::{Action, AuthEvent, ClientInfo, Outcome, Subject};
    /// use time::macros::datetime;
    ///
    /// let at = datetime!(2026-06-01 9:00 UTC);
    /// let event = AuthEvent::new(at, Action::Login, Outcome::Busy, Subject::Unknown, None, ClientInfo::unknown());
    /// assert_eq!(event.with_repeats(250).repeats, 250);
    /// ```
    #[must_use]
    pub fn with_repeats(mut self, repeats: u64) -> Self {
        self.repeats = repeats;
        self
    }

    /// What kind of event this is, from its action and outcome.
    pub fn kind(&self) -> EventKind {
        match (&self.outcome, self.action) {
            (Outcome::RateLimited { .. }, _) => EventKind::RateLimited,
            (Outcome::Busy, _) => EventKind::Busy,
            (Outcome::Failed, _) => EventKind::Failed,
            (Outcome::SecondFactorRequired, _) => EventKind::SecondFactorChallenged,
            (Outcome::Refused(Refusal::Passkey(PasskeyRefusal::CounterRegressed)), _) => {
                EventKind::PasskeyCounterRegressed
            }
            (
                Outcome::Refused(_),
                Action::Login
                | Action::StartSession
                | Action::ExternalLogin
                | Action::RegisterThroughProvider
                | Action::ExchangeExternalLogin
                | Action::PasskeyLogin,
            ) => EventKind::LoginFailed,
            (Outcome::Refused(_), Action::Authorize) => EventKind::AccessDenied,
            (
                Outcome::Refused(_),
                Action::CompleteLogin | Action::CompleteLoginWithRecoveryCode | Action::CompleteLoginWithPasskey,
            ) => EventKind::SecondFactorFailed,
            (Outcome::Refused(Refusal::InvalidToken(TokenError::Reused)), Action::Refresh) => {
                EventKind::RefreshReuseDetected
            }
            (Outcome::Refused(_), _) => EventKind::Refused,
            (Outcome::Success, action) => match action {
                Action::Register => EventKind::Registered,
                Action::Login | Action::StartSession => EventKind::LoginSucceeded,
                Action::Refresh => EventKind::TokenRefreshed,
                Action::Logout => EventKind::LoggedOut,
                Action::LogoutAll => EventKind::LoggedOutAll,
                Action::RevokeSession => EventKind::SessionRevoked,
                Action::ChangePassword => EventKind::PasswordChanged,
                Action::RequestPasswordReset => EventKind::ResetRequested,
                Action::ResetPassword => EventKind::ResetCompleted,
                Action::RequestEmailVerification => EventKind::EmailVerificationRequested,
                Action::VerifyEmail => EventKind::EmailVerified,
                Action::DisableAccount => EventKind::AccountDisabled,
                Action::EnableAccount => EventKind::AccountEnabled,
                Action::SetRoles | Action::GrantRole | Action::RevokeRole => EventKind::RolesChanged,
                Action::CompleteLogin => EventKind::LoginSucceeded,
                Action::CompleteLoginWithRecoveryCode => EventKind::RecoveryCodeUsed,
                Action::BeginTotpEnrolment => EventKind::TotpEnrolmentStarted,
                Action::ConfirmTotp => EventKind::TotpEnabled,
                Action::DisableTotp => EventKind::TotpDisabled,
                Action::RegenerateRecoveryCodes => EventKind::RecoveryCodesRegenerated,
                Action::BeginExternalLogin => EventKind::ExternalLoginStarted,
                Action::ExternalLogin => EventKind::ExternalLoginVerified,
                Action::RegisterThroughProvider => EventKind::RegisteredThroughProvider,
                Action::LinkIdentity => EventKind::IdentityLinked,
                Action::ExchangeExternalLogin => EventKind::LoginSucceeded,
                Action::UnlinkIdentity => EventKind::IdentityUnlinked,
                Action::InviteAccount => EventKind::AccountInvited,
                Action::RequestEmailChange => EventKind::EmailChangeRequested,
                Action::ConfirmEmailChange => EventKind::EmailChanged,
                Action::UndoEmailChange => EventKind::EmailChangeUndone,
                Action::DeleteAccount => EventKind::AccountDeleted,
                Action::DeleteUser => EventKind::AccountDeletedByAdministrator,
                Action::ExportAccount => EventKind::AccountExported,
                Action::BeginPasskeyRegistration => EventKind::PasskeyRegistrationStarted,
                Action::RegisterPasskey => EventKind::PasskeyAdded,
                Action::BeginPasskeyLogin | Action::BeginPasskeySecondFactor => EventKind::PasskeyLoginStarted,
                Action::PasskeyLogin | Action::CompleteLoginWithPasskey => EventKind::LoginSucceeded,
                Action::RenamePasskey => EventKind::PasskeyRenamed,
                Action::DeletePasskey => EventKind::PasskeyRemoved,
                // Only refusals are recorded; a success is a check that passed.
                Action::Authorize => EventKind::AccessDenied,
            },
        }
    }

    /// Writes the event as one structured `tracing` line (target `auth_core::event`).
    /// Strings from the client are written in debug form (quoted and escaped), so no
    /// value can break the line or forge another.
    pub(crate) fn trace(&self) {
        let (user_id, email_digest) = match &self.subject {
            Subject::User(id) => (Some(id.to_string()), None),
            Subject::Email(digest) => (None, Some(digest.to_string())),
            Subject::Unknown => (None, None),
        };
        let reason = match &self.outcome {
            Outcome::Refused(refusal) => Some(format!("{refusal:?}")),
            Outcome::RateLimited { retry_after } => Some(format!("retry after {}s", retry_after.as_secs())),
            _ => None,
        };
        macro_rules! emit {
            ($level:expr) => {
                tracing::event!(
                    target: "auth_core::event",
                    $level,
                    event = self.kind().as_str(),
                    action = self.action.as_str(),
                    outcome = self.outcome.as_str(),
                    reason = reason.as_deref(),
                    user_id = user_id.as_deref(),
                    email_digest = email_digest.as_deref(),
                    session_id = self.session_id.map(|id| id.to_string()).as_deref(),
                    ip = self.client.ip().map(|ip| ip.to_string()).as_deref(),
                    user_agent = ?self.client.user_agent(),
                    repeats = (self.repeats > 0).then_some(self.repeats),
                    "auth event"
                )
            };
        }
        match &self.outcome {
            Outcome::Success | Outcome::SecondFactorRequired => emit!(tracing::Level::INFO),
            Outcome::Refused(Refusal::InvalidToken(TokenError::Reused)) => emit!(tracing::Level::WARN),
            Outcome::Refused(_) | Outcome::RateLimited { .. } => emit!(tracing::Level::INFO),
            Outcome::Busy => emit!(tracing::Level::WARN),
            Outcome::Failed => emit!(tracing::Level::ERROR),
        }
    }
}

/// Receives every [`AuthEvent`]: an audit table, a webhook, a metrics counter.
///
/// `record` is called on the request path, synchronously: keep it fast and never block.
/// To write somewhere slow, send the event into a bounded channel and write from a task;
/// when the writer falls behind, count the drop rather than grow memory or stall logins:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use auth_core::{AuthEvent, EventKind, EventSink};
///
/// #[derive(Debug)]
/// struct AuditQueue {
///     sender: tokio::sync::mpsc::Sender<AuthEvent>,
///     dropped: AtomicU64,
/// }
///
/// impl EventSink for AuditQueue {
///     fn record(&self, event: &AuthEvent) {
///         if event.kind() == EventKind::RefreshReuseDetected {
///             // page someone: a refresh token was stolen
///         }
///         if self.sender.try_send(event.clone()).is_err() {
///             self.dropped.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
///
/// let (sender, _receiver) = tokio::sync::mpsc::channel(10_000);
/// let sink = AuditQueue { sender, dropped: AtomicU64::new(0) };
/// # let _ = sink;
/// ```
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Receives one event.
    fn record(&self, event: &AuthEvent);
}

/// The sink that discards events (they still go to `tracing`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEventSink;

impl EventSink for NoEventSink {
    fn record(&self, _event: &AuthEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_and_stable() {
        let email = Email::parse("ann@example.com").unwrap();
        let key = EventKey::new(b"event key one");
        assert_eq!(EmailDigest::of(&key, &email), EmailDigest::of(&key, &email));
        assert_ne!(
            EmailDigest::of(&key, &email),
            EmailDigest::of(&EventKey::new(b"event key two"), &email)
        );
        let other = Email::parse("bob@example.com").unwrap();
        assert_ne!(EmailDigest::of(&key, &email), EmailDigest::of(&key, &other));
        let hex = EmailDigest::of(&key, &email).to_string();
        assert_eq!(hex.len(), 32);
        assert!(!hex.contains("ann"));
        assert_eq!(format!("{:?}", EventKey::new(b"secret")), "EventKey([redacted])");
    }

    fn event(action: Action, outcome: Outcome) -> AuthEvent {
        AuthEvent {
            at: OffsetDateTime::UNIX_EPOCH,
            action,
            outcome,
            subject: Subject::Unknown,
            session_id: None,
            client: ClientInfo::unknown(),
            repeats: 0,
        }
    }

    #[test]
    fn kinds_follow_action_and_outcome() {
        let refused = |refusal| Outcome::Refused(refusal);
        let kind = |action, outcome| event(action, outcome).kind();
        assert_eq!(
            kind(Action::Login, refused(Refusal::UnknownAccount)),
            EventKind::LoginFailed
        );
        assert_eq!(
            kind(Action::Login, refused(Refusal::AccountDisabled)),
            EventKind::LoginFailed
        );
        assert_eq!(
            kind(Action::Refresh, refused(Refusal::InvalidToken(TokenError::Reused))),
            EventKind::RefreshReuseDetected
        );
        assert_eq!(
            kind(Action::Refresh, refused(Refusal::InvalidToken(TokenError::Expired))),
            EventKind::Refused
        );
        let limited = Outcome::RateLimited {
            retry_after: Duration::from_secs(1),
        };
        assert_eq!(kind(Action::RequestPasswordReset, limited), EventKind::RateLimited);
        assert_eq!(kind(Action::Login, Outcome::Busy), EventKind::Busy);
        assert_eq!(kind(Action::VerifyEmail, Outcome::Failed), EventKind::Failed);
        let actions = [
            Action::Register,
            Action::Login,
            Action::Refresh,
            Action::Logout,
            Action::LogoutAll,
            Action::RevokeSession,
            Action::ChangePassword,
            Action::RequestPasswordReset,
            Action::ResetPassword,
            Action::RequestEmailVerification,
            Action::VerifyEmail,
            Action::DisableAccount,
            Action::EnableAccount,
            Action::SetRoles,
            Action::InviteAccount,
            Action::RequestEmailChange,
            Action::ConfirmEmailChange,
            Action::UndoEmailChange,
            Action::DeleteAccount,
            Action::DeleteUser,
            Action::ExportAccount,
        ];
        let names: std::collections::BTreeSet<&str> = actions
            .iter()
            .map(|action| kind(*action, Outcome::Success).as_str())
            .collect();
        assert_eq!(
            names.len(),
            actions.len(),
            "each success has a kind of its own: {names:?}"
        );
        assert!(!names.contains("refused") && !names.contains("failed"));
    }
}
