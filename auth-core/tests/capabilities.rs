//! The seams the next capabilities arrive through: a store with only the base traits runs
//! every base flow; sessions begun by another flow than a password record how and when;
//! role changes are atomic core operations; a kept session is resumed by one core call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use auth_core::{
    Accounts, Action, AuthError, AuthMethod, AuthMethods, AuthService, ClientInfo, Email, EventKind, LoginOutcome,
    MemoryStore, Outcome, Password, Role, SessionCheck, SessionStore, SigningKey, Subject, TokenError, Tokens, User,
    UserId, UserStore,
};
use common::{Fixture, PASSWORD, SECRET, laptop};
use time::macros::datetime;

#[tokio::test]
async fn a_store_with_only_the_base_traits_runs_every_base_flow() {
    let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
    // A store type with the three base traits and nothing else, as an application that
    // chooses its backend at run time holds one (or one it wrote for its own tables).
    let store: Arc<dyn auth_core::AuthStore> = Arc::new(MemoryStore::new());
    let auth = AuthService::new(store, tokens).with_hasher(auth_core::Argon2Hasher::new(
        auth_core::Argon2Params::new(64, 1, 1).unwrap(),
    ));
    let client = laptop();
    let user = auth
        .register("base@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    let login = auth
        .login("base@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    let me = auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(me.user.id, user.id);
    let pair = auth
        .refresh(login.tokens.refresh_token.expose_secret(), &client)
        .await
        .unwrap();
    assert_eq!(auth.list_sessions(user.id).await.unwrap().len(), 1);
    let reset = auth
        .request_password_reset("base@example.com", &client)
        .await
        .unwrap()
        .unwrap();
    auth.reset_password(reset.token.expose_secret(), Password::new("a new passphrase"), &client)
        .await
        .unwrap();
    assert!(auth.authenticate(pair.access_token.expose_secret()).await.is_err());
    auth.set_active(user.id, false, &client).await.unwrap();
    auth.check_store().await.unwrap();
    // `auth.list_users`, `auth.grant_role` and `auth.purge_expired` do not exist for this
    // store: calling them would not compile.
}

#[tokio::test]
async fn a_password_session_records_how_it_began_and_its_tokens_keep_their_claims() {
    let f = Fixture::new();
    f.register("pia@example.com").await;
    let login = f
        .auth
        .login("pia@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    let LoginOutcome::SignedIn(login) = login else {
        panic!("no second factor is configured")
    };
    let session = &login.tokens.session;
    assert_eq!(session.auth_methods, AuthMethods::from(AuthMethod::PASSWORD));
    assert_eq!(session.auth_time, datetime!(2026-06-01 09:00 UTC));
    let me = f
        .auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(
        me.claims.auth_methods(),
        None,
        "a password session's tokens say nothing new"
    );
    assert_eq!(me.claims.auth_time(), None);
    let stored = f.store.find_session(session.id).await.unwrap().unwrap();
    assert_eq!(stored, *session);
}

#[tokio::test]
async fn a_session_started_for_a_proven_principal_carries_amr_and_auth_time_across_refreshes() {
    let f = Fixture::new();
    let user = f.register("quinn@example.com").await;
    f.events.take();
    let methods = AuthMethods::from(AuthMethod::HARDWARE_KEY).with(AuthMethod::MULTI_FACTOR);
    let login = f.auth.start_session(user.id, methods.clone(), &laptop()).await.unwrap();
    let began = datetime!(2026-06-01 09:00 UTC);
    assert_eq!(
        (&login.tokens.session.auth_methods, login.tokens.session.auth_time),
        (&methods, began)
    );
    assert_eq!(login.user.id, user.id);

    let events = f.events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].action, Action::StartSession);
    assert_eq!(events[0].kind(), EventKind::LoginSucceeded);
    assert_eq!(events[0].subject, Subject::User(user.id));
    assert_eq!(events[0].session_id, Some(login.tokens.session.id));

    let me = f
        .auth
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(me.claims.auth_methods(), Some(&methods));
    assert_eq!(me.claims.auth_time(), Some(began));

    // An hour later, a refresh: a new access token, the same authentication.
    f.clock.advance(Duration::from_secs(3600));
    let pair = f
        .auth
        .refresh(login.tokens.refresh_token.expose_secret(), &laptop())
        .await
        .unwrap();
    let me = f.auth.authenticate(pair.access_token.expose_secret()).await.unwrap();
    assert_eq!(me.claims.auth_methods(), Some(&methods));
    assert_eq!(me.claims.auth_time(), Some(began), "auth_time is when they proved it");
    assert_eq!(me.claims.issued_at(), began + Duration::from_secs(3600));
    let sessions = f.auth.list_sessions(user.id).await.unwrap();
    assert_eq!(sessions[0].auth_methods, methods);
}

