//! Reading the audit log back, and its retention.

use std::time::Duration;

use super::AuthService;
use crate::audit::{AuditQuery, AuditRecord};
use crate::clock::earlier_by;
use crate::error::AuthError;
use crate::id::{EventId, UserId};
use crate::store::{AuditLogStore, AuthStore};

impl<S: AuthStore + AuditLogStore> AuthService<S> {
    /// The account's own records of the audit log (its sign-ins, refusals, changes), in
    /// the log's order after `after`, at most `limit` (1 to
    /// [`MAX_AUDIT_PAGE`](crate::MAX_AUDIT_PAGE)). Reading records nothing.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable).
    pub async fn events_of(
        &self,
        user_id: UserId,
        after: Option<EventId>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, AuthError> {
        let query = AuditQuery::first(limit).of_user(user_id).after(after);
        Ok(self.store().list_audit_records(&query).await?)
    }

    /// The records `query` selects, for an administrator (check the caller's role first).
    /// Reading records nothing.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable).
    pub async fn list_events(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, AuthError> {
        Ok(self.store().list_audit_records(query).await?)
    }

    /// Deletes the records older than `retention`; returns how many. Run it with the
    /// housekeeping ([`purge_expired`](Self::purge_expired)).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable).
    pub async fn purge_audit_log(&self, retention: Duration) -> Result<u64, AuthError> {
        let deleted = self
            .store()
            .delete_audit_records_before(earlier_by(self.now(), retention))
            .await?;
        tracing::info!(deleted, "purged audit records past their retention");
        Ok(deleted)
    }
}
