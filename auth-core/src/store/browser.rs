//! Browser sessions: an optional capability, for servers whose pages keep a cookie
//! session that any of their instances can serve.

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::id::SessionId;
use crate::session::Session;
use crate::token::TokenHash;

store_trait! {
    composed(sessions: S);
    /// Browser sessions: a cookie's token, stored only as its [`TokenHash`], naming the
    /// [`Session`] it belongs to ([`AuthService::open_browser_session`](crate::AuthService::open_browser_session)).
    /// Kept in the store, so every instance of a server over one database serves every
    /// browser, and a restart signs nobody out.
    ///
    /// A browser session lives no longer than its session: deleting the session
    /// ([`PurgeStore::delete_ended_sessions`](crate::PurgeStore::delete_ended_sessions))
    /// deletes its browser sessions (a foreign key with `ON DELETE CASCADE` in SQL).
    pub trait BrowserSessionStore {
        /// Stores a browser session of `session`, created at `at`.
        ///
        /// # Errors
        ///
        /// A backend error if a browser session with this hash exists (nothing is changed
        /// then) or `session` does not, and backend failures.
        async fn insert_browser_session(
            &self,
            token: &TokenHash,
            session: SessionId,
            at: OffsetDateTime,
        ) -> Result<(), StoreError>;

        /// The session the browser session with this hash belongs to, revoked or not;
        /// `None` if there is no such browser session.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn find_browser_session(&self, token: &TokenHash) -> Result<Option<Session>, StoreError>;

        /// Deletes the browser session with this hash; nothing if there is none.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn delete_browser_session(&self, token: &TokenHash) -> Result<(), StoreError>;

        /// Records that `session` was used at `at`: sets its `last_used_at` to `at` if it
        /// is not revoked and was last used before `at` (never backwards), so a session
        /// in use through a browser does not reach its idle timeout. Returns whether it did.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn touch_session(&self, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError>;
    }
}
