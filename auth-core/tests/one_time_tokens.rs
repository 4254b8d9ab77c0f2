//! Password reset (OWASP Forgot Password Cheat Sheet) and email verification, and the
//! property that no token kind is accepted where another is expected.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    AuthError, ClientInfo, Email, OneTimeToken, OneTimeTokenStore, OpaqueToken, Password, PolicyViolation,
    SessionStore, TokenError, TokenKind, TokenPurpose, UserStore,
};
use common::{Fixture, PASSWORD};
use proptest::prelude::*;
use time::macros::datetime;

const NEW_PASSWORD: &str = "a brand new passphrase";
const SECOND: Duration = Duration::from_secs(1);

fn one_time_error<T: std::fmt::Debug>(result: Result<T, AuthError>) -> TokenError {
    match result.unwrap_err() {
        error @ AuthError::InvalidOneTimeToken(_) => {
            assert_eq!((error.code(), error.http_status()), ("invalid_token", 400));
            match error {
                AuthError::InvalidOneTimeToken(reason) => reason,
                _ => unreachable!(),
            }
        }
        other => panic!("expected an invalid one-time token, got {other:?}"),
    }
}

// ---------------------------------------------------------------- password reset

#[tokio::test]
async fn a_reset_is_delivered_only_for_an_active_account_and_to_the_stored_address() {
    let f = Fixture::new();
    let user = f.register("alice@example.com").await;
    let delivery = f
        .auth
        .request_password_reset("  ALICE@Example.COM ", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        delivery.to.as_str(),
        "alice@example.com",
        "the stored address, not the string typed"
    );
    assert_eq!(
        (delivery.user_id, delivery.purpose),
        (user.id, TokenPurpose::PasswordReset)
    );
    assert_eq!(delivery.expires_at, datetime!(2026-06-01 10:00 UTC), "one hour");
    assert!(delivery.token.expose_secret().starts_with("pr_"));

    for nobody in ["nobody@example.com", "not an email", ""] {
        assert!(
            f.auth
                .request_password_reset(nobody, &ClientInfo::unknown())
                .await
                .unwrap()
                .is_none(),
            "{nobody:?}"
        );
    }
    f.auth.set_active(user.id, false, &ClientInfo::unknown()).await.unwrap();
    assert!(
        f.auth
            .request_password_reset("alice@example.com", &ClientInfo::unknown())
            .await
            .unwrap()
            .is_none(),
        "disabled"
    );
}

