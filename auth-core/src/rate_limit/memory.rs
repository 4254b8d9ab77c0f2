//! The in-memory rate limiter: governor's GCRA per key over a bounded, forgetful store.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use governor::RateLimiter as Gcra;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use time::OffsetDateTime;

use super::{Bucket, DEFAULT_MAX_KEYS_PER_BUCKET, Limit, RateDecision, RateLimiter, RateLimits};
use crate::clock::{Clock, SystemClock};
use crate::error::BoxError;

/// The in-memory [`RateLimiter`]: governor's GCRA per key, time from the injected
/// [`Clock`], and bounded memory.
///
/// Each bucket tracks at most `max_keys` keys (100,000 by default, a few megabytes): a
/// flood of a million distinct emails cannot grow memory without bound. When a bucket is
/// full, the tenth of its keys closest to a full allowance is forgotten first; those carry
/// the least information, and an attacker's own keys are the ones still counting. Keys
/// are stored as 64-bit SipHash digests with a per-process random key, never as emails.
///
/// Why not governor's own keyed stores: they grow with every key until `retain_recent` is
/// called and cannot forget one key, which "a successful login refills the allowance"
/// needs; governor's GCRA does the counting here, over a store that adds both.
///
/// ```
/// use auth_core::{Bucket, MemoryRateLimiter, RateDecision, RateLimiter, RateLimits};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let limiter = MemoryRateLimiter::new(RateLimits::default());
/// for _ in 0..5 {
///     let decision = limiter.acquire(Bucket::LoginFailuresPerAccount, "ann@example.com").await.unwrap();
///     assert_eq!(decision, RateDecision::Allowed);
/// }
/// let sixth = limiter.acquire(Bucket::LoginFailuresPerAccount, "ann@example.com").await.unwrap();
/// assert!(matches!(sixth, RateDecision::Limited { .. }));
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryRateLimiter {
    buckets: Arc<HashMap<Bucket, BucketLimiter>>,
    hasher: RandomState,
    max_keys: usize,
}

impl MemoryRateLimiter {
    /// A limiter enforcing `limits`, with the system clock.
    pub fn new(limits: RateLimits) -> Self {
        Self::with_clock(limits, Arc::new(SystemClock))
    }

    /// A limiter enforcing `limits`, reading time from `clock`.
    pub fn with_clock(limits: RateLimits, clock: Arc<dyn Clock>) -> Self {
        Self::build(limits, clock, DEFAULT_MAX_KEYS_PER_BUCKET)
    }

    /// Bounds each bucket to `max_keys` keys (at least 10).
    #[must_use]
    pub fn with_max_keys_per_bucket(self, max_keys: usize) -> Self {
        let limits = RateLimits {
            limits: Bucket::ALL
                .into_iter()
                .map(|bucket| (bucket, self.buckets.get(&bucket).map(|b| b.limit)))
                .collect(),
        };
        let clock = self.buckets.values().next().map(|b| Arc::clone(&b.gcra_clock.0));
        Self::build(limits, clock.unwrap_or_else(|| Arc::new(SystemClock)), max_keys.max(10))
    }

    fn build(limits: RateLimits, clock: Arc<dyn Clock>, max_keys: usize) -> Self {
        let buckets = Bucket::ALL
            .into_iter()
            .filter_map(|bucket| {
                let limit = limits.limit(bucket)?;
                let store = BoundedStore::new(max_keys);
                let gcra_clock = LimiterClock(Arc::clone(&clock));
                let gcra = Gcra::new(limit.quota(), store.clone(), gcra_clock.clone());
                Some((
                    bucket,
                    BucketLimiter {
                        gcra,
                        store,
                        gcra_clock,
                        limit,
                    },
                ))
            })
            .collect();
        Self {
            buckets: Arc::new(buckets),
            hasher: RandomState::new(),
            max_keys,
        }
    }

    /// How many keys `bucket` currently tracks (for tests and metrics).
    pub fn tracked_keys(&self, bucket: Bucket) -> usize {
        self.buckets.get(&bucket).map_or(0, |b| b.store.len())
    }

    fn digest(&self, bucket: Bucket, key: &str) -> u64 {
        self.hasher.hash_one((bucket, key))
    }
}

/// One bucket: governor's limiter over our store, and what it was built from.
struct BucketLimiter {
    gcra: Gcra<u64, BoundedStore, LimiterClock, NoOpMiddleware<Duration>>,
    store: BoundedStore,
    gcra_clock: LimiterClock,
    limit: Limit,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn acquire(&self, bucket: Bucket, key: &str) -> Result<RateDecision, BoxError> {
        let Some(limiter) = self.buckets.get(&bucket) else {
            return Ok(RateDecision::Allowed);
        };
        Ok(match limiter.gcra.check_key(&self.digest(bucket, key)) {
            Ok(()) => RateDecision::Allowed,
            Err(not_until) => {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(&limiter.gcra_clock));
                RateDecision::Limited {
                    retry_after: limiter.limit.retry_after(wait),
                }
            }
        })
    }

    async fn reset(&self, bucket: Bucket, key: &str) -> Result<(), BoxError> {
        if let Some(limiter) = self.buckets.get(&bucket) {
            limiter.store.forget(self.digest(bucket, key));
        }
        Ok(())
    }
}

