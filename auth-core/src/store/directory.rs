//! The account listing an administrator pages through: an optional capability.

use crate::error::StoreError;
use crate::id::UserId;
use crate::user::User;

store_trait! {
    composed(users: U);
    /// The listing of every account, for administration
    /// ([`Accounts::list_users`](crate::Accounts::list_users)). Optional: a store without
    /// it runs every other flow.
    pub trait UserDirectory {
        /// Up to `limit` accounts with ids greater than `after` (from the first without it),
        /// in id order: ids are UUIDv7, so this is registration order, and a page resumes
        /// after the last id of the previous one (keyset pagination: stable under inserts).
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError>;

        /// As [`list_users`](Self::list_users), only the accounts whose stored (normalized)
        /// email starts with `email_prefix`, compared character for character: no
        /// character of the prefix is a wildcard.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn search_users(
            &self,
            email_prefix: &str,
            after: Option<UserId>,
            limit: u32,
        ) -> Result<Vec<User>, StoreError>;
    }
}
