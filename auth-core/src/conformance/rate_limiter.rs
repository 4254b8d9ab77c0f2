//! The rate-limiter conformance suite: the behaviour every [`RateLimiter`] backend shares
//! with [`MemoryRateLimiter`](crate::MemoryRateLimiter), so that a limit means the same
//! thing whichever backend counts it.
//!
//! Each case takes a function that makes a fresh limiter enforcing the given
//! [`RateLimits`] and reading time from the given [`ManualClock`] (the cases move the
//! clock; no case sleeps). The limiters it makes must not share counts with one another
//! or with earlier runs (a backend on a shared server uses a fresh key prefix each time).
//!
//! ```
//! // auth-core/tests/conformance_memory.rs
//! use std::sync::Arc;
//! use auth_core::{ManualClock, MemoryRateLimiter, RateLimits};
//!
//! auth_core::rate_limiter_conformance_tests!(async |limits: RateLimits, clock: ManualClock| {
//!     MemoryRateLimiter::with_clock(limits, Arc::new(clock))
//! });
//! # fn main() {}
//! ```
//!
//! The expression is evaluated at the start of each test, so it may `return` to skip the
//! case (a backend whose server is absent outside CI). The cases can also be called
//! directly:
//!
//! ```
//! # #[tokio::main]
//! # async fn main() {
//! use std::sync::Arc;
//! use auth_core::{ManualClock, MemoryRateLimiter, RateLimits};
//!
//! auth_core::conformance::rate_limiter::reset_refills_one_key(async |limits: RateLimits, clock: ManualClock| {
//!     MemoryRateLimiter::with_clock(limits, Arc::new(clock))
//! })
//! .await;
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;

use crate::clock::ManualClock;
use crate::rate_limit::{Bucket, Limit, RateDecision, RateLimiter, RateLimits};