impl fmt::Debug for MemoryRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buckets: Vec<(&str, Limit)> = self.buckets.iter().map(|(b, l)| (b.as_str(), l.limit)).collect();
        buckets.sort_by_key(|(name, _)| *name);
        f.debug_struct("MemoryRateLimiter")
            .field("buckets", &buckets)
            .field("max_keys", &self.max_keys)
            .finish()
    }
}

/// governor's clock, read from ours: time since the Unix epoch.
#[derive(Clone)]
struct LimiterClock(Arc<dyn Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        let since_epoch = self.0.now() - OffsetDateTime::UNIX_EPOCH;
        Duration::try_from(since_epoch).unwrap_or_default()
    }
}

/// governor state (each key's theoretical arrival time) with a hard bound on keys and a
/// way to forget one key.
#[derive(Clone)]
struct BoundedStore {
    entries: Arc<Mutex<HashMap<u64, Nanos>>>,
    max_keys: usize,
}

impl BoundedStore {
    fn new(max_keys: usize) -> Self {
        Self {
            entries: Arc::new(Mutex::new(HashMap::new())),
            max_keys,
        }
    }

    // Never held across an await; every critical section leaves the map consistent.
    fn entries(&self) -> MutexGuard<'_, HashMap<u64, Nanos>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.entries().len()
    }

    fn forget(&self, key: u64) {
        self.entries().remove(&key);
    }

    /// Drops exactly a tenth of the keys (at least one): those with the earliest arrival
    /// times, closest to (or already at) a full allowance, whose state matters least.
    fn evict(entries: &mut HashMap<u64, Nanos>) {
        let mut by_arrival: Vec<(Nanos, u64)> = entries.iter().map(|(key, arrival)| (*arrival, *key)).collect();
        let cut = (by_arrival.len() / 10).max(1);
        if cut < by_arrival.len() {
            by_arrival.select_nth_unstable(cut);
        }
        for (_, key) in by_arrival.iter().take(cut) {
            entries.remove(key);
        }
    }
}

impl StateStore for BoundedStore {
    type Key = u64;

    fn measure_and_replace<T, F, E>(&self, key: &u64, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut entries = self.entries();
        let previous = entries.get(key).copied();
        let (outcome, arrival) = f(previous)?;
        if previous.is_none() && entries.len() >= self.max_keys {
            Self::evict(&mut entries);
        }
        entries.insert(*key, arrival);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use time::macros::datetime;

    fn limiter(limits: RateLimits) -> (MemoryRateLimiter, ManualClock) {
        let clock = ManualClock::new(datetime!(2026-06-01 09:00 UTC));
        (MemoryRateLimiter::with_clock(limits, Arc::new(clock.clone())), clock)
    }

    async fn allowed(limiter: &MemoryRateLimiter, bucket: Bucket, key: &str) -> bool {
        limiter.acquire(bucket, key).await.unwrap() == RateDecision::Allowed
    }

    #[tokio::test]
    async fn a_million_distinct_keys_stay_within_the_bound() {
        let (limiter, _) = limiter(RateLimits::default());
        let limiter = limiter.with_max_keys_per_bucket(10_000);
        let bucket = Bucket::LoginFailuresPerAccount;
        for i in 0..1_000_000u32 {
            let key = format!("flood{i}@example.com");
            assert!(allowed(&limiter, bucket, &key).await);
            assert!(limiter.tracked_keys(bucket) <= 10_000);
        }
        assert!(
            limiter.tracked_keys(bucket) > 5_000,
            "eviction frees a tenth, not everything"
        );
    }

    #[tokio::test]
    async fn eviction_forgets_the_most_refilled_keys_first() {
        let (limiter, clock) = limiter(RateLimits::default());
        let limiter = limiter.with_max_keys_per_bucket(100);
        let bucket = Bucket::LoginFailuresPerAccount;
        // The victim's allowance is exhausted: its state matters most.
        for _ in 0..5 {
            assert!(allowed(&limiter, bucket, "victim@example.com").await);
        }
        clock.advance(Duration::from_secs(1));
        for i in 0..1_000 {
            assert!(allowed(&limiter, bucket, &format!("flood{i}@example.com")).await);
            let tracked = limiter.tracked_keys(bucket);
            if i >= 99 {
                assert!(
                    (91..=100).contains(&tracked),
                    "a tenth is evicted at a time, not more: {tracked}"
                );
            }
        }
        assert!(
            !allowed(&limiter, bucket, "victim@example.com").await,
            "still limited after the flood"
        );
    }
}
