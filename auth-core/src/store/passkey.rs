//! Passkeys: an optional capability, for services that sign people in with WebAuthn.

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::id::{PasskeyId, UserId};
use crate::passkey::{PasskeyCeremony, PasskeyCredential};
use crate::token::TokenHash;

/// What [`PasskeyStore::delete_passkey`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasskeyRemoval {
    /// Deleted.
    Removed,
    /// The account has no passkey with that id.
    NotFound,
    /// Not deleted: the account has no password, no linked identity and no other
    /// passkey, so it would have no way left to sign in.
    LastSignInMethod,
}

store_trait! {
    composed(users: U);
    /// The passkeys registered to accounts and the WebAuthn ceremonies in progress (under
    /// the hash of their token). The contract every implementation keeps, beside the base
    /// traits' (the conformance suite checks it):
    ///
    /// - A credential id is registered once, by the database's own constraint: of
    ///   concurrent registrations of one, exactly one succeeds, the others get
    ///   [`StoreError::DuplicateCredential`] and nothing written.
    /// - A sign counter never moves back: [`record_passkey_use`](Self::record_passkey_use)
    ///   applies only over the counter the caller read, atomically.
    /// - Ceremonies are single-use: of concurrent takes, exactly one gets the record.
    /// - An account never loses its last way to sign in through
    ///   [`delete_passkey`](Self::delete_passkey), even under concurrent deletions.
    /// - Deleting an account deletes its passkeys and ceremonies.
    /// - Registering, renaming and deleting a passkey keep the service's audit records
    ///   ([`PendingRecords`](crate::PendingRecords)) in the same transaction, when they
    ///   made a change.
    pub trait PasskeyStore {
        /// Registers a passkey.
        ///
        /// # Errors
        ///
        /// [`StoreError::DuplicateCredential`] if its credential id is registered already
        /// (to this account or another); a backend error if the account does not exist.
        async fn insert_passkey(&self, passkey: &PasskeyCredential) -> Result<(), StoreError>;

        /// The passkey with this credential id.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn find_passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyCredential>, StoreError>;

        /// The account's passkeys, oldest first.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn list_passkeys(&self, user: UserId) -> Result<Vec<PasskeyCredential>, StoreError>;

        /// Records a sign-in with the passkey `id` at `at`: stores `credential` and
        /// `counter` (as the verified assertion left them), but only if its counter is
        /// still `if_counter` (compare-and-set: of concurrent sign-ins that read one
        /// counter, one applies). Returns whether it did.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn record_passkey_use(
            &self,
            id: PasskeyId,
            if_counter: u32,
            credential: &str,
            counter: u32,
            at: OffsetDateTime,
        ) -> Result<bool, StoreError>;

        /// Renames the account's passkey `id`. Returns whether there is one.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn rename_passkey(&self, user: UserId, id: PasskeyId, name: &str) -> Result<bool, StoreError>;

        /// Deletes the account's passkey `id` unless the account would be left without a
        /// password, a linked identity or another passkey. Atomic: of two concurrent
        /// deletions of an account's last two ways to sign in, one is refused.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn delete_passkey(&self, user: UserId, id: PasskeyId) -> Result<PasskeyRemoval, StoreError>;

        /// Stores a ceremony in progress under the hash of its token.
        ///
        /// # Errors
        ///
        /// Backend failures only (a hash collision of 256-bit random tokens is one).
        async fn insert_passkey_ceremony(&self, token: &TokenHash, ceremony: &PasskeyCeremony) -> Result<(), StoreError>;

        /// Deletes and returns the ceremony stored under this hash, expired or not (the
        /// service checks the time). Of concurrent takes, exactly one gets it.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn take_passkey_ceremony(&self, token: &TokenHash) -> Result<Option<PasskeyCeremony>, StoreError>;

        /// Deletes the ceremonies that expired before `before`. Returns how many.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn delete_expired_passkey_ceremonies(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
    }
}
