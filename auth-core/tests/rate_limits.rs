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
    SecurityNoticeKind,
};
use common::{Fixture, PASSWORD};

const WRONG: &str = "not the password";

fn from(ip: &str) -> ClientInfo {
    ClientInfo::new(Some("test-agent"), Some(ip.parse().unwrap()))
}

fn anonymous() -> ClientInfo {
    ClientInfo::unknown()
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
        .unwrap()
        .signed_in()
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
async fn at_most_one_hundred_consecutive_failures_however_slow_until_a_reset() {
    let f = Fixture::new();
    f.register("cid@example.com").await;
    // An hour apart, each from another address: neither waiting nor spreading helps.
    for i in 0..100 {
        let result = wrong_login(&f, "cid@example.com", &from(&format!("198.51.100.{i}"))).await;
        assert!(matches!(result, Err(AuthError::InvalidCredentials)), "failure {i}");
        f.clock.advance(Duration::from_secs(3600));
    }
    assert_eq!(f.work(), (100, 0));
    let locked = wrong_login(&f, "cid@example.com", &from("198.51.100.200"))
        .await
        .unwrap_err();
    assert!(matches!(locked, AuthError::AccountLocked), "{locked:?}");
    assert_eq!((locked.code(), locked.http_status()), ("account_locked", 429));
    assert_eq!(locked.retry_after(), None, "waiting does not help: no Retry-After");
    assert!(locked.to_string().contains("reset your password"), "{locked}");
    f.clock.advance(Duration::from_secs(30 * 24 * 3600));
    let still = f
        .auth
        .login("cid@example.com", Password::new(PASSWORD), &from("192.0.2.1"))
        .await;
    assert!(matches!(still, Err(AuthError::AccountLocked)), "{still:?}");
    assert_eq!(f.work(), (0, 0), "a month later, still nothing verified");

    // The owner's way back is a password reset, which these failures do not limit.
    let delivery = f
        .auth
        .request_password_reset("cid@example.com", &from("192.0.2.1"))
        .await
        .unwrap()
        .unwrap();
    f.auth
        .reset_password(
            delivery.token.expose_secret(),
            Password::new("a brand new passphrase"),
            &from("192.0.2.1"),
        )
        .await
        .unwrap();
    let login = f
        .auth
        .login(
            "cid@example.com",
            Password::new("a brand new passphrase"),
            &from("192.0.2.1"),
        )
        .await;
    assert!(login.is_ok(), "{login:?}");
}

#[tokio::test]
async fn failures_before_registration_do_not_lock_the_new_account() {
    let f = Fixture::with_limits(
        RateLimits::default()
            .with_limit(Bucket::LoginAttemptsPerClient, None)
            .with_limit(Bucket::LoginFailuresPerAccount, None),
    );
    let client = from("192.0.2.90");
    for _ in 0..100 {
        assert!(matches!(
            wrong_login(&f, "ivy@example.com", &client).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert!(wrong_login(&f, "ivy@example.com", &client).await.is_err());
    f.register("ivy@example.com").await;
    f.auth
        .login("ivy@example.com", Password::new(PASSWORD), &client)
        .await
        .expect("a new account starts with a clean allowance")
        .signed_in()
        .expect("a new account starts with a clean allowance");

    // The per-minute allowance too.
    let f = Fixture::new();
    for i in 0..5 {
        let _ = wrong_login(&f, "jon@example.com", &from(&format!("192.0.2.{}", 100 + i))).await;
    }
    f.register("jon@example.com").await;
    f.auth
        .login("jon@example.com", Password::new(PASSWORD), &client)
        .await
        .expect("no 429 on the owner's first login")
        .signed_in()
        .expect("no 429 on the owner's first login");

    // Trying to register an existing address refills nothing.
    for i in 0..5 {
        let _ = wrong_login(&f, "jon@example.com", &from(&format!("192.0.2.{}", 110 + i))).await;
    }
    let taken = f
        .auth
        .register("jon@example.com", Password::new(PASSWORD), &anonymous())
        .await;
    assert!(matches!(taken, Err(AuthError::EmailTaken)));
    let _ = retry_after(f.auth.login("jon@example.com", Password::new(PASSWORD), &client).await);
}

#[tokio::test]
async fn a_successful_login_ends_the_consecutive_run() {
    let limits = RateLimits::default()
        .with_limit(Bucket::LoginFailuresPerAccount, None)
        .with_limit(Bucket::ConsecutiveLoginFailuresPerAccount, Some(Limit::total(3)));
    let f = Fixture::with_limits(limits);
    f.register("cy@example.com").await;
    for _ in 0..2 {
        for _ in 0..2 {
            assert!(wrong_login(&f, "cy@example.com", &from("192.0.2.2")).await.is_err());
        }
        f.auth
            .login("cy@example.com", Password::new(PASSWORD), &from("192.0.2.2"))
            .await
            .unwrap()
            .signed_in()
            .unwrap();
    }
    for _ in 0..3 {
        assert!(matches!(
            wrong_login(&f, "cy@example.com", &from("192.0.2.2")).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    assert!(matches!(
        wrong_login(&f, "cy@example.com", &from("192.0.2.2")).await,
        Err(AuthError::AccountLocked)
    ));
}

#[tokio::test]
async fn password_change_guesses_draw_on_the_account_allowance() {
    let f = Fixture::new();
    let user = f.register("cal@example.com").await;
    let client = from("192.0.2.3");
    for _ in 0..5 {
        let result = f
            .auth
            .change_password(
                user.id,
                Password::new(WRONG),
                Password::new("a brand new passphrase"),
                &client,
            )
            .await;
        assert!(matches!(result, Err(AuthError::InvalidCredentials)), "{result:?}");
    }
    assert_eq!(f.work(), (5, 0));
    retry_after(
        f.auth
            .change_password(
                user.id,
                Password::new(PASSWORD),
                Password::new("a brand new passphrase"),
                &client,
            )
            .await,
    );
    assert_eq!(f.work(), (0, 0), "limited: nothing hashed");
    // The same allowance as login: the guesses count there too.
    retry_after(f.auth.login("cal@example.com", Password::new(PASSWORD), &client).await);
    f.clock.advance(Duration::from_secs(12));
    f.auth
        .change_password(
            user.id,
            Password::new(PASSWORD),
            Password::new("a brand new passphrase"),
            &client,
        )
        .await
        .unwrap();
    // Success refilled it: five more failures before the limit.
    for _ in 0..5 {
        assert!(matches!(
            wrong_login(&f, "cal@example.com", &client).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
}

#[tokio::test]
async fn clients_without_an_address_share_one_allowance() {
    let f = Fixture::new();
    for i in 0..30 {
        assert!(matches!(
            wrong_login(&f, &format!("anon{i}@example.com"), &anonymous()).await,
            Err(AuthError::InvalidCredentials)
        ));
    }
    retry_after(wrong_login(&f, "anon30@example.com", &anonymous()).await);
    // Malformed emails too: no unlimited dummy hashing.
    retry_after(wrong_login(&f, "not an email", &anonymous()).await);
    assert_eq!(f.work(), (30, 0));
    // A client with an address is counted on its own.
    assert!(matches!(
        wrong_login(&f, "anon31@example.com", &from("192.0.2.4")).await,
        Err(AuthError::InvalidCredentials)
    ));
}

#[tokio::test]
async fn malformed_emails_share_one_account_allowance() {
    let f = Fixture::new();
    for (i, email) in ["not an email", "@@", "x@", "nope", "a b@c.d"].iter().enumerate() {
        let result = wrong_login(&f, email, &from(&format!("192.0.2.{}", 10 + i))).await;
        assert!(matches!(result, Err(AuthError::InvalidCredentials)), "{email}");
    }
    retry_after(wrong_login(&f, "still@not@valid", &from("192.0.2.20")).await);
    assert_eq!(f.work(), (5, 0));
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64_and_nat64_as_their_ipv4() {
    let f = Fixture::new();
    for i in 0..30 {
        // Thirty addresses of one /64: one client.
        let client = from(&format!("2001:db8:5:6::{:x}", i + 1));
        assert!(wrong_login(&f, &format!("v6-{i}@example.com"), &client).await.is_err());
    }
    retry_after(wrong_login(&f, "v6-x@example.com", &from("2001:db8:5:6:ffff::1")).await);
    assert!(matches!(
        wrong_login(&f, "v6-y@example.com", &from("2001:db8:5:7::1")).await,
        Err(AuthError::InvalidCredentials)
    ));
    for i in 0..30 {
        assert!(
            wrong_login(&f, &format!("v4-{i}@example.com"), &from("192.0.2.99"))
                .await
                .is_err()
        );
    }
    retry_after(wrong_login(&f, "v4-x@example.com", &from("64:ff9b::192.0.2.99")).await);
    retry_after(wrong_login(&f, "v4-y@example.com", &from("::ffff:192.0.2.99")).await);
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
    let new_account_calls = f.store.calls();
    f.store.clear_calls();

    let again = f
        .auth
        .register_enumeration_safe("  EVE@Example.com", Password::new("another passphrase"), &client)
        .await;
    match again.unwrap() {
        Registration::AlreadyRegistered { notify, user_id } => {
            assert_eq!(
                (notify.as_ref().map(auth_core::Email::as_str), user_id),
                (Some("eve@example.com"), user.id),
                "the stored address"
            );
        }
        other => panic!("expected AlreadyRegistered, got {other:?}"),
    }
    assert_eq!(f.work(), (0, 1), "the same work: the password is hashed either way");
    assert_eq!(
        f.store.calls(),
        new_account_calls,
        "and the same store calls: an insert, then a lookup by email"
    );
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
async fn reset_requests_over_the_account_limit_are_answered_alike_and_send_nothing() {
    let f = Fixture::new();
    f.register("gil@example.com").await;
    let mut sent = Vec::new();
    for i in 0..5 {
        let client = from(&format!("192.0.2.{}", 30 + i));
        sent.push(
            f.auth
                .request_password_reset("gil@example.com", &client)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    f.events.take();
    // The sixth, by any spelling and from anywhere: the same success, no mail, no token.
    let sixth = f
        .auth
        .request_password_reset(" GIL@example.com", &from("192.0.2.40"))
        .await
        .unwrap();
    assert!(sixth.is_none());
    let events = f.events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind(), auth_core::EventKind::RateLimited);
    // The owner's newest mail still works: the attacker's requests cannot block the reset.
    let newest = sent.pop().unwrap();
    f.auth
        .reset_password(
            newest.token.expose_secret(),
            Password::new("a brand new passphrase"),
            &from("192.0.2.41"),
        )
        .await
        .unwrap();

    // An unknown address meets the same limit at the same count.
    for i in 0..6 {
        let client = from(&format!("192.0.2.{}", 50 + i));
        let answer = f.auth.request_password_reset("nobody@example.com", &client).await;
        assert!(answer.unwrap().is_none());
    }
    f.clock.advance(Duration::from_secs(720));
    assert!(
        f.auth
            .request_password_reset("gil@example.com", &from("192.0.2.60"))
            .await
            .unwrap()
            .is_some(),
        "one more after 12 minutes"
    );
}

#[tokio::test]
async fn verification_mails_are_limited_per_account_and_answered_alike() {
    let f = Fixture::new();
    let user = f.register("hal@example.com").await;
    let client = from("192.0.2.70");
    for _ in 0..10 {
        let delivery = f.auth.request_email_verification(user.id, &client).await.unwrap();
        assert!(delivery.is_some());
    }
    f.events.take();
    // Sixty more, the flood of the report: the same success each time, and nothing to send.
    for _ in 0..60 {
        let delivery = f.auth.request_email_verification(user.id, &client).await.unwrap();
        assert!(delivery.is_none());
    }
    let events = f.events.take();
    assert_eq!(events.len(), 60);
    assert!(events.iter().all(|e| e.kind() == auth_core::EventKind::RateLimited));
    // The account's mails are one allowance, whatever their kind or requester.
    let reset = f
        .auth
        .request_password_reset("hal@example.com", &from("192.0.2.71"))
        .await
        .unwrap();
    assert!(reset.is_none(), "a reset mail draws on the same allowance");
    // One mail more every six minutes.
    f.clock.advance(Duration::from_secs(360));
    assert!(
        f.auth
            .request_email_verification(user.id, &client)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        f.auth
            .request_email_verification(user.id, &client)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn mails_are_limited_per_client_across_accounts() {
    let f = Fixture::with_limits(RateLimits::default().with_limit(Bucket::RegistrationsPerClient, None));
    let client = from("192.0.2.80");
    let mut sent = 0;
    for i in 0..30 {
        let user = f.register(&format!("mass{i}@example.com")).await;
        if f.auth
            .request_email_verification(user.id, &client)
            .await
            .unwrap()
            .is_some()
        {
            sent += 1;
        }
    }
    assert_eq!(sent, 20, "twenty mails per hour per client");
    // Resets from that client send nothing either, and are answered alike.
    assert!(
        f.auth
            .request_password_reset("mass0@example.com", &client)
            .await
            .unwrap()
            .is_none()
    );
    // Another client is not affected.
    assert!(
        f.auth
            .request_password_reset("mass0@example.com", &from("192.0.2.81"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn reset_requests_are_limited_per_client() {
    let f = Fixture::new();
    let client = from("192.0.2.50");
    for i in 0..10 {
        f.auth
            .request_password_reset(&format!("other{i}@example.com"), &client)
            .await
            .unwrap();
    }
    assert_eq!(
        retry_after(f.auth.request_password_reset("other10@example.com", &client).await),
        Duration::from_secs(360)
    );
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
    assert_eq!(
        error.retry_after(),
        Some(auth_core::RETRY_AFTER),
        "503 with Retry-After"
    );
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

/// The lock is told to the owner once, with a reset link that unlocks the account; a
/// later lock is told again. An address without an account gets the same work (a decoy
/// token stored) and nobody is told.
#[tokio::test]
async fn the_owner_of_a_locked_account_is_told_once_per_lock_with_a_reset_link() {
    let limits = RateLimits::default().with_limit(
        auth_core::Bucket::ConsecutiveLoginFailuresPerAccount,
        Some(Limit::total(3)),
    );
    let f = Fixture::with_limits(limits);
    f.register("lou@example.com").await;
    f.notices.take();
    for _ in 0..3 {
        let failed = wrong_login(&f, "lou@example.com", &from("198.51.100.1")).await;
        assert!(matches!(failed, Err(AuthError::InvalidCredentials)), "{failed:?}");
        f.clock.advance(Duration::from_secs(60));
    }
    assert!(f.notices.take_whole().is_empty(), "not locked yet");
    f.store.clear_calls();
    for _ in 0..3 {
        let locked = wrong_login(&f, "lou@example.com", &from("198.51.100.2")).await;
        assert!(matches!(locked, Err(AuthError::AccountLocked)), "{locked:?}");
    }
    let known_calls = f.store.calls();
    let told = f.notices.take_whole();
    assert_eq!(told.len(), 1, "one notice per lock: {told:?}");
    assert_eq!(told[0].kind, SecurityNoticeKind::AccountLocked);
    assert_eq!(told[0].to.as_str(), "lou@example.com");
    let link = told[0].link.clone().expect("a reset link");
    assert_eq!(link.purpose, auth_core::TokenPurpose::PasswordReset);

    // An address without an account: locked alike, the same store work, nobody told.
    for _ in 0..3 {
        let _ = wrong_login(&f, "nobody@example.com", &from("198.51.100.1")).await;
        f.clock.advance(Duration::from_secs(60));
    }
    f.store.clear_calls();
    for _ in 0..3 {
        let locked = wrong_login(&f, "nobody@example.com", &from("198.51.100.2")).await;
        assert!(matches!(locked, Err(AuthError::AccountLocked)), "{locked:?}");
    }
    assert_eq!(f.store.calls(), known_calls, "the same store work");
    assert!(f.notices.take_whole().is_empty());

    // The link unlocks; a new lock is told again.
    f.auth
        .reset_password(
            link.token.expose_secret(),
            Password::new("a brand new passphrase"),
            &from("192.0.2.1"),
        )
        .await
        .unwrap();
    f.notices.take();
    for _ in 0..4 {
        let _ = wrong_login(&f, "lou@example.com", &from("198.51.100.3")).await;
    }
    assert_eq!(
        f.notices.take(),
        [(SecurityNoticeKind::AccountLocked, "lou@example.com".to_owned())]
    );
}
