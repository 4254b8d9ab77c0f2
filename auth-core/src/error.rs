//! The errors: [`AuthError`], the one error type of [`AuthService`](crate::AuthService),
//! and [`StoreError`], what a storage backend reports.

use std::error::Error as StdError;
use std::time::Duration;

use crate::email::EmailError;
use crate::hash::HashPoolError;
use crate::identity::{ExternalLoginRefusal, ReturnPathError};
use crate::password::PolicyViolation;
use crate::token::{RngError, SignError, TokenError};

/// A boxed error from a storage backend.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An account with this normalized email already exists. Raised by the store's own
    /// uniqueness guarantee (a `UNIQUE` constraint), never by checking first.
    #[error("an account with this email address already exists")]
    DuplicateEmail,
    /// This external identity (provider and subject) is already linked to an account.
    /// Raised by the store's own uniqueness guarantee, never by checking first.
    #[error("this external identity is already linked to an account")]
    DuplicateIdentity,
    /// This passkey's credential id is already registered (to this account or another).
    /// Raised by the store's own uniqueness guarantee, never by checking first.
    #[error("this passkey is already registered")]
    DuplicateCredential,
    /// The backend cannot be reached (connection refused or lost, pool exhausted,
    /// timeout). Servers answer 503; retrying later may succeed.
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    /// Stored data cannot be read back as a valid record (an email that no longer parses,
    /// an unknown role). Needs an operator.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Any other backend failure.
    #[error("store error")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Wraps a connection-level failure.
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }

    /// Wraps any other backend failure.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        Self::Backend(error.into())
    }
}

