//! Deleting an account: by its owner (the password, or a recent sign-in) and by an
//! administrator. On `MemoryStore`; what each store leaves behind is the conformance
//! suite's and the stores' own tests' business.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::time::Duration;

use auth_core::{
    AuthError, AuthEvent, Caller, ClientInfo, EventKind, Password, SecurityNoticeKind, Subject, UserStore,
};

mod common;

use common::{Fixture, PASSWORD, laptop};

fn code<T: std::fmt::Debug>(result: Result<T, AuthError>) -> &'static str {
    result.unwrap_err().code()
}

#[tokio::test]
async fn an_owner_deletes_the_account_with_the_password_and_the_address_is_free_at_once() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("ana@example.com").await;
    let me = f
        .auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    f.events.take();
    f.notices.take();

    let wrong = f
        .auth
        .delete_account(&me, Some(Password::new("not the password")), &laptop())
        .await;
    assert_eq!(code(wrong), "invalid_credentials");
    assert!(
        f.store.find_user_by_id(user.id).await.unwrap().is_some(),
        "nothing deleted"
    );
    assert!(f.notices.take().is_empty(), "a refusal tells nothing");
    f.events.take();

    f.auth
        .delete_account(&me, Some(Password::new(PASSWORD)), &laptop())
        .await
        .unwrap();
    assert!(f.store.find_user_by_id(user.id).await.unwrap().is_none());
    // The event names the account by the digest of its address, never its id.
    let events = f.events.take();
    assert_eq!(
        events.iter().map(AuthEvent::kind).collect::<Vec<_>>(),
        [EventKind::AccountDeleted]
    );
    assert!(
        matches!(events[0].subject, Subject::Email(_)),
        "{:?}",
        events[0].subject
    );
    assert_eq!(
        code(f.auth.authenticate(login.tokens.access_token.expose_secret()).await),
        "invalid_token"
    );
    assert_eq!(
        code(
            f.auth
                .refresh(login.tokens.refresh_token.expose_secret(), &laptop())
                .await
        ),
        "invalid_token"
    );
    assert_eq!(
        f.notices.take(),
        [(SecurityNoticeKind::AccountDeleted, "ana@example.com".to_owned())]
    );

    let again = f
        .auth
        .register(
            "ana@example.com",
            Password::new("a new account's passphrase"),
            &laptop(),
        )
        .await
        .unwrap();
    assert_ne!(again.id, user.id);
    assert_eq!(
        code(
            f.auth
                .delete_account(user.id, Some(Password::new(PASSWORD)), &laptop())
                .await
        ),
        "not_found"
    );
}

#[tokio::test]
async fn without_the_password_deleting_needs_a_recent_sign_in() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("ben@example.com").await;
    // A bare account id has no sign-in on record; a session ten minutes old is stale.
    let bare = f.auth.delete_account(user.id, None, &laptop()).await;
    assert!(matches!(bare, Err(AuthError::StepUpRequired { .. })), "{bare:?}");
    f.clock.advance(Duration::from_secs(11 * 60));
    let me = f
        .auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    let stale = f.auth.delete_account(&me, None, &laptop()).await;
    assert!(matches!(stale, Err(AuthError::StepUpRequired { .. })), "{stale:?}");
    assert!(f.store.find_user_by_id(user.id).await.unwrap().is_some());
    let login = f
        .auth
        .login("ben@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let me = f
        .auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    f.auth.delete_account(Caller::from(&me), None, &laptop()).await.unwrap();
    assert!(f.store.find_user_by_id(user.id).await.unwrap().is_none());
}

#[tokio::test]
async fn an_administrator_deletes_an_account_and_its_owner_is_told() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("cyd@example.com").await;
    f.notices.take();
    f.auth.delete_user(user.id, &ClientInfo::unknown()).await.unwrap();
    assert!(f.store.find_user_by_id(user.id).await.unwrap().is_none());
    assert_eq!(
        code(
            f.auth
                .refresh(login.tokens.refresh_token.expose_secret(), &laptop())
                .await
        ),
        "invalid_token"
    );
    assert_eq!(
        f.notices.take(),
        [(SecurityNoticeKind::AccountDeleted, "cyd@example.com".to_owned())]
    );
    assert_eq!(
        code(f.auth.delete_user(user.id, &ClientInfo::unknown()).await),
        "not_found"
    );
}

#[tokio::test]
async fn an_owner_exports_the_account_a_few_times_an_hour() {
    let f = Fixture::new();
    let (user, _) = f.logged_in("dee@example.com").await;
    f.events.take();
    let export = f.auth.export_account(user.id, &laptop()).await.unwrap();
    assert_eq!(export.user.id, user.id);
    assert_eq!(export.sessions.len(), 1);
    assert_eq!(export.sessions[0].user_agent, laptop().user_agent().map(str::to_owned));
    assert_eq!(
        f.events.take().iter().map(AuthEvent::kind).collect::<Vec<_>>(),
        [EventKind::AccountExported]
    );
    for _ in 1..5 {
        f.auth.export_account(user.id, &laptop()).await.unwrap();
    }
    let limited = f.auth.export_account(user.id, &laptop()).await;
    assert!(matches!(limited, Err(AuthError::RateLimited { .. })), "{limited:?}");
    f.clock.advance(Duration::from_secs(3600));
    f.auth.export_account(user.id, &laptop()).await.unwrap();
}
