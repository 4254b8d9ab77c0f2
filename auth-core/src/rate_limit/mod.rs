//! Rate limits on the flows an attacker repeats: login, registration, reset requests and
//! token confirmations.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter as Gcra};
use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::error::BoxError;

/// Which allowance a request draws on. Each has its own [`Limit`] in [`RateLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Bucket {
    /// Login attempts for one account (keyed by a digest of its normalized email, whether
    /// or not the account exists). Drawn before the password is checked; a successful
    /// login refills it, so only failures accumulate. Also drawn by
    /// [`change_password`](crate::AuthService::change_password).
    LoginFailuresPerAccount,
    /// Consecutive login failures of one account, however slow (NIST SP 800-63B §5.2.2:
    /// at most 100). Does not refill by waiting ([`Limit::total`]): only a successful login
    /// or a completed password reset refills it.
    ConsecutiveLoginFailuresPerAccount,
    /// Login attempts from one client ([`ClientInfo::rate_limit_key`](crate::ClientInfo::rate_limit_key):
    /// its IPv4 address or IPv6 /64; clients without an address share one key).
    LoginAttemptsPerClient,
    /// Registrations from one client.
    RegistrationsPerClient,
    /// Password-reset requests for one account (normalized email).
    ResetRequestsPerAccount,
    /// Password-reset requests from one client.
    ResetRequestsPerClient,
    /// Password-reset and email-verification confirmations from one client.
    ConfirmationsPerClient,
    /// Mails of any kind (reset, verification, "already registered" notices) to one
    /// account (keyed by a digest of the recipient's normalized email). Over it, the
    /// request is answered as usual and nothing is sent, so nobody can mail-bomb an
    /// address, nor block its owner by exhausting a limit that refuses.
    MailsPerAccount,
    /// Mails of any kind requested by one client. Over it, answered as usual, nothing sent.
    MailsPerClient,
}

impl Bucket {
    /// Every bucket.
    pub const ALL: [Self; 9] = [
        Self::LoginFailuresPerAccount,
        Self::ConsecutiveLoginFailuresPerAccount,
        Self::LoginAttemptsPerClient,
        Self::RegistrationsPerClient,
        Self::ResetRequestsPerAccount,
        Self::ResetRequestsPerClient,
        Self::ConfirmationsPerClient,
        Self::MailsPerAccount,
        Self::MailsPerClient,
    ];

    /// Whether the bucket counts per account (keyed by a digest of the normalized email)
    /// rather than per client.
    pub(crate) fn is_per_account(self) -> bool {
        match self {
            Self::LoginFailuresPerAccount
            | Self::ConsecutiveLoginFailuresPerAccount
            | Self::ResetRequestsPerAccount
            | Self::MailsPerAccount => true,
            Self::LoginAttemptsPerClient
            | Self::RegistrationsPerClient
            | Self::ResetRequestsPerClient
            | Self::ConfirmationsPerClient
            | Self::MailsPerClient => false,
        }
    }

    /// A stable name (`login_failures_per_account`, ...), for configuration and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginFailuresPerAccount => "login_failures_per_account",
            Self::ConsecutiveLoginFailuresPerAccount => "consecutive_login_failures_per_account",
            Self::LoginAttemptsPerClient => "login_attempts_per_client",
            Self::RegistrationsPerClient => "registrations_per_client",
            Self::ResetRequestsPerAccount => "reset_requests_per_account",
            Self::ResetRequestsPerClient => "reset_requests_per_client",
            Self::ConfirmationsPerClient => "confirmations_per_client",
            Self::MailsPerAccount => "mails_per_account",
            Self::MailsPerClient => "mails_per_client",
        }
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// At most `burst` requests at once, refilled evenly over `period` (GCRA): "5 per minute"
/// allows 5 in a row, then one more every 12 seconds.
///
/// ```
/// use std::time::Duration;
/// use auth_core::Limit;
///
/// assert_eq!(Limit::per_minute(5), Limit::new(5, Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    burst: NonZeroU32,
    period: Duration,
}

