//! Changing an account's roles: an optional capability.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::id::UserId;
use crate::role::Role;
use crate::user::User;

store_trait! {
    composed(users: U);
    /// Changing the roles of an account
    /// ([`Accounts::set_roles`](crate::Accounts::set_roles),
    /// [`grant_role`](crate::Accounts::grant_role), [`revoke_role`](crate::Accounts::revoke_role)).
    /// Optional: a store without it runs every other flow, and its accounts keep the roles
    /// they were stored with.
    ///
    /// Every change that applies increments `token_version` (access tokens carry roles, so
    /// earlier ones must stop working) and sets `updated_at`. Grants and revokes are atomic
    /// read-modify-writes: of any number of concurrent ones on an account, none is lost,
    /// and the limit on the number of roles holds.
    pub trait RoleStore {
        /// Replaces the account's roles. Returns the updated account, or `None` if there is
        /// none.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn set_roles(
            &self,
            id: UserId,
            roles: &BTreeSet<Role>,
            at: OffsetDateTime,
        ) -> Result<Option<User>, StoreError>;

        /// Adds `role` to the account's roles, unless it holds it already or already holds
        /// `max_roles` roles (then nothing changes). Returns the account as it is after the
        /// call (the caller tells a refusal by the role missing), or `None` if there is none.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn grant_role(
            &self,
            id: UserId,
            role: &Role,
            max_roles: usize,
            at: OffsetDateTime,
        ) -> Result<Option<User>, StoreError>;

        /// Removes `role` from the account's roles, if it holds it (otherwise nothing
        /// changes). Returns the account as it is after the call, or `None` if there is none.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn revoke_role(&self, id: UserId, role: &Role, at: OffsetDateTime) -> Result<Option<User>, StoreError>;
    }
}
