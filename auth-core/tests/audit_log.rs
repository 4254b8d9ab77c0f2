//! The audit log: events kept in the store by `AuditLog` (a change's record in the change's
//! own transaction, the rest queued), read back per account; a change is never left
//! without its record, and a queued record the store refuses is counted, never silent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::sync::Arc;

use auth_core::{
    AuditLog, AuditLogStore, AuditQuery, AuthService, ClientInfo, ManualClock, Password, SigningKey, Tokens,
};

mod common;

use common::{HookedStore, PASSWORD, SECRET};

fn service(store: &HookedStore, log: AuditLog, clock: &ManualClock) -> AuthService<HookedStore> {
    let tokens = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://auth.test", "test-api");
    AuthService::new(store.clone(), tokens)
        .with_audit_log(log)
        .with_clock(Arc::new(clock.clone()))
}

fn clock() -> ManualClock {
    ManualClock::new(time::macros::datetime!(2026-06-01 09:00 UTC))
}

#[tokio::test]
async fn a_change_is_recorded_with_it_and_a_refusal_is_queued_and_counted_if_lost() {
    let store = HookedStore::default();
    let (log, mut writer) = AuditLog::new(Arc::new(store.clone()));
    // Records list in the order of their ids, made at the events' times to the
    // millisecond: the clock moves between calls.
    let clock = clock();
    let step = || clock.advance(std::time::Duration::from_millis(10));
    let auth = service(&store, log.clone(), &clock);
    let client = ClientInfo::new(Some("Audited/1.0"), Some("203.0.113.8".parse().unwrap()));
    let user = auth
        .register("amy@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    step();
    let login = auth
        .login("amy@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    // Kept with the account and the session they record: nothing queued, no flush.
    let kept = store
        .list_audit_records(&AuditQuery::first(10).of_user(user.id))
        .await
        .unwrap();
    let kinds: Vec<&str> = kept.iter().map(|record| record.kind.as_str()).collect();
    assert_eq!(kinds, ["registered", "login_succeeded"]);
    assert_eq!(kept[1].session_id, Some(login.tokens.session.id));
    assert_eq!(kept[1].user_agent.as_deref(), Some("Audited/1.0"));

    // A refusal changes nothing: its record is queued, and written by the writer.
    step();
    let refused = auth
        .login("amy@example.com", Password::new("a wrong guess"), &client)
        .await;
    assert!(refused.is_err());
    writer.flush().await;
    let kept = store
        .list_audit_records(&AuditQuery::first(10).of_user(user.id))
        .await
        .unwrap();
    let kinds: Vec<&str> = kept.iter().map(|record| record.kind.as_str()).collect();
    assert_eq!(kinds, ["registered", "login_succeeded", "login_failed"]);
    assert_eq!(log.lost(), 0);

    // The store refuses the queue's write: the loss is counted (and logged), and the
    // next records are written again.
    step();
    let _ = auth
        .login("amy@example.com", Password::new("another wrong guess"), &client)
        .await;
    store.set_down(true);
    writer.flush().await;
    store.set_down(false);
    assert_eq!(log.lost(), 1);
    step();
    assert!(
        auth.refresh(login.tokens.refresh_token.expose_secret(), &client)
            .await
            .is_ok()
    );
    let kept = store
        .list_audit_records(&AuditQuery::first(10).of_user(user.id))
        .await
        .unwrap();
    let kinds: Vec<&str> = kept.iter().map(|record| record.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["registered", "login_succeeded", "login_failed", "token_refreshed"]
    );
}

#[tokio::test]
async fn a_store_that_does_not_take_the_records_still_gets_them_queued() {
    // A store of the application's own (here: the memory store behind a wrapper that
    // forwards only the base traits' calls, outside any recorded write) keeps a full log:
    // the record of each change is queued when the write did not take it.
    let store = HookedStore::default();
    let (log, mut writer) = AuditLog::new(Arc::new(store.clone()));
    let clock = clock();
    let auth = service(&store, log.clone(), &clock);
    let client = ClientInfo::unknown();
    store.set_records_ignored(true);
    let user = auth
        .register("amy@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    assert!(
        auth.events_of(user.id, None, 10).await.unwrap().is_empty(),
        "not with the change"
    );
    writer.flush().await;
    let kinds: Vec<String> = auth
        .events_of(user.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.kind)
        .collect();
    assert_eq!(kinds, ["registered"]);
    assert_eq!(log.lost(), 0);
}

#[tokio::test]
async fn an_account_reads_its_own_records_by_a_cursor_and_retention_deletes_old_ones() {
    let store = HookedStore::default();
    let (log, mut writer) = AuditLog::new(Arc::new(store.clone()));
    let clock = clock();
    let auth = service(&store, log, &clock);
    let client = ClientInfo::unknown();
    let amy = auth
        .register("amy@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    let bob = auth
        .register("bob@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    for _ in 0..3 {
        let _ = auth
            .login("amy@example.com", Password::new(PASSWORD), &client)
            .await
            .unwrap();
    }
    let _ = auth
        .login("bob@example.com", Password::new("a wrong guess"), &client)
        .await;
    writer.flush().await;
    let mine = auth.events_of(amy.id, None, 100).await.unwrap();
    assert_eq!(mine.len(), 4, "{mine:?}");
    assert!(mine.iter().all(|record| record.user_id == Some(amy.id)));
    let page = auth.events_of(amy.id, None, 2).await.unwrap();
    let rest = auth.events_of(amy.id, Some(page[1].id), 100).await.unwrap();
    assert_eq!([page, rest].concat(), mine);
    let failed = auth
        .list_events(&AuditQuery::first(100).of_kind("login_failed"))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].user_id, Some(bob.id));
    assert_eq!(failed[0].reason.as_deref(), Some("WrongPassword"));

    // Retention by the service's clock: an hour later, a two-hour retention keeps every
    // record, a half-hour one deletes them all.
    clock.advance(std::time::Duration::from_secs(3600));
    let kept = std::time::Duration::from_secs(7200);
    assert_eq!(auth.purge_audit_log(kept).await.unwrap(), 0);
    let short = std::time::Duration::from_secs(1800);
    assert_eq!(
        auth.purge_audit_log(short).await.unwrap(),
        6,
        "two registrations, four logins"
    );
    assert!(auth.events_of(amy.id, None, 100).await.unwrap().is_empty());
}

/// What an authenticator app shows for `secret` (base32) at `at`.
fn totp_code(secret: &str, at: time::OffsetDateTime) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    totp.generate(u64::try_from(at.unix_timestamp()).unwrap()).to_string()
}

