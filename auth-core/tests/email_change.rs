//! Changing an account's address: asked for signed in (with the password or a recent
//! sign-in), confirmed from the new address, undone from the old one. On `MemoryStore`
//! with an injected clock; the stores' atomicity is the conformance suite's business.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::Duration;

use auth_core::{
    AuthError, AuthEvent, Caller, ClientInfo, Clock, Delivery, EventKind, Password, SecurityNoticeKind, SessionStore,
    TokenPair, TokenPurpose,
};

mod common;

use common::{Fixture, PASSWORD, laptop};

fn code<T: std::fmt::Debug>(result: Result<T, AuthError>) -> &'static str {
    result.unwrap_err().code()
}

fn email(address: &str) -> auth_core::Email {
    auth_core::Email::parse(address).unwrap()
}

/// The signed-in caller holding `tokens`.
async fn caller(f: &Fixture, tokens: &TokenPair) -> Caller {
    let me = f.auth.authenticate(tokens.access_token.expose_secret()).await.unwrap();
    Caller::from(&me)
}

/// Asks, with the password, to change the account of `tokens` to `to`: the
/// confirmation link.
async fn request(f: &Fixture, tokens: &TokenPair, to: &str) -> Delivery {
    f.auth
        .request_email_change(caller(f, tokens).await, to, Some(Password::new(PASSWORD)), &laptop())
        .await
        .unwrap()
        .expect("within the mail allowance")
}

/// The undo link of the last notice with one.
fn undo_link(f: &Fixture) -> Delivery {
    f.notices
        .take_whole()
        .into_iter()
        .rev()
        .find_map(|notice| notice.link)
        .expect("a notice with the undo link")
}

fn kinds(events: &[AuthEvent]) -> Vec<EventKind> {
    events.iter().map(AuthEvent::kind).collect()
}

