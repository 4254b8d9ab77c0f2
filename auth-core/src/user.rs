//! Accounts: identifiers, roles and the record every store keeps.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;

use crate::{AuthError, Email, HashedPassword};

crate::id::uuid_id! {
    /// An account's identifier: a UUIDv7.
    ///
    /// ```
    /// use auth_core::UserId;
    ///
    /// let id: UserId = "01936f2e-8d4b-7c3a-9f1e-2b3c4d5e6f70".parse().unwrap();
    /// assert_eq!(id.to_string(), "01936f2e-8d4b-7c3a-9f1e-2b3c4d5e6f70");
    /// assert!("not-a-uuid".parse::<UserId>().is_err());
    /// ```
    UserId
}

/// A role name, such as `admin`: 1 to 64 characters of lowercase ASCII letters, digits,
/// `_`, `-`, `.` and `:`, so it is safe in a token, a URL, a log line and any database.
///
/// ```
/// use auth_core::Role;
///
/// let admin = Role::new("admin").unwrap();
/// assert_eq!(admin.as_str(), "admin");
/// assert!(Role::new("billing:read").is_ok());
/// assert!(Role::new("Admin").is_err());
/// assert!(Role::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Role(String);

/// A string that is not a valid [`Role`] name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a role is 1 to 64 characters of a-z, 0-9, '_', '-', '.' and ':'")]
pub struct RoleError;

impl Role {
    /// Longest role name, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Most roles one account can hold. With [`MAX_LEN`](Self::MAX_LEN) and the longest
    /// email, the largest access token the service can issue stays well below the
    /// 8 KiB that verification accepts (about 3.6 KiB with HS256; tested), so every
    /// issued token is one the service takes back.
    pub const MAX_PER_ACCOUNT: usize = 32;

    /// Validates a role name.
    ///
    /// # Errors
    ///
    /// [`RoleError`] when `name` is empty, too long or has other characters.
    pub fn new(name: impl Into<String>) -> Result<Self, RoleError> {
        let name = name.into();
        let valid_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b':');
        if name.is_empty() || name.len() > Self::MAX_LEN || !name.bytes().all(valid_char) {
            return Err(RoleError);
        }
        Ok(Self(name))
    }

    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// An account, as every [`UserStore`](crate::UserStore) keeps it.
///
/// Stores persist every field and give it back unchanged: timestamps to the microsecond
/// (the service only hands out microsecond-precision times), roles as a set.
///
/// `password_hash` is never serialized by this crate and its `Debug` shows only the
/// scheme, so printing a `User` leaks no hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable identifier.
    pub id: UserId,
    /// Normalized email; unique across the store.
    pub email: Email,
    /// `None` for accounts that cannot log in with a password (created by invitation or
    /// single sign-on, for example).
    pub password_hash: Option<HashedPassword>,
    /// Disabled accounts cannot log in or use tokens.
    pub is_active: bool,
    /// When the owner proved they receive mail at `email`.
    pub email_verified_at: Option<OffsetDateTime>,
    /// Roles granted to the account.
    pub roles: BTreeSet<Role>,
    /// Incremented whenever every access token issued so far must stop working: a password
    /// change or reset, a disable, a role change, a logout everywhere. Tokens carry the
    /// version they were issued under, so revocation is exact even within one second,
    /// which JWT timestamps cannot resolve. Pending password-reset tokens are bound to it
    /// too, and die with it.
    pub token_version: i64,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// When any field last changed.
    pub updated_at: OffsetDateTime,
}

impl User {
    /// A new account as registration creates it: a fresh UUIDv7 id, active, email not
    /// verified, no roles, token version 0, created and updated at `now`.
    ///
    /// ```
    /// use auth_core::{Email, User};
    /// use time::macros::datetime;
    ///
    /// let now = datetime!(2026-01-01 0:00 UTC);
    /// let user = User::new(Email::parse("ann@example.com").unwrap(), None, now);
    /// assert!(user.is_active && !user.email_verified() && user.roles.is_empty());
    /// assert_eq!((user.token_version, user.created_at, user.updated_at), (0, now, now));
    /// ```
    pub fn new(email: Email, password_hash: Option<HashedPassword>, now: OffsetDateTime) -> Self {
        Self {
            id: UserId::new_at(now),
            email,
            password_hash,
            is_active: true,
            email_verified_at: None,
            roles: BTreeSet::new(),
            token_version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether the email address has been verified.
    pub fn email_verified(&self) -> bool {
        self.email_verified_at.is_some()
    }

    /// Whether the account holds `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.as_str() == role)
    }

    /// The framework-neutral role check: `Ok` if the account holds `role`, otherwise
    /// [`AuthError::Forbidden`] (HTTP 403).
    ///
    /// ```
    /// use auth_core::{Email, Role, User};
    /// use time::macros::datetime;
    ///
    /// let mut user = User::new(Email::parse("ann@example.com").unwrap(), None, datetime!(2026-01-01 0:00 UTC));
    /// assert_eq!(user.require_role("admin").unwrap_err().code(), "forbidden");
    /// user.roles.insert(Role::new("admin").unwrap());
    /// assert!(user.require_role("admin").is_ok());
    /// ```
    ///
    /// # Errors
    ///
    /// [`AuthError::Forbidden`] naming the missing role.
    pub fn require_role(&self, role: &str) -> Result<(), AuthError> {
        require_role(&self.roles, role)
    }
}

/// `Ok` if `roles` hold `role`, otherwise [`AuthError::Forbidden`].
pub(crate) fn require_role(roles: &BTreeSet<Role>, role: &str) -> Result<(), AuthError> {
    if roles.iter().any(|r| r.as_str() == role) {
        Ok(())
    } else {
        Err(AuthError::Forbidden { role: role.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ids_are_v7_and_ordered_by_time() {
        let early = UserId::new_at(datetime!(2026-01-01 0:00 UTC));
        let late = UserId::new_at(datetime!(2026-01-01 0:00:01 UTC));
        assert_eq!(early.as_uuid().get_version_num(), 7);
        assert!(early < late);
        assert_ne!(
            UserId::new_at(datetime!(2026-01-01 0:00 UTC)),
            early,
            "random bits differ"
        );
        let json = serde_json::to_string(&early).unwrap();
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), early);
    }

    #[test]
    fn roles_are_validated() {
        for good in ["admin", "a", "billing:read", "team-1.owner_x", &"r".repeat(64)] {
            assert!(Role::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Admin",
            "has space",
            "émoji",
            "semi;colon",
            "new\nline",
            &"r".repeat(65),
        ] {
            assert_eq!(Role::new(bad), Err(RoleError), "{bad:?}");
        }
        assert!(serde_json::from_str::<Role>("\"ADMIN\"").is_err());
        assert_eq!(serde_json::from_str::<Role>("\"admin\"").unwrap().as_str(), "admin");
    }
}
