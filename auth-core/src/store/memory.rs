use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{StoreError, UserStore};
use crate::{Email, HashedPassword, User, UserId};

/// The reference store: everything in process memory, lost on exit.
///
/// For unit tests, documentation and prototypes. It keeps every contract of the store
/// traits (it runs the same conformance suite as the database backends), but a real
/// service needs `auth-store-sqlite` or `auth-store-postgres`. Clones share the data.
///
/// ```
/// use auth_core::{MemoryStore, UserStore, Email};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let store = MemoryStore::new();
/// let email = Email::parse("nobody@example.com").unwrap();
/// assert!(store.find_user_by_email(&email).await.unwrap().is_none());
/// # }
/// ```
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    users: HashMap<UserId, User>,
    ids_by_email: HashMap<Email, UserId>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // The lock is never held across an await, and every critical section leaves the
    // state consistent, so a poisoned lock (a panic elsewhere) is safe to keep using.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("users", &self.state().users.len())
            .finish()
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let mut state = self.state();
        let State { users, ids_by_email } = &mut *state;
        if users.contains_key(&user.id) {
            return Err(StoreError::backend(format!("duplicate user id {}", user.id)));
        }
        match ids_by_email.entry(user.email.clone()) {
            Entry::Occupied(_) => Err(StoreError::DuplicateEmail),
            Entry::Vacant(slot) => {
                slot.insert(user.id);
                users.insert(user.id, user.clone());
                Ok(())
            }
        }
    }

    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.state().users.get(&id).cloned())
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let state = self.state();
        Ok(state
            .ids_by_email
            .get(email)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        current: &HashedPassword,
        upgraded: &HashedPassword,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        match state.users.get_mut(&id) {
            Some(user) if user.password_hash.as_ref() == Some(current) => {
                user.password_hash = Some(upgraded.clone());
                user.updated_at = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &HashedPassword,
        if_token_version: i64,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let mut state = self.state();
        match state.users.get_mut(&id) {
            Some(user) if user.token_version == if_token_version => {
                user.password_hash = Some(hash.clone());
                user.token_version += 1;
                user.updated_at = at;
                Ok(Some(user.clone()))
            }
            _ => Ok(None),
        }
    }

    async fn set_active(&self, id: UserId, active: bool, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let mut state = self.state();
        Ok(state.users.get_mut(&id).map(|user| {
            user.is_active = active;
            if !active {
                user.token_version += 1;
            }
            user.updated_at = at;
            user.clone()
        }))
    }
}
