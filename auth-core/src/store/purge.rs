//! Deleting what has ended: an optional capability, for stores whose records do not
//! expire by themselves.

use time::OffsetDateTime;

use crate::error::StoreError;

store_trait! {
    /// Deleting ended sessions and spent single-use tokens
    /// ([`AuthService::purge_expired`](crate::AuthService::purge_expired)), so the tables
    /// do not grow without bound. Optional: a store that expires records by itself (a
    /// TTL) needs no purge.
    pub trait PurgeStore {
        /// Deletes, with their refresh tokens, the sessions that have ended: revoked at or
        /// before `ended_before`, with `expires_at` at or before `ended_before`, or last used at
        /// or before `idle_since` (the same boundaries as [`Session::is_live`](crate::Session::is_live)).
        /// Returns how many sessions were deleted.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn delete_ended_sessions(
            &self,
            ended_before: OffsetDateTime,
            idle_since: OffsetDateTime,
        ) -> Result<u64, StoreError>;

        /// Deletes single-use tokens used at or before `before`, or with `expires_at` at or
        /// before `before`; returns how many.
        ///
        /// # Errors
        ///
        /// Backend failures only.
        async fn delete_spent_one_time_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
    }
}
