//! Maintenance: deleting what can no longer be used.

use super::AuthService;
use crate::clock::earlier_by;
use crate::error::AuthError;
use crate::store::PurgeStore;

/// What [`AuthService::purge_expired`] deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purged {
    /// Ended sessions (with their refresh tokens).
    pub sessions: u64,
    /// Used or expired single-use tokens (decoys included).
    pub one_time_tokens: u64,
}

impl<S: PurgeStore> AuthService<S> {
    /// Deletes what can no longer be used: sessions that were revoked, passed their
    /// absolute lifetime or their idle timeout (with their refresh tokens), and single-use
    /// tokens that were used or expired. Nothing live is touched. Call it periodically
    /// (hourly, say) so the tables do not grow without bound.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn purge_expired(&self) -> Result<Purged, AuthError> {
        let now = self.now();
        let sessions = self
            .store()
            .delete_ended_sessions(now, earlier_by(now, self.session_idle_timeout))
            .await?;
        let one_time_tokens = self.store().delete_spent_one_time_tokens(now).await?;
        tracing::info!(sessions, one_time_tokens, "purged ended sessions and spent tokens");
        Ok(Purged {
            sessions,
            one_time_tokens,
        })
    }
}
