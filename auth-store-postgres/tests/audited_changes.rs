//! The audit record of a change is written in the change's own transaction: when the
//! database refuses the record, the change is rolled back with it and the caller gets
//! the store's error; no change is ever left without its record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;

use auth_core::{
    AuditLog, AuditLogStore, AuditQuery, AuthError, AuthService, ClientInfo, Password, SessionStore, SigningKey,
    Tokens, UserStore,
};

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a different horse entirely";

#[tokio::test(flavor = "multi_thread")]
async fn a_change_whose_record_is_refused_is_rolled_back_and_reported() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let (log, _writer) = AuditLog::new(Arc::new(store.clone()));
    let tokens = Tokens::new(
        SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap(),
        "https://auth.test",
        "api",
    );
    let auth = AuthService::new(store.clone(), tokens).with_audit_log(log);
    let client = ClientInfo::new(Some("Audited/1.0"), None);
    let user = auth
        .register("ann@example.com", Password::new(PASSWORD), &client)
        .await
        .unwrap();

    // Every insert into the audit log fails, as a full or broken table would.
    let schema = store.schema().to_owned();
    for statement in [
        format!(
            "CREATE FUNCTION {schema}.refuse_records() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'the audit log refuses records'; END $$"
        ),
        format!(
            "CREATE TRIGGER refuse_records BEFORE INSERT ON {schema}.audit_events
             FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_records()"
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(store.pool())
            .await
            .unwrap();
    }
    let refused = auth
        .change_password(user.id, Password::new(PASSWORD), Password::new(NEW_PASSWORD), &client)
        .await
        .unwrap_err();
    assert!(matches!(refused, AuthError::Internal(_)), "{refused:?}");
    let kept = store.find_user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(kept.password_hash, user.password_hash, "the password did not change");
    assert_eq!(kept.token_version, user.token_version);
    let signed_in = auth.login("ann@example.com", Password::new(PASSWORD), &client).await;
    assert!(matches!(signed_in, Err(AuthError::Internal(_))), "{signed_in:?}");
    assert!(
        store.list_sessions(user.id).await.unwrap().is_empty(),
        "no session without its record"
    );

    let drop = format!("DROP TRIGGER refuse_records ON {schema}.audit_events");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(store.pool())
        .await
        .unwrap();
    auth.change_password(user.id, Password::new(PASSWORD), Password::new(NEW_PASSWORD), &client)
        .await
        .unwrap();
    let kinds: Vec<String> = store
        .list_audit_records(&AuditQuery::first(10).of_user(user.id))
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.kind)
        .collect();
    assert_eq!(kinds, ["registered", "password_changed"]);
}