/// Defines the cases, each `pub async fn name(make: F)`, and the exported macro that runs
/// them all, so that no case can be written and not run.
macro_rules! limiter_cases {
    (
        $d:tt
        $(#[$suite_attr:meta])*
        macro $suite:ident;
        $(
            $(#[$case_attr:meta])*
            pub async fn $case:ident($make:ident) $body:block
        )+
    ) => {
        $(
            $(#[$case_attr])*
            pub async fn $case<L, F>($make: F)
            where
                L: RateLimiter + 'static,
                F: AsyncFn(RateLimits, ManualClock) -> L,
            $body
        )+

        $(#[$suite_attr])*
        #[macro_export]
        macro_rules! $suite {
            ($d make_limiter:expr) => {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $case() {
                        let make = $d make_limiter;
                        $crate::conformance::rate_limiter::$case(make).await;
                    }
                )+
            };
        }
    };
}

/// The time every case starts at.
fn start() -> ManualClock {
    ManualClock::new(datetime!(2026-06-01 09:00 UTC))
}

async fn allowed(limiter: &impl RateLimiter, bucket: Bucket, key: &str) -> bool {
    limiter.acquire(bucket, key).await.unwrap() == RateDecision::Allowed
}

async fn retry_after(limiter: &impl RateLimiter, bucket: Bucket, key: &str) -> Duration {
    match limiter.acquire(bucket, key).await.unwrap() {
        RateDecision::Limited { retry_after } => retry_after,
        RateDecision::Allowed => panic!("{bucket} {key:?}: allowed, expected a refusal"),
    }
}

limiter_cases! { $
    /// Runs every rate-limiter case: one `#[tokio::test]` per case, each with the function
    /// given (`async |limits: RateLimits, clock: ManualClock| -> impl RateLimiter`). See the
    /// [module docs](crate::conformance::rate_limiter).
    macro rate_limiter_conformance_tests;

    /// "5 per minute" allows 5 at once, then one every 12 s, per key.
    pub async fn five_per_minute_allows_a_burst_of_five_then_one_every_twelve_seconds(make) {
        let clock = start();
        let limiter = make(RateLimits::default(), clock.clone()).await;
        let bucket = Bucket::LoginFailuresPerAccount;
        for _ in 0..5 {
            assert!(allowed(&limiter, bucket, "ann@example.com").await);
        }
        let decision = limiter.acquire(bucket, "ann@example.com").await.unwrap();
        assert_eq!(decision, RateDecision::Limited { retry_after: Duration::from_secs(12) });
        clock.advance(Duration::from_secs(11));
        assert!(!allowed(&limiter, bucket, "ann@example.com").await, "just before the refill");
        clock.advance(Duration::from_secs(1));
        assert!(allowed(&limiter, bucket, "ann@example.com").await, "one more after 12 s");
        assert!(!allowed(&limiter, bucket, "ann@example.com").await);
        assert!(allowed(&limiter, bucket, "bob@example.com").await, "other keys are independent");
    }

    /// A refusal takes nothing: refused attempts do not push the next allowance back.
    pub async fn refusals_take_nothing(make) {
        let clock = start();
        let limiter = make(RateLimits::default(), clock.clone()).await;
        let bucket = Bucket::LoginFailuresPerAccount;
        for _ in 0..5 {
            assert!(allowed(&limiter, bucket, "cy@example.com").await);
        }
        for _ in 0..20 {
            assert_eq!(retry_after(&limiter, bucket, "cy@example.com").await, Duration::from_secs(12));
        }
        clock.advance(Duration::from_secs(12));
        assert!(allowed(&limiter, bucket, "cy@example.com").await);
    }

    /// The same key in two buckets is two allowances.
    pub async fn buckets_are_independent(make) {
        let limits = RateLimits::default()
            .with_limit(Bucket::ResetRequestsPerClient, Some(Limit::per_hour(2)))
            .with_limit(Bucket::ConfirmationsPerClient, Some(Limit::per_hour(2)));
        let limiter = make(limits, start()).await;
        for _ in 0..2 {
            assert!(allowed(&limiter, Bucket::ResetRequestsPerClient, "203.0.113.7").await);
        }
        assert!(!allowed(&limiter, Bucket::ResetRequestsPerClient, "203.0.113.7").await);
        for _ in 0..2 {
            assert!(allowed(&limiter, Bucket::ConfirmationsPerClient, "203.0.113.7").await);
        }
    }

    /// `reset` refills one key's allowance, no other.
    pub async fn reset_refills_one_key(make) {
        let limiter = make(RateLimits::default(), start()).await;
        let bucket = Bucket::LoginFailuresPerAccount;
        for _ in 0..5 {
            assert!(allowed(&limiter, bucket, "ann@example.com").await);
            assert!(allowed(&limiter, bucket, "bob@example.com").await);
        }
        limiter.reset(bucket, "ann@example.com").await.unwrap();
        assert!(allowed(&limiter, bucket, "ann@example.com").await);
        assert!(!allowed(&limiter, bucket, "bob@example.com").await);
        limiter.reset(bucket, "never-seen@example.com").await.unwrap();
    }

    /// A bucket turned off allows everything, and resets of it succeed.
    pub async fn disabled_buckets_allow_everything(make) {
        let limits = RateLimits::default().with_limit(Bucket::RegistrationsPerClient, None);
        let partly_off = make(limits, start()).await;
        for _ in 0..200 {
            assert!(allowed(&partly_off, Bucket::RegistrationsPerClient, "203.0.113.7").await);
        }
        partly_off.reset(Bucket::RegistrationsPerClient, "203.0.113.7").await.unwrap();
        assert!(allowed(&partly_off, Bucket::ResetRequestsPerClient, "203.0.113.7").await, "others still count");
        let off = make(RateLimits::disabled(), start()).await;
        for bucket in Bucket::ALL {
            for _ in 0..200 {
                assert!(allowed(&off, bucket, "k").await);
            }
        }
    }

    /// A total limit allows its count and does not refill by waiting; a reset refills it.
    pub async fn the_consecutive_cap_allows_one_hundred_and_does_not_refill_by_waiting(make) {
        let clock = start();
        let limiter = make(RateLimits::default(), clock.clone()).await;
        let bucket = Bucket::ConsecutiveLoginFailuresPerAccount;
        for i in 0..100 {
            assert!(allowed(&limiter, bucket, "ann@example.com").await, "attempt {i}");
            clock.advance(Duration::from_secs(3600));
        }
        let wait = retry_after(&limiter, bucket, "ann@example.com").await;
        assert!(wait > Duration::from_secs(365 * 24 * 3600), "{wait:?}");
        clock.advance(Duration::from_secs(30 * 24 * 3600));
        assert!(!allowed(&limiter, bucket, "ann@example.com").await, "a month later");
        limiter.reset(bucket, "ann@example.com").await.unwrap();
        assert!(allowed(&limiter, bucket, "ann@example.com").await, "a reset refills it");
    }

    /// A clock set backwards never makes a refusal ask for more than the period.
    pub async fn a_clock_set_backwards_never_asks_for_more_than_the_period(make) {
        let clock = start();
        let limiter = make(RateLimits::default(), clock.clone()).await;
        let bucket = Bucket::LoginFailuresPerAccount;
        for _ in 0..5 {
            assert!(allowed(&limiter, bucket, "ann@example.com").await);
        }
        clock.set(datetime!(2026-05-01 09:00 UTC));
        assert_eq!(retry_after(&limiter, bucket, "ann@example.com").await, Duration::from_secs(60));
    }

    /// `Retry-After` is rounded up to whole seconds: a client that waits it is allowed,
    /// one that waits a second less is not.
    pub async fn retry_after_is_rounded_up_to_whole_seconds(make) {
        let clock = start();
        // 3 per 10 s: one every 3.333... s.
        let limits = RateLimits::default()
            .with_limit(Bucket::ConfirmationsPerClient, Some(Limit::new(3, Duration::from_secs(10))));
        let limiter = make(limits, clock.clone()).await;
        let bucket = Bucket::ConfirmationsPerClient;
        for _ in 0..3 {
            assert!(allowed(&limiter, bucket, "198.51.100.4").await);
        }
        assert_eq!(retry_after(&limiter, bucket, "198.51.100.4").await, Duration::from_secs(4));
        clock.advance(Duration::from_secs(3));
        let wait = retry_after(&limiter, bucket, "198.51.100.4").await;
        assert_eq!(wait, Duration::from_secs(1), "0.33 s rounds up to 1 s");
        clock.advance(Duration::from_secs(1));
        assert!(allowed(&limiter, bucket, "198.51.100.4").await);
        // Sub-second limits: 2 per 100 ms, one every 50 ms.
        let limits = RateLimits::default()
            .with_limit(Bucket::ConfirmationsPerClient, Some(Limit::new(2, Duration::from_millis(100))));
        let limiter = make(limits, clock.clone()).await;
        for _ in 0..2 {
            assert!(allowed(&limiter, bucket, "198.51.100.5").await);
        }
        let wait = retry_after(&limiter, bucket, "198.51.100.5").await;
        assert_eq!(wait, Duration::from_secs(1), "never below a second");
        clock.advance(Duration::from_millis(49));
        assert!(!allowed(&limiter, bucket, "198.51.100.5").await);
        clock.advance(Duration::from_millis(1));
        assert!(allowed(&limiter, bucket, "198.51.100.5").await, "50 ms later");
    }

    /// A full allowance does not grow by waiting: after any idle time, the burst again.
    pub async fn idle_time_refills_no_more_than_the_burst(make) {
        let clock = start();
        let limiter = make(RateLimits::default(), clock.clone()).await;
        let bucket = Bucket::RegistrationsPerClient;
        assert!(allowed(&limiter, bucket, "192.0.2.1").await);
        clock.advance(Duration::from_secs(7 * 24 * 3600));
        for i in 0..10 {
            assert!(allowed(&limiter, bucket, "192.0.2.1").await, "registration {i}");
        }
        assert_eq!(retry_after(&limiter, bucket, "192.0.2.1").await, Duration::from_secs(360));
    }

    /// Keys are opaque: empty, long, non-ASCII and look-alike keys are all distinct
    /// allowances, and none is refused as input.
    pub async fn any_string_is_a_key(make) {
        let limits = RateLimits::default().with_limit(Bucket::MailsPerClient, Some(Limit::per_hour(1)));
        let limiter = make(limits, start()).await;
        let long = "x".repeat(100_000);
        let keys = ["", " ", "ann@example.com", "Ann@example.com", "ünï\u{0}cödé", "a:b", "a", &long];
        let shown = |key: &str| key.chars().take(20).collect::<String>();
        for key in keys {
            assert!(allowed(&limiter, Bucket::MailsPerClient, key).await, "{:?}", shown(key));
        }
        for key in keys {
            assert!(!allowed(&limiter, Bucket::MailsPerClient, key).await, "{:?}", shown(key));
        }
    }

    /// Of many concurrent requests against a limit of 10, exactly 10 are allowed.
    pub async fn concurrent_acquisitions_never_exceed_the_burst(make) {
        let limits = RateLimits::default().with_limit(Bucket::ResetRequestsPerClient, Some(Limit::per_hour(10)));
        let limiter = Arc::new(make(limits, start()).await);
        let attempts: Vec<_> = (0..64)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                let key = "203.0.113.99";
                tokio::spawn(async move { limiter.acquire(Bucket::ResetRequestsPerClient, key).await.unwrap() })
            })
            .collect();
        let mut allowed_count = 0;
        for attempt in attempts {
            if attempt.await.unwrap() == RateDecision::Allowed {
                allowed_count += 1;
            }
        }
        assert_eq!(allowed_count, 10);
    }
}

#[cfg(test)]
mod tests {
    /// Every case is inside the block, so the macro runs it.
    #[test]
    fn every_case_is_inside_the_block() {
        let text = include_str!("rate_limiter.rs");
        let (_before, block) = text.split_once("\nlimiter_cases! { $\n").unwrap();
        let (block, _tests) = block.split_once("\n}\n").unwrap();
        assert_eq!(
            text.matches("\n    pub async fn ").count(),
            block.matches("\n    pub async fn ").count()
        );
        assert!(block.matches("pub async fn ").count() >= 10);
    }
}
