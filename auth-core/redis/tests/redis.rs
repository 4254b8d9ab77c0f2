//! What only a shared limiter has to show, against real Redis servers: instances sharing a
//! prefix count once, what Redis holds (digests, TTLs), and failing closed through an
//! outage of a server the test starts and stops itself, with the same limiter recovering.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth_core::{Bucket, Limit, ManualClock, RateDecision, RateLimiter, RateLimits};
use auth_redis::{RedisLimiterError, RedisRateLimiter};
use redis::AsyncCommands;
use time::macros::datetime;

fn clock() -> ManualClock {
    ManualClock::new(datetime!(2026-06-01 09:00 UTC))
}

fn limiter(url: &str, prefix: &str, clock: &ManualClock) -> RedisRateLimiter {
    RedisRateLimiter::new(url, RateLimits::default())
        .unwrap()
        .with_prefix(prefix)
        .with_clock(Arc::new(clock.clone()))
}

async fn allowed(limiter: &RedisRateLimiter, bucket: Bucket, key: &str) -> bool {
    limiter.acquire(bucket, key).await.unwrap() == RateDecision::Allowed
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn instances_sharing_a_prefix_count_once() {
    let Some(url) = common::redis_url() else {
        return;
    };
    let (prefix, clock) = (common::fresh_prefix(), clock());
    let (a, b) = (limiter(&url, &prefix, &clock), limiter(&url, &prefix, &clock));
    let bucket = Bucket::LoginFailuresPerAccount;
    for _ in 0..3 {
        assert!(allowed(&a, bucket, "ann@example.com").await);
    }
    for _ in 0..2 {
        assert!(allowed(&b, bucket, "ann@example.com").await);
    }
    assert!(!allowed(&a, bucket, "ann@example.com").await, "5 per minute in all");
    assert!(!allowed(&b, bucket, "ann@example.com").await);
    b.reset(bucket, "ann@example.com").await.unwrap();
    assert!(
        allowed(&a, bucket, "ann@example.com").await,
        "a reset on one instance refills both"
    );

    let other = limiter(&url, &common::fresh_prefix(), &clock);
    assert!(
        allowed(&other, bucket, "ann@example.com").await,
        "another prefix counts apart"
    );
}

#[tokio::test]
async fn redis_holds_digests_that_expire_when_the_allowance_is_full_again() {
    let Some(url) = common::redis_url() else {
        return;
    };
    let (prefix, clock) = (common::fresh_prefix(), clock());
    let limiter = limiter(&url, &prefix, &clock).with_max_ttl(Duration::from_secs(3600));
    assert!(allowed(&limiter, Bucket::LoginAttemptsPerClient, "203.0.113.7").await);
    for _ in 0..5 {
        assert!(allowed(&limiter, Bucket::LoginFailuresPerAccount, "ann@example.com").await);
    }
    assert!(allowed(&limiter, Bucket::ConsecutiveLoginFailuresPerAccount, "ann@example.com").await);

    let mut redis = raw(&url).await;
    let mut keys: Vec<String> = redis.keys(format!("{prefix}:*")).await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for key in &keys {
        assert!(!key.contains("203.0.113.7") && !key.contains("ann@"), "{key}");
        assert_eq!(key.rsplit(':').next().unwrap().len(), 64, "a SHA-256 digest: {key}");
    }
    let ttl = async |bucket: &str| -> i64 {
        let key = keys
            .iter()
            .find(|key| key.contains(&format!(":rate:{bucket}:")))
            .unwrap();
        redis.clone().pttl(key).await.unwrap()
    };
    // Until the allowance is whole again: one 2-second unit (30 per minute), the whole
    // minute after five; a total limit never refills, so the bound applies.
    let client = ttl("login_attempts_per_client").await;
    assert!((1..=2_000).contains(&client), "{client} ms");
    let account = ttl("login_failures_per_account").await;
    assert!((2_001..=60_000).contains(&account), "{account} ms");
    let cap = ttl("consecutive_login_failures_per_account").await;
    assert!((60_001..=3_600_000).contains(&cap), "{cap} ms");

    limiter
        .reset(Bucket::LoginFailuresPerAccount, "ann@example.com")
        .await
        .unwrap();
    let left: Vec<String> = redis.keys(format!("{prefix}:*")).await.unwrap();
    assert_eq!(left.len(), 2, "a reset deletes the key");

    // Refusals write nothing: the key's TTL is not extended.
    let limits = RateLimits::default().with_limit(Bucket::MailsPerClient, Some(Limit::per_hour(1)));
    let strict = RedisRateLimiter::new(&url, limits)
        .unwrap()
        .with_prefix(&prefix)
        .with_clock(Arc::new(clock.clone()));
    assert!(allowed(&strict, Bucket::MailsPerClient, "198.51.100.1").await);
    let key: Vec<String> = redis.keys(format!("{prefix}:rate:mails_per_client:*")).await.unwrap();
    let value: String = redis.get(&key[0]).await.unwrap();
    assert!(!allowed(&strict, Bucket::MailsPerClient, "198.51.100.1").await);
    let after: String = redis.get(&key[0]).await.unwrap();
    assert_eq!(value, after);
}

#[tokio::test]
async fn disabled_buckets_never_reach_redis() {
    // Nothing listens on port 1: a call that reached for Redis would fail.
    let limiter = RedisRateLimiter::new("redis://127.0.0.1:1", RateLimits::disabled()).unwrap();
    for bucket in Bucket::ALL {
        assert_eq!(limiter.acquire(bucket, "k").await.unwrap(), RateDecision::Allowed);
        limiter.reset(bucket, "k").await.unwrap();
    }
}

#[tokio::test]
async fn an_outage_fails_closed_and_the_same_limiter_recovers() {
    let Some(mut server) = common::OwnRedis::start() else {
        return;
    };
    let clock = clock();
    let limiter = limiter(&server.url(), "outage", &clock);
    let bucket = Bucket::LoginFailuresPerAccount;
    limiter.ping().await.unwrap();
    for _ in 0..5 {
        assert!(allowed(&limiter, bucket, "ann@example.com").await);
    }
    assert!(!allowed(&limiter, bucket, "ann@example.com").await);

    server.stop();
    for _ in 0..3 {
        // A guard against a hang, not a timing claim: each call is bounded by the
        // limiter's own timeout (1 s), and a refused connection fails at once.
        let decision = tokio::time::timeout(Duration::from_secs(30), limiter.acquire(bucket, "ann@example.com"))
            .await
            .expect("a dead Redis answers within the limiter's timeout");
        let error = decision.expect_err("fails closed: an error, never an unchecked pass");
        assert!(error.downcast_ref::<RedisLimiterError>().is_some(), "{error}");
        assert!(limiter.reset(bucket, "ann@example.com").await.is_err());
        assert!(
            limiter.acquire(bucket, "bob@example.com").await.is_err(),
            "every key fails closed"
        );
    }
    assert!(matches!(limiter.ping().await, Err(RedisLimiterError::Unavailable(_))));

    server.resume();
    // The same limiter, no new connection made by the test: the first call after the
    // restart is served. The restarted server kept nothing (no persistence), so the
    // allowance is whole again.
    for _ in 0..5 {
        assert!(allowed(&limiter, bucket, "ann@example.com").await);
    }
    assert!(!allowed(&limiter, bucket, "ann@example.com").await);
}

#[tokio::test]
async fn a_redis_that_never_answers_fails_closed_within_the_timeout() {
    // Accepts connections (the kernel completes them) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let limiter = RedisRateLimiter::new(&url, RateLimits::default())
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let decision = tokio::time::timeout(
        Duration::from_secs(30),
        limiter.acquire(Bucket::LoginAttemptsPerClient, "203.0.113.7"),
    )
    .await
    .expect("bounded by the limiter's timeout");
    let error = decision.unwrap_err();
    assert!(
        matches!(
            error.downcast_ref::<RedisLimiterError>(),
            Some(RedisLimiterError::Timeout(_))
        ),
        "{error}"
    );
    drop(silent);
}

#[tokio::test]
async fn the_password_of_the_url_stays_out_of_debug_and_errors() {
    let limiter = RedisRateLimiter::new("redis://:hunter2-secret@127.0.0.1:1/3", RateLimits::default()).unwrap();
    let shown = format!("{limiter:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("127.0.0.1:1/3"), "{shown}");
    let error = limiter.ping().await.unwrap_err();
    let mut messages = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        messages.push_str(&cause.to_string());
        source = cause.source();
    }
    assert!(!messages.contains("hunter2"), "{messages}");
}
