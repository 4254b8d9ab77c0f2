//! Maintenance: deleting what can no longer be used.

use std::time::Duration;

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
    /// Expired passkey ceremonies (with [`with_passkeys`](AuthService::with_passkeys)).
    pub passkey_ceremonies: u64,
}

impl<S: PurgeStore> AuthService<S> {
    /// Deletes what can no longer be used: sessions that were revoked, passed their
    /// absolute lifetime or their idle timeout (with their refresh tokens), single-use
    /// tokens that were used or expired, and expired passkey ceremonies (with
    /// [`with_passkeys`](AuthService::with_passkeys)). Nothing live is touched. Call it periodically
    /// (hourly, say) so the tables do not grow without bound.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn purge_expired(&self) -> Result<Purged, AuthError> {
        let now = self.now();
        // Busy refusals counted in a second that ended are recorded even when no other
        // event follows them.
        self.accounts.record_busy_summaries(now);
        let sessions = self
            .store()
            .delete_ended_sessions(now, earlier_by(now, self.session_idle_timeout))
            .await?;
        let one_time_tokens = self.store().delete_spent_one_time_tokens(now).await?;
        let passkey_ceremonies = self.purge_passkey_ceremonies(now).await?;
        tracing::info!(
            sessions,
            one_time_tokens,
            passkey_ceremonies,
            "purged ended sessions and spent tokens"
        );
        Ok(Purged {
            sessions,
            one_time_tokens,
            passkey_ceremonies,
        })
    }

    /// Runs [`purge_expired`](Self::purge_expired) every `every`, the first time one
    /// interval after the call, and never returns: spawn it beside the server.
    ///
    /// A failed run (the store is down, say) is logged as a warning and the next one tries
    /// again; a run that comes late (the process was suspended) is not followed by a burst
    /// of catch-up runs. Several instances over one database may each run it: a purge only
    /// deletes what nobody can use any more, so two at once delete nothing twice and
    /// nothing live. `every` is at least one second.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::Duration;
    /// # use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
    /// # let tokens = Tokens::new(SigningKey::hs256(&[7; 32]).unwrap(), "https://auth.example.com", "api");
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// # runtime.block_on(async {
    /// let auth = Arc::new(AuthService::new(MemoryStore::new(), tokens));
    /// let purge = tokio::spawn({
    ///     let auth = Arc::clone(&auth);
    ///     async move { auth.purge_every(Duration::from_secs(3600)).await }
    /// });
    /// # purge.abort();
    /// # });
    /// ```
    pub async fn purge_every(&self, every: Duration) {
        let every = every.max(Duration::from_secs(1));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.purge_expired().await {
                tracing::warn!(
                    code = error.code(),
                    "the periodic purge failed; the next one will try again"
                );
            }
        }
    }
}