#[tokio::test]
async fn an_address_changes_once_confirmed_from_the_new_address() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("ann@example.com").await;
    let other = f
        .auth
        .login("ann@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let reset = f
        .auth
        .request_password_reset("ann@example.com", &laptop())
        .await
        .unwrap()
        .unwrap();
    f.events.take();
    f.notices.take();

    let confirmation = request(&f, &login.tokens, " Ann@Example.ORG").await;
    assert_eq!(
        confirmation.to,
        email("ann@example.org"),
        "to the new address, normalized"
    );
    assert_eq!(confirmation.purpose, TokenPurpose::EmailChange);
    assert!(confirmation.token.expose_secret().starts_with("ec_"));
    let told = f.notices.take_whole();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].to, email("ann@example.com"), "the old address is told at once");
    assert_eq!(
        told[0].kind,
        SecurityNoticeKind::EmailChangeRequested(email("ann@example.org"))
    );
    let undo = told[0].link.clone().unwrap();
    assert_eq!(undo.purpose, TokenPurpose::EmailChangeUndo);
    assert_eq!(undo.expires_at, f.clock.now() + Duration::from_secs(7 * 24 * 3600));
    assert_eq!(
        f.stored(user.id).await.email,
        user.email,
        "nothing changes before the confirmation"
    );

    f.clock.advance(Duration::from_secs(60));
    let changed = f
        .auth
        .confirm_email_change(confirmation.token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(changed.email, email("ann@example.org"));
    assert_eq!(changed.email_verified_at, Some(f.clock.now()));
    assert_eq!(changed.token_version, user.token_version + 1);
    assert_eq!(
        kinds(&f.events.take()),
        [EventKind::EmailChangeRequested, EventKind::EmailChanged]
    );

    // No access token carries the old address; the session that asked goes on (a
    // refresh gives it tokens with the new one), the other ended.
    assert_eq!(
        code(f.auth.authenticate(login.tokens.access_token.expose_secret()).await),
        "invalid_token"
    );
    let renewed = f
        .auth
        .refresh(login.tokens.refresh_token.expose_secret(), &laptop())
        .await
        .unwrap();
    let me = f.auth.authenticate(renewed.access_token.expose_secret()).await.unwrap();
    assert_eq!(me.user.email, email("ann@example.org"));
    assert_eq!(
        code(
            f.auth
                .refresh(other.tokens.refresh_token.expose_secret(), &laptop())
                .await
        ),
        "invalid_token"
    );
    // The reset link mailed to the old address is dead; sign-in is by the new address.
    assert_eq!(
        code(
            f.auth
                .reset_password(
                    reset.token.expose_secret(),
                    Password::new("a new passphrase here"),
                    &laptop()
                )
                .await
        ),
        "invalid_token"
    );
    assert_eq!(
        code(
            f.auth
                .login("ann@example.com", Password::new(PASSWORD), &laptop())
                .await
        ),
        "invalid_credentials"
    );
    assert!(
        f.auth
            .login("ann@example.org", Password::new(PASSWORD), &laptop())
            .await
            .is_ok()
    );

    // Both addresses are told; the old one with a fresh undo link.
    let told = f.notices.take_whole();
    let summary: Vec<_> = told
        .iter()
        .map(|notice| {
            (
                notice.to.as_str().to_owned(),
                notice.kind.clone(),
                notice.link.is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "ann@example.com".to_owned(),
                SecurityNoticeKind::EmailChanged(email("ann@example.org")),
                true
            ),
            (
                "ann@example.org".to_owned(),
                SecurityNoticeKind::EmailChangeConfirmed,
                false
            ),
        ]
    );

    // Spent.
    assert_eq!(
        code(
            f.auth
                .confirm_email_change(confirmation.token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        "invalid_token"
    );
}

#[tokio::test]
async fn asking_needs_the_password_or_a_recent_sign_in() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("bea@example.com").await;
    let wrong = f
        .auth
        .request_email_change(
            caller(&f, &login.tokens).await,
            "bea@example.org",
            Some(Password::new("not the password")),
            &laptop(),
        )
        .await;
    assert_eq!(code(wrong), "invalid_credentials");
    // A bare account id has no recent sign-in on record.
    let stale = f
        .auth
        .request_email_change(user.id, "bea@example.org", None, &laptop())
        .await;
    assert!(matches!(stale, Err(AuthError::StepUpRequired { .. })), "{stale:?}");
    // A session begun just now is recent; ten minutes later it is not.
    assert!(
        f.auth
            .request_email_change(caller(&f, &login.tokens).await, "bea@example.org", None, &laptop())
            .await
            .unwrap()
            .is_some()
    );
    f.clock.advance(Duration::from_secs(11 * 60));
    let late = f
        .auth
        .request_email_change(caller(&f, &login.tokens).await, "bea@example.org", None, &laptop())
        .await;
    assert!(matches!(late, Err(AuthError::StepUpRequired { .. })), "{late:?}");

    for (address, expected) in [("not an address", "invalid_email"), ("BEA@example.com", "email_taken")] {
        let refused = f
            .auth
            .request_email_change(
                caller(&f, &login.tokens).await,
                address,
                Some(Password::new(PASSWORD)),
                &laptop(),
            )
            .await;
        assert_eq!(code(refused), expected, "{address}");
    }
    assert_eq!(f.stored(user.id).await.email, user.email);
}

#[tokio::test]
async fn a_taken_address_is_not_told_at_the_request_and_refused_at_the_confirmation() {
    let f = Fixture::new();
    let (cal, login) = f.logged_in("cal@example.com").await;
    f.register("dot@example.com").await;
    f.notices.take();
    let taken = request(&f, &login.tokens, "dot@example.com").await;
    let free = request(&f, &login.tokens, "cal@example.org").await;
    assert_eq!(
        (taken.purpose, taken.expires_at),
        (free.purpose, free.expires_at),
        "the same answer either way"
    );
    let refused = f
        .auth
        .confirm_email_change(taken.token.expose_secret(), &ClientInfo::unknown())
        .await;
    assert_eq!(code(refused), "email_taken");
    assert_eq!(f.stored(cal.id).await, cal, "nothing changed");
    // The other pending change still works; confirming it voids the first.
    f.auth
        .confirm_email_change(free.token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(
        code(
            f.auth
                .confirm_email_change(taken.token.expose_secret(), &ClientInfo::unknown())
                .await
        ),
        "invalid_token"
    );
}

#[tokio::test]
async fn a_confirmation_link_dies_with_a_password_change_and_after_a_day() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("eve@example.com").await;
    let confirmation = request(&f, &login.tokens, "eve@example.org").await;
    f.auth
        .change_password(
            user.id,
            Password::new(PASSWORD),
            Password::new("another long passphrase"),
            &laptop(),
        )
        .await
        .unwrap();
    let stale = f
        .auth
        .confirm_email_change(confirmation.token.expose_secret(), &ClientInfo::unknown())
        .await;
    assert_eq!(code(stale), "invalid_token");

    let (_, login) = f.logged_in("fay@example.com").await;
    let confirmation = request(&f, &login.tokens, "fay@example.org").await;
    f.clock.advance(auth_core::DEFAULT_EMAIL_VERIFICATION_TTL);
    let late = f
        .auth
        .confirm_email_change(confirmation.token.expose_secret(), &ClientInfo::unknown())
        .await;
    assert_eq!(code(late), "invalid_token");
    assert_eq!(f.stored(user.id).await.email, email("eve@example.com"));
}

/// Someone with a stolen session changes the address (twice); the owner's undo link,
/// from the first change's notice, gets the account back whatever the thief does with
/// the later links, and ends every session.
#[tokio::test]
async fn an_undo_restores_the_address_and_ends_every_session() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("gus@example.com").await;
    f.notices.take();
    let first = request(&f, &login.tokens, "thief@example.net").await;
    let owners_undo = undo_link(&f);
    f.auth
        .confirm_email_change(first.token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    f.notices.take();
    // The thief's session goes on; it changes the address again and keeps that undo.
    let renewed = f
        .auth
        .refresh(login.tokens.refresh_token.expose_secret(), &laptop())
        .await
        .unwrap();
    let second = request(&f, &renewed, "thief2@example.net").await;
    let thiefs_undo = undo_link(&f);
    f.auth
        .confirm_email_change(second.token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    let reset = f
        .auth
        .request_password_reset("thief2@example.net", &laptop())
        .await
        .unwrap()
        .unwrap();
    // The thief undoes its own later change: that does not void the owner's link.
    let back = f
        .auth
        .undo_email_change(thiefs_undo.token.expose_secret(), &laptop())
        .await
        .unwrap();
    assert_eq!(back.email, email("thief@example.net"));
    f.events.take();
    f.notices.take();

    let restored = f
        .auth
        .undo_email_change(owners_undo.token.expose_secret(), &ClientInfo::unknown())
        .await
        .unwrap();
    assert_eq!(restored.email, user.email);
    assert!(restored.email_verified_at.is_some());
    assert_eq!(kinds(&f.events.take()), [EventKind::EmailChangeUndone]);
    assert_eq!(
        f.notices.take(),
        [(SecurityNoticeKind::EmailChangeUndone, "gus@example.com".to_owned())]
    );
    assert!(
        f.store
            .list_sessions(user.id)
            .await
            .unwrap()
            .iter()
            .all(|s| s.revoked_at.is_some())
    );
    assert_eq!(
        code(
            f.auth
                .refresh(login.tokens.refresh_token.expose_secret(), &laptop())
                .await
        ),
        "invalid_token"
    );
    // Links the thief holds are dead: its reset link, the undo, the owner's link again.
    assert_eq!(
        code(
            f.auth
                .reset_password(
                    reset.token.expose_secret(),
                    Password::new("the thief's passphrase"),
                    &laptop()
                )
                .await
        ),
        "invalid_token"
    );
    for link in [&thiefs_undo, &owners_undo] {
        assert_eq!(
            code(f.auth.undo_email_change(link.token.expose_secret(), &laptop()).await),
            "invalid_token"
        );
    }
    assert_eq!(f.stored(user.id).await.email, user.email);
}

#[tokio::test]
async fn an_undo_before_the_confirmation_cancels_and_the_window_is_seven_days() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("hal@example.com").await;
    f.notices.take();
    let confirmation = request(&f, &login.tokens, "hal@example.org").await;
    let undo = undo_link(&f);
    f.auth
        .undo_email_change(undo.token.expose_secret(), &laptop())
        .await
        .unwrap();
    assert_eq!(
        code(
            f.auth
                .confirm_email_change(confirmation.token.expose_secret(), &laptop())
                .await
        ),
        "invalid_token"
    );
    assert_eq!(f.stored(user.id).await.email, user.email);

    let (_, login) = f.logged_in("ida@example.com").await;
    f.notices.take();
    let confirmation = request(&f, &login.tokens, "ida@example.org").await;
    f.auth
        .confirm_email_change(confirmation.token.expose_secret(), &laptop())
        .await
        .unwrap();
    let fresh = undo_link(&f);
    f.clock.advance(auth_core::EMAIL_CHANGE_UNDO_WINDOW);
    assert_eq!(
        code(f.auth.undo_email_change(fresh.token.expose_secret(), &laptop()).await),
        "invalid_token"
    );
    assert!(
        f.auth
            .login("ida@example.org", Password::new(PASSWORD), &laptop())
            .await
            .is_ok()
    );
}