impl Limit {
    /// The period of a [`total`](Self::total) limit: two centuries, long enough never to
    /// refill in practice, short enough for governor's nanosecond arithmetic.
    pub const NO_REFILL: Duration = Duration::from_secs(200 * 365 * 24 * 3600);

    /// `burst` requests per `period`. A zero `burst` is raised to 1 and a `period` below
    /// a millisecond to a millisecond (with a warning): to turn a bucket off, set its
    /// limit to `None` in [`RateLimits::with_limit`] instead.
    pub fn new(burst: u32, period: Duration) -> Self {
        if burst == 0 || period < Duration::from_millis(1) {
            tracing::warn!(burst, ?period, "rate limit raised to the minimum of 1 per millisecond");
        }
        Self {
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
            period: period.clamp(Duration::from_millis(1), Self::NO_REFILL),
        }
    }

    /// `n` in all: waiting does not refill it, only [`RateLimiter::reset`] does (a
    /// successful login, a completed reset). A refusal reports the refill interval as its
    /// `retry_after` (years), which means "not by waiting".
    pub fn total(n: u32) -> Self {
        Self::new(n, Self::NO_REFILL)
    }

    /// Whether waiting refills this limit (false for [`total`](Self::total)).
    pub fn refills(&self) -> bool {
        self.period < Self::NO_REFILL
    }

    /// `n` per minute.
    pub fn per_minute(n: u32) -> Self {
        Self::new(n, Duration::from_secs(60))
    }

    /// `n` per hour.
    pub fn per_hour(n: u32) -> Self {
        Self::new(n, Duration::from_secs(3600))
    }

    /// `n` per day.
    pub fn per_day(n: u32) -> Self {
        Self::new(n, Duration::from_secs(24 * 3600))
    }

    /// Requests allowed at once.
    pub fn burst(&self) -> u32 {
        self.burst.get()
    }

    /// Time to refill the whole burst.
    pub fn period(&self) -> Duration {
        self.period
    }

    fn quota(&self) -> Quota {
        let per_request = (self.period / self.burst.get()).max(Duration::from_nanos(1));
        Quota::with_period(per_request)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(self.burst)
    }
}

/// The limit of every [`Bucket`]; `None` turns a bucket off.
///
/// | bucket | default | source |
/// |---|---|---|
/// | login failures per account | 5 per minute | the seeds (`5/minute` on `/login`) |
/// | consecutive login failures per account | 100 in all, until a successful login or reset | NIST SP 800-63B §5.2.2 |
/// | login attempts per client | 30 per minute | OWASP Authentication Cheat Sheet (throttle by source) |
/// | registrations per client | 10 per hour | the seeds (rate-limit `/register`) |
/// | reset requests per account | 5 per hour | the seeds; OWASP Forgot Password Cheat Sheet |
/// | reset requests per client | 10 per hour | the seeds; OWASP Forgot Password Cheat Sheet |
/// | reset and verification confirmations per client | 10 per minute | defense in depth (tokens carry 256 bits) |
/// | mails per account (every kind) | 10 per hour | OWASP Forgot Password Cheat Sheet (no mail bombing); answered as usual, nothing sent |
/// | mails per client (every kind) | 20 per hour | as above |
///
/// Account limits draw before the password is checked and a successful login refills them,
/// so only failures accumulate; they apply to unknown emails exactly as to known ones.
/// An attacker can use them to slow the owner's logins (that is their point), but never
/// their password reset: reset limits are separate, the per-account reset limit never
/// refuses (see [`AuthService::request_password_reset`](crate::AuthService::request_password_reset)),
/// and a completed reset refills the account's login allowances.
///
/// ```
/// use auth_core::{Bucket, Limit, RateLimits};
///
/// let limits = RateLimits::default().with_limit(Bucket::LoginAttemptsPerClient, Some(Limit::per_minute(60)));
/// assert_eq!(limits.limit(Bucket::LoginFailuresPerAccount), Some(Limit::per_minute(5)));
/// assert_eq!(limits.limit(Bucket::LoginAttemptsPerClient), Some(Limit::per_minute(60)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    limits: HashMap<Bucket, Option<Limit>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            limits: HashMap::from([
                (Bucket::LoginFailuresPerAccount, Some(Limit::per_minute(5))),
                (Bucket::ConsecutiveLoginFailuresPerAccount, Some(Limit::total(100))),
                (Bucket::LoginAttemptsPerClient, Some(Limit::per_minute(30))),
                (Bucket::RegistrationsPerClient, Some(Limit::per_hour(10))),
                (Bucket::ResetRequestsPerAccount, Some(Limit::per_hour(5))),
                (Bucket::ResetRequestsPerClient, Some(Limit::per_hour(10))),
                (Bucket::ConfirmationsPerClient, Some(Limit::per_minute(10))),
                (Bucket::MailsPerAccount, Some(Limit::per_hour(10))),
                (Bucket::MailsPerClient, Some(Limit::per_hour(20))),
            ]),
        }
    }
}

