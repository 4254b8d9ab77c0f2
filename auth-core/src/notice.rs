//! Security notices: what an account's owner is told when something changed that they
//! should know of, and undo if it was not them (ASVS 6.3.7). The service hands each one
//! to the [`NoticeSink`] of [`AuthService::with_security_notices`](crate::AuthService::with_security_notices)
//! as the change is made; the application mails it.

use std::fmt;

use time::OffsetDateTime;

use crate::email::Email;
use crate::id::UserId;
use crate::identity::ProviderName;
use crate::one_time::Delivery;
use crate::session::ClientInfo;

/// A security notice for an account's address: what happened, when, and from which
/// client. It carries no secret but, for some kinds, a single-use link of its own
/// ([`link`](Self::link): a locked account's reset link).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SecurityNotice {
    /// The account's stored address.
    pub to: Email,
    /// The account.
    pub user_id: UserId,
    /// What happened.
    pub kind: SecurityNoticeKind,
    /// When.
    pub at: OffsetDateTime,
    /// The client that made the change (its user agent and address, as far as known).
    pub client: ClientInfo,
    /// A single-use link for the person to act on the notice, when the kind has one.
    pub link: Option<Delivery>,
}

impl SecurityNotice {
    /// A notice of `kind` for `to`, the account `user_id`, at `at`, made by `client`.
    ///
    /// ```
    /// use auth_core::{ClientInfo, Email, SecurityNotice, SecurityNoticeKind, UserId};
    /// use time::macros::datetime;
    ///
    /// let at = datetime!(2026-06-01 9:00 UTC);
    /// let notice = SecurityNotice::new(
    ///     Email::parse("ada@example.com").unwrap(),
    ///     UserId::new_at(at),
    ///     SecurityNoticeKind::PasswordChanged,
    ///     at,
    ///     ClientInfo::new(Some("Firefox/128.0"), None),
    /// );
    /// assert_eq!(notice.kind.as_str(), "password_changed");
    /// assert!(notice.link.is_none());
    /// ```
    pub fn new(to: Email, user_id: UserId, kind: SecurityNoticeKind, at: OffsetDateTime, client: ClientInfo) -> Self {
        Self {
            to,
            user_id,
            kind,
            at,
            client,
            link: None,
        }
    }

    /// The same notice carrying `link`.
    #[must_use]
    pub fn with_link(mut self, link: Option<Delivery>) -> Self {
        self.link = link;
        self
    }
}

/// What a [`SecurityNotice`] tells.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityNoticeKind {
    /// The password was changed (by its owner, signed in).
    PasswordChanged,
    /// The password was set through a reset link (every session ended).
    PasswordReset,
    /// Two-factor authentication was turned on (an authenticator app confirmed).
    TotpEnabled,
    /// Two-factor authentication was turned off.
    TotpDisabled,
    /// New recovery codes were made; the old ones no longer work.
    RecoveryCodesRegenerated,
    /// A sign-in provider was linked: it now signs the account in.
    IdentityLinked(ProviderName),
    /// A sign-in provider was unlinked.
    IdentityUnlinked(ProviderName),
    /// Too many failed sign-ins in a row locked the account; the notice carries a reset
    /// link, the way to unlock it.
    AccountLocked,
    /// To the old address: a change of the account's address to the one named was asked
    /// for. The notice carries the undo link (7 days), which also ends every session.
    EmailChangeRequested(Email),
    /// To the old address: the account's address is now the one named. The notice
    /// carries a fresh undo link (7 days).
    EmailChanged(Email),
    /// To the new address: it is now the account's address.
    EmailChangeConfirmed,
    /// To the restored address: a change was undone, every session ended.
    EmailChangeUndone,
    /// The account was deleted, with everything stored about it.
    AccountDeleted,
    /// A passkey was added; it names the passkey as its owner called it.
    PasskeyAdded(String),
    /// A passkey was removed; named as in [`PasskeyAdded`](Self::PasskeyAdded).
    PasskeyRemoved(String),
    /// A sign-in from a device the account has no live session from
    /// ([`AuthService::with_new_device_notices`](crate::AuthService::with_new_device_notices)).
    NewSignIn,
}

impl SecurityNoticeKind {
    /// A stable name: `password_changed`, `password_reset_completed` (not the reset link's
    /// `password_reset`), `totp_enabled`,
    /// `totp_disabled`, `recovery_codes_regenerated`, `identity_linked`,
    /// `identity_unlinked`, `account_locked`, `email_change_requested`, `email_changed`,
    /// `email_change_confirmed`, `email_change_undone`, `account_deleted`, `new_sign_in`,
    /// `passkey_added`, `passkey_removed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset_completed",
            Self::TotpEnabled => "totp_enabled",
            Self::TotpDisabled => "totp_disabled",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::IdentityLinked(_) => "identity_linked",
            Self::IdentityUnlinked(_) => "identity_unlinked",
            Self::AccountLocked => "account_locked",
            Self::EmailChangeRequested(_) => "email_change_requested",
            Self::EmailChanged(_) => "email_changed",
            Self::EmailChangeConfirmed => "email_change_confirmed",
            Self::EmailChangeUndone => "email_change_undone",
            Self::AccountDeleted => "account_deleted",
            Self::NewSignIn => "new_sign_in",
            Self::PasskeyAdded(_) => "passkey_added",
            Self::PasskeyRemoved(_) => "passkey_removed",
        }
    }
}

impl fmt::Display for SecurityNoticeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the service hands its [`SecurityNotice`]s, as each change is made. `notify` is
/// called on the request path and must not wait for the mail: spawn the sending, log a
/// failure. A closure is a `NoticeSink`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use auth_core::{AuthService, MemoryStore, SecurityNotice, SigningKey, Tokens};
///
/// let sent: Arc<Mutex<Vec<SecurityNotice>>> = Arc::default();
/// let kept = Arc::clone(&sent);
/// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!").unwrap();
/// let auth = AuthService::new(MemoryStore::new(), Tokens::new(key, "https://app.example", "app"))
///     .with_security_notices(move |notice: SecurityNotice| kept.lock().unwrap().push(notice));
/// # drop(auth);
/// ```
pub trait NoticeSink: Send + Sync + 'static {
    /// Hands `notice` over for mailing, without waiting.
    fn notify(&self, notice: SecurityNotice);
}

impl<F: Fn(SecurityNotice) + Send + Sync + 'static> NoticeSink for F {
    fn notify(&self, notice: SecurityNotice) {
        self(notice);
    }
}
