//! Security events: exactly one per outcome of every flow, with the right action, outcome,
//! subject and session, and never a secret.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    Action, AuthEvent, Bucket, ClientInfo, EmailDigest, EventKind, HashPool, Limit, OpaqueToken, Outcome, Password,
    PolicyViolation, RateLimits, Refusal, Role, Subject, TokenError, TokenKind, UserId,
};
use common::{Fixture, PASSWORD};
use time::macros::datetime;

fn laptop() -> ClientInfo {
    ClientInfo::new(Some("Firefox/133"), Some("203.0.113.7".parse().unwrap()))
}

/// The one event the last call recorded.
fn one(f: &Fixture) -> AuthEvent {
    let mut events = f.events.take();
    assert_eq!(events.len(), 1, "exactly one event per outcome, got {events:#?}");
    events.pop().unwrap()
}

fn assert_event(event: &AuthEvent, action: Action, outcome: Outcome) {
    assert_eq!((event.action, &event.outcome), (action, &outcome), "{event:#?}");
    assert_eq!(event.at, datetime!(2026-06-01 09:00 UTC));
}

fn digest_subject(event: &AuthEvent) -> EmailDigest {
    match event.subject {
        Subject::Email(digest) => digest,
        ref other => panic!("expected an email digest, got {other:?}"),
    }
}