#[tokio::test]
async fn reset_sets_the_password_revokes_everything_and_does_not_log_in() {
    let f = Fixture::new();
    let user = f.register("bob@example.com").await;
    let login = f
        .auth
        .login("bob@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let delivery = f
        .auth
        .request_password_reset("bob@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    f.clock.advance(Duration::from_secs(60));

    let reset: () = f
        .auth
        .reset_password(
            delivery.token.expose_secret(),
            Password::new(NEW_PASSWORD),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();
    let () = reset; // nothing to log in with

    assert!(
        f.auth
            .login("bob@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .is_err()
    );
    assert!(
        f.auth
            .login("bob@example.com", Password::new(NEW_PASSWORD), &ClientInfo::unknown())
            .await
            .is_ok()
    );
    assert!(
        f.auth
            .authenticate(login.tokens.access_token.expose_secret())
            .await
            .is_err(),
        "access revoked"
    );
    assert!(
        f.auth
            .refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_err(),
        "sessions revoked"
    );
    let stored = f.store.find_user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(
        stored.email_verified_at,
        Some(datetime!(2026-06-01 09:01 UTC)),
        "reading the mail proved the address"
    );
    let told = f.notices.take_whole();
    assert_eq!(told.len(), 1, "one notice: the reset ({told:?})");
    assert_eq!(
        (&told[0].kind, told[0].to.as_str(), told[0].at),
        (
            &auth_core::SecurityNoticeKind::PasswordReset,
            "bob@example.com",
            datetime!(2026-06-01 09:01 UTC)
        )
    );
    assert!(told[0].link.is_none(), "the notice carries no token");
}

/// A password change tells the account's owner, naming the client; a refused change
/// tells nothing.
#[tokio::test]
async fn a_password_change_is_told_to_the_owner_and_a_refused_one_is_not() {
    let f = Fixture::new();
    let user = f.register("cai@example.com").await;
    let phone = ClientInfo::new(Some("Safari on iOS"), Some("198.51.100.4".parse().unwrap()));
    let refused = f
        .auth
        .change_password(
            user.id,
            Password::new("not the password"),
            Password::new(NEW_PASSWORD),
            &phone,
        )
        .await;
    assert!(refused.is_err());
    assert!(f.notices.take().is_empty());
    f.auth
        .change_password(user.id, Password::new(PASSWORD), Password::new(NEW_PASSWORD), &phone)
        .await
        .unwrap();
    let told = f.notices.take_whole();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(
        (&told[0].kind, told[0].to.as_str(), &told[0].client),
        (
            &auth_core::SecurityNoticeKind::PasswordChanged,
            "cai@example.com",
            &phone
        )
    );
}

#[tokio::test]
async fn a_reset_token_works_once() {
    let f = Fixture::new();
    f.register("cara@example.com").await;
    let delivery = f
        .auth
        .request_password_reset("cara@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    let token = delivery.token.expose_secret();
    f.auth
        .reset_password(token, Password::new(NEW_PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap();
    let again = f
        .auth
        .reset_password(token, Password::new("yet another passphrase"), &ClientInfo::unknown())
        .await;
    assert_eq!(one_time_error(again), TokenError::Unknown, "spent tokens are not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_uses_of_one_reset_token_succeed_exactly_once() {
    let f = Arc::new(Fixture::new());
    f.register("dave@example.com").await;
    let delivery = f
        .auth
        .request_password_reset("dave@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    let token = delivery.token.expose_secret().to_owned();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (f, token) = (f.clone(), token.clone());
            tokio::spawn(async move {
                f.auth
                    .reset_password(
                        &token,
                        Password::new(format!("new passphrase {i}")),
                        // One client each: the race is the subject, not the per-client limit.
                        &ClientInfo::new(None, Some(std::net::IpAddr::from([10, 0, 0, i]))),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(()) => winners.push(i),
            Err(AuthError::InvalidOneTimeToken(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one use succeeds");
    let winner = format!("new passphrase {}", winners[0]);
    assert!(
        f.auth
            .login("dave@example.com", Password::new(winner), &ClientInfo::unknown())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_reset_token_expires_after_one_hour() {
    let f = Fixture::new();
    f.register("erin@example.com").await;
    let first = f
        .auth
        .request_password_reset("erin@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    f.clock.advance(Duration::from_secs(3600) - SECOND);
    f.auth
        .reset_password(
            first.token.expose_secret(),
            Password::new(NEW_PASSWORD),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();

    let second = f
        .auth
        .request_password_reset("erin@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    f.clock.advance(Duration::from_secs(3600));
    let late = f
        .auth
        .reset_password(
            second.token.expose_secret(),
            Password::new("yet another passphrase"),
            &ClientInfo::unknown(),
        )
        .await;
    assert_eq!(one_time_error(late), TokenError::Expired);
}

#[tokio::test]
async fn a_newer_reset_request_kills_the_older_token() {
    let f = Fixture::new();
    f.register("finn@example.com").await;
    let older = f
        .auth
        .request_password_reset("finn@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    let newer = f
        .auth
        .request_password_reset("finn@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    let stale = f
        .auth
        .reset_password(
            older.token.expose_secret(),
            Password::new(NEW_PASSWORD),
            &ClientInfo::unknown(),
        )
        .await;
    assert_eq!(one_time_error(stale), TokenError::Unknown);
    assert!(
        f.auth
            .reset_password(
                newer.token.expose_secret(),
                Password::new(NEW_PASSWORD),
                &ClientInfo::unknown()
            )
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_password_change_by_any_route_kills_pending_reset_tokens() {
    let f = Fixture::new();
    let user = f.register("gina@example.com").await;
    let pending = f
        .auth
        .request_password_reset("gina@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    f.auth
        .change_password(
            user.id,
            Password::new(PASSWORD),
            Password::new(NEW_PASSWORD),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();
    let stale = f
        .auth
        .reset_password(
            pending.token.expose_secret(),
            Password::new("yet another passphrase"),
            &ClientInfo::unknown(),
        )
        .await;
    assert_eq!(one_time_error(stale), TokenError::Revoked);
    assert!(
        f.auth
            .login("gina@example.com", Password::new(NEW_PASSWORD), &ClientInfo::unknown())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_weak_new_password_does_not_spend_the_token() {
    let f = Fixture::new();
    f.register("hugo@example.com").await;
    let delivery = f
        .auth
        .request_password_reset("hugo@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    let token = delivery.token.expose_secret();
    let weak = f
        .auth
        .reset_password(token, Password::new("password1"), &ClientInfo::unknown())
        .await
        .unwrap_err();
    assert!(
        matches!(weak, AuthError::WeakPassword(PolicyViolation::Common)),
        "{weak:?}"
    );
    let same_as_email = f
        .auth
        .reset_password(token, Password::new("hugo@example.com"), &ClientInfo::unknown())
        .await
        .unwrap_err();
    assert!(matches!(
        same_as_email,
        AuthError::WeakPassword(PolicyViolation::SameAsEmail)
    ));
    assert!(
        f.auth
            .reset_password(token, Password::new(NEW_PASSWORD), &ClientInfo::unknown())
            .await
            .is_ok(),
        "the same link still works"
    );
}

#[tokio::test]
async fn malformed_and_foreign_reset_tokens_are_invalid() {
    let f = Fixture::new();
    f.register("iris@example.com").await;
    let (unknown, _) = OpaqueToken::generate(TokenKind::PasswordReset).unwrap();
    assert_eq!(
        one_time_error(
            f.auth
                .reset_password("", Password::new(NEW_PASSWORD), &ClientInfo::unknown())
                .await
        ),
        TokenError::Malformed
    );
    let unknown = f
        .auth
        .reset_password(
            unknown.expose_secret(),
            Password::new(NEW_PASSWORD),
            &ClientInfo::unknown(),
        )
        .await;
    assert_eq!(one_time_error(unknown), TokenError::Unknown);
}

#[tokio::test]
async fn both_answers_to_a_reset_request_do_the_same_store_work() {
    // Same calls, in the same order, whether or not the account exists: no early return,
    // and without an account the stored token is a decoy nobody receives.
    let f = Fixture::new();
    f.register("jade@example.com").await;
    let disabled = f.register("judy@example.com").await;
    f.auth
        .set_active(disabled.id, false, &ClientInfo::unknown())
        .await
        .unwrap();
    let mut answers = Vec::new();
    for email in ["jade@example.com", "jane@example.com", "judy@example.com"] {
        f.store.clear_calls();
        answers.push(
            f.auth
                .request_password_reset(email, &ClientInfo::unknown())
                .await
                .unwrap()
                .is_some(),
        );
        assert_eq!(
            f.store.calls(),
            ["find_user_by_email", "insert_one_time_token"],
            "{email}"
        );
    }
    assert_eq!(answers, [true, false, false]);
}

// ---------------------------------------------------------------- email verification

#[tokio::test]
async fn verification_marks_the_email_verified_once() {
    let f = Fixture::new();
    let user = f.register("kai@example.com").await;
    let delivery = f
        .auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (delivery.to.as_str(), delivery.purpose),
        ("kai@example.com", TokenPurpose::EmailVerification)
    );
    assert_eq!(delivery.expires_at, datetime!(2026-06-02 09:00 UTC), "24 hours");
    assert!(delivery.token.expose_secret().starts_with("ev_"));
    f.clock.advance(Duration::from_secs(30));
    let verified = f
        .auth
        .verify_email(delivery.token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(verified.email_verified_at, Some(datetime!(2026-06-01 09:00:30 UTC)));
    assert!(verified.email_verified());
    assert_eq!(
        one_time_error(
            f.auth
                .verify_email(delivery.token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Unknown
    );
    assert!(
        f.auth
            .request_email_verification(user.id, &ClientInfo::unknown())
            .await
            .unwrap()
            .is_none(),
        "nothing left to verify"
    );
}

#[tokio::test]
async fn a_verification_token_expires_after_twenty_four_hours() {
    let f = Fixture::new();
    let user = f.register("lina@example.com").await;
    let first = f
        .auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    f.clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(
        one_time_error(
            f.auth
                .verify_email(first.token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Expired
    );

    let second = f
        .auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    f.clock.advance(Duration::from_secs(24 * 3600) - SECOND);
    assert!(
        f.auth
            .verify_email(second.token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_ok(),
        "just before expiry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_uses_of_one_verification_token_succeed_exactly_once() {
    let f = Arc::new(Fixture::new());
    let user = f.register("milo@example.com").await;
    let delivery = f
        .auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    let token = delivery.token.expose_secret().to_owned();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (f, token) = (f.clone(), token.clone());
            tokio::spawn(async move { f.auth.verify_email(&token, &ClientInfo::unknown()).await })
        })
        .collect();
    let mut successes = 0;
    for task in tasks {
        successes += usize::from(task.await.unwrap().is_ok());
    }
    assert_eq!(successes, 1);
}

#[tokio::test]
async fn a_verification_token_dies_with_the_address_it_was_sent_to() {
    let f = Fixture::new();
    let user = f.register("nils@example.com").await;
    // A token issued while the account had another address (before an email change).
    let (token, hash) = OpaqueToken::generate(TokenKind::EmailVerification).unwrap();
    let record = OneTimeToken::new(
        user.id,
        TokenPurpose::EmailVerification,
        Email::parse("old-address@example.com").unwrap(),
        user.token_version,
        user.created_at,
        user.created_at + Duration::from_secs(3600),
    );
    f.store.insert_one_time_token(&hash, &record).await.unwrap();
    assert_eq!(
        one_time_error(f.auth.verify_email(token.expose_secret(), &ClientInfo::unknown()).await),
        TokenError::Revoked
    );
    assert!(
        !f.store
            .find_user_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .email_verified()
    );
}

#[tokio::test]
async fn a_newer_verification_request_replaces_the_older_token() {
    let f = Fixture::new();
    let user = f.register("opal@example.com").await;
    let older = f
        .auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    let newer = f
        .auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        one_time_error(
            f.auth
                .verify_email(older.token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Unknown
    );
    assert!(
        f.auth
            .verify_email(newer.token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_ok()
    );
    let ghost = auth_core::UserId::new_at(datetime!(2026-01-01 0:00 UTC));
    assert_eq!(
        f.auth
            .request_email_verification(ghost, &ClientInfo::unknown())
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

// ---------------------------------------------------------------- token kinds

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Access,
    Refresh,
    Reset,
    Verification,
}

const KINDS: [Kind; 4] = [Kind::Access, Kind::Refresh, Kind::Reset, Kind::Verification];

/// A fresh account holding one live token of every kind.
async fn tokens_of_every_kind(f: &Fixture, email: &str) -> [(Kind, String); 4] {
    let user = f.register(email).await;
    let login = f
        .auth
        .login(email, Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let reset = f
        .auth
        .request_password_reset(email, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    let verification = f
        .auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    [
        (Kind::Access, login.tokens.access_token.expose_secret().to_owned()),
        (Kind::Refresh, login.tokens.refresh_token.expose_secret().to_owned()),
        (Kind::Reset, reset.token.expose_secret().to_owned()),
        (Kind::Verification, verification.token.expose_secret().to_owned()),
    ]
}

/// Presents `token` where `expected` is wanted; true if it was accepted.
async fn accepted(f: &Fixture, expected: Kind, token: &str) -> bool {
    match expected {
        Kind::Access => f.auth.authenticate(token).await.is_ok(),
        Kind::Refresh => f.auth.refresh(token, &ClientInfo::unknown()).await.is_ok(),
        Kind::Reset => f
            .auth
            .reset_password(token, Password::new(NEW_PASSWORD), &ClientInfo::unknown())
            .await
            .is_ok(),
        Kind::Verification => f.auth.verify_email(token, &ClientInfo::unknown()).await.is_ok(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// No token kind is accepted where another is expected, and the failed attempt leaves
    /// the token working for its own purpose.
    #[test]
    fn no_token_kind_passes_for_another(given in prop::sample::select(KINDS.to_vec()), expected in prop::sample::select(KINDS.to_vec())) {
        prop_assume!(given != expected);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let f = Fixture::new();
            let tokens = tokens_of_every_kind(&f, "kinds@example.com").await;
            let token = &tokens.iter().find(|(kind, _)| *kind == given).unwrap().1;
            assert!(!accepted(&f, expected, token).await, "{given:?} accepted as {expected:?}");
            assert!(accepted(&f, given, token).await, "{given:?} still works as itself");
        });
    }
}

#[tokio::test]
async fn a_one_time_token_from_the_store_of_another_purpose_is_not_found() {
    let f = Fixture::new();
    let user = f.register("pax@example.com").await;
    // Even a token with a valid reset prefix, stored under the other purpose, is refused.
    let (token, hash) = OpaqueToken::generate(TokenKind::PasswordReset).unwrap();
    let record = OneTimeToken::new(
        user.id,
        TokenPurpose::EmailVerification,
        user.email.clone(),
        user.token_version,
        user.created_at,
        user.created_at + Duration::from_secs(3600),
    );
    f.store.insert_one_time_token(&hash, &record).await.unwrap();
    let refused = f
        .auth
        .reset_password(
            token.expose_secret(),
            Password::new(NEW_PASSWORD),
            &ClientInfo::unknown(),
        )
        .await;
    assert_eq!(one_time_error(refused), TokenError::Unknown);
    assert!(f.store.list_sessions(user.id).await.unwrap().is_empty());
}
