//! A Redis-backed [`RateLimiter`] for [`auth_core`]: every instance of a service that
//! shares one Redis (and one key prefix) counts each limit once, instead of each granting
//! the whole allowance.
//!
//! [`RedisRateLimiter`] decides as [`MemoryRateLimiter`](auth_core::MemoryRateLimiter)
//! does (GCRA: a burst refilled evenly over the period; [`Limit::total`] never refills)
//! and passes the same conformance suite (`auth_core::conformance::rate_limiter`, behind
//! auth-core's feature `conformance`):
//!
//! - **One atomic step per decision.** A Lua script reads the key's state, decides and
//!   writes it back on the server (`EVALSHA`, loaded again by `SCRIPT LOAD` when the server
//!   has forgotten it), so concurrent requests from any number of instances never take
//!   more than the limit.
//! - **Time from the injected [`Clock`]**, passed to the script in microseconds: tests step
//!   a [`ManualClock`](auth_core::ManualClock); instances need synchronized clocks (NTP), as
//!   their tokens' expiry already does.
//! - **What Redis holds:** one string per (bucket, key) that is still counting, named
//!   `<prefix>:rate:<bucket>:<hex SHA-256 of bucket and key>`, whose value is the key's
//!   theoretical arrival time. Never an email or an address in clear (per-account keys
//!   are already keyed digests from [`AuthService`](auth_core::AuthService); client
//!   addresses are hashed here).
//! - **Every key expires** when its allowance would be full again, so waiting out a limit
//!   and letting Redis forget the key are the same; a key that would live longer (a
//!   [`Limit::total`]) expires after [`with_max_ttl`](RedisRateLimiter::with_max_ttl)
//!   (30 days by default) without an allowed attempt. Redis never grows without bound.
//! - **Fails closed.** When Redis cannot be reached, or does not answer within
//!   [`with_timeout`](RedisRateLimiter::with_timeout) (1 s by default), [`acquire`](RateLimiter::acquire)
//!   returns an error, which `AuthService` answers as `unavailable` (HTTP 503 with
//!   `Retry-After`): never an unchecked pass. The connection is re-established by itself
//!   when Redis is back, with the same limiter.
//!
//! ```no_run
//! use std::sync::Arc;
//! use auth_core::{AuthService, MemoryStore, RateLimits, SigningKey, Tokens};
//! use auth_redis::RedisRateLimiter;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limits = RateLimits::default();
//! let limiter = RedisRateLimiter::new("redis://127.0.0.1:6379", limits.clone())?.with_prefix("my-service");
//! limiter.ping().await?; // at start-up: a wrong URL is found now, not at the first login
//! let key = SigningKey::hs256(b"an example secret of at least 32 bytes!")?;
//! let auth = AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example.com", "api"))
//!     .with_rate_limits(limits)
//!     .with_rate_limiter(Arc::new(limiter));
//! # Ok(())
//! # }
//! ```
//!
//! URLs are the `redis` crate's: `redis://[[user]:password@]host[:port][/db]`. TLS
//! (`rediss://`) is not built in.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use auth_core::{BoxError, Bucket, Clock, Limit, RateDecision, RateLimiter, RateLimits, SystemClock};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Script};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "auth";
/// How long one decision may take by default, connecting included: past it, the request
/// fails closed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// The default bound on a key's life in Redis.
pub const DEFAULT_MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// One GCRA decision, as governor makes it for `MemoryRateLimiter`, in microseconds.
///
/// KEYS[1]: the key's theoretical arrival time (TAT). ARGV: now, the interval between two
/// units (`t`, period / burst, may be fractional), the burst, the longest TTL in ms.
/// Returns `{1, 0}` when allowed, `{0, wait}` when refused (nothing is written then).
/// Times are doubles in Lua: exact to the microsecond below 2^53 µs (the year 2255), and
/// written back with 17 significant digits so that nothing is lost on the way.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tau = t * (tonumber(ARGV[3]) - 1)
local max_ttl = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local earliest = tat - tau
if now < earliest then
  return {0, math.ceil(earliest - now)}
end
local next = math.max(tat, now) + t
local ttl = math.min(math.max(math.ceil((next - now) / 1000), 1), max_ttl)
redis.call('SET', KEYS[1], string.format('%.17g', next), 'PX', string.format('%.0f', ttl))
return {1, 0}
";

