//! The rate-limiter conformance suite of `auth-core`, the one `MemoryRateLimiter` runs,
//! against the machine's Redis, each case under a key prefix of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth_core::{ManualClock, RateLimits};
use auth_redis::RedisRateLimiter;

/// A function making limiters on the test Redis, each with a fresh prefix; skips the case
/// (`return`) when Redis is absent outside CI.
macro_rules! on_redis {
    () => {{
        let Some(url) = common::redis_url() else {
            return;
        };
        async move |limits: RateLimits, clock: ManualClock| {
            RedisRateLimiter::new(&url, limits)
                .unwrap()
                .with_prefix(common::fresh_prefix())
                .with_clock(Arc::new(clock))
                // Test keys go away soon whatever their limit.
                .with_max_ttl(Duration::from_secs(600))
        }
    }};
}

auth_core::rate_limiter_conformance_tests!(on_redis!());