/// How long clients are asked to wait after [`AuthError::Busy`] or
/// [`AuthError::Unavailable`].
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Everything an [`AuthService`](crate::AuthService) call can answer besides success.
///
/// Each variant has a stable machine-readable [`code`](Self::code), an HTTP status
/// ([`http_status`](Self::http_status)), the outcome its event records and whether waiting
/// helps ([`retry_after`](Self::retry_after)): all of it decided by one table, in the
/// [`http`](crate::http) module, which also lists them. `Display` is safe to show to the
/// client: it never reveals whether an account exists, and server-side failures say
/// nothing about their cause (which stays available through
/// [`std::error::Error::source`] for logs).
///
/// ```
/// use auth_core::AuthError;
///
/// let error = AuthError::InvalidCredentials;
/// assert_eq!(error.code(), "invalid_credentials");
/// assert_eq!(error.http_status(), 401);
/// assert_eq!(error.to_string(), "invalid credentials");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The email address is not acceptable; the message says why.
    #[error("invalid email address: {0}")]
    InvalidEmail(EmailError),
    /// The new password breaks the policy; the message names the rule.
    #[error("{0}")]
    WeakPassword(PolicyViolation),
    /// Registration with an email that already has an account.
    #[error("an account with this email address already exists")]
    EmailTaken,
    /// Login failed: unknown email, wrong password, or an account without a password.
    /// Deliberately one answer for all of them, computed with equal work.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The password was right, but the account is disabled.
    #[error("account disabled")]
    AccountDisabled,
    /// The password was right, but the service requires a verified email first.
    #[error("email address not verified")]
    EmailNotVerified,
    /// The password was right, but the login needs a second factor, which the application
    /// does not ask for ([`LoginOutcome::signed_in`](crate::LoginOutcome::signed_in)).
    #[error("this login needs a second factor")]
    SecondFactorRequired,
    /// The second step of a login failed: a wrong, reused or spent code, or a challenge
    /// that is unknown, expired, dead after too many wrong codes, or presented by another
    /// client. Deliberately one answer for all of them.
    #[error("invalid code")]
    LoginChallengeFailed,
    /// A TOTP or recovery code given to confirm or change a second factor is wrong (or
    /// already used).
    #[error("invalid code")]
    InvalidCode,
    /// The account already has a confirmed second factor; remove it first.
    #[error("two-factor authentication is already enabled")]
    SecondFactorAlreadyEnrolled,
    /// The account has no (confirmed) second factor to use or change.
    #[error("two-factor authentication is not enabled")]
    SecondFactorNotEnrolled,
    /// A sensitive action needs a recent authentication (within `max_age`) or the second
    /// factor again (RFC 9470's `insufficient_user_authentication`).
    #[error("this action needs a recent sign-in or your second factor")]
    StepUpRequired {
        /// How recent a sign-in must be.
        max_age: Duration,
    },
    /// The access or refresh token is not acceptable; the source says why (for logs
    /// only). A reused refresh token has revoked its whole session.
    #[error("invalid or expired token")]
    InvalidToken(#[source] TokenError),
    /// The password-reset or email-verification token is not acceptable (unknown,
    /// expired, used, or superseded); the source says why (for logs only).
    #[error("invalid or expired token")]
    InvalidOneTimeToken(#[source] TokenError),
    /// The account lacks the role the action requires.
    #[error("forbidden")]
    Forbidden {
        /// The role that was required.
        role: String,
    },
    /// The account addressed by id does not exist.
    #[error("user not found")]
    UserNotFound,
    /// The session does not exist, belongs to someone else, or has ended.
    #[error("session not found")]
    SessionNotFound,
    /// The account changed while the request ran (a concurrent password change or
    /// revocation); nothing was written. Retrying re-reads the account.
    #[error("the account was changed by another request; retry")]
    Conflict,
    /// More roles than one account can hold ([`Role::MAX_PER_ACCOUNT`](crate::Role::MAX_PER_ACCOUNT));
    /// nothing was written.
    #[error("an account holds at most {max} roles")]
    TooManyRoles {
        /// The most roles an account can hold.
        max: usize,
    },
    /// Too many attempts; nothing was checked. Retry after `retry_after`.
    #[error("too many attempts; retry later")]
    RateLimited {
        /// When the client may retry.
        retry_after: Duration,
    },
    /// Too many consecutive failed logins for this email (NIST SP 800-63B §5.2.2):
    /// waiting does not help, only a password reset unlocks it. Answered for unknown
    /// emails exactly as for accounts, so it reveals nothing.
    #[error("too many failed logins: reset your password to unlock the account")]
    AccountLocked,
    /// Password hashing is saturated; retry after `retry_after`.
    #[error("the server is busy; retry later")]
    Busy {
        /// Suggested wait before retrying.
        retry_after: Duration,
    },
    /// No identity provider of that name is configured.
    #[error("no identity provider of that name")]
    UnknownProvider,
    /// The identity provider cannot be reached (its discovery document, keys or token
    /// endpoint); retry later.
    #[error("the identity provider is unavailable; retry later")]
    ProviderUnavailable(#[source] BoxError),
    /// `next` is not a path on this site ([`ReturnPath`](crate::ReturnPath)).
    #[error("{0}")]
    InvalidReturnPath(ReturnPathError),
    /// A native app's `code_challenge` is not an `S256` challenge
    /// ([`CodeChallenge`](crate::CodeChallenge)).
    #[error("{0}")]
    InvalidCodeChallenge(crate::CodeChallengeError),
    /// The provider's callback was refused: an unknown, expired, spent or foreign state,
    /// an error from the provider, or an ID token that failed a check. Deliberately one
    /// answer; the reason is for the event and the log.
    #[error("the sign-in with the identity provider failed or expired; start again")]
    ExternalLoginFailed(ExternalLoginRefusal),
    /// A provider's new identity has the email of an existing account: it is never linked
    /// by itself. The person signs in to that account and links the provider there.
    #[error("an account with this email address exists: sign in to it, then link this provider from its settings")]
    ExternalAccountExists,
    /// A provider's new identity comes without an email the provider verified (or with
    /// one this service does not accept): no account is created.
    #[error("the identity provider does not vouch for a usable email address")]
    ExternalEmailUnverified,
    /// The external identity is linked to another account.
    #[error("this identity is linked to another account")]
    IdentityInUse,
    /// Removing it would leave the account no way to sign in.
    #[error("this is the account's last way to sign in: set a password or link another provider first")]
    LastSignInMethod,
    /// The account has no linked identity with that id.
    #[error("not found")]
    IdentityNotFound,
    /// A passkey sign-in (or a passkey as second factor) was refused: an unknown, expired
    /// or spent ceremony, an unknown credential, an assertion that failed verification, or
    /// a sign counter that moved back. Deliberately one answer for all; the event says
    /// which.
    #[error("the passkey was not accepted")]
    PasskeyRefused,
    /// A passkey registration was refused: an unknown, expired or spent ceremony, a
    /// credential that is not WebAuthn's JSON, or an attestation that failed verification.
    #[error("the passkey could not be registered")]
    InvalidPasskey,
    /// A passkey name is empty (after trimming), longer than
    /// [`MAX_PASSKEY_NAME_CHARS`](crate::MAX_PASSKEY_NAME_CHARS) characters, or holds a
    /// control character.
    #[error("a passkey name must be 1 to 64 characters, without control characters")]
    InvalidPasskeyName,
    /// The account has no passkey with that id.
    #[error("not found")]
    PasskeyNotFound,
    /// The store cannot be reached.
    #[error("the service is temporarily unavailable; retry later")]
    Unavailable(#[source] StoreError),
    /// A server-side failure: corrupt data, a backend error, a failed signature.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl AuthError {
    pub(crate) fn internal(error: impl Into<BoxError>) -> Self {
        Self::Internal(error.into())
    }
}

impl From<EmailError> for AuthError {
    fn from(error: EmailError) -> Self {
        Self::InvalidEmail(error)
    }
}

impl From<PolicyViolation> for AuthError {
    fn from(violation: PolicyViolation) -> Self {
        Self::WeakPassword(violation)
    }
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::DuplicateEmail => Self::EmailTaken,
            StoreError::DuplicateIdentity => Self::IdentityInUse,
            StoreError::DuplicateCredential => Self::Conflict,
            StoreError::Unavailable(_) => Self::Unavailable(error),
            StoreError::Corrupt(_) | StoreError::Backend(_) => Self::internal(error),
        }
    }
}

impl From<HashPoolError> for AuthError {
    fn from(error: HashPoolError) -> Self {
        match error {
            HashPoolError::Busy => Self::Busy {
                retry_after: RETRY_AFTER,
            },
            HashPoolError::TaskFailed => Self::internal(error),
        }
    }
}

impl From<RngError> for AuthError {
    fn from(error: RngError) -> Self {
        Self::internal(error)
    }
}

impl From<SignError> for AuthError {
    fn from(error: SignError) -> Self {
        Self::internal(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_do_not_leak_their_cause_in_display() {
        let error = AuthError::from(StoreError::backend("password column missing for alice@example.com"));
        assert_eq!(error.to_string(), "internal error");
        assert!(std::error::Error::source(&error).is_some());
        let error = AuthError::from(StoreError::unavailable("connection refused to 10.0.0.5"));
        assert_eq!(error.code(), "unavailable");
        assert!(!error.to_string().contains("10.0.0.5"));
        assert_eq!(error.retry_after(), Some(RETRY_AFTER));
    }

    #[test]
    fn client_errors_say_what_to_fix() {
        let error = AuthError::from(PolicyViolation::TooShort { min: 8 });
        assert_eq!(error.to_string(), "password must be at least 8 characters long");
        assert_eq!((error.code(), error.http_status()), ("weak_password", 422));
        let error = AuthError::from(EmailError::MissingAt);
        assert_eq!(
            error.to_string(),
            "invalid email address: email address must contain an @"
        );
    }

    #[test]
    fn busy_and_duplicate_map_to_their_codes() {
        let busy = AuthError::from(HashPoolError::Busy);
        assert_eq!(
            (busy.code(), busy.http_status(), busy.retry_after()),
            ("busy", 503, Some(RETRY_AFTER))
        );
        assert!(!busy.is_server_error(), "load shedding, not a fault");
        let down = AuthError::Unavailable(StoreError::unavailable("connection refused"));
        assert!(down.is_server_error());
        let taken = AuthError::from(StoreError::DuplicateEmail);
        assert_eq!((taken.code(), taken.http_status()), ("email_taken", 409));
        assert!(!taken.is_server_error());
    }
}
