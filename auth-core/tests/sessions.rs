//! Sessions and refresh tokens (RFC 9700): rotation, reuse detection, lifetimes, logout,
//! and the revocation table of `AuthService`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    AuthError, BrowserCheck, ClientInfo, Password, Role, SessionStore, SigningKey, TokenError, TokenKind, Tokens,
    UserStore,
};
use common::{Fixture, PASSWORD, SECRET, laptop};
use time::macros::datetime;

const DAY: Duration = Duration::from_secs(24 * 3600);
const SECOND: Duration = Duration::from_secs(1);

fn token_error<T: std::fmt::Debug>(result: Result<T, AuthError>) -> TokenError {
    match result.unwrap_err() {
        AuthError::InvalidToken(reason) => reason,
        other => panic!("expected invalid_token, got {other:?}"),
    }
}

async fn logged_in(f: &Fixture, email: &str) -> (auth_core::User, auth_core::TokenPair) {
    let (user, login) = f.logged_in(email).await;
    (user, login.tokens)
}

#[tokio::test]
async fn login_starts_a_session_labelled_with_the_client() {
    let f = Fixture::new();
    let (user, tokens) = logged_in(&f, "ana@example.com").await;
    let refresh = tokens.refresh_token.expose_secret();
    assert!(
        refresh.starts_with(TokenKind::Refresh.prefix()) && refresh.len() == 46,
        "opaque, 256 bits, base64url"
    );
    let session = &tokens.session;
    assert_eq!(
        (session.user_id, session.created_at),
        (user.id, datetime!(2026-06-01 09:00 UTC))
    );
    assert_eq!(session.user_agent.as_deref(), Some("Firefox/133.0 on Linux"));
    assert_eq!(session.ip, Some("203.0.113.7".parse().unwrap()));
    assert_eq!(session.expires_at, datetime!(2026-07-01 09:00 UTC), "30 days absolute");
    let claims = f.auth.tokens().verify(tokens.access_token.expose_secret()).unwrap();
    assert_eq!(
        claims.session_id(),
        Some(session.id),
        "the access token names its session"
    );
    assert_eq!(f.auth.list_sessions(user.id).await.unwrap(), vec![session.clone()]);
}

#[tokio::test]
async fn refresh_tokens_are_stored_and_found_by_their_sha256() {
    let f = Fixture::new();
    let (_, tokens) = logged_in(&f, "ben@example.com").await;
    let presented = tokens.refresh_token.expose_secret();
    let hash = auth_core::OpaqueToken::hash_presented(TokenKind::Refresh, presented).unwrap();
    let record = f.store.find_refresh_token(&hash).await.unwrap().unwrap();
    assert_eq!(record.session, tokens.session);
}