/// What can go wrong with the Redis limiter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisLimiterError {
    /// The URL does not parse as a Redis URL (or names a scheme this build cannot speak).
    #[error("invalid Redis URL")]
    InvalidUrl(#[source] RedisError),
    /// Redis answered with an error, or the connection failed.
    #[error("Redis is unavailable")]
    Unavailable(#[source] RedisError),
    /// Redis did not answer within the limiter's timeout.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// The Redis [`RateLimiter`]; see the [crate documentation](crate).
///
/// Cheap to clone; clones share one multiplexed connection. Made without any I/O: the
/// connection is opened at the first call ([`ping`](Self::ping) at start-up finds a wrong
/// URL or an absent server before the first request does).
///
/// ```
/// use std::time::Duration;
/// use auth_core::RateLimits;
/// use auth_redis::RedisRateLimiter;
///
/// # fn main() -> Result<(), auth_redis::RedisLimiterError> {
/// let limiter = RedisRateLimiter::new("redis://:secret@10.0.0.5:6379/2", RateLimits::default())?
///     .with_prefix("shop-auth")
///     .with_timeout(Duration::from_millis(500));
/// assert_eq!(limiter.prefix(), "shop-auth");
/// assert!(!format!("{limiter:?}").contains("secret"), "no password in logs");
/// assert!(RedisRateLimiter::new("http://10.0.0.5", RateLimits::default()).is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisRateLimiter {
    client: Client,
    /// Made at the first call, inside the runtime, then shared by every clone.
    connection: Arc<OnceLock<ConnectionManager>>,
    script: Arc<Script>,
    limits: Arc<HashMap<Bucket, Limit>>,
    clock: Arc<dyn Clock>,
    prefix: String,
    timeout: Duration,
    max_ttl: Duration,
}

impl RedisRateLimiter {
    /// A limiter enforcing `limits` in the Redis at `url`, with the [`DEFAULT_PREFIX`],
    /// the system clock, the [`DEFAULT_TIMEOUT`] and the [`DEFAULT_MAX_TTL`]. Connects
    /// nothing yet.
    ///
    /// # Errors
    ///
    /// [`RedisLimiterError::InvalidUrl`] when `url` is not a Redis URL.
    pub fn new(url: &str, limits: RateLimits) -> Result<Self, RedisLimiterError> {
        let client = Client::open(url).map_err(RedisLimiterError::InvalidUrl)?;
        let limits = Bucket::ALL
            .into_iter()
            .filter_map(|bucket| limits.limit(bucket).map(|limit| (bucket, limit)))
            .collect();
        Ok(Self {
            client,
            connection: Arc::new(OnceLock::new()),
            script: Arc::new(Script::new(GCRA)),
            limits: Arc::new(limits),
            clock: Arc::new(SystemClock),
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            max_ttl: DEFAULT_MAX_TTL,
        })
    }

    /// Names every key `<prefix>:rate:...`: instances that must count together share a
    /// prefix; services (or tests) that must not, use different ones.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Reads time from `clock` (a [`ManualClock`](auth_core::ManualClock) in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long one call may take in all, connecting included (at least a millisecond);
    /// past it the call fails closed with [`RedisLimiterError::Timeout`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        // The connection is made with the timeout: a later one needs its own.
        self.connection = Arc::new(OnceLock::new());
        self
    }

    /// The longest a key lives in Redis after its last allowed attempt (at least a
    /// second). Only keys whose allowance takes longer to refill are cut short: a
    /// [`Limit::total`] (the consecutive-failures cap) is forgotten this long after the
    /// last failure it allowed.
    #[must_use]
    pub fn with_max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = max_ttl.max(Duration::from_secs(1));
        self
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where Redis is, for logs: `host:port` (or the socket's path) and the database,
    /// never the password.
    pub fn address(&self) -> String {
        let info = self.client.get_connection_info();
        format!("{}/{}", info.addr(), info.redis_settings().db())
    }

    /// Asks Redis for an answer and loads the limiter's script: what a server calls at
    /// start-up, so that a wrong URL, a wrong password or an absent server stop it with a
    /// clear message instead of answering 503 to its first requests.
    ///
    /// ```no_run
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), auth_redis::RedisLimiterError> {
    /// let limiter = auth_redis::RedisRateLimiter::new("redis://127.0.0.1:6379", auth_core::RateLimits::default())?;
    /// limiter.ping().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`RedisLimiterError::Unavailable`] or [`RedisLimiterError::Timeout`].
    pub async fn ping(&self) -> Result<(), RedisLimiterError> {
        let script = &self.script;
        self.bounded(|mut connection| async move {
            redis::cmd("PING").query_async::<()>(&mut connection).await?;
            script.load_async(&mut connection).await.map(drop)
        })
        .await
    }

    /// The Redis key of `key` in `bucket`.
    fn redis_key(&self, bucket: Bucket, key: &str) -> String {
        let digest = Sha256::new()
            .chain_update(bucket.as_str())
            .chain_update([0])
            .chain_update(key)
            .finalize();
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("{}:rate:{}:{hex}", self.prefix, bucket.as_str())
    }

    fn connection(&self) -> Result<ConnectionManager, RedisError> {
        if let Some(connection) = self.connection.get() {
            return Ok(connection.clone());
        }
        // Retries are few and short: while Redis is away, every request should fail fast
        // (the next request tries again), not wait through a long backoff.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(100));
        let made = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        Ok(self.connection.get_or_init(|| made).clone())
    }

    /// Runs `step` on the connection within the timeout. A connection found dead (Redis
    /// restarted since the last call) is replaced and the step tried once more, so the
    /// first request after a restart is served rather than refused.
    async fn bounded<T, F, Step>(&self, step: F) -> Result<T, RedisLimiterError>
    where
        F: Fn(ConnectionManager) -> Step,
        Step: Future<Output = Result<T, RedisError>>,
    {
        let attempts = async {
            let connection = self.connection()?;
            match step(connection.clone()).await {
                Err(error) if error.is_io_error() || error.is_unrecoverable_error() => step(connection).await,
                other => other,
            }
        };
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(result) => result.map_err(RedisLimiterError::Unavailable),
            Err(_) => Err(RedisLimiterError::Timeout(self.timeout)),
        }
    }
}

