//! Deleting an account: an optional capability, for services that let people (or their
//! administrators) delete accounts.

use crate::error::StoreError;
use crate::event::EmailDigest;
use crate::id::UserId;
use crate::user::User;

store_trait! {
    /// Deleting an account with everything that is its own, in one transaction.
    ///
    /// Not implemented by [`ComposedStore`](crate::ComposedStore): its parts are separate
    /// stores, which no single transaction spans; an application that keeps its own
    /// accounts deletes them its own way. The contract (the conformance suite checks it,
    /// and each bundled backend also counts the rows left in every table):
    ///
    /// - Everything keyed by the account goes with it, atomically: its sessions (with
    ///   their refresh tokens and browser sessions), its one-time tokens, and the rows of
    ///   every optional capability the store has (second factors, recovery codes, login
    ///   challenges, linked identities, sign-ins in progress, one-time codes, address
    ///   changes).
    /// - The address is free at once: a registration of it right after succeeds.
    /// - A store that keeps an audit log ([`AuditLogStore`](crate::AuditLogStore)) keeps
    ///   the account's records, in the same transaction made to name it by `pseudonym`
    ///   (the keyed digest of its address) only, without its clients' addresses and user
    ///   agents.
    pub trait AccountDeletionStore {
        /// Deletes the account and everything that is its own; returns the account as it
        /// was, `None` if there was none (nothing is deleted then).
        ///
        /// # Errors
        ///
        /// Backend failures only (nothing is deleted then).
        async fn delete_user(&self, id: UserId, pseudonym: &EmailDigest) -> Result<Option<User>, StoreError>;
    }
}