impl RateLimits {
    /// Every bucket off: for benchmarks only; logged as a warning.
    pub fn disabled() -> Self {
        tracing::warn!("rate limiting is disabled: use this for benchmarks only");
        Self {
            limits: Bucket::ALL.into_iter().map(|bucket| (bucket, None)).collect(),
        }
    }

    /// Sets (or, with `None`, turns off) one bucket's limit. Turning one off is logged as a
    /// warning.
    #[must_use]
    pub fn with_limit(mut self, bucket: Bucket, limit: Option<Limit>) -> Self {
        if limit.is_none() {
            tracing::warn!(%bucket, "rate limit disabled");
        }
        self.limits.insert(bucket, limit);
        self
    }

    /// The limit of `bucket`, if it is on.
    pub fn limit(&self, bucket: Bucket) -> Option<Limit> {
        self.limits.get(&bucket).copied().flatten()
    }
}

/// The answer of a [`RateLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum RateDecision {
    /// Within the limit; one unit of the allowance was taken.
    Allowed,
    /// Over the limit; nothing was taken. Retry after `retry_after`.
    Limited {
        /// When the next request would be allowed.
        retry_after: Duration,
    },
}

/// Counts requests per [`Bucket`] and key, atomically: of concurrent requests against a
/// limit of 10, at most 10 are allowed.
///
/// [`MemoryRateLimiter`] keeps counts in process memory (one server); a shared backend
/// (Redis, the database) implements this trait for several servers. Object safe.
#[async_trait]
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Takes one unit of `key`'s allowance in `bucket` if there is one.
    ///
    /// # Errors
    ///
    /// Backend failures; the service then refuses the request (fails closed) with
    /// `unavailable`.
    async fn acquire(&self, bucket: Bucket, key: &str) -> Result<RateDecision, BoxError>;

    /// Refills `key`'s allowance in `bucket` (a successful login, a completed reset).
    ///
    /// # Errors
    ///
    /// Backend failures.
    async fn reset(&self, bucket: Bucket, key: &str) -> Result<(), BoxError>;
}

/// Default bound on the keys each bucket of a [`MemoryRateLimiter`] tracks.
pub const DEFAULT_MAX_KEYS_PER_BUCKET: usize = 100_000;

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
                    // Rounded up, so a client that waits `retry_after` is allowed; never
                    // more than the period, which only a clock set backwards could give.
                    retry_after: ceil_to_second(wait).min(ceil_to_second(limiter.limit.period())),
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

