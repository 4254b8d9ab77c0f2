//! Accounts: the record every store keeps.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use crate::email::Email;
use crate::hash::HashedPassword;
use crate::id::UserId;
use crate::role::Role;

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
}
