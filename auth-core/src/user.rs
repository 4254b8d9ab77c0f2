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
///
/// The fields can be read and changed, but a `User` is built with [`User::new`] (a new
/// account) or [`User::existing`] and the `with_*` methods (an account a store loads):
/// it is `#[non_exhaustive]`, so that a field added later, with its default, breaks no
/// store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Whether login asks for a second factor: set when one is confirmed, cleared when the
    /// last is removed, by the [`SecondFactorStore`](crate::SecondFactorStore) in the same
    /// write. Kept on the account so that every login sees it, whatever the store's other
    /// capabilities: a service that cannot complete a second factor refuses the login.
    pub requires_second_factor: bool,
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
        Self::existing(UserId::new_at(now), email, now).with_password_hash(password_hash)
    }

    /// An account that already exists, as a store loads it: its `id`, `email` and
    /// `created_at`, every other field as [`User::new`] sets it (active, not verified, no
    /// password, no roles, token version 0, updated at `created_at`) until a `with_*`
    /// method sets it.
    ///
    /// ```
    /// use std::collections::BTreeSet;
    /// use auth_core::{Email, HashedPassword, Role, User, UserId};
    /// use time::macros::datetime;
    ///
    /// let created = datetime!(2026-01-01 0:00 UTC);
    /// let id = UserId::new_at(created);
    /// let user = User::existing(id, Email::parse("ann@example.com").unwrap(), created)
    ///     .with_password_hash(Some(HashedPassword::new("$argon2id$...")))
    ///     .with_roles(BTreeSet::from([Role::ADMIN]))
    ///     .with_token_version(3)
    ///     .with_updated_at(datetime!(2026-02-01 0:00 UTC));
    /// assert_eq!((user.id, user.token_version), (id, 3));
    /// assert!(user.is_active && user.has_role("admin"));
    /// ```
    pub fn existing(id: UserId, email: Email, created_at: OffsetDateTime) -> Self {
        Self {
            id,
            email,
            password_hash: None,
            is_active: true,
            email_verified_at: None,
            roles: BTreeSet::new(),
            token_version: 0,
            created_at,
            updated_at: created_at,
            requires_second_factor: false,
        }
    }

    /// Sets the password hash (`None`: the account cannot log in with a password).
    #[must_use]
    pub fn with_password_hash(mut self, password_hash: Option<HashedPassword>) -> Self {
        self.password_hash = password_hash;
        self
    }

    /// Sets whether the account is active.
    #[must_use]
    pub fn with_active(mut self, is_active: bool) -> Self {
        self.is_active = is_active;
        self
    }

    /// Sets when the email address was verified (`None`: not verified).
    #[must_use]
    pub fn with_email_verified_at(mut self, email_verified_at: Option<OffsetDateTime>) -> Self {
        self.email_verified_at = email_verified_at;
        self
    }

    /// Sets the roles.
    #[must_use]
    pub fn with_roles(mut self, roles: BTreeSet<Role>) -> Self {
        self.roles = roles;
        self
    }

    /// Sets the token version.
    #[must_use]
    pub fn with_token_version(mut self, token_version: i64) -> Self {
        self.token_version = token_version;
        self
    }

    /// Sets when a field last changed.
    #[must_use]
    pub fn with_updated_at(mut self, updated_at: OffsetDateTime) -> Self {
        self.updated_at = updated_at;
        self
    }

    /// Sets whether login asks for a second factor.
    #[must_use]
    pub fn with_requires_second_factor(mut self, requires_second_factor: bool) -> Self {
        self.requires_second_factor = requires_second_factor;
        self
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