#[tokio::test]
async fn refresh_rotates_within_the_same_session() {
    let f = Fixture::new();
    let (user, first) = logged_in(&f, "cleo@example.com").await;
    f.clock.advance(Duration::from_secs(600));
    let second = f
        .auth
        .refresh(first.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(second.session.id, first.session.id, "same family");
    assert_eq!(second.session.last_used_at, datetime!(2026-06-01 09:10 UTC));
    assert_ne!(
        second.refresh_token.expose_secret(),
        first.refresh_token.expose_secret()
    );
    let me = f.auth.authenticate(second.access_token.expose_secret()).await.unwrap();
    assert_eq!((me.user.id, me.claims.session_id()), (user.id, Some(first.session.id)));
    let third = f
        .auth
        .refresh(second.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(third.session.id, first.session.id);
}

#[tokio::test]
async fn a_rotated_token_presented_again_revokes_the_whole_family() {
    let f = Fixture::new();
    let (user, first) = logged_in(&f, "dana@example.com").await;
    let (_, other_device) = {
        let login = f
            .auth
            .login("dana@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
            .await
            .unwrap()
            .signed_in()
            .unwrap();
        (login.user, login.tokens)
    };
    let second = f
        .auth
        .refresh(first.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();

    // The old token again: someone holds a copy.
    assert_eq!(
        token_error(
            f.auth
                .refresh(first.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Reused
    );
    // The revocation was committed although that call failed: the newest token is dead too.
    assert_eq!(
        token_error(
            f.auth
                .refresh(second.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Revoked
    );
    let sessions = f.auth.list_sessions(user.id).await.unwrap();
    assert_eq!(
        sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![other_device.session.id],
        "only that family"
    );
    assert!(
        f.auth
            .refresh(other_device.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refreshes_with_one_token_rotate_at_most_once() {
    let f = Arc::new(Fixture::new());
    let (user, tokens) = logged_in(&f, "eli@example.com").await;
    let presented = tokens.refresh_token.expose_secret().to_owned();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (f, presented) = (f.clone(), presented.clone());
            tokio::spawn(async move { f.auth.refresh(&presented, &ClientInfo::unknown()).await })
        })
        .collect();
    let mut successes = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => successes += 1,
            Err(AuthError::InvalidToken(TokenError::Reused | TokenError::Revoked)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(successes <= 1, "{successes} rotations of one token");
    // No grace window: the losing uses count as reuse, so the family ends.
    assert!(f.auth.list_sessions(user.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_idle_timeout_ends_a_session_after_seven_days_without_refresh() {
    let f = Fixture::new();
    let (_, a) = logged_in(&f, "fay@example.com").await;
    let b = f
        .auth
        .login("fay@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens;
    f.clock.advance(7 * DAY - SECOND);
    assert!(
        f.auth
            .refresh(a.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_ok(),
        "just before: works"
    );
    f.clock.advance(SECOND);
    assert_eq!(
        token_error(
            f.auth
                .refresh(b.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Expired,
        "at 7 days"
    );
}

#[tokio::test]
async fn the_absolute_lifetime_ends_a_session_after_thirty_days_however_active() {
    let f = Fixture::new();
    let (user, mut tokens) = logged_in(&f, "gus@example.com").await;
    // Refresh every six days: never idle for seven.
    for _ in 0..4 {
        f.clock.advance(6 * DAY);
        tokens = f
            .auth
            .refresh(tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .unwrap();
    }
    f.clock.advance(6 * DAY - SECOND); // 30 days minus one second after login
    tokens = f
        .auth
        .refresh(tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(f.auth.list_sessions(user.id).await.unwrap().len(), 1);
    f.clock.advance(SECOND);
    assert_eq!(
        token_error(
            f.auth
                .refresh(tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Expired
    );
    assert!(
        f.auth.list_sessions(user.id).await.unwrap().is_empty(),
        "expired sessions are not listed"
    );
}

#[tokio::test]
async fn lifetimes_are_configurable() {
    let f = Fixture::new();
    let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
    let auth = auth_core::AuthService::new(f.store.clone(), tokens)
        .with_hasher(f.hasher.clone())
        .with_clock(Arc::new(f.clock.clone()))
        .with_session_lifetimes(Duration::from_secs(3600), 2 * DAY);
    f.register("hal@example.com").await;
    let login = auth
        .login("hal@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    assert_eq!(login.tokens.session.expires_at, datetime!(2026-06-03 09:00 UTC));
    f.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        token_error(
            auth.refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Expired
    );
}

#[tokio::test]
async fn malformed_unknown_and_foreign_tokens_are_invalid() {
    let f = Fixture::new();
    let (_, tokens) = logged_in(&f, "ida@example.com").await;
    let (unknown, _) = auth_core::OpaqueToken::generate(TokenKind::Refresh).unwrap();
    let (reset_kind, _) = auth_core::OpaqueToken::generate(TokenKind::PasswordReset).unwrap();
    assert_eq!(
        token_error(f.auth.refresh("", &ClientInfo::unknown()).await),
        TokenError::Malformed
    );
    assert_eq!(
        token_error(f.auth.refresh("rt_short", &ClientInfo::unknown()).await),
        TokenError::Malformed
    );
    assert_eq!(
        token_error(
            f.auth
                .refresh(tokens.access_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Malformed
    );
    assert_eq!(
        token_error(f.auth.refresh(reset_kind.expose_secret(), &ClientInfo::unknown()).await),
        TokenError::Malformed
    );
    assert_eq!(
        token_error(f.auth.refresh(unknown.expose_secret(), &ClientInfo::unknown()).await),
        TokenError::Unknown
    );
    let error = f
        .auth
        .refresh(unknown.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap_err();
    assert_eq!((error.code(), error.http_status()), ("invalid_token", 401));
}

#[tokio::test]
async fn a_disabled_account_cannot_refresh() {
    let f = Fixture::new();
    let (user, tokens) = logged_in(&f, "jon@example.com").await;
    f.auth.set_active(user.id, false, &ClientInfo::unknown()).await.unwrap();
    assert_eq!(
        token_error(
            f.auth
                .refresh(tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Revoked
    );
    f.auth.set_active(user.id, true, &ClientInfo::unknown()).await.unwrap();
    assert!(
        f.auth
            .refresh(tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_err(),
        "disable ended the session"
    );
}

#[tokio::test]
async fn logout_ends_only_that_session_and_is_idempotent() {
    let f = Fixture::new();
    let (user, phone) = logged_in(&f, "kim@example.com").await;
    let laptop = f
        .auth
        .login("kim@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens;
    f.auth
        .logout(phone.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(
        token_error(
            f.auth
                .refresh(phone.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Revoked
    );
    assert!(
        f.auth
            .refresh(laptop.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_ok()
    );
    assert_eq!(f.auth.list_sessions(user.id).await.unwrap().len(), 1);
    // Again, garbage, another kind of token: all fine, nothing to report.
    f.auth
        .logout(phone.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    f.auth.logout("garbage", &ClientInfo::unknown()).await.unwrap();
    f.auth
        .logout(phone.access_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    // The logged-out session's access token ends with it; the other device's lives on.
    assert_eq!(
        token_error(f.auth.authenticate(phone.access_token.expose_secret()).await),
        TokenError::Revoked
    );
    assert!(f.auth.authenticate(laptop.access_token.expose_secret()).await.is_ok());
}

#[tokio::test]
async fn a_revoked_or_reused_session_ends_its_access_tokens_on_the_next_request() {
    let f = Fixture::new();
    let (user, owner) = logged_in(&f, "noor@example.com").await;
    let stolen = f
        .auth
        .login("noor@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens;
    // The owner signs the stolen device out; its access token is refused at once, so it
    // cannot be used to sign the owner out in turn.
    f.auth
        .revoke_session(user.id, stolen.session.id, &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(
        token_error(f.auth.authenticate(stolen.access_token.expose_secret()).await),
        TokenError::Revoked
    );
    assert!(f.auth.authenticate(owner.access_token.expose_secret()).await.is_ok());

    // Reuse of a rotated refresh token ends the session's access tokens, old and new.
    let rotated = f
        .auth
        .refresh(owner.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert!(f.auth.authenticate(rotated.access_token.expose_secret()).await.is_ok());
    let _ = f
        .auth
        .refresh(owner.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap_err();
    for token in [&owner.access_token, &rotated.access_token] {
        assert_eq!(
            token_error(f.auth.authenticate(token.expose_secret()).await),
            TokenError::Revoked
        );
    }
}

#[tokio::test]
async fn an_idle_or_expired_session_ends_its_access_tokens_before_they_expire() {
    let f = Fixture::new();
    f.register("omar@example.com").await;
    let minute = Duration::from_secs(60);
    // Sessions shorter than the 15-minute access tokens, so the session is what ends first.
    let auth = auth_core::AuthService::new(
        f.store.clone(),
        Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api"),
    )
    .with_clock(Arc::new(f.clock.clone()))
    .with_session_lifetimes(5 * minute, 8 * minute);
    let idle = auth
        .login("omar@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens;
    f.clock.advance(4 * minute);
    assert!(auth.authenticate(idle.access_token.expose_secret()).await.is_ok());
    f.clock.advance(minute);
    assert_eq!(
        token_error(auth.authenticate(idle.access_token.expose_secret()).await),
        TokenError::Revoked,
        "five minutes without a refresh: idle"
    );

    let kept = auth
        .login("omar@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens;
    f.clock.advance(4 * minute);
    let refreshed = auth
        .refresh(kept.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    f.clock.advance(4 * minute);
    assert_eq!(
        token_error(auth.authenticate(refreshed.access_token.expose_secret()).await),
        TokenError::Revoked,
        "used within the idle timeout, but past the absolute lifetime"
    );
}

#[tokio::test]
async fn a_token_without_a_session_is_checked_against_its_account_only() {
    let f = Fixture::new();
    let user = f.register("pia@example.com").await;
    let token = f.auth.tokens().issue(&user, None).unwrap();
    assert!(f.auth.authenticate(token.expose_secret()).await.is_ok());
}

#[tokio::test]
async fn logout_all_ends_every_session_and_access_token() {
    let f = Fixture::new();
    let (user, a) = logged_in(&f, "lea@example.com").await;
    let b = f
        .auth
        .login("lea@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens;
    f.auth.logout_all(user.id, &ClientInfo::unknown()).await.unwrap();
    for tokens in [&a, &b] {
        assert_eq!(
            token_error(
                f.auth
                    .refresh(tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
                    .await
            ),
            TokenError::Revoked
        );
        let rejected = f.auth.authenticate(tokens.access_token.expose_secret()).await;
        assert_eq!(
            token_error(rejected),
            TokenError::Revoked,
            "issued in the same second, still rejected"
        );
    }
    let again = f
        .auth
        .login("lea@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    assert!(
        f.auth
            .authenticate(again.tokens.access_token.expose_secret())
            .await
            .is_ok()
    );
    let ghost = auth_core::UserId::new_at(datetime!(2026-01-01 0:00 UTC));
    assert_eq!(
        f.auth
            .logout_all(ghost, &ClientInfo::unknown())
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

#[tokio::test]
async fn users_list_and_revoke_their_own_sessions_only() {
    let f = Fixture::new();
    let (mia, first) = logged_in(&f, "mia@example.com").await;
    f.clock.advance(SECOND);
    let second = f
        .auth
        .login("mia@example.com", Password::new(PASSWORD), &ClientInfo::unknown())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens;
    let (ned, neds) = logged_in(&f, "ned@example.com").await;

    let listed = f.auth.list_sessions(mia.id).await.unwrap();
    assert_eq!(
        listed,
        vec![first.session.clone(), second.session.clone()],
        "oldest first, no one else's"
    );

    let error = f
        .auth
        .revoke_session(ned.id, first.session.id, &ClientInfo::unknown())
        .await
        .unwrap_err();
    assert!(
        matches!(error, AuthError::SessionNotFound),
        "not Ned's session: {error:?}"
    );
    assert_eq!(error.http_status(), 404);
    f.auth
        .revoke_session(mia.id, first.session.id, &ClientInfo::unknown())
        .await
        .unwrap();
    assert!(matches!(
        f.auth
            .revoke_session(mia.id, first.session.id, &ClientInfo::unknown())
            .await,
        Err(AuthError::SessionNotFound)
    ));
    assert_eq!(f.auth.list_sessions(mia.id).await.unwrap(), vec![second.session]);
    assert_eq!(
        token_error(
            f.auth
                .refresh(first.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Revoked
    );
    assert!(
        f.auth
            .refresh(neds.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_password_change_ends_every_session() {
    let f = Fixture::new();
    let (user, tokens) = logged_in(&f, "ola@example.com").await;
    f.auth
        .change_password(
            user.id,
            Password::new(PASSWORD),
            Password::new("a brand new passphrase"),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();
    assert_eq!(
        token_error(
            f.auth
                .refresh(tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Revoked
    );
    assert!(f.auth.list_sessions(user.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn role_changes_revoke_access_tokens_and_the_next_refresh_carries_the_new_roles() {
    let f = Fixture::new();
    let (user, tokens) = logged_in(&f, "pia@example.com").await;
    let me = f.auth.authenticate(tokens.access_token.expose_secret()).await.unwrap();
    assert_eq!(me.user.require_role("admin").unwrap_err().code(), "forbidden");

    let admin: BTreeSet<Role> = [Role::new("admin").unwrap()].into();
    let updated = f
        .auth
        .set_roles(user.id, admin.clone(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(updated.roles, admin);
    assert_eq!(
        token_error(f.auth.authenticate(tokens.access_token.expose_secret()).await),
        TokenError::Revoked
    );

    let refreshed = f
        .auth
        .refresh(tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    let me = f
        .auth
        .authenticate(refreshed.access_token.expose_secret())
        .await
        .unwrap();
    assert!(me.user.require_role("admin").is_ok());
    assert!(me.claims.has_role("admin"), "the token carries the new role");
    assert!(me.claims.require_role("admin").is_ok());
    let forbidden = me.claims.require_role("auditor").unwrap_err();
    assert_eq!((forbidden.code(), forbidden.http_status()), ("forbidden", 403));

    let ghost = auth_core::UserId::new_at(datetime!(2026-01-01 0:00 UTC));
    assert_eq!(
        f.auth
            .set_roles(ghost, admin, &ClientInfo::unknown())
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        f.store.find_user_by_id(user.id).await.unwrap().unwrap().token_version,
        1
    );
}

#[tokio::test]
async fn login_can_require_a_verified_email_after_the_right_password() {
    let f = Fixture::new();
    let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
    let auth = auth_core::AuthService::new(f.store.clone(), tokens)
        .with_hasher(f.hasher.clone())
        .with_require_verified_email(true);
    let user = f.register("quin@example.com").await;
    let wrong = auth
        .login("quin@example.com", Password::new("wrong password"), &laptop())
        .await;
    assert_eq!(
        wrong.unwrap_err().code(),
        "invalid_credentials",
        "nothing revealed before the password"
    );
    let error = auth
        .login("quin@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap_err();
    assert_eq!((error.code(), error.http_status()), ("email_not_verified", 403));
    assert!(
        f.store.list_sessions(user.id).await.unwrap().is_empty(),
        "no session started"
    );

    let delivery = auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    auth.verify_email(delivery.token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert!(
        auth.login("quin@example.com", Password::new(PASSWORD), &laptop())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn signing_keys_rotate_without_logging_anyone_out() {
    let f = Fixture::new();
    let (_, tokens) = logged_in(&f, "rex@example.com").await;
    let old = f.auth.tokens().signing_key().clone();
    let new = SigningKey::hs256(b"the next signing secret, 32 bytes or more")
        .unwrap()
        .with_kid("2026-12")
        .unwrap();
    let rotated = Tokens::new(new, "https://auth.test", "test-api")
        .with_verification_key(old.verification_key().clone())
        .unwrap();
    let auth = auth_core::AuthService::new(f.store.clone(), rotated)
        .with_hasher(f.hasher.clone())
        .with_clock(Arc::new(f.clock.clone()));
    assert!(
        auth.authenticate(tokens.access_token.expose_secret()).await.is_ok(),
        "old tokens still verify"
    );
    let refreshed = auth
        .refresh(tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    let claims = auth.tokens().verify(refreshed.access_token.expose_secret()).unwrap();
    assert!(auth.authenticate(refreshed.access_token.expose_secret()).await.is_ok());
    assert_eq!(claims.session_id(), Some(tokens.session.id));
}

/// A refresh with a stolen token that lands right after a revoking write (and before any
/// later step of the same operation) must not yield an access token that survives it.
async fn assert_no_token_survives(revoke: impl AsyncFnOnce(&Fixture, auth_core::UserId)) {
    let f = Fixture::new();
    let (user, stolen) = logged_in(&f, "victim@example.com").await;
    let thief = Arc::new(
        auth_core::AuthService::new(f.store.clone(), f.auth.tokens().clone())
            .with_hasher(f.hasher.clone())
            .with_clock(Arc::new(f.clock.clone())),
    );
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let refresh = stolen.refresh_token.expose_secret().to_owned();
    f.store.after_next_revoking_write(Box::new(move || {
        Box::pin(async move {
            let _ = sender.send(thief.refresh(&refresh, &ClientInfo::unknown()).await);
        })
    }));
    revoke(&f, user.id).await;
    if let Ok(minted) = receiver.await.unwrap() {
        let survived = f.auth.authenticate(minted.access_token.expose_secret()).await;
        assert!(survived.is_err(), "an access token minted mid-revocation survived it");
        assert!(
            f.auth
                .refresh(minted.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn no_token_minted_during_a_password_change_survives_it() {
    assert_no_token_survives(async |f: &Fixture, id| {
        let new = Password::new("a brand new passphrase");
        f.auth
            .change_password(id, Password::new(PASSWORD), new, &ClientInfo::unknown())
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn no_token_minted_during_a_password_reset_survives_it() {
    assert_no_token_survives(async |f: &Fixture, _| {
        let delivery = f
            .auth
            .request_password_reset("victim@example.com", &ClientInfo::unknown())
            .await
            .unwrap()
            .unwrap();
        let new = Password::new("a brand new passphrase");
        f.auth
            .reset_password(delivery.token.expose_secret(), new, &ClientInfo::unknown())
            .await
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn no_token_minted_during_a_disable_survives_it() {
    assert_no_token_survives(async |f: &Fixture, id| {
        f.auth.set_active(id, false, &ClientInfo::unknown()).await.unwrap();
        f.auth.set_active(id, true, &ClientInfo::unknown()).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn no_token_minted_during_logout_everywhere_survives_it() {
    assert_no_token_survives(async |f: &Fixture, id| f.auth.logout_all(id, &ClientInfo::unknown()).await.unwrap())
        .await;
}

#[tokio::test]
async fn purge_deletes_ended_sessions_and_spent_tokens_and_nothing_live() {
    let f = Fixture::new();
    let (user, ended) = logged_in(&f, "sam@example.com").await;
    f.auth
        .logout(ended.refresh_token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    let idle = f
        .auth
        .login("sam@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens;
    let used = f
        .auth
        .request_email_verification(user.id, &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    f.auth
        .verify_email(used.token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    let reset = f
        .auth
        .request_password_reset("sam@example.com", &ClientInfo::unknown())
        .await
        .unwrap()
        .unwrap();
    f.clock.advance(6 * DAY);
    let live = f
        .auth
        .login("sam@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap()
        .tokens;
    f.clock.advance(DAY); // `idle` is now 7 days unused; `live` 1 day; the reset token expired

    let purged = f.auth.purge_expired().await.unwrap();
    assert_eq!((purged.sessions, purged.one_time_tokens), (2, 2));
    assert_eq!(
        token_error(
            f.auth
                .refresh(idle.refresh_token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        TokenError::Unknown
    );
    let stale = f
        .auth
        .reset_password(
            reset.token.expose_secret(),
            Password::new("a brand new passphrase"),
            &ClientInfo::unknown(),
        )
        .await;
    assert!(stale.is_err());
    assert!(
        f.auth
            .refresh(live.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_ok(),
        "live sessions survive a purge"
    );
    assert_eq!(f.auth.purge_expired().await.unwrap().sessions, 0);
}

#[tokio::test(start_paused = true)]
async fn the_periodic_purge_runs_on_its_interval_and_goes_on_after_a_failed_run() {
    let f = Fixture::new();
    f.register("pia@example.com").await;
    let login = || async {
        f.auth
            .login("pia@example.com", Password::new(PASSWORD), &laptop())
            .await
            .unwrap()
            .signed_in()
            .unwrap()
            .tokens
    };
    let (first, second) = (login().await, login().await);
    let refresh = |tokens: &auth_core::TokenPair| tokens.refresh_token.expose_secret().to_owned();
    let (first, second) = (refresh(&first), refresh(&second));
    f.auth.logout(&first, &ClientInfo::unknown()).await.unwrap();
    f.auth.logout(&second, &ClientInfo::unknown()).await.unwrap();
    let purged = |token: String| {
        let auth = &f.auth;
        async move {
            // A purged session is unknown; an ended one still on file is revoked.
            matches!(
                auth.refresh(&token, &ClientInfo::unknown()).await,
                Err(AuthError::InvalidToken(TokenError::Unknown))
            )
        }
    };
    assert!(!purged(first.clone()).await);

    let hour = Duration::from_secs(3600);
    let checks = async {
        // Not before the first interval has passed.
        tokio::time::sleep(hour - SECOND).await;
        assert!(!purged(first.clone()).await);
        // A run while the store is down fails, is logged, and the loop goes on.
        f.store.set_down(true);
        tokio::time::sleep(2 * SECOND).await;
        f.store.set_down(false);
        assert!(!purged(first.clone()).await);
        tokio::time::sleep(hour).await;
        assert!(purged(first).await && purged(second).await);
    };
    // Time is paused: each sleep jumps straight to the next timer, the purge's included.
    tokio::select! {
        () = f.auth.purge_every(hour) => panic!("the purge loop never returns"),
        () = checks => {}
    }
}

/// A browser session as the pages open it: a login, then a cookie for its session.
async fn browser_cookie(f: &Fixture, email: &str) -> (auth_core::LoginSuccess, String) {
    let login = f
        .auth
        .login(email, Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let cookie = f.auth.open_browser_session(&login.tokens.session).await.unwrap();
    assert!(cookie.expose_secret().starts_with("bs_"));
    (login, cookie.expose_secret().to_owned())
}

fn live(check: BrowserCheck) -> auth_core::BrowserSession {
    match check {
        BrowserCheck::Live(signed_in) => signed_in,
        other => panic!("not live: {other:?}"),
    }
}

fn ended(check: BrowserCheck) -> AuthError {
    match check {
        BrowserCheck::Ended(error) => error,
        other => panic!("not ended: {other:?}"),
    }
}

#[tokio::test]
async fn a_browser_session_is_its_session_and_ends_with_it_by_every_route() {
    let f = Fixture::new();
    let user = f.register("bea@example.com").await;
    let (login, cookie) = browser_cookie(&f, "bea@example.com").await;
    let signed_in = live(f.auth.check_browser_session(&cookie).await);
    assert_eq!(
        (signed_in.user.id, signed_in.session.id),
        (user.id, login.tokens.session.id)
    );
    for not_a_cookie in ["", "bs_short", "rt_whatever", &cookie.replacen("bs_", "rt_", 1)] {
        assert!(matches!(
            ended(f.auth.check_browser_session(not_a_cookie).await),
            AuthError::InvalidToken(TokenError::Malformed)
        ));
    }

    // Signing out this device from another session's list ends the browser session.
    f.auth
        .revoke_session(user.id, login.tokens.session.id, &ClientInfo::unknown())
        .await
        .unwrap();
    assert!(matches!(
        ended(f.auth.check_browser_session(&cookie).await),
        AuthError::InvalidToken(TokenError::Revoked)
    ));
    // Its record went with it: it is unknown now.
    assert!(matches!(
        ended(f.auth.check_browser_session(&cookie).await),
        AuthError::InvalidToken(TokenError::Unknown)
    ));

    // Logout everywhere, and a password change, end it too.
    let (_, cookie) = browser_cookie(&f, "bea@example.com").await;
    f.auth.logout_all(user.id, &ClientInfo::unknown()).await.unwrap();
    ended(f.auth.check_browser_session(&cookie).await);
    let (_, cookie) = browser_cookie(&f, "bea@example.com").await;
    f.auth
        .change_password(
            user.id,
            Password::new(PASSWORD),
            Password::new("a changed passphrase"),
            &ClientInfo::unknown(),
        )
        .await
        .unwrap();
    ended(f.auth.check_browser_session(&cookie).await);

    // Closing it ends its session: its refresh token is refused.
    let login = f
        .auth
        .login("bea@example.com", Password::new("a changed passphrase"), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let cookie = f.auth.open_browser_session(&login.tokens.session).await.unwrap();
    f.auth
        .close_browser_session(cookie.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    ended(f.auth.check_browser_session(cookie.expose_secret()).await);
    assert!(
        f.auth
            .refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_err()
    );
    // Idempotent, as logout is.
    f.auth
        .close_browser_session(cookie.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_browser_session_in_use_does_not_idle_out_and_an_unused_one_does() {
    let f = Fixture::new();
    f.register("ida@example.com").await;
    let (_, used) = browser_cookie(&f, "ida@example.com").await;
    let (_, unused) = browser_cookie(&f, "ida@example.com").await;
    // Six days at a time, within the seven-day idle timeout: each use moves it on.
    for _ in 0..3 {
        f.clock.advance(6 * DAY);
        live(f.auth.check_browser_session(&used).await);
    }
    assert!(matches!(
        ended(f.auth.check_browser_session(&unused).await),
        AuthError::InvalidToken(TokenError::Expired)
    ));
    // Within a minute of the last mark, a check is a read: nothing is written.
    f.clock.advance(30 * SECOND);
    f.store.clear_calls();
    live(f.auth.check_browser_session(&used).await);
    assert!(!f.store.calls().contains(&"touch_session"), "{:?}", f.store.calls());
    f.clock.advance(31 * SECOND);
    live(f.auth.check_browser_session(&used).await);
    assert!(f.store.calls().contains(&"touch_session"));
    // The absolute lifetime still ends it.
    f.clock.advance(30 * DAY);
    ended(f.auth.check_browser_session(&used).await);
}

#[tokio::test]
async fn an_unreachable_store_leaves_a_browser_session_unchecked_and_a_disabled_account_ends_it() {
    let f = Fixture::new();
    let user = f.register("ulf@example.com").await;
    let (_, cookie) = browser_cookie(&f, "ulf@example.com").await;
    f.store.set_down(true);
    assert!(matches!(
        f.auth.check_browser_session(&cookie).await,
        BrowserCheck::Unchecked(AuthError::Unavailable(_))
    ));
    f.store.set_down(false);
    live(f.auth.check_browser_session(&cookie).await);
    f.auth
        .accounts()
        .set_active(user.id, false, &ClientInfo::unknown())
        .await
        .unwrap();
    assert!(matches!(
        ended(f.auth.check_browser_session(&cookie).await),
        AuthError::AccountDisabled | AuthError::InvalidToken(_)
    ));
}

#[tokio::test]
async fn unbounded_lifetimes_mean_never_not_a_panic() {
    let f = Fixture::new();
    let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
    let auth = auth_core::AuthService::new(f.store.clone(), tokens)
        .with_hasher(f.hasher.clone())
        .with_clock(Arc::new(f.clock.clone()))
        .with_session_lifetimes(Duration::MAX, Duration::MAX)
        .with_password_reset_ttl(Duration::MAX)
        .with_email_verification_ttl(Duration::MAX);
    let user = f.register("tia@example.com").await;
    let login = auth
        .login("tia@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    f.clock.advance(3650 * DAY);
    assert!(
        auth.refresh(login.tokens.refresh_token.expose_secret(), &ClientInfo::unknown())
            .await
            .is_ok()
    );
    assert!(
        auth.request_password_reset("tia@example.com", &ClientInfo::unknown())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        auth.request_email_verification(user.id, &ClientInfo::unknown())
            .await
            .unwrap()
            .is_some()
    );
    assert!(auth.purge_expired().await.is_ok());
}

/// With new-device notices on, a sign-in from a user agent the account has no live
/// session from is told; one from a known device is not; off by default.
#[tokio::test]
async fn a_sign_in_from_an_unrecognized_device_is_told_when_enabled() {
    let Fixture { auth, notices, .. } = Fixture::new();
    let phone = auth_core::ClientInfo::new(Some("Safari on iOS"), Some("198.51.100.4".parse().unwrap()));
    let laptop = laptop();
    let pass = || auth_core::Password::new(PASSWORD);
    auth.register("nel@example.com", pass(), &laptop).await.unwrap();
    let _ = auth.login("nel@example.com", pass(), &laptop).await.unwrap();
    let _ = auth.login("nel@example.com", pass(), &phone).await.unwrap();
    assert!(notices.take().is_empty(), "off by default");

    let auth = auth.with_new_device_notices(true);
    let _ = auth.login("nel@example.com", pass(), &laptop).await.unwrap();
    assert!(notices.take().is_empty(), "a device with a live session");
    let tablet = auth_core::ClientInfo::new(Some("Firefox on Android"), None);
    let _ = auth.login("nel@example.com", pass(), &tablet).await.unwrap();
    let told = notices.take_whole();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].kind, auth_core::SecurityNoticeKind::NewSignIn);
    assert_eq!(told[0].client.user_agent(), Some("Firefox on Android"));
    let _ = auth.login("nel@example.com", pass(), &tablet).await.unwrap();
    assert!(notices.take().is_empty(), "known now");
}