#[tokio::test]
async fn a_session_is_started_only_for_an_active_existing_account() {
    let f = Fixture::new();
    let methods = AuthMethods::from(AuthMethod::HARDWARE_KEY);
    let ghost = UserId::new_at(datetime!(2026-06-01 09:00 UTC));
    let refused = f.auth.start_session(ghost, methods.clone(), &laptop()).await;
    assert!(matches!(refused, Err(AuthError::UserNotFound)), "{refused:?}");

    let user = f.register("rex@example.com").await;
    f.auth.set_active(user.id, false, &laptop()).await.unwrap();
    f.events.take();
    let refused = f.auth.start_session(user.id, methods.clone(), &laptop()).await;
    assert!(matches!(refused, Err(AuthError::AccountDisabled)), "{refused:?}");
    let events = f.events.take();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind(), EventKind::LoginFailed);
    assert!(
        f.store.list_sessions(user.id).await.unwrap().is_empty(),
        "nothing stored"
    );

    let f = Fixture::new();
    let auth = f.auth.with_require_verified_email(true);
    let user = auth
        .register("sue@example.com", Password::new(PASSWORD), &laptop())
        .await
        .unwrap();
    let refused = auth.start_session(user.id, methods, &laptop()).await;
    assert!(matches!(refused, Err(AuthError::EmailNotVerified)), "{refused:?}");
}

#[tokio::test]
async fn role_changes_are_atomic_core_operations_that_end_older_tokens() {
    let f = Fixture::new();
    let (user, login) = f.logged_in("tao@example.com").await;
    f.events.take();
    let editor = Role::new("editor").unwrap();

    let granted = f.auth.grant_role(user.id, editor.clone(), &laptop()).await.unwrap();
    assert!(granted.roles.contains(&editor));
    let older = f.auth.authenticate(login.tokens.access_token.expose_secret()).await;
    assert!(
        matches!(older, Err(AuthError::InvalidToken(TokenError::Revoked))),
        "tokens issued before a role change stop working: {older:?}"
    );
    let pair = f
        .auth
        .refresh(login.tokens.refresh_token.expose_secret(), &laptop())
        .await
        .unwrap();
    let me = f.auth.authenticate(pair.access_token.expose_secret()).await.unwrap();
    assert!(me.claims.has_role("editor"), "the session continues with the new role");

    // Granting a role held already changes nothing: the new token keeps working.
    f.auth.grant_role(user.id, editor.clone(), &laptop()).await.unwrap();
    assert!(f.auth.authenticate(pair.access_token.expose_secret()).await.is_ok());

    let revoked = f.auth.revoke_role(user.id, editor.clone(), &laptop()).await.unwrap();
    assert!(revoked.roles.is_empty());
    assert!(f.auth.authenticate(pair.access_token.expose_secret()).await.is_err());

    let kinds: Vec<(Action, EventKind)> = f.events.take().iter().map(|e| (e.action, e.kind())).collect();
    assert_eq!(
        kinds,
        [
            (Action::GrantRole, EventKind::RolesChanged),
            (Action::Refresh, EventKind::TokenRefreshed),
            (Action::GrantRole, EventKind::RolesChanged),
            (Action::RevokeRole, EventKind::RolesChanged),
        ]
    );

    let ghost = UserId::new_at(datetime!(2026-06-01 09:00 UTC));
    assert!(matches!(
        f.auth.grant_role(ghost, editor.clone(), &laptop()).await,
        Err(AuthError::UserNotFound)
    ));
    assert!(matches!(
        f.auth.revoke_role(ghost, editor, &laptop()).await,
        Err(AuthError::UserNotFound)
    ));
}

