//! Role names: what an account is allowed to do, carried in its access tokens.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// A role name, such as `admin`: 1 to 64 characters of lowercase ASCII letters, digits,
/// `_`, `-`, `.` and `:`, so it is safe in a token, a URL, a log line and any database.
///
/// ```
/// use auth_core::Role;
///
/// let admin = Role::new("admin").unwrap();
/// assert_eq!(admin.as_str(), "admin");
/// assert_eq!(admin, Role::ADMIN);
/// assert!(Role::new("billing:read").is_ok());
/// assert!(Role::new("Admin").is_err());
/// assert!(Role::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Role(Cow<'static, str>);

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

    /// `admin`: the role of the accounts that administer the others (list, enable and
    /// disable accounts, change roles). The example servers' `/admin` routes require it,
    /// and `grant-role <email> admin` makes the first administrator.
    pub const ADMIN: Role = Role::from_static("admin");

    /// Validates a role name.
    ///
    /// # Errors
    ///
    /// [`RoleError`] when `name` is empty, too long or has other characters.
    pub fn new(name: impl Into<String>) -> Result<Self, RoleError> {
        let name = name.into();
        if !is_valid_name(&name) {
            return Err(RoleError);
        }
        Ok(Self(Cow::Owned(name)))
    }

    /// A role named in the source, checked when the program is compiled: for a route's
    /// requirement, a `const` such as [`ADMIN`](Self::ADMIN).
    ///
    /// ```
    /// use auth_core::Role;
    ///
    /// const EDITOR: Role = Role::from_static("editor");
    /// assert_eq!(EDITOR, Role::new("editor").unwrap());
    /// ```
    ///
    /// A name that is not valid does not compile in a `const`:
    ///
    /// ```compile_fail
    /// const BAD: auth_core::Role = auth_core::Role::from_static("Not Valid");
    /// ```
    ///
    /// # Panics
    ///
    /// When `name` is not a valid role name. In a `const` item (its intended use), that
    /// is a compile error, never a panic at run time; use [`new`](Self::new) for names
    /// that arrive at run time.
    pub const fn from_static(name: &'static str) -> Self {
        assert!(
            is_valid_name(name),
            "a role is 1 to 64 characters of a-z, 0-9, '_', '-', '.' and ':'"
        );
        Self(Cow::Borrowed(name))
    }

    /// The role name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Adds this role to `roles`, unless they hold it already or hold `max_roles` already:
    /// the change [`RoleStore::grant_role`](crate::RoleStore::grant_role) makes, for a
    /// backend to apply to the roles it read in its own transaction. Returns whether
    /// `roles` changed.
    ///
    /// ```
    /// use std::collections::BTreeSet;
    /// use auth_core::Role;
    ///
    /// let mut roles = BTreeSet::new();
    /// assert!(Role::ADMIN.grant_within(&mut roles, 1));
    /// assert!(!Role::ADMIN.grant_within(&mut roles, 1), "held already");
    /// assert!(!Role::new("editor").unwrap().grant_within(&mut roles, 1), "at the limit");
    /// ```
    pub fn grant_within(&self, roles: &mut BTreeSet<Role>, max_roles: usize) -> bool {
        !roles.contains(self) && roles.len() < max_roles && roles.insert(self.clone())
    }
}

/// The one rule for role names, `const` so that [`Role::from_static`] applies it when
/// the program is compiled.
const fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > Role::MAX_LEN {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.' | b':')) {
            return false;
        }
        i += 1;
    }
    true
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn names_in_the_source_follow_the_same_rule() {
        for good in ["admin", "a", "billing:read", "team-1.owner_x"] {
            assert_eq!(Role::from_static(good), Role::new(good).unwrap());
        }
        for bad in ["", "Admin", "has space", "émoji"] {
            assert!(std::panic::catch_unwind(|| Role::from_static(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_admin_constant_is_a_valid_role() {
        assert_eq!(Role::new(Role::ADMIN.as_str()), Ok(Role::ADMIN));
        assert_eq!(serde_json::to_string(&Role::ADMIN).unwrap(), "\"admin\"");
    }
}
