//! Single-use tokens sent by mail: password reset and email verification.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::email::Email;
use crate::id::UserId;
use crate::token::{OpaqueToken, TokenKind};

/// What a single-use token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenPurpose {
    /// Proves the owner receives mail at the account's address.
    EmailVerification,
    /// Lets the owner set a new password without the old one.
    PasswordReset,
    /// Confirms a change of the account's address, from the new address
    /// ([`AuthService::request_email_change`](crate::AuthService::request_email_change)).
    EmailChange,
    /// Undoes a change of the account's address, from the old address.
    EmailChangeUndo,
}

impl TokenPurpose {
    /// The stable name stores persist: `email_verification`, `password_reset`,
    /// `email_change` or `email_change_undo`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailVerification => "email_verification",
            Self::PasswordReset => "password_reset",
            Self::EmailChange => "email_change",
            Self::EmailChangeUndo => "email_change_undo",
        }
    }

    /// The opaque-token kind (and prefix) of tokens with this purpose.
    pub fn kind(self) -> TokenKind {
        match self {
            Self::EmailVerification => TokenKind::EmailVerification,
            Self::PasswordReset => TokenKind::PasswordReset,
            Self::EmailChange => TokenKind::EmailChange,
            Self::EmailChangeUndo => TokenKind::EmailChangeUndo,
        }
    }
}

impl fmt::Display for TokenPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`TokenPurpose`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token purpose {0:?}")]
pub struct UnknownPurpose(pub String);

impl FromStr for TokenPurpose {
    type Err = UnknownPurpose;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "email_verification" => Ok(Self::EmailVerification),
            "password_reset" => Ok(Self::PasswordReset),
            "email_change" => Ok(Self::EmailChange),
            "email_change_undo" => Ok(Self::EmailChangeUndo),
            other => Err(UnknownPurpose(other.to_owned())),
        }
    }
}

/// A single-use token as a store keeps it (next to the token's hash).
///
/// It is bound to more than its user: to the address it was sent to (a verification
/// token dies when the email changes) and to the account's token version at issue (a
/// reset token dies when the password changes by any route, or tokens are revoked).
///
/// `#[non_exhaustive]`, so that a field added later breaks no store: built with
/// [`OneTimeToken::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OneTimeToken {
    /// The account.
    pub user_id: UserId,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// The address it was sent to.
    pub email: Email,
    /// The account's token version when it was issued.
    pub token_version: i64,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

impl OneTimeToken {
    /// A token for `purpose`, sent to `email` for the account `user_id` whose token
    /// version was `token_version`, issued at `created_at`, working until `expires_at`.
    ///
    /// ```
    /// use auth_core::{Email, OneTimeToken, TokenPurpose, UserId};
    /// use time::macros::datetime;
    ///
    /// let issued = datetime!(2026-03-01 9:00 UTC);
    /// let email = Email::parse("ann@example.com").unwrap();
    /// let token = OneTimeToken::new(UserId::new_at(issued), TokenPurpose::PasswordReset, email, 0, issued, datetime!(2026-03-01 10:00 UTC));
    /// assert_eq!(token.purpose.as_str(), "password_reset");
    /// ```
    pub fn new(
        user_id: UserId,
        purpose: TokenPurpose,
        email: Email,
        token_version: i64,
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            user_id,
            purpose,
            email,
            token_version,
            created_at,
            expires_at,
        }
    }
}

/// A message the application must deliver: a single-use token for the account's stored
/// address. `auth-core` sends nothing itself; the application mails `token` (in a link)
/// to `to`, preferably off the request path.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Delivery {
    /// The stored address of the account, never the string that was typed.
    pub to: Email,
    /// The account.
    pub user_id: UserId,
    /// What the token is for.
    pub purpose: TokenPurpose,
    /// The token to put in the link.
    pub token: OpaqueToken,
    /// When the token stops working.
    pub expires_at: OffsetDateTime,
}
