//! Security events: one typed record per outcome of every flow, to `tracing` and to an
//! [`EventSink`] the application provides.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use crate::{ClientInfo, Email, PolicyViolation, SessionId, TokenError, UserId};

/// What was attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// [`register`](crate::AuthService::register) and its enumeration-safe variant.
    Register,
    /// [`login`](crate::AuthService::login).
    Login,
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
}

impl Action {
    /// A stable snake_case name (`login`, `request_password_reset`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
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
        }
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
/// exactly one. Never carries a password, token or hash; an address only as a keyed digest.
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
}

impl AuthEvent {
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
                    action = self.action.as_str(),
                    outcome = self.outcome.as_str(),
                    reason = reason.as_deref(),
                    user_id = user_id.as_deref(),
                    email_digest = email_digest.as_deref(),
                    session_id = self.session_id.map(|id| id.to_string()).as_deref(),
                    ip = self.client.ip().map(|ip| ip.to_string()).as_deref(),
                    user_agent = ?self.client.user_agent(),
                    "auth event"
                )
            };
        }
        match &self.outcome {
            Outcome::Success => emit!(tracing::Level::INFO),
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
/// To write somewhere slow, send the event into a channel and write from a task:
///
/// ```
/// use auth_core::{AuthEvent, EventSink};
///
/// #[derive(Debug)]
/// struct AuditQueue(tokio::sync::mpsc::UnboundedSender<AuthEvent>);
///
/// impl EventSink for AuditQueue {
///     fn record(&self, event: &AuthEvent) {
///         let _ = self.0.send(event.clone());
///     }
/// }
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
}