#[tokio::test]
async fn every_change_of_every_flow_is_recorded_with_it() {
    // The writer never runs: every record listed here was written with its change.
    let mut f = common::Fixture::new();
    let (log, _writer) = AuditLog::new(Arc::new(f.store.clone()));
    f.auth = f.auth.with_audit_log(log);
    let (auth, clock) = (&f.auth, &f.clock);
    let step = || clock.advance(std::time::Duration::from_secs(31));
    let client = common::laptop();
    let kinds = async |user: auth_core::UserId| -> Vec<String> {
        auth.events_of(user, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|record| record.kind)
            .collect()
    };
    let caller = async |tokens: &auth_core::TokenPair| {
        let me = auth.authenticate(tokens.access_token.expose_secret()).await.unwrap();
        auth_core::Caller::from(&me)
    };

    let user = auth
        .register("amy@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();
    step();
    let login = auth
        .login("amy@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    step();
    let refreshed = auth
        .refresh(login.tokens.refresh_token.expose_secret(), &client)
        .await
        .unwrap();
    step();
    let verification = auth
        .request_email_verification(user.id, &client)
        .await
        .unwrap()
        .unwrap();
    step();
    auth.verify_email(verification.token.expose_secret(), &client)
        .await
        .unwrap();
    step();
    let me = caller(&refreshed).await;
    let enrolment = auth
        .begin_totp_enrolment(&me, Password::new(PASSWORD), &client)
        .await
        .unwrap();
    let secret = enrolment.expose_secret().to_owned();
    step();
    let code = totp_code(&secret, auth_core::Clock::now(clock));
    auth.confirm_totp(&me, &code, &client).await.unwrap();
    step();
    let me = caller(&refreshed)
        .await
        .with_second_factor(auth_core::SecondFactorCode::totp(totp_code(
            &secret,
            auth_core::Clock::now(clock),
        )));
    auth.regenerate_recovery_codes(&me, Password::new(PASSWORD), &client)
        .await
        .unwrap();
    step();
    let code = auth_core::SecondFactorCode::totp(totp_code(&secret, auth_core::Clock::now(clock)));
    auth.disable_totp(&caller(&refreshed).await, Password::new(PASSWORD), code, &client)
        .await
        .unwrap();
    step();
    let viewer = auth_core::Role::new("viewer").unwrap();
    auth.grant_role(user.id, viewer.clone(), &client).await.unwrap();
    step();
    auth.revoke_role(user.id, viewer, &client).await.unwrap();
    step();
    auth.set_roles(user.id, std::collections::BTreeSet::new(), &client)
        .await
        .unwrap();
    step();
    auth.set_active(user.id, false, &client).await.unwrap();
    step();
    auth.set_active(user.id, true, &client).await.unwrap();
    step();
    let login = auth
        .login("amy@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    step();
    auth.revoke_session(user.id, login.tokens.session.id, &client)
        .await
        .unwrap();
    step();
    let login = auth
        .login("amy@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    step();
    auth.logout(login.tokens.refresh_token.expose_secret(), &client)
        .await
        .unwrap();
    step();
    auth.logout_all(user.id, &client).await.unwrap();
    step();
    let reset = auth
        .request_password_reset("amy@example.com", &client)
        .await
        .unwrap()
        .unwrap();
    step();
    auth.reset_password(
        reset.token.expose_secret(),
        Password::new("a brand new passphrase"),
        &client,
    )
    .await
    .unwrap();
    step();
    auth.change_password(
        user.id,
        Password::new("a brand new passphrase"),
        Password::new(PASSWORD),
        &client,
    )
    .await
    .unwrap();
    step();
    let login = auth
        .login("amy@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    f.notices.take_whole();
    let change = auth
        .request_email_change(user.id, "amy@new.example", Some(Password::new(PASSWORD)), &client)
        .await
        .unwrap()
        .unwrap();
    step();
    auth.confirm_email_change(change.token.expose_secret(), &client)
        .await
        .unwrap();
    let undo = f
        .notices
        .take_whole()
        .into_iter()
        .rev()
        .find_map(|notice| notice.link)
        .unwrap();
    step();
    auth.undo_email_change(undo.token.expose_secret(), &client)
        .await
        .unwrap();
    let _ = login;

    assert_eq!(
        kinds(user.id).await,
        [
            "registered",
            "login_succeeded",
            "token_refreshed",
            "email_verification_requested",
            "email_verified",
            "totp_enrolment_started",
            "totp_enabled",
            "recovery_codes_regenerated",
            "totp_disabled",
            "roles_changed",
            "roles_changed",
            "roles_changed",
            "account_disabled",
            "account_enabled",
            "login_succeeded",
            "session_revoked",
            "login_succeeded",
            "logged_out",
            "logged_out_all",
            "reset_requested",
            "reset_completed",
            "password_changed",
            "login_succeeded",
            "email_change_requested",
            "email_changed",
            "email_change_undone",
        ]
    );

    step();
    auth.delete_user(user.id, &client).await.unwrap();
    let deleted = auth
        .list_events(&AuditQuery::first(10).of_kind("account_deleted_by_administrator"))
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1, "recorded with the deletion");
    assert_eq!(deleted[0].user_id, None);
    assert!(kinds(user.id).await.is_empty(), "no record names the deleted account");

    let invited = auth
        .invite("bob@example.com", std::collections::BTreeSet::new(), &client)
        .await
        .unwrap();
    assert_eq!(kinds(invited.user.id).await, ["account_invited"]);
    let bob = auth.login("bob@example.com", Password::new(PASSWORD), &client).await;
    assert!(bob.is_err(), "no password yet");
    auth.reset_password(invited.delivery.token.expose_secret(), Password::new(PASSWORD), &client)
        .await
        .unwrap();
    let bob = auth
        .login("bob@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap()
        .signed_in()
        .unwrap();
    step();
    auth.delete_account(caller(&bob.tokens).await, Some(Password::new(PASSWORD)), &client)
        .await
        .unwrap();
    let deleted = auth
        .list_events(&AuditQuery::first(10).of_kind("account_deleted"))
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1, "recorded with the deletion");
    assert_eq!(
        (deleted[0].user_id, &deleted[0].user_agent),
        (None, &None),
        "no account, no client"
    );
}
