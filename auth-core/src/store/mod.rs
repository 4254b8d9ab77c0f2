//! Storage traits: what a backend must do for [`AuthService`](crate::AuthService).
//!
//! Backends live in their own crates (`auth-store-sqlite`, `auth-store-postgres`) and
//! prove they meet these contracts by running the [conformance suite](crate::conformance).

mod memory;

use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use memory::MemoryStore;

use crate::{Email, HashedPassword, User, UserId};

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

/// Accounts, keyed by [`UserId`] and by normalized [`Email`].
///
/// The contract every implementation keeps (and the conformance suite checks):
///
/// - "Not found" is `Ok(None)` (or `Ok(false)`), never an error.
/// - Email uniqueness is enforced by the store itself, atomically: of any number of
///   concurrent inserts with one email, exactly one succeeds and the rest get
///   [`StoreError::DuplicateEmail`]. Emails are already normalized; compare them
///   byte for byte (no case folding, no `LIKE`).
/// - Every field of [`User`] round-trips unchanged, timestamps to the microsecond.
/// - Updates are atomic per call; no update is lost to a concurrent one, and
///   compare-and-set updates apply at most once.
/// - Unreachable backends report [`StoreError::Unavailable`].
///
/// The trait is object safe, so an application can choose its backend at run time with
/// `Arc<dyn UserStore>`:
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{MemoryStore, UserStore};
///
/// let store: Arc<dyn UserStore> = Arc::new(MemoryStore::new());
/// ```
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a new account.
    ///
    /// # Errors
    ///
    /// [`StoreError::DuplicateEmail`] if an account with `user.email` exists; nothing is
    /// written in that case.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;

    /// The account with this id.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The account with this normalized email.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;

    /// Replaces the password hash with a stronger one of the *same* password, but only if
    /// the stored hash is still `current` (compare-and-set), so a rehash computed during a
    /// login cannot overwrite a password changed meanwhile. Sets `updated_at`; does not
    /// touch `token_version`. Returns whether the hash was replaced.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn upgrade_password_hash(
        &self,
        id: UserId,
        current: &HashedPassword,
        upgraded: &HashedPassword,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Sets a new password hash (a password change or reset), increments
    /// `token_version` so every access token issued before stops working, and sets
    /// `updated_at`, but only if the account's `token_version` is still
    /// `if_token_version` (compare-and-set): a password change, disable or revocation
    /// that happened since the caller read the account makes this a no-op. Returns the
    /// updated account, or `None` if there is no such account or its version moved on.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &HashedPassword,
        if_token_version: i64,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError>;

    /// Enables or disables an account and sets `updated_at`. Disabling increments
    /// `token_version`; enabling does not (tokens from before the disable stay dead).
    /// Returns the updated account, or `None` if there is none.
    ///
    /// # Errors
    ///
    /// Backend failures only.
    async fn set_active(&self, id: UserId, active: bool, at: OffsetDateTime) -> Result<Option<User>, StoreError>;
}

#[async_trait]
impl<T: UserStore + ?Sized> UserStore for Arc<T> {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        (**self).insert_user(user).await
    }

    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        (**self).find_user_by_id(id).await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        (**self).find_user_by_email(email).await
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        current: &HashedPassword,
        upgraded: &HashedPassword,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        (**self).upgrade_password_hash(id, current, upgraded, at).await
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &HashedPassword,
        if_token_version: i64,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        (**self).set_password_hash(id, hash, if_token_version, at).await
    }

    async fn set_active(&self, id: UserId, active: bool, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        (**self).set_active(id, active, at).await
    }
}