fn ceil_to_second(wait: Duration) -> Duration {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(whole.max(1))
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
    async fn five_per_minute_allows_a_burst_of_five_then_one_every_twelve_seconds() {
        let (limiter, clock) = limiter(RateLimits::default());
        let bucket = Bucket::LoginFailuresPerAccount;
        for _ in 0..5 {
            assert!(allowed(&limiter, bucket, "ann@example.com").await);
        }
        let decision = limiter.acquire(bucket, "ann@example.com").await.unwrap();
        assert_eq!(
            decision,
            RateDecision::Limited {
                retry_after: Duration::from_secs(12)
            }
        );
        clock.advance(Duration::from_secs(11));
        assert!(
            !allowed(&limiter, bucket, "ann@example.com").await,
            "just before the refill"
        );
        clock.advance(Duration::from_secs(1));
        assert!(
            allowed(&limiter, bucket, "ann@example.com").await,
            "one more after 12 s"
        );
        assert!(!allowed(&limiter, bucket, "ann@example.com").await);
        assert!(
            allowed(&limiter, bucket, "bob@example.com").await,
            "other keys are independent"
        );
    }

    #[tokio::test]
    async fn reset_refills_one_key() {
        let (limiter, _) = limiter(RateLimits::default());
        let bucket = Bucket::LoginFailuresPerAccount;
        for _ in 0..5 {
            assert!(allowed(&limiter, bucket, "ann@example.com").await);
            assert!(allowed(&limiter, bucket, "bob@example.com").await);
        }
        limiter.reset(bucket, "ann@example.com").await.unwrap();
        assert!(allowed(&limiter, bucket, "ann@example.com").await);
        assert!(!allowed(&limiter, bucket, "bob@example.com").await);
    }

    #[tokio::test]
    async fn disabled_buckets_allow_everything() {
        let limits = RateLimits::default().with_limit(Bucket::RegistrationsPerClient, None);
        let (partly_off, _) = limiter(limits);
        for _ in 0..1000 {
            assert!(allowed(&partly_off, Bucket::RegistrationsPerClient, "203.0.113.7").await);
        }
        let (off, _) = limiter(RateLimits::disabled());
        for bucket in Bucket::ALL {
            assert!(allowed(&off, bucket, "k").await);
        }
    }

    #[tokio::test]
    async fn the_consecutive_cap_allows_one_hundred_and_does_not_refill_by_waiting() {
        let (limiter, clock) = limiter(RateLimits::default());
        let bucket = Bucket::ConsecutiveLoginFailuresPerAccount;
        for i in 0..100 {
            assert!(allowed(&limiter, bucket, "ann@example.com").await, "attempt {i}");
            clock.advance(Duration::from_secs(3600));
        }
        let Ok(RateDecision::Limited { retry_after }) = limiter.acquire(bucket, "ann@example.com").await else {
            panic!("the 101st is limited");
        };
        assert!(retry_after > Duration::from_secs(365 * 24 * 3600), "{retry_after:?}");
        clock.advance(Duration::from_secs(30 * 24 * 3600));
        assert!(!allowed(&limiter, bucket, "ann@example.com").await, "a month later");
        limiter.reset(bucket, "ann@example.com").await.unwrap();
        assert!(allowed(&limiter, bucket, "ann@example.com").await, "a reset refills it");
    }

    #[tokio::test]
    async fn a_clock_set_backwards_never_asks_for_more_than_the_period() {
        let (limiter, clock) = limiter(RateLimits::default());
        let bucket = Bucket::LoginFailuresPerAccount;
        for _ in 0..5 {
            assert!(allowed(&limiter, bucket, "ann@example.com").await);
        }
        clock.set(datetime!(2026-05-01 09:00 UTC));
        let Ok(RateDecision::Limited { retry_after }) = limiter.acquire(bucket, "ann@example.com").await else {
            panic!("still limited");
        };
        assert_eq!(retry_after, Duration::from_secs(60));
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

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        assert_eq!(ceil_to_second(Duration::from_millis(1)), Duration::from_secs(1));
        assert_eq!(ceil_to_second(Duration::from_millis(12_000)), Duration::from_secs(12));
        assert_eq!(ceil_to_second(Duration::from_millis(12_001)), Duration::from_secs(13));
        assert_eq!(ceil_to_second(Duration::ZERO), Duration::from_secs(1));
    }
}
