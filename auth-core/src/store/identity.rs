//! External identities: an optional capability, for services that sign people in through
//! identity providers (OpenID Connect).

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::id::{IdentityId, UserId};
use crate::identity::{ExternalLoginCode, ExternalLoginState, LinkedIdentity, ProviderName};
use crate::token::TokenHash;
use crate::user::User;

/// What [`IdentityStore::delete_identity`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityRemoval {
    /// Deleted.
    Removed,
    /// The account has no identity with that id.
    NotFound,
    /// Not deleted: the account has no password and no other identity, so it would have
    /// no way left to sign in.
    LastSignInMethod,
}

store_trait! {
    composed(users: U);
    /// The external identities linked to accounts, the sign-ins in progress (under the
    /// hash of their `state`) and the one-time codes of finished ones (under the hash of
    /// the code).
    ///
    /// Creating an account with its first identity is one write, so this capability lives
    /// with the accounts (in a [`ComposedStore`](crate::ComposedStore), the accounts'
    /// part has it). The contract every implementation keeps, beside the base traits'
    /// (the conformance suite checks it):
    ///
    /// - (provider, subject) is unique, by the database's own constraint: of concurrent
    ///   first sign-ins of one new identity, exactly one creates an account, the others get
    ///   [`StoreError::DuplicateIdentity`] and nothing written.
    /// - States and codes are single-use: of concurrent takes, exactly one gets the record.
    /// - Deleting an account deletes its identities and codes (a foreign key with
    ///   `ON DELETE CASCADE` in SQL).
    /// - An account never loses its last way to sign in through
    ///   [`delete_identity`](Self::delete_identity), even under concurrent deletions.
    pub trait IdentityStore {
        /// Inserts a new account and its first identity, atomically: both or neither.
        ///
        /// # Errors
        ///
        /// [`StoreError::DuplicateEmail`] if the email has an account,
        /// [`StoreError::DuplicateIdentity`] if the identity is linked already; nothing is
        /// written then.
        async fn insert_user_with_identity(&self, user: &User, identity: &LinkedIdentity) -> Result<(), StoreError>;

        /// Links an identity to an existing account.
        ///
        /// # Errors
        ///
        /// [`StoreError::DuplicateIdentity`] if (provider, subject) is linked already
        /// (to this account or another); a backend error if the account does not exist.
        async fn insert_identity(&self, identity: &LinkedIdentity) -> Result<(), StoreError>;

        /// The identity with this provider and subject.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn find_identity(&self, provider: &ProviderName, subject: &str) -> Result<Option<LinkedIdentity>, StoreError>;

        /// The account's identities, oldest first.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn list_identities(&self, user: UserId) -> Result<Vec<LinkedIdentity>, StoreError>;

        /// Records that the identity signed in at `at`. Returns whether it exists.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn record_identity_use(&self, id: IdentityId, at: OffsetDateTime) -> Result<bool, StoreError>;

        /// Deletes the account's identity `id` unless the account would be left without a
        /// password and without another identity. Atomic: of two concurrent deletions of
        /// an account's last two identities, one is refused.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn delete_identity(&self, user: UserId, id: IdentityId) -> Result<IdentityRemoval, StoreError>;

        /// Stores a begun sign-in under the hash of its state.
        ///
        /// # Errors
        ///
        /// Backend failures only (a hash collision of 256-bit random states is one).
        async fn insert_login_state(&self, state: &TokenHash, record: &ExternalLoginState) -> Result<(), StoreError>;

        /// Deletes and returns the sign-in stored under this hash, expired or not (the
        /// service checks the time). Of concurrent takes, exactly one gets it.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn take_login_state(&self, state: &TokenHash) -> Result<Option<ExternalLoginState>, StoreError>;

        /// Stores a finished sign-in's one-time code under its hash.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn insert_login_code(&self, code: &TokenHash, record: &ExternalLoginCode) -> Result<(), StoreError>;

        /// Deletes and returns the code stored under this hash, expired or not. Of
        /// concurrent takes, exactly one gets it.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn take_login_code(&self, code: &TokenHash) -> Result<Option<ExternalLoginCode>, StoreError>;

        /// Deletes the states and codes that expired before `before` (those never
        /// finished or traded). Returns how many.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn delete_expired_logins(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
    }
}