/// Microseconds since the Unix epoch (0 before it).
fn micros_since_epoch(now: OffsetDateTime) -> u64 {
    u64::try_from((now - OffsetDateTime::UNIX_EPOCH).whole_microseconds()).unwrap_or(0)
}

/// governor's interval between two units, `period / burst` (at least a nanosecond), in
/// microseconds.
fn interval_micros(limit: &Limit) -> f64 {
    let interval = (limit.period() / limit.burst()).max(Duration::from_nanos(1));
    // Exact: an interval's nanoseconds are below 2^53 (the longest is 200 years).
    interval.as_nanos() as f64 / 1000.0
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, bucket: Bucket, key: &str) -> Result<RateDecision, BoxError> {
        let Some(limit) = self.limits.get(&bucket) else {
            return Ok(RateDecision::Allowed);
        };
        let redis_key = self.redis_key(bucket, key);
        let now = micros_since_epoch(self.clock.now());
        let interval = interval_micros(limit).to_string();
        let max_ttl = u64::try_from(self.max_ttl.as_millis()).unwrap_or(u64::MAX);
        let (script, redis_key, interval) = (&self.script, &redis_key, &interval);
        let (allowed, wait): (i64, u64) = self
            .bounded(|mut connection| async move {
                script
                    .key(redis_key)
                    .arg(now)
                    .arg(interval)
                    .arg(limit.burst())
                    .arg(max_ttl)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        Ok(if allowed == 1 {
            RateDecision::Allowed
        } else {
            RateDecision::Limited {
                retry_after: limit.retry_after(Duration::from_micros(wait)),
            }
        })
    }

    async fn reset(&self, bucket: Bucket, key: &str) -> Result<(), BoxError> {
        if !self.limits.contains_key(&bucket) {
            return Ok(());
        }
        let redis_key = self.redis_key(bucket, key);
        let redis_key = &redis_key;
        self.bounded(|mut connection| async move {
            redis::cmd("DEL")
                .arg(redis_key)
                .query_async::<()>(&mut connection)
                .await
        })
        .await?;
        Ok(())
    }
}

impl fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buckets: Vec<(&str, Limit)> = self.limits.iter().map(|(b, l)| (b.as_str(), *l)).collect();
        buckets.sort_by_key(|(name, _)| *name);
        f.debug_struct("RedisRateLimiter")
            .field("address", &self.address())
            .field("prefix", &self.prefix)
            .field("buckets", &buckets)
            .field("timeout", &self.timeout)
            .field("max_ttl", &self.max_ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_digests() {
        let limiter = RedisRateLimiter::new("redis://127.0.0.1:6379", RateLimits::default())
            .unwrap()
            .with_prefix("svc");
        let key = limiter.redis_key(Bucket::LoginAttemptsPerClient, "203.0.113.7");
        let (head, digest) = key.rsplit_once(':').unwrap();
        assert_eq!(head, "svc:rate:login_attempts_per_client");
        assert_eq!(digest.len(), 64);
        assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(key, limiter.redis_key(Bucket::LoginAttemptsPerClient, "203.0.113.8"));
        assert_ne!(
            limiter.redis_key(Bucket::MailsPerClient, "a"),
            limiter.redis_key(Bucket::MailsPerAccount, "a"),
        );
    }

    #[test]
    fn intervals_are_governors() {
        assert_eq!(interval_micros(&Limit::per_minute(5)), 12_000_000.0);
        assert_eq!(interval_micros(&Limit::new(3, Duration::from_secs(10))), 3_333_333.333);
        assert_eq!(interval_micros(&Limit::new(1_000_000, Duration::from_millis(1))), 0.001);
        assert_eq!(
            micros_since_epoch(OffsetDateTime::UNIX_EPOCH - time::Duration::days(1)),
            0
        );
    }

    #[test]
    fn a_bad_url_is_a_typed_error() {
        for url in ["", "http://127.0.0.1", "redis://", "not a url"] {
            assert!(
                matches!(
                    RedisRateLimiter::new(url, RateLimits::default()),
                    Err(RedisLimiterError::InvalidUrl(_))
                ),
                "{url:?}"
            );
        }
    }
}