#[tokio::test]
async fn a_grant_past_the_role_limit_is_refused_and_writes_nothing() {
    let f = Fixture::new();
    let user = f.register("uma@example.com").await;
    let full: BTreeSet<Role> = (0..Role::MAX_PER_ACCOUNT)
        .map(|i| Role::new(format!("r-{i}")).unwrap())
        .collect();
    let held = f.auth.set_roles(user.id, full.clone(), &laptop()).await.unwrap();
    f.events.take();
    let refused = f.auth.grant_role(user.id, Role::ADMIN, &laptop()).await;
    assert!(
        matches!(refused, Err(AuthError::TooManyRoles { max: 32 })),
        "{refused:?}"
    );
    assert_eq!(f.stored(user.id).await, held, "nothing written");
    let events = f.events.take();
    assert_eq!(events[0].outcome, Outcome::Refused(auth_core::Refusal::TooManyRoles));
    // One held role can still be granted again (a no-op), and revoked.
    let first = full.iter().next().unwrap().clone();
    assert!(f.auth.grant_role(user.id, first.clone(), &laptop()).await.is_ok());
    assert_eq!(
        f.auth.revoke_role(user.id, first, &laptop()).await.unwrap().roles.len(),
        31
    );
}

#[tokio::test]
async fn administration_needs_no_signing_key() {
    let store = MemoryStore::new();
    let user = User::new(
        Email::parse("vic@example.com").unwrap(),
        None,
        datetime!(2026-06-01 09:00 UTC),
    );
    store.insert_user(&user).await.unwrap();
    let accounts = Accounts::new(store.clone());
    let tool = ClientInfo::new(Some("grant-role"), None);
    let granted = accounts.grant_role(user.id, Role::ADMIN, &tool).await.unwrap();
    assert!(granted.has_role("admin"));
    assert_eq!(accounts.list_users(None, 10).await.unwrap(), vec![granted]);
    let disabled = accounts.set_active(user.id, false, &tool).await.unwrap();
    assert!(!disabled.is_active);
}

#[tokio::test]
async fn a_kept_session_is_resumed_refreshed_kept_or_ended_by_one_core_call() {
    let f = Fixture::new();
    let (_, login) = f.logged_in("wes@example.com").await;
    let access = login.tokens.access_token.expose_secret().to_owned();
    let refresh = login.tokens.refresh_token.expose_secret().to_owned();

    let resumed = f.auth.resume_session(&access, &refresh, &laptop()).await;
    assert!(resumed.refreshed.is_none());
    assert!(matches!(resumed.check, SessionCheck::Live(ref me) if me.user.email.as_str() == "wes@example.com"));

    // Past the access token's lifetime: refreshed once, live, with new tokens.
    f.clock.advance(Duration::from_secs(16 * 60));
    let resumed = f.auth.resume_session(&access, &refresh, &laptop()).await;
    let pair = resumed.refreshed.expect("refreshed");
    assert!(matches!(resumed.check, SessionCheck::Live(_)));
    let (access, refresh) = (
        pair.access_token.expose_secret().to_owned(),
        pair.refresh_token.expose_secret().to_owned(),
    );

    // The store down: not checked now, and not ended.
    f.store.set_down(true);
    let resumed = f.auth.resume_session(&access, &refresh, &laptop()).await;
    assert!(matches!(
        resumed.check,
        SessionCheck::Unchecked(AuthError::Unavailable(_))
    ));
    f.store.set_down(false);
    assert!(matches!(
        f.auth.resume_session(&access, &refresh, &laptop()).await.check,
        SessionCheck::Live(_)
    ));

    // Expired again and the store down after the refresh: the new tokens come back all
    // the same, or the spent refresh token would later read as reuse.
    f.clock.advance(Duration::from_secs(16 * 60));
    let hook_store = f.store.clone();
    f.store
        .after_next_rotation(Box::new(move || Box::pin(async move { hook_store.set_down(true) })));
    let resumed = f.auth.resume_session(&access, &refresh, &laptop()).await;
    assert!(resumed.refreshed.is_some(), "the refreshed tokens are kept");
    assert!(matches!(resumed.check, SessionCheck::Unchecked(_)));
    f.store.set_down(false);
    let pair = resumed.refreshed.unwrap();
    let (access, refresh) = (
        pair.access_token.expose_secret().to_owned(),
        pair.refresh_token.expose_secret().to_owned(),
    );

    // Logged out: ended.
    f.auth.logout(&refresh, &laptop()).await.unwrap();
    let resumed = f.auth.resume_session(&access, &refresh, &laptop()).await;
    assert!(matches!(
        resumed.check,
        SessionCheck::Ended(AuthError::InvalidToken(TokenError::Revoked))
    ));
}
