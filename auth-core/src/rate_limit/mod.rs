//! Rate limits on the flows an attacker repeats: login, registration, reset requests and
//! token confirmations.

mod memory;

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use governor::Quota;

use crate::error::BoxError;

pub use memory::MemoryRateLimiter;

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
    /// Wrong second-factor codes of one account (a login's code step, confirming an
    /// enrolment). Refills with time and with a completed second-factor login, never with
    /// a password reset: someone who can reset the password (who holds the mailbox) gets
    /// no new code guesses by doing so.
    SecondFactorFailuresPerAccount,
    /// Notices that one account is locked ([`ConsecutiveLoginFailuresPerAccount`](Self::ConsecutiveLoginFailuresPerAccount)
    /// exhausted): one per lock ([`Limit::total`] of 1), refilled with the lock's bucket,
    /// so a locked account's owner gets one mail (with a reset link), not one per attempt.
    LockNoticesPerAccount,
    /// Exports of one account's data ([`export_account`](crate::AuthService::export_account)):
    /// each reads everything stored about it, so a stolen session cannot make it a cheap
    /// load on the store.
    ExportsPerAccount,
    /// Passkey ceremonies begun by one client (registration and sign-in options issued):
    /// each stores its state until it finishes or expires, so a client cannot fill the
    /// store with them.
    PasskeyCeremoniesPerClient,
}

impl Bucket {
    /// Every bucket.
    pub const ALL: [Self; 13] = [
        Self::LoginFailuresPerAccount,
        Self::ConsecutiveLoginFailuresPerAccount,
        Self::LoginAttemptsPerClient,
        Self::RegistrationsPerClient,
        Self::ResetRequestsPerAccount,
        Self::ResetRequestsPerClient,
        Self::ConfirmationsPerClient,
        Self::MailsPerAccount,
        Self::MailsPerClient,
        Self::SecondFactorFailuresPerAccount,
        Self::LockNoticesPerAccount,
        Self::ExportsPerAccount,
        Self::PasskeyCeremoniesPerClient,
    ];

    /// Whether the bucket counts per account (keyed by a digest of the normalized email)
    /// rather than per client.
    pub(crate) fn is_per_account(self) -> bool {
        match self {
            Self::LoginFailuresPerAccount
            | Self::ConsecutiveLoginFailuresPerAccount
            | Self::ResetRequestsPerAccount
            | Self::MailsPerAccount
            | Self::SecondFactorFailuresPerAccount
            | Self::LockNoticesPerAccount
            | Self::ExportsPerAccount => true,
            Self::LoginAttemptsPerClient
            | Self::RegistrationsPerClient
            | Self::ResetRequestsPerClient
            | Self::ConfirmationsPerClient
            | Self::MailsPerClient
            | Self::PasskeyCeremoniesPerClient => false,
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
            Self::SecondFactorFailuresPerAccount => "second_factor_failures_per_account",
            Self::LockNoticesPerAccount => "lock_notices_per_account",
            Self::ExportsPerAccount => "exports_per_account",
            Self::PasskeyCeremoniesPerClient => "passkey_ceremonies_per_client",
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

    /// The `retry_after` of a refusal whose next unit comes after `wait`: whole seconds,
    /// rounded up so that a client that waits it is allowed, at least one second, and never
    /// more than the period rounded up (only a clock set backwards could ask for more).
    /// Every backend answers with it, so a refusal reads the same from each.
    ///
    /// ```
    /// use std::time::Duration;
    /// use auth_core::Limit;
    ///
    /// let limit = Limit::per_minute(5);
    /// assert_eq!(limit.retry_after(Duration::from_millis(11_200)), Duration::from_secs(12));
    /// assert_eq!(limit.retry_after(Duration::ZERO), Duration::from_secs(1));
    /// assert_eq!(limit.retry_after(Duration::from_secs(3600)), Duration::from_secs(60));
    /// ```
    pub fn retry_after(&self, wait: Duration) -> Duration {
        ceil_to_second(wait).min(ceil_to_second(self.period))
    }

    fn quota(&self) -> Quota {
        let per_request = (self.period / self.burst.get()).max(Duration::from_nanos(1));
        Quota::with_period(per_request)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(self.burst)
    }
}

fn ceil_to_second(wait: Duration) -> Duration {
    let whole = wait.as_secs().saturating_add(u64::from(wait.subsec_nanos() > 0));
    Duration::from_secs(whole.max(1))
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
                (Bucket::SecondFactorFailuresPerAccount, Some(Limit::per_hour(10))),
                (Bucket::LockNoticesPerAccount, Some(Limit::total(1))),
                (Bucket::ExportsPerAccount, Some(Limit::per_hour(5))),
                (Bucket::PasskeyCeremoniesPerClient, Some(Limit::per_minute(20))),
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
/// (`auth-redis`'s `RedisRateLimiter`) implements this trait for several servers, and
/// passes the same [conformance suite](crate::conformance::rate_limiter) (feature
/// `conformance`). Object safe.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds_within_the_period() {
        let limit = Limit::per_minute(5);
        assert_eq!(limit.retry_after(Duration::from_millis(1)), Duration::from_secs(1));
        assert_eq!(
            limit.retry_after(Duration::from_millis(12_000)),
            Duration::from_secs(12)
        );
        assert_eq!(
            limit.retry_after(Duration::from_millis(12_001)),
            Duration::from_secs(13)
        );
        assert_eq!(limit.retry_after(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(limit.retry_after(Duration::from_secs(61)), Duration::from_secs(60));
        let fast = Limit::new(2, Duration::from_millis(100));
        assert_eq!(fast.retry_after(Duration::from_millis(50)), Duration::from_secs(1));
        let total = Limit::total(100);
        assert!(total.retry_after(Duration::MAX) > Duration::from_secs(100 * 365 * 24 * 3600));
    }
}
