//! Abuse resistance: every rate limit, the refill on success, unknown-email symmetry, no
//! hashing when limited, the concurrency bound, lockout safety, and the enumeration-safe
//! registration.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use auth_core::{
    AuthError, BoxError, Bucket, ClientInfo, Limit, Password, RateDecision, RateLimiter, RateLimits, Registration,
};
use common::{Fixture, PASSWORD};

const WRONG: &str = "not the password";

fn from(ip: &str) -> ClientInfo {
    ClientInfo::new(Some("test-agent"), Some(ip.parse().unwrap()))
}

fn anonymous() -> ClientInfo {
    ClientInfo::default()
}

fn retry_after<T: std::fmt::Debug>(result: Result<T, AuthError>) -> Duration {
    match result.unwrap_err() {
        error @ AuthError::RateLimited { .. } => {
            assert_eq!((error.code(), error.http_status()), ("rate_limited", 429));
            error.retry_after().unwrap()
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
}

async fn wrong_login(f: &Fixture, email: &str, client: &ClientInfo) -> Result<(), AuthError> {
    f.auth.login(email, Password::new(WRONG), client).await.map(drop)
}

// ---------------------------------------------------------------- login, per account

#[tokio::test]
async fn five_failed_logins_per_minute_per_account_then_limited_without_hashing() {
    let f = Fixture::new();
    f.register("ann@example.com").await;
    for _ in 0..5 {
        assert!(matches!(
            wrong_login(&f, "ann@example.com", &anonymous()).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert_eq!(f.work(), (5, 0));
    let wait = retry_after(wrong_login(&f, "ann@example.com", &anonymous()).await);
    assert_eq!(wait, Duration::from_secs(12), "one more attempt every 12 s");
    // Limited: nothing was verified, not even the right password.
    let right = f
        .auth
        .login("ann@example.com", Password::new(PASSWORD), &anonymous())
        .await;
    assert!(matches!(right, Err(AuthError::RateLimited { .. })));
    assert_eq!(f.work(), (0, 0), "no hash computed while limited");

    f.clock.advance(Duration::from_secs(11));
    assert!(matches!(
        wrong_login(&f, "ann@example.com", &anonymous()).await,
        Err(AuthError::RateLimited { .. })
    ));
    f.clock.advance(Duration::from_secs(1));
    assert!(
        f.auth
            .login("ann@example.com", Password::new(PASSWORD), &anonymous())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn case_and_whitespace_variants_count_as_one_account() {
    let f = Fixture::new();
    f.register("alice@x.com").await;
    for typed in [
        "Alice@X.com",
        "alice@x.com",
        " alice@x.com",
        "ALICE@x.COM\t",
        "alice@X.com",
    ] {
        assert!(
            matches!(
                wrong_login(&f, typed, &anonymous()).await,
                Err(AuthError::InvalidCredentials)
            ),
            "{typed:?}"
        );
    }
    retry_after(wrong_login(&f, "alice@x.com", &anonymous()).await);
}

#[tokio::test]
async fn a_successful_login_refills_the_account_allowance() {
    let f = Fixture::new();
    f.register("bea@example.com").await;
    for _ in 0..4 {
        wrong_login(&f, "bea@example.com", &anonymous()).await.unwrap_err();
    }
    f.auth
        .login("bea@example.com", Password::new(PASSWORD), &anonymous())
        .await
        .unwrap();
    // Five more failures fit: the four before the success no longer count.
    for _ in 0..5 {
        assert!(matches!(
            wrong_login(&f, "bea@example.com", &anonymous()).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    retry_after(wrong_login(&f, "bea@example.com", &anonymous()).await);
}

#[tokio::test]
async fn an_unknown_email_is_limited_exactly_like_a_known_one() {
    let f = Fixture::new();
    f.register("known@example.com").await;
    let mut answers = Vec::new();
    for email in ["known@example.com", "unknown@example.com"] {
        let mut seen = Vec::new();
        for _ in 0..7 {
            let error = wrong_login(&f, email, &anonymous()).await.unwrap_err();
            seen.push((
                error.code(),
                error.http_status(),
                error.retry_after(),
                error.to_string(),
            ));
        }
        answers.push(seen);
    }
    assert_eq!(
        answers[0], answers[1],
        "the same answers, in the same order, with the same retry_after"
    );
    assert_eq!(answers[0][5].0, "rate_limited");
}

#[tokio::test]
async fn at_most_one_hundred_failures_a_day_per_account() {
    let limits = RateLimits::default().with_limit(Bucket::LoginFailuresPerAccount, Some(Limit::per_minute(1000)));
    let f = Fixture::with_limits(limits);
    f.register("cid@example.com").await;
    for i in 0..100 {
        let result = wrong_login(&f, "cid@example.com", &anonymous()).await;
        assert!(matches!(result, Err(AuthError::InvalidCredentials)), "failure {i}");
    }
    let wait = retry_after(wrong_login(&f, "cid@example.com", &anonymous()).await);
    assert_eq!(
        wait,
        Duration::from_secs(864),
        "then one every 24 h / 100, never a permanent lockout"
    );
    assert_eq!(f.work(), (100, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_parallel_wrong_passwords_against_a_limit_of_ten_verify_at_most_ten() {
    let limits = RateLimits::default().with_limit(Bucket::LoginFailuresPerAccount, Some(Limit::per_minute(10)));
    let f = Arc::new(Fixture::with_limits(limits));
    f.register("dan@example.com").await;
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { wrong_login(&f, "dan@example.com", &anonymous()).await })
        })
        .collect();
    let (mut refused, mut limited) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Err(AuthError::InvalidCredentials) => refused += 1,
            Err(AuthError::RateLimited { .. }) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let (verified, _) = f.work();
    assert!(verified <= 10, "{verified} verifications");
    assert_eq!((refused, limited), (verified, 50 - verified));
    assert_eq!(verified, 10, "the allowance is used, not lost");
}

// ---------------------------------------------------------------- login, per client

#[tokio::test]
async fn thirty_login_attempts_per_minute_per_client() {
    let f = Fixture::new();
    let client = from("203.0.113.7");
    for i in 0..30 {
        // Thirty different accounts: only the client's own allowance is at stake.
        let result = wrong_login(&f, &format!("spray{i}@example.com"), &client).await;
        assert!(matches!(result, Err(AuthError::InvalidCredentials)), "attempt {i}");
    }
    retry_after(wrong_login(&f, "spray30@example.com", &client).await);
    assert!(
        wrong_login(&f, "spray30@example.com", &from("203.0.113.8"))
            .await
            .is_err_and(|e| e.code() == "invalid_credentials")
    );
    // IPv6 clients are counted per /64.
    let v6 = |host: &str| from(&format!("2001:db8:1:2::{host}"));
    for i in 0..30 {
        wrong_login(&f, &format!("v6spray{i}@example.com"), &v6(&format!("{:x}", i + 1)))
            .await
            .unwrap_err();
    }
    retry_after(wrong_login(&f, "v6spray@example.com", &v6("ffff")).await);
}

// ---------------------------------------------------------------- registration

#[tokio::test]
async fn ten_registrations_per_hour_per_client() {
    let f = Fixture::new();
    let client = from("198.51.100.1");
    for i in 0..10 {
        f.auth
            .register(&format!("new{i}@example.com"), Password::new(PASSWORD), &client)
            .await
            .unwrap();
    }
    let before = f.work();
    let wait = retry_after(
        f.auth
            .register("new10@example.com", Password::new(PASSWORD), &client)
            .await,
    );
    assert_eq!(wait, Duration::from_secs(360));
    let (_, hashes_while_limited) = f.work();
    assert_eq!((before.1, hashes_while_limited), (10, 0), "no hash while limited");
    assert!(
        f.auth
            .register("new10@example.com", Password::new(PASSWORD), &from("198.51.100.2"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn enumeration_safe_registration_answers_alike_and_says_whom_to_notify() {
    let f = Fixture::new();
    let client = anonymous();
    let created = f
        .auth
        .register_enumeration_safe("eve@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    let Registration::Created(user) = created else {
        panic!("new account expected")
    };
    assert_eq!(f.work(), (0, 1));

    let again = f
        .auth
        .register_enumeration_safe("  EVE@Example.com", Password::new("another passphrase"), &client)
        .await;
    match again.unwrap() {
        Registration::AlreadyRegistered { notify, user_id } => {
            assert_eq!(
                (notify.as_str(), user_id),
                ("eve@example.com", user.id),
                "the stored address"
            );
        }
        other => panic!("expected AlreadyRegistered, got {other:?}"),
    }
    assert_eq!(f.work(), (0, 1), "the same work: the password is hashed either way");
    // The existing account is untouched.
    assert!(
        f.auth
            .login("eve@example.com", Password::new(PASSWORD), &client)
            .await
            .is_ok()
    );
    // Other failures are still errors.
    let weak = f
        .auth
        .register_enumeration_safe("fay@example.com", Password::new("short"), &client)
        .await;
    assert_eq!(weak.unwrap_err().code(), "weak_password");
    // The default mode keeps the seeds' 409.
    let taken = f
        .auth
        .register("eve@example.com", Password::new("another passphrase"), &client)
        .await;
    assert_eq!(taken.unwrap_err().http_status(), 409);
}

// ---------------------------------------------------------------- password reset and confirmations

#[tokio::test]
async fn reset_requests_are_limited_per_account_and_per_client() {
    let f = Fixture::new();
    f.register("gil@example.com").await;
    for _ in 0..5 {
        f.auth
            .request_password_reset("gil@example.com", &anonymous())
            .await
            .unwrap()
            .unwrap();
    }
    assert_eq!(
        retry_after(f.auth.request_password_reset(" GIL@example.com", &anonymous()).await),
        Duration::from_secs(720)
    );
    // An unknown address meets the same limit at the same count.
    for _ in 0..5 {
        assert!(
            f.auth
                .request_password_reset("nobody@example.com", &anonymous())
                .await
                .unwrap()
                .is_none()
        );
    }
    retry_after(f.auth.request_password_reset("nobody@example.com", &anonymous()).await);

    let client = from("192.0.2.50");
    for i in 0..10 {
        f.auth
            .request_password_reset(&format!("other{i}@example.com"), &client)
            .await
            .unwrap();
    }
    retry_after(f.auth.request_password_reset("other10@example.com", &client).await);
}

#[tokio::test]
async fn confirmations_are_limited_per_client() {
    let f = Fixture::new();
    let client = from("192.0.2.60");
    for i in 0..10 {
        let guess = format!("pr_{}", "A".repeat(42) + &i.to_string());
        let error = if i % 2 == 0 {
            f.auth
                .reset_password(&guess, Password::new("a brand new passphrase"), &client)
                .await
                .unwrap_err()
        } else {
            f.auth
                .verify_email(&guess.replacen("pr_", "ev_", 1), &client)
                .await
                .map(drop)
                .unwrap_err()
        };
        assert_eq!(error.code(), "invalid_token");
    }
    retry_after(f.auth.verify_email("ev_guess", &client).await);
    retry_after(
        f.auth
            .reset_password("pr_guess", Password::new("a brand new passphrase"), &client)
            .await,
    );
}

#[tokio::test]
async fn a_throttled_owner_can_still_reset_and_then_log_in() {
    let f = Fixture::new();
    f.register("hal@example.com").await;
    for _ in 0..6 {
        let _ = wrong_login(&f, "hal@example.com", &anonymous()).await;
    }
    retry_after(
        f.auth
            .login("hal@example.com", Password::new(PASSWORD), &anonymous())
            .await,
    );
    // The reset flow has its own allowances: the attacker's failures do not block it.
    let delivery = f
        .auth
        .request_password_reset("hal@example.com", &anonymous())
        .await
        .unwrap()
        .unwrap();
    let new = Password::new("a brand new passphrase");
    f.auth
        .reset_password(delivery.token.expose_secret(), new, &anonymous())
        .await
        .unwrap();
    // A completed reset refills the login allowance: no waiting.
    let login = f
        .auth
        .login("hal@example.com", Password::new("a brand new passphrase"), &anonymous())
        .await;
    assert!(login.is_ok(), "{login:?}");
}

// ---------------------------------------------------------------- limiter failures

#[derive(Debug)]
struct BrokenLimiter;

#[async_trait]
impl RateLimiter for BrokenLimiter {
    async fn acquire(&self, _: Bucket, _: &str) -> Result<RateDecision, BoxError> {
        Err("limiter backend unreachable".into())
    }

    async fn reset(&self, _: Bucket, _: &str) -> Result<(), BoxError> {
        Err("limiter backend unreachable".into())
    }
}

#[tokio::test]
async fn a_broken_limiter_fails_closed() {
    let f = Fixture::new();
    f.register("ida@example.com").await;
    let tokens = f.auth.tokens().clone();
    let auth = auth_core::AuthService::new(f.store.clone(), tokens)
        .with_hasher(f.hasher.clone())
        .with_rate_limiter(Arc::new(BrokenLimiter));
    let error = auth
        .login("ida@example.com", Password::new(PASSWORD), &anonymous())
        .await
        .unwrap_err();
    assert_eq!((error.code(), error.http_status()), ("unavailable", 503));
    assert_eq!(f.work(), (0, 0), "nothing checked without a working limiter");
}

#[tokio::test]
async fn disabled_limits_allow_floods_for_benchmarks() {
    let f = Fixture::with_limits(RateLimits::disabled());
    f.register("jo@example.com").await;
    for _ in 0..50 {
        assert!(matches!(
            wrong_login(&f, "jo@example.com", &from("203.0.113.9")).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
}
