//! Busy refusals, counted instead of recorded one by one.
//!
//! When the hash pool is saturated, a flood of logins is refused at once with `busy`, as
//! fast as the clients can ask: tens of thousands a second. Recording each (a `tracing`
//! line, the event sink, a row of the audit log) would spend on logging the CPU the
//! refusals are there to keep for the requests being served. So within each second (of
//! the service's clock) only the first busy refusal of each action is recorded in full;
//! the others are counted, and their count is recorded as one event
//! ([`AuthEvent::repeats`](crate::AuthEvent::repeats)) with the first event recorded
//! after that second, or by [`purge_expired`](crate::AuthService::purge_expired). Every
//! other outcome is recorded one event per call, as always.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use time::OffsetDateTime;

use crate::event::{Action, AuthEvent, Outcome, Subject};
use crate::session::ClientInfo;

/// The busy refusals of the current second, per action.
#[derive(Debug, Default)]
pub(super) struct BusyTally {
    /// Whether some refusals are counted and not yet recorded: checked without the lock
    /// by every event.
    pending: AtomicBool,
    second: Mutex<Second>,
}

#[derive(Debug, Default)]
struct Second {
    /// The second (Unix time) the counts are of.
    at: i64,
    /// Per action: refusals after the first of the second.
    counted: Vec<(Action, u64)>,
}

impl BusyTally {
    /// Whether the busy refusal `event` is to be recorded in full (the first of its action
    /// in its second); otherwise it is counted.
    pub(super) fn is_first(&self, event: &AuthEvent) -> bool {
        let second = event.at.unix_timestamp();
        let mut tally = self.second.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if tally.at != second {
            // Summaries of an earlier second were taken by `ended` before this call.
            tally.at = second;
            tally.counted.clear();
        }
        match tally.counted.iter_mut().find(|(action, _)| *action == event.action) {
            Some((_, count)) => {
                *count += 1;
                self.pending.store(true, Ordering::Release);
                false
            }
            None => {
                tally.counted.push((event.action, 0));
                true
            }
        }
    }

    /// The summary events of the counted refusals of a second that ended before `now`.
    pub(super) fn ended(&self, now: OffsetDateTime) -> Vec<AuthEvent> {
        if !self.pending.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut tally = self.second.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.unix_timestamp() <= tally.at {
            return Vec::new();
        }
        self.pending.store(false, Ordering::Release);
        let end = OffsetDateTime::from_unix_timestamp(tally.at.saturating_add(1)).unwrap_or(now);
        let counted = std::mem::take(&mut tally.counted);
        counted
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(action, count)| {
                AuthEvent::new(
                    end,
                    action,
                    Outcome::Busy,
                    Subject::Unknown,
                    None,
                    ClientInfo::unknown(),
                )
                .with_repeats(count)
            })
            .collect()
    }
}