#[tokio::test]
async fn registration_outcomes() {
    let f = Fixture::new();
    let client = laptop();
    let user = f
        .auth
        .register("ann@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    let event = one(&f);
    assert_event(&event, Action::Register, Outcome::Success);
    assert_eq!((event.subject, event.client), (Subject::User(user.id), client.clone()));

    let _ = f
        .auth
        .register("ANN@example.com", Password::new(PASSWORD), &client)
        .await;
    let event = one(&f);
    assert_event(&event, Action::Register, Outcome::Refused(Refusal::EmailTaken));
    digest_subject(&event);

    let _ = f.auth.register("not an email", Password::new(PASSWORD), &client).await;
    let event = one(&f);
    assert_event(&event, Action::Register, Outcome::Refused(Refusal::InvalidEmail));
    assert_eq!(event.subject, Subject::Unknown);

    let _ = f
        .auth
        .register("bob@example.com", Password::new("short"), &client)
        .await;
    assert_event(
        &one(&f),
        Action::Register,
        Outcome::Refused(Refusal::WeakPassword(PolicyViolation::TooShort { min: 8 })),
    );

    let _ = f
        .auth
        .register_enumeration_safe("ann@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    let event = one(&f);
    assert_event(&event, Action::Register, Outcome::Refused(Refusal::EmailTaken));
    assert_eq!(event.subject, Subject::User(user.id));
}

#[tokio::test]
async fn login_outcomes_keep_the_reason_internal() {
    let f = Fixture::new();
    let user = f.register("cleo@example.com").await;
    f.events.take();
    let login = f
        .auth
        .login("cleo@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let event = one(&f);
    assert_event(&event, Action::Login, Outcome::Success);
    assert_eq!(
        (event.subject, event.session_id),
        (Subject::User(user.id), Some(login.tokens.session.id))
    );

    let _ = f
        .auth
        .login("cleo@example.com", Password::new("wrong password"), &laptop())
        .await;
    let event = one(&f);
    assert_event(&event, Action::Login, Outcome::Refused(Refusal::WrongPassword));
    assert_eq!(event.subject, Subject::User(user.id));

    let _ = f
        .auth
        .login("ghost@example.com", Password::new(PASSWORD), &laptop())
        .await;
    let unknown = one(&f);
    assert_event(&unknown, Action::Login, Outcome::Refused(Refusal::UnknownAccount));
    // The same address always digests the same: attempts on it can be correlated.
    let _ = f
        .auth
        .login(" GHOST@example.com", Password::new(PASSWORD), &laptop())
        .await;
    assert_eq!(digest_subject(&one(&f)), digest_subject(&unknown));

    f.insert("nopassword@example.com", None, true).await;
    let _ = f
        .auth
        .login("nopassword@example.com", Password::new(PASSWORD), &laptop())
        .await;
    assert_event(&one(&f), Action::Login, Outcome::Refused(Refusal::NoPassword));

    f.insert(
        "broken@example.com",
        Some("$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$aGFzaA"),
        true,
    )
    .await;
    let _ = f
        .auth
        .login("broken@example.com", Password::new(PASSWORD), &laptop())
        .await;
    assert_event(&one(&f), Action::Login, Outcome::Refused(Refusal::UnusableHash));

    f.auth.set_active(user.id, false, &laptop()).await.unwrap();
    f.events.take();
    let _ = f
        .auth
        .login("cleo@example.com", Password::new(PASSWORD), &laptop())
        .await;
    assert_event(&one(&f), Action::Login, Outcome::Refused(Refusal::AccountDisabled));
}

#[tokio::test]
async fn rate_limited_and_busy_are_outcomes_of_their_own() {
    let limits = RateLimits::default().with_limit(Bucket::LoginFailuresPerAccount, Some(Limit::per_minute(1)));
    let f = Fixture::with_limits(limits);
    let _ = f
        .auth
        .login("dan@example.com", Password::new("wrong password"), &laptop())
        .await;
    f.events.take();
    let _ = f
        .auth
        .login("dan@example.com", Password::new("wrong password"), &laptop())
        .await;
    assert_event(
        &one(&f),
        Action::Login,
        Outcome::RateLimited {
            retry_after: Duration::from_secs(60),
        },
    );

    let saturated = Saturated::new(&f).await;
    let _ = saturated
        .auth
        .register("eve@example.com", Password::new(PASSWORD), &laptop())
        .await;
    assert_event(&one(&f), Action::Register, Outcome::Busy);
    saturated.release().await;
}

/// A service on `f`'s store, hasher, clock and sink whose hash pool (one permit, no
/// queue) is held by a blocking job until [`release`](Self::release): every hash is
/// refused as busy.
struct Saturated {
    auth: auth_core::AuthService<common::HookedStore>,
    release: tokio::sync::oneshot::Sender<()>,
    holder: tokio::task::JoinHandle<Result<(), auth_core::HashPoolError>>,
}

impl Saturated {
    async fn new(f: &Fixture) -> Self {
        Self::with_limits(f, RateLimits::default()).await
    }

    async fn with_limits(f: &Fixture, limits: RateLimits) -> Self {
        let pool = HashPool::new(1).with_max_queue(0);
        let auth = auth_core::AuthService::new(f.store.clone(), f.auth.tokens().clone())
            .with_hasher(f.hasher.clone())
            .with_clock(Arc::new(f.clock.clone()))
            .with_rate_limits(limits)
            .with_event_sink(Arc::new(f.events.clone()))
            .with_hash_pool(pool.clone());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (started, is_started) = tokio::sync::oneshot::channel::<()>();
        // A pool's job may run twice (HashPool::run); this one holds the only thread, so
        // it runs once.
        let gates = std::sync::Mutex::new(Some((started, released)));
        let holder = tokio::spawn(async move {
            pool.run(move || {
                if let Some((started, released)) = gates.lock().unwrap().take() {
                    let _ = started.send(());
                    let _ = released.blocking_recv();
                }
            })
            .await
        });
        is_started.await.unwrap();
        Self { auth, release, holder }
    }

    async fn release(self) {
        self.release.send(()).unwrap();
        self.holder.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn every_limited_flow_records_one_rate_limited_event() {
    let limits = RateLimits::default()
        .with_limit(Bucket::RegistrationsPerClient, Some(Limit::per_hour(1)))
        .with_limit(Bucket::ResetRequestsPerClient, Some(Limit::per_hour(1)))
        .with_limit(Bucket::ConfirmationsPerClient, Some(Limit::per_minute(1)));
    let f = Fixture::with_limits(limits);
    let client = laptop();
    let limited = |event: AuthEvent, action: Action| {
        assert_eq!(
            (event.action, event.kind()),
            (action, EventKind::RateLimited),
            "{event:#?}"
        );
    };

    f.auth
        .register("gus@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    f.events.take();
    f.work();
    let _ = f
        .auth
        .register("hal@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap_err();
    limited(one(&f), Action::Register);

    let _ = f.auth.request_password_reset("gus@example.com", &client).await.unwrap();
    f.events.take();
    let _ = f
        .auth
        .request_password_reset("gus@example.com", &client)
        .await
        .unwrap_err();
    limited(one(&f), Action::RequestPasswordReset);

    let _ = f.auth.verify_email("ev_guess", &client).await.unwrap_err();
    assert_eq!(one(&f).kind(), EventKind::Refused);
    let _ = f
        .auth
        .reset_password("pr_guess", Password::new("a brand new passphrase"), &client)
        .await
        .unwrap_err();
    limited(one(&f), Action::ResetPassword);
    assert_eq!(f.work(), (0, 0), "no hashing for any of them");
}

#[tokio::test]
async fn a_saturated_pool_during_login_is_one_busy_event() {
    let f = Fixture::new();
    f.register("ivy@example.com").await;
    f.events.take();
    let saturated = Saturated::new(&f).await;
    f.store.clear_calls();
    let error = saturated
        .auth
        .login("ivy@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "busy");
    // Refused before the account is read: under a flood, a refusal costs no store call.
    assert_eq!(f.store.calls(), Vec::<&str>::new());
    let event = one(&f);
    assert_eq!((event.action, event.kind()), (Action::Login, EventKind::Busy));
    saturated.release().await;
}

#[tokio::test]
async fn busy_refusals_of_a_second_are_one_event_each_action_and_one_count() {
    let f = Fixture::new();
    f.register("ivy@example.com").await;
    f.events.take();
    let saturated = Saturated::with_limits(&f, RateLimits::disabled()).await;
    let client = laptop();
    let login = || {
        saturated
            .auth
            .login("ivy@example.com", Password::new(PASSWORD), &client)
    };
    let busy = |result: Result<(), auth_core::AuthError>| assert_eq!(result.unwrap_err().code(), "busy");

    // A flood within one second: the first refusal of each action is recorded in full.
    for _ in 0..100 {
        busy(login().await.map(|_| ()));
    }
    for i in 0..50 {
        let email = format!("new{i}@example.com");
        busy(
            saturated
                .auth
                .register(&email, Password::new(PASSWORD), &laptop())
                .await
                .map(|_| ()),
        );
    }
    let events = f.events.take();
    let seen: Vec<_> = events.iter().map(|e| (e.action, e.kind(), e.repeats)).collect();
    assert_eq!(
        seen,
        [
            (Action::Login, EventKind::Busy, 0),
            (Action::Register, EventKind::Busy, 0)
        ]
    );
    assert_eq!(events[0].client, laptop(), "the first is recorded whole");

    // The first event after that second records the counts first, then itself.
    f.clock.advance(Duration::from_millis(1500));
    busy(login().await.map(|_| ()));
    let events = f.events.take();
    let seen: Vec<_> = events.iter().map(|e| (e.action, e.kind(), e.repeats)).collect();
    assert_eq!(
        seen,
        [
            (Action::Login, EventKind::Busy, 99),
            (Action::Register, EventKind::Busy, 49),
            (Action::Login, EventKind::Busy, 0)
        ]
    );
    let second_end = datetime!(2026-06-01 09:00:01 UTC);
    assert!(
        events[..2]
            .iter()
            .all(|e| e.at == second_end && e.client == ClientInfo::unknown())
    );
    let record = auth_core::AuditRecord::of(&events[0]);
    assert_eq!(record.reason.as_deref(), Some("99 more in the second before"));

    // With nothing after them, the periodic purge records the counts.
    for _ in 0..10 {
        busy(login().await.map(|_| ()));
    }
    assert!(f.events.take().is_empty(), "counted, not recorded");
    f.clock.advance(Duration::from_secs(1));
    saturated.auth.purge_expired().await.unwrap();
    let seen: Vec<_> = f.events.take().iter().map(|e| (e.action, e.repeats)).collect();
    assert_eq!(seen, [(Action::Login, 10)]);
    saturated.release().await;

    // Every other outcome is one event per call, within a second too.
    for _ in 0..3 {
        let _ = f
            .auth
            .login("ivy@example.com", Password::new("wrong password"), &laptop())
            .await;
    }
    let events = f.events.take();
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e.kind() == EventKind::LoginFailed && e.repeats == 0)
    );
}

#[tokio::test]
async fn session_outcomes_and_reuse_detection() {
    let f = Fixture::new();
    let user = f.register("fay@example.com").await;
    let login = f
        .auth
        .login("fay@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let session = login.tokens.session.id;
    f.events.take();

    let next = f
        .auth
        .refresh(login.tokens.refresh_token.expose_secret(), &laptop())
        .await
        .unwrap();
    let event = one(&f);
    assert_event(&event, Action::Refresh, Outcome::Success);
    assert_eq!(
        (event.subject, event.session_id),
        (Subject::User(user.id), Some(session))
    );

    let _ = f
        .auth
        .refresh(login.tokens.refresh_token.expose_secret(), &laptop())
        .await;
    let event = one(&f);
    assert_event(
        &event,
        Action::Refresh,
        Outcome::Refused(Refusal::InvalidToken(TokenError::Reused)),
    );
    assert_eq!(event.kind(), EventKind::RefreshReuseDetected);
    assert_eq!(
        (event.subject, event.session_id),
        (Subject::User(user.id), Some(session))
    );

    let _ = f.auth.refresh("rt_garbage", &laptop()).await;
    let event = one(&f);
    assert_event(
        &event,
        Action::Refresh,
        Outcome::Refused(Refusal::InvalidToken(TokenError::Malformed)),
    );
    assert_eq!(event.subject, Subject::Unknown);

    f.auth
        .logout(next.refresh_token.expose_secret(), &laptop())
        .await
        .unwrap();
    let event = one(&f);
    assert_event(&event, Action::Logout, Outcome::Success);
    assert_eq!(event.session_id, Some(session));
    f.auth.logout("garbage", &laptop()).await.unwrap();
    assert_event(&one(&f), Action::Logout, Outcome::Success);

    let second = f
        .auth
        .login("fay@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    f.events.take();
    f.auth
        .revoke_session(user.id, second.tokens.session.id, &laptop())
        .await
        .unwrap();
    assert_event(&one(&f), Action::RevokeSession, Outcome::Success);
    let _ = f
        .auth
        .revoke_session(user.id, second.tokens.session.id, &laptop())
        .await;
    assert_event(&one(&f), Action::RevokeSession, Outcome::Refused(Refusal::NotFound));

    f.auth.logout_all(user.id, &laptop()).await.unwrap();
    let event = one(&f);
    assert_event(&event, Action::LogoutAll, Outcome::Success);
    assert_eq!(event.subject, Subject::User(user.id));
}

#[tokio::test]
async fn password_and_verification_outcomes() {
    let f = Fixture::new();
    let user = f.register("gus@example.com").await;
    f.events.take();

    let _ = f
        .auth
        .change_password(
            user.id,
            Password::new("wrong password"),
            Password::new("new passphrase!"),
            &laptop(),
        )
        .await;
    assert_event(
        &one(&f),
        Action::ChangePassword,
        Outcome::Refused(Refusal::WrongPassword),
    );
    f.auth
        .change_password(
            user.id,
            Password::new(PASSWORD),
            Password::new("new passphrase!"),
            &laptop(),
        )
        .await
        .unwrap();
    assert_event(&one(&f), Action::ChangePassword, Outcome::Success);

    let delivery = f
        .auth
        .request_password_reset("gus@example.com", &laptop())
        .await
        .unwrap()
        .unwrap();
    let event = one(&f);
    assert_event(&event, Action::RequestPasswordReset, Outcome::Success);
    assert_eq!(event.subject, Subject::User(user.id));
    f.auth
        .request_password_reset("nobody@example.com", &laptop())
        .await
        .unwrap();
    let event = one(&f);
    assert_event(&event, Action::RequestPasswordReset, Outcome::Success);
    digest_subject(&event);

    f.auth
        .reset_password(
            delivery.token.expose_secret(),
            Password::new("newer passphrase"),
            &laptop(),
        )
        .await
        .unwrap();
    let event = one(&f);
    assert_event(&event, Action::ResetPassword, Outcome::Success);
    assert_eq!(event.subject, Subject::User(user.id));
    let _ = f
        .auth
        .reset_password(
            delivery.token.expose_secret(),
            Password::new("newest passphrase"),
            &laptop(),
        )
        .await;
    assert_event(
        &one(&f),
        Action::ResetPassword,
        Outcome::Refused(Refusal::InvalidToken(TokenError::Unknown)),
    );

    let verification = f.auth.request_email_verification(user.id, &laptop()).await.unwrap();
    assert_event(&one(&f), Action::RequestEmailVerification, Outcome::Success);
    assert!(verification.is_none(), "the reset verified the address");
    let (unknown, _) = OpaqueToken::generate(TokenKind::EmailVerification).unwrap();
    let _ = f.auth.verify_email(unknown.expose_secret(), &laptop()).await;
    assert_event(
        &one(&f),
        Action::VerifyEmail,
        Outcome::Refused(Refusal::InvalidToken(TokenError::Unknown)),
    );

    let other = f.register("hal@example.com").await;
    f.events.take();
    let verification = f
        .auth
        .request_email_verification(other.id, &laptop())
        .await
        .unwrap()
        .unwrap();
    one(&f);
    f.auth
        .verify_email(verification.token.expose_secret(), &laptop())
        .await
        .unwrap();
    let event = one(&f);
    assert_event(&event, Action::VerifyEmail, Outcome::Success);
    assert_eq!(event.subject, Subject::User(other.id));
}

#[tokio::test]
async fn administration_outcomes() {
    let f = Fixture::new();
    let user = f.register("ivy@example.com").await;
    let ghost = UserId::new_at(datetime!(2026-01-01 0:00 UTC));
    f.events.take();
    f.auth.set_active(user.id, false, &laptop()).await.unwrap();
    assert_event(&one(&f), Action::DisableAccount, Outcome::Success);
    f.auth.set_active(user.id, true, &laptop()).await.unwrap();
    assert_event(&one(&f), Action::EnableAccount, Outcome::Success);
    let _ = f.auth.set_active(ghost, false, &laptop()).await;
    assert_event(&one(&f), Action::DisableAccount, Outcome::Refused(Refusal::NotFound));
    let roles: BTreeSet<Role> = [Role::new("admin").unwrap()].into();
    f.auth.set_roles(user.id, roles.clone(), &laptop()).await.unwrap();
    let event = one(&f);
    assert_event(&event, Action::SetRoles, Outcome::Success);
    assert_eq!(event.subject, Subject::User(user.id));
    let _ = f.auth.set_roles(ghost, roles, &laptop()).await;
    assert_event(&one(&f), Action::SetRoles, Outcome::Refused(Refusal::NotFound));
}

#[tokio::test]
async fn store_failures_are_failed_outcomes_and_reads_record_nothing() {
    let f = Fixture::new();
    let user = f.register("jon@example.com").await;
    let login = f
        .auth
        .login("jon@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    f.events.take();
    // Reads are not events.
    f.auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    f.auth.list_sessions(user.id).await.unwrap();
    f.auth.purge_expired().await.unwrap();
    assert!(f.events.take().is_empty());

    f.store.set_down(true);
    let _ = f
        .auth
        .login("jon@example.com", Password::new(PASSWORD), &laptop())
        .await;
    assert_event(&one(&f), Action::Login, Outcome::Failed);
}

#[tokio::test]
async fn events_never_carry_secrets() {
    let f = Fixture::new();
    f.register("kim@example.com").await;
    let login = f
        .auth
        .login("kim@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let reset = f
        .auth
        .request_password_reset("kim@example.com", &laptop())
        .await
        .unwrap()
        .unwrap();
    let _ = f
        .auth
        .login("kim@example.com", Password::new("a guessed password"), &laptop())
        .await;
    let recorded = format!("{:?}", f.events.take());
    for secret in [
        PASSWORD,
        "a guessed password",
        "kim@example.com",
        login.tokens.access_token.expose_secret(),
        login.tokens.refresh_token.expose_secret(),
        reset.token.expose_secret(),
    ] {
        assert!(!recorded.contains(secret), "{secret:?} in {recorded}");
    }
}
