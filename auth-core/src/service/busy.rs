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
    /// The second (Unix time) the counts are of: the latest second of a busy refusal.
    at: i64,
    /// Per action: refusals after the first of the second.
    counted: Vec<(Action, u64)>,
    /// Counts of earlier seconds not summarized yet: kept when a refusal of a later
    /// second arrived before anyone asked for the earlier second's summary.
    carried: Vec<(i64, Action, u64)>,
}

impl BusyTally {
    /// Whether the busy refusal `event` is to be recorded in full (the first of its action
    /// in its second); otherwise it is counted.
    ///
    /// Refusals reach this from many threads, stamped by the clock before they get the
    /// lock, so one stamped with an earlier second can arrive after one of a later second:
    /// it is counted in the later second rather than starting its own over (which would
    /// clear the later second's counts), and a later second never drops the counts of
    /// the one before, which are carried until [`ended`](Self::ended) takes them.
    pub(super) fn is_first(&self, event: &AuthEvent) -> bool {
        let second = event.at.unix_timestamp();
        let mut tally = self.second.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if second > tally.at {
            let Second { at, counted, carried } = &mut *tally;
            carried.extend(
                counted
                    .drain(..)
                    .filter(|(_, count)| *count > 0)
                    .map(|(action, count)| (*at, action, count)),
            );
            *at = second;
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

    /// The summary events of the counted refusals of the seconds that ended before `now`.
    pub(super) fn ended(&self, now: OffsetDateTime) -> Vec<AuthEvent> {
        if !self.pending.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut tally = self.second.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut ended = std::mem::take(&mut tally.carried);
        if now.unix_timestamp() > tally.at {
            let at = tally.at;
            ended.extend(
                std::mem::take(&mut tally.counted)
                    .into_iter()
                    .filter(|(_, count)| *count > 0)
                    .map(|(action, count)| (at, action, count)),
            );
        }
        let still_counting = tally.counted.iter().any(|(_, count)| *count > 0);
        self.pending.store(still_counting, Ordering::Release);
        ended
            .into_iter()
            .map(|(at, action, count)| {
                let end = OffsetDateTime::from_unix_timestamp(at.saturating_add(1)).unwrap_or(now);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: fail loudly

    use super::*;

    fn busy(at: i64, action: Action) -> AuthEvent {
        AuthEvent::new(
            OffsetDateTime::from_unix_timestamp(at).unwrap(),
            action,
            Outcome::Busy,
            Subject::Unknown,
            None,
            ClientInfo::unknown(),
        )
    }

    fn at(second: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(second).unwrap()
    }

    /// Every busy refusal is either recorded in full or in a summary's count, whatever
    /// order the seconds arrive in: none is lost.
    #[test]
    fn a_refusal_stamped_with_an_earlier_second_arriving_late_loses_no_count() {
        let tally = BusyTally::default();
        assert!(tally.is_first(&busy(100, Action::Login)));
        assert!(!tally.is_first(&busy(100, Action::Login)));
        // The next second begins before anyone asked for second 100's summary.
        assert!(tally.is_first(&busy(101, Action::Login)));
        assert!(!tally.is_first(&busy(101, Action::Login)));
        assert!(!tally.is_first(&busy(101, Action::Login)));
        // Stamped in second 100 by a thread that got the lock late: counted, not a reset.
        assert!(!tally.is_first(&busy(100, Action::Login)));
        assert!(!tally.is_first(&busy(101, Action::Login)));

        // In second 101, only second 100's count has ended.
        let first = tally.ended(at(101));
        assert_eq!(
            first.iter().map(|event| (event.at, event.repeats)).collect::<Vec<_>>(),
            [(at(101), 1)]
        );
        let second = tally.ended(at(102));
        assert_eq!(
            second.iter().map(|event| (event.at, event.repeats)).collect::<Vec<_>>(),
            [(at(102), 4)]
        );
        // Seven refusals: two recorded in full, five counted.
        assert_eq!(first.iter().chain(&second).map(|event| event.repeats).sum::<u64>(), 5);
        assert!(tally.ended(at(103)).is_empty(), "nothing is counted twice");
    }

    /// Each action has its own first refusal and its own count per second.
    #[test]
    fn actions_are_counted_apart() {
        let tally = BusyTally::default();
        assert!(tally.is_first(&busy(7, Action::Login)));
        assert!(tally.is_first(&busy(7, Action::Register)));
        assert!(!tally.is_first(&busy(7, Action::Register)));
        assert!(tally.ended(at(7)).is_empty(), "the second has not ended");
        let ended = tally.ended(at(8));
        assert_eq!(
            ended
                .iter()
                .map(|event| (event.action, event.repeats))
                .collect::<Vec<_>>(),
            [(Action::Register, 1)]
        );
    }
}
