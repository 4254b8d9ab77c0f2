//! A store assembled from parts: accounts from one, sessions from another, single-use
//! tokens from a third.

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::store::PurgeStore;

/// A store whose accounts, sessions and single-use tokens come from three parts: an
/// application that keeps its own users table implements [`UserStore`](crate::UserStore)
/// over it (8 methods, plus [`UserDirectory`](crate::UserDirectory) and
/// [`RoleStore`](crate::RoleStore) if it wants the administration flows) and takes the
/// sessions and tokens of a shipped store, whose tables have no foreign key to its own
/// accounts for that reason.
///
/// Each trait is forwarded to its part: [`UserStore`](crate::UserStore),
/// [`UserDirectory`](crate::UserDirectory) and [`RoleStore`](crate::RoleStore) to `users`,
/// [`SessionStore`](crate::SessionStore) to `sessions`,
/// [`OneTimeTokenStore`](crate::OneTimeTokenStore) to `one_time`, and
/// [`PurgeStore`] to the sessions' and the tokens' parts for their halves. The composed
/// store has a capability when the part it forwards to has it.
///
/// The parts are separate stores: a flow that writes two of them (a password change
/// revokes the sessions after changing the hash) is not one transaction across them, as it
/// is not within one shipped store either; each write is atomic, and the order of the
/// writes is the service's, safe to interrupt.
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{AuthService, ClientInfo, ComposedStore, MemoryStore, Password, SigningKey, Tokens};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The application's own accounts (here a MemoryStore stands in for them), and a
/// // shipped store for the rest.
/// let app_users = MemoryStore::new();
/// let shipped = Arc::new(MemoryStore::new());
/// let store = ComposedStore::new(app_users, Arc::clone(&shipped), shipped);
/// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
/// let auth = AuthService::new(store, Tokens::new(key, "https://app.example", "app"));
/// let client = ClientInfo::unknown();
/// auth.register("ada@example.com", Password::new("analytical-engine-1843"), &client).await?;
/// let login = auth.login("ada@example.com", Password::new("analytical-engine-1843"), &client).await?.signed_in()?;
/// assert_eq!(auth.list_sessions(login.user.id).await?.len(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ComposedStore<U, S, T> {
    pub(crate) users: U,
    pub(crate) sessions: S,
    pub(crate) one_time: T,
}

impl<U, S, T> ComposedStore<U, S, T> {
    /// Accounts from `users`, sessions from `sessions`, single-use tokens from `one_time`.
    pub fn new(users: U, sessions: S, one_time: T) -> Self {
        Self {
            users,
            sessions,
            one_time,
        }
    }

    /// The accounts' part.
    pub fn users(&self) -> &U {
        &self.users
    }

    /// The sessions' part.
    pub fn sessions(&self) -> &S {
        &self.sessions
    }

    /// The single-use tokens' part.
    pub fn one_time(&self) -> &T {
        &self.one_time
    }
}

// Its two methods belong to two parts, so `store_trait!`'s one-part forwarding does not
// apply.
#[async_trait::async_trait]
impl<U, S, T> PurgeStore for ComposedStore<U, S, T>
where
    U: Send + Sync,
    S: PurgeStore,
    T: PurgeStore,
{
    async fn delete_ended_sessions(
        &self,
        ended_before: OffsetDateTime,
        idle_since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.sessions.delete_ended_sessions(ended_before, idle_since).await
    }

    async fn delete_spent_one_time_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.one_time.delete_spent_one_time_tokens(before).await
    }
}
