//! Injectable time, so expiry and revocation are testable without sleeping.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current UTC time.
///
/// [`AuthService`](crate::AuthService) and [`Tokens`](crate::Tokens) read the time only
/// through this trait. Production code uses [`SystemClock`]; tests use [`ManualClock`]
/// to step over expiry boundaries deterministically.
///
/// ```
/// use auth_core::{Clock, SystemClock};
///
/// let now = SystemClock.now();
/// assert!(now.offset().is_utc());
/// ```
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's clock.
///
/// ```
/// use auth_core::{Clock, SystemClock};
///
/// let before = SystemClock.now();
/// assert!(SystemClock.now() >= before);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use auth_core::{Clock, ManualClock};
/// use time::macros::datetime;
///
/// let clock = ManualClock::new(datetime!(2026-01-01 0:00 UTC));
/// clock.advance(Duration::from_secs(90));
/// assert_eq!(clock.now(), datetime!(2026-01-01 0:01:30 UTC));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock stopped at `start` (converted to UTC).
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start.to_offset(time::UtcOffset::UTC))),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock to `to` (converted to UTC); it may move backwards.
    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to.to_offset(time::UtcOffset::UTC);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `now` truncated to whole microseconds: the precision every store must round-trip
/// (PostgreSQL's `timestamptz` keeps no more), so a record read back equals the one written.
pub(crate) fn now_micros(clock: &dyn Clock) -> OffsetDateTime {
    truncate_to_micros(clock.now())
}

pub(crate) fn truncate_to_micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.microsecond() * 1_000).unwrap_or(t)
}

/// `t + d`, or the latest representable time when that overflows: a configured lifetime
/// of `Duration::MAX` means "never", not a panic.
pub(crate) fn later_by(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d))
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}

/// `t - d`, or the earliest representable time when that overflows.
pub(crate) fn earlier_by(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| t.checked_sub(d))
        .unwrap_or(time::PrimitiveDateTime::MIN.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_clones_share_time() {
        let a = ManualClock::new(datetime!(2026-03-01 12:00 UTC));
        let b = a.clone();
        a.advance(Duration::from_secs(1));
        assert_eq!(b.now(), datetime!(2026-03-01 12:00:01 UTC));
        b.set(datetime!(2020-01-01 0:00 +2));
        assert_eq!(a.now(), datetime!(2019-12-31 22:00 UTC));
        assert!(a.now().offset().is_utc());
    }

    #[test]
    fn time_arithmetic_saturates() {
        let t = datetime!(2026-03-01 12:00 UTC);
        assert_eq!(later_by(t, Duration::from_secs(60)), datetime!(2026-03-01 12:01 UTC));
        assert_eq!(later_by(t, Duration::MAX), time::PrimitiveDateTime::MAX.assume_utc());
        assert_eq!(earlier_by(t, Duration::from_secs(60)), datetime!(2026-03-01 11:59 UTC));
        assert_eq!(earlier_by(t, Duration::MAX), time::PrimitiveDateTime::MIN.assume_utc());
    }

    #[test]
    fn truncation_keeps_microseconds_only() {
        let t = datetime!(2026-03-01 12:00:00.123456789 UTC);
        assert_eq!(truncate_to_micros(t), datetime!(2026-03-01 12:00:00.123456 UTC));
        let clock = ManualClock::new(t);
        assert_eq!(now_micros(&clock).nanosecond(), 123_456_000);
    }
}
