//! What is particular to PostgreSQL: the store's own schema, its migrations beside the
//! application's, concurrent migration, newer schemas, schema names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::str::FromStr;

use auth_core::conformance::{sample_session, sample_user, unique_email};
use auth_core::{
    AuthMethod, ExternalIdentity, ExternalLoginCode, ExternalLoginPurpose, ExternalLoginState, IdentityStore,
    LinkedIdentity, LoginChallenge, OpaqueToken, ProviderName, ReturnPath, SecondFactorStore, SessionId, SessionStore,
    StoreError, TokenHash, TokenKind, TotpFactor, User, UserStore,
};
use auth_store_postgres::{MigrateError, PostgresStore, SCHEMA_VERSION, SchemaNameError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

async fn count(pool: &sqlx::PgPool, sql: String) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn migrations_are_idempotent_and_recorded_in_the_stores_schema() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let schema = store.schema().to_owned();
    let applied = count(store.pool(), format!("SELECT count(*) FROM {schema}._sqlx_migrations")).await;
    assert_eq!(applied, SCHEMA_VERSION);
    let tables = count(
        store.pool(),
        format!("SELECT count(*) FROM pg_tables WHERE schemaname = '{schema}'"),
    )
    .await;
    assert_eq!(
        tables, 16,
        "users, sessions, refresh_tokens, one_time_tokens, browser_sessions, totp_factors, recovery_codes, \
         login_challenges, identities, external_login_states, external_login_codes, email_changes, \
         audit_events, passkeys, passkey_ceremonies, _sqlx_migrations"
    );
}

#[tokio::test]
async fn the_applications_own_sqlx_migrations_are_left_alone() {
    let Some(admin) = common::pool().await else {
        return;
    };
    // The application's schema, first in its search_path, with its own migration record
    // (a version 1 that is not ours).
    let app = common::fresh_schema_name();
    for statement in [
        format!("CREATE SCHEMA {app}"),
        format!(
            "CREATE TABLE {app}._sqlx_migrations (version bigint PRIMARY KEY, description text NOT NULL,
             installed_on timestamptz NOT NULL DEFAULT now(), success boolean NOT NULL, checksum bytea NOT NULL,
             execution_time bigint NOT NULL)"
        ),
        format!("INSERT INTO {app}._sqlx_migrations VALUES (1, 'the app''s first', now(), true, '\\x00', 1)"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&admin)
            .await
            .unwrap();
    }
    let options = PgConnectOptions::from_str(&common::url())
        .unwrap()
        .options([("search_path", app.as_str())]);
    let store = common::store_with(options).await;
    let user = sample_user(unique_email("beside-the-app"));
    store.insert_user(&user).await.unwrap();
    assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(user));

    let app_rows = count(&admin, format!("SELECT count(*) FROM {app}._sqlx_migrations")).await;
    assert_eq!(app_rows, 1, "the application's record is untouched");
    let app_tables = count(
        &admin,
        format!("SELECT count(*) FROM pg_tables WHERE schemaname = '{app}'"),
    )
    .await;
    assert_eq!(app_tables, 1, "nothing of ours in the application's schema");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_instances_migrating_at_once_apply_each_migration_once() {
    let Some(pool) = common::pool().await else {
        return;
    };
    let schema = common::fresh_schema_name();
    let migrations: Vec<_> = (0..6)
        .map(|_| {
            let store = PostgresStore::new(pool.clone()).with_schema(&schema).unwrap();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for migration in migrations {
        migration.await.unwrap().unwrap();
    }
    let applied = count(&pool, format!("SELECT count(*) FROM {schema}._sqlx_migrations")).await;
    assert_eq!(applied, SCHEMA_VERSION);
}

#[tokio::test]
async fn a_schema_from_a_newer_release_is_refused_and_left_untouched() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let schema = store.schema().to_owned();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}._sqlx_migrations VALUES (99, 'from the future', now(), true, '\\x00', 1)"
    )))
    .execute(store.pool())
    .await
    .unwrap();
    let error = store.migrate().await.unwrap_err();
    assert!(
        matches!(
            error,
            MigrateError::SchemaTooNew {
                found: 99,
                supported: SCHEMA_VERSION
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("newer than this release supports"),
        "{error}"
    );
    let applied = count(store.pool(), format!("SELECT count(*) FROM {schema}._sqlx_migrations")).await;
    assert_eq!(applied, SCHEMA_VERSION + 1);
}

#[tokio::test]
async fn schema_names_are_plain_identifiers() {
    let pool = PgPoolOptions::new().connect_lazy(common::DEFAULT_URL).unwrap();
    let store = || PostgresStore::new(pool.clone());
    assert_eq!(store().schema(), "auth");
    assert_eq!(store().with_schema("tenant_42").unwrap().schema(), "tenant_42");
    for bad in [
        "",
        "Auth",
        "1st",
        "auth; DROP TABLE users",
        "a\"b",
        "pg_catalog",
        &"a".repeat(64),
        "é",
    ] {
        assert_eq!(
            store().with_schema(bad).unwrap_err(),
            SchemaNameError(bad.to_owned()),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_store_without_its_tables_is_a_backend_error_not_a_panic() {
    let Some(pool) = common::pool().await else {
        return;
    };
    let store = PostgresStore::new(pool)
        .with_schema(&common::fresh_schema_name())
        .unwrap();
    let error = store
        .find_user_by_id(sample_user(unique_email("unmigrated")).id)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_upgrading_a_legacy_hash_all_succeed_and_leave_one_argon2id_hash() {
    use std::sync::Arc;

    use auth_core::{AuthService, ClientInfo, HashedPassword, Password, PasswordHasher, SigningKey, Tokens};

    let Some(store) = common::fresh_store().await else {
        return;
    };
    // bcrypt cost 12 of "testpass123", as passlib wrote it (auth-core's legacy fixtures).
    let legacy = HashedPassword::new("$2b$12$CqKzV8LCaFsLHng2PeymoOGvYKbnWBm7mOxNg0TdJQuT9rX8p1tFa");
    let user = sample_user(unique_email("legacy")).with_password_hash(Some(legacy.clone()));
    store.insert_user(&user).await.unwrap();
    let tokens = Tokens::new(SigningKey::hs256(&[3; 32]).unwrap(), "https://auth.test", "test");
    let auth = Arc::new(AuthService::new(store.clone(), tokens));
    let logins: Vec<_> = (0..5u8) // the per-account limit: 5 at once
        .map(|i| {
            let (auth, email) = (auth.clone(), user.email.as_str().to_owned());
            let client = ClientInfo::new(None, Some(std::net::IpAddr::from([10, 9, 0, i])));
            tokio::spawn(async move { auth.login(&email, Password::new("testpass123"), &client).await })
        })
        .collect();
    for login in logins {
        login.await.unwrap().unwrap().signed_in().unwrap();
    }
    let stored = store.find_user_by_id(user.id).await.unwrap().unwrap();
    let hash = stored.password_hash.unwrap();
    assert!(hash.as_str().starts_with("$argon2id$"), "{hash:?}");
    assert!(
        auth_core::Argon2Hasher::default()
            .verify(&Password::new("testpass123"), &hash)
            .unwrap()
            .is_match()
    );
    assert_eq!(stored.token_version, user.token_version, "an upgrade revokes nothing");
}

async fn execute(pool: &sqlx::PgPool, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await.unwrap();
}

#[tokio::test]
async fn reserved_words_are_usable_schema_names() {
    let Some(pool) = common::pool().await else {
        return;
    };
    for name in ["user", "order"] {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE")))
            .execute(&pool)
            .await;
        let store = PostgresStore::new(pool.clone()).with_schema(name).unwrap();
        store.migrate().await.unwrap();
        let user = sample_user(unique_email("reserved"));
        store.insert_user(&user).await.unwrap();
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(user));
        execute(&pool, format!("DROP SCHEMA \"{name}\" CASCADE")).await;
    }
}

#[tokio::test]
async fn an_application_role_without_create_can_start_against_a_migrated_schema() {
    let Some(admin) = common::pool().await else {
        return;
    };
    let schema = common::fresh_schema_name();
    PostgresStore::new(admin.clone())
        .with_schema(&schema)
        .unwrap()
        .migrate()
        .await
        .unwrap();
    // The least-privilege role an application runs as: data rights only.
    let role = format!("auth_app_{}", uuid::Uuid::new_v4().simple());
    execute(&admin, format!("CREATE ROLE {role} LOGIN")).await;
    execute(&admin, format!("GRANT USAGE ON SCHEMA {schema} TO {role}")).await;
    execute(
        &admin,
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"),
    )
    .await;
    let options = PgConnectOptions::from_str(&common::url()).unwrap().username(&role);
    let app = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let store = PostgresStore::new(app.clone()).with_schema(&schema).unwrap();
    let migrated = store.migrate().await;
    let user = sample_user(unique_email("least-privilege"));
    let inserted = store.insert_user(&user).await;
    app.close().await;
    execute(&admin, format!("DROP OWNED BY {role}")).await;
    execute(&admin, format!("DROP ROLE {role}")).await;
    migrated.expect("already migrated: nothing to create");
    inserted.unwrap();
}

#[tokio::test]
async fn timestamps_the_domain_cannot_hold_are_refused_by_the_database() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let user = sample_user(unique_email("infinity"));
    store.insert_user(&user).await.unwrap();
    let schema = store.schema().to_owned();
    for value in ["infinity", "-infinity", "10000-01-01"] {
        let edited = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {schema}.users SET email_verified_at = '{value}' WHERE id = $1"
        )))
        .bind(user.id.as_uuid())
        .execute(store.pool())
        .await;
        assert!(edited.is_err(), "{value} was stored");
    }
    assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(user));
}

#[tokio::test]
async fn an_unknown_older_migration_is_a_failure_not_a_newer_schema() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let schema = store.schema().to_owned();
    execute(
        store.pool(),
        format!("INSERT INTO {schema}._sqlx_migrations VALUES (0, 'foreign', now(), true, '\\x00', 1)"),
    )
    .await;
    let error = store.migrate().await.unwrap_err();
    assert!(matches!(error, MigrateError::Failed(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_too_long_elsewhere_is_unavailable_not_a_server_error() {
    let Some(admin) = common::pool().await else {
        return;
    };
    let options = PgConnectOptions::from_str(&common::url())
        .unwrap()
        .options([("lock_timeout", "200ms")]);
    let store = common::store_with(options).await;
    let user = sample_user(unique_email("locked"));
    store.insert_user(&user).await.unwrap();
    let mut held = admin.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM {}.users WHERE id = $1 FOR UPDATE",
        store.schema()
    )))
    .bind(user.id.as_uuid())
    .execute(&mut *held)
    .await
    .unwrap();
    let error = store
        .set_active(user.id, false, time::OffsetDateTime::now_utc())
        .await
        .unwrap_err();
    held.rollback().await.unwrap();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(
        store
            .set_active(user.id, false, user.updated_at)
            .await
            .unwrap()
            .is_some()
    );
}

fn hash(kind: TokenKind) -> TokenHash {
    OpaqueToken::generate(kind).unwrap().1
}

/// A confirmed TOTP factor with two recovery codes, and a login challenge: every row of
/// migration 5's tables for `user`. Returns the account as confirming left it.
async fn enrol(store: &PostgresStore, user: &User) -> User {
    let factor = TotpFactor::new(user.id, "v1.0a1b2c3d.sealed".to_owned(), user.updated_at);
    assert!(store.insert_totp_factor(&factor).await.unwrap());
    let codes = [hash(TokenKind::PasswordReset), hash(TokenKind::PasswordReset)];
    let at = user.updated_at + time::Duration::seconds(1);
    let enrolled = store
        .confirm_totp_factor(user.id, &factor.sealed_secret, 7, &codes, at)
        .await
        .unwrap()
        .unwrap();
    let challenge = LoginChallenge::new(user.id, at, at + time::Duration::minutes(5), user.token_version);
    store
        .insert_login_challenge(&hash(TokenKind::LoginChallenge), &challenge)
        .await
        .unwrap();
    enrolled
}

/// Puts a schema of this release back to migration 5, before external identities (and
/// the address changes, audit log and passkeys after them): without their tables and
/// without `login_challenges.first_factor`, every other row kept.
async fn back_to_version_5(store: &PostgresStore) {
    let schema = store.schema();
    for statement in [
        format!("DROP TABLE {schema}.passkey_ceremonies, {schema}.passkeys"),
        format!("DROP TABLE {schema}.audit_events, {schema}.email_changes"),
        format!("DROP TABLE {schema}.external_login_codes, {schema}.external_login_states, {schema}.identities"),
        format!("ALTER TABLE {schema}.login_challenges DROP COLUMN first_factor"),
        format!("DELETE FROM {schema}._sqlx_migrations WHERE version > 5"),
    ] {
        execute(store.pool(), statement).await;
    }
}

/// Puts a schema of this release back to migration 4, before second factors: without
/// their tables and without `users.requires_second_factor`, every other row kept.
async fn back_to_version_4(store: &PostgresStore) {
    back_to_version_5(store).await;
    let schema = store.schema();
    for statement in [
        format!("DROP TABLE {schema}.login_challenges, {schema}.recovery_codes, {schema}.totp_factors"),
        format!("ALTER TABLE {schema}.users DROP COLUMN requires_second_factor"),
        format!("DELETE FROM {schema}._sqlx_migrations WHERE version > 4"),
    ] {
        execute(store.pool(), statement).await;
    }
}

#[tokio::test]
async fn migration_5_keeps_every_account_and_asks_none_of_them_for_a_second_factor() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let user = sample_user(unique_email("before-2fa"));
    store.insert_user(&user).await.unwrap();
    let session = sample_session(&user);
    store.insert_session(&session, &hash(TokenKind::Refresh)).await.unwrap();
    back_to_version_4(&store).await;
    let schema = store.schema().to_owned();
    // An instance of the previous release, still running while another migrates, writes
    // accounts without the new column.
    let older = sample_user(unique_email("older-release"));
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.users (id, email, password_hash, is_active, email_verified_at, roles, token_version,
                                    created_at, updated_at)
         VALUES ($1, $2, NULL, true, NULL, '{{}}', 0, $3, $3)"
    )))
    .bind(older.id.as_uuid())
    .bind(older.email.as_str())
    .bind(older.created_at)
    .execute(store.pool())
    .await
    .unwrap();

    store.migrate().await.unwrap();
    let applied = count(store.pool(), format!("SELECT count(*) FROM {schema}._sqlx_migrations")).await;
    assert_eq!(applied, SCHEMA_VERSION);
    let found = store.find_user_by_id(user.id).await.unwrap().unwrap();
    assert!(!found.requires_second_factor);
    assert_eq!(found, user);
    assert_eq!(store.find_session(session.id).await.unwrap(), Some(session));
    let older = older.with_password_hash(None);
    assert_eq!(store.find_user_by_id(older.id).await.unwrap(), Some(older.clone()));
    // The new tables work on the migrated schema.
    let enrolled = enrol(&store, &older).await;
    assert!(enrolled.requires_second_factor);
    assert_eq!(store.find_user_by_id(older.id).await.unwrap(), Some(enrolled));
    assert_eq!(store.count_recovery_codes(older.id).await.unwrap(), 2);
}

#[tokio::test]
async fn deleting_an_account_deletes_its_factor_recovery_codes_and_challenge() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let (user, other) = (sample_user(unique_email("deleted")), sample_user(unique_email("kept")));
    for account in [&user, &other] {
        store.insert_user(account).await.unwrap();
        enrol(&store, account).await;
    }
    let schema = store.schema().to_owned();
    let rows = |account: &User| {
        let id = account.id;
        format!(
            "SELECT (SELECT count(*) FROM {schema}.totp_factors WHERE user_id = '{id}')
                  + (SELECT count(*) FROM {schema}.recovery_codes WHERE user_id = '{id}')
                  + (SELECT count(*) FROM {schema}.login_challenges WHERE user_id = '{id}')"
        )
    };
    assert_eq!(count(store.pool(), rows(&user)).await, 4);
    // An application deleting the account.
    execute(
        store.pool(),
        format!("DELETE FROM {schema}.users WHERE id = '{}'", user.id),
    )
    .await;
    assert_eq!(count(store.pool(), rows(&user)).await, 0);
    assert_eq!(count(store.pool(), rows(&other)).await, 4, "another account's are kept");
    assert_eq!(store.find_totp_factor(user.id).await.unwrap(), None);
    assert!(store.find_totp_factor(other.id).await.unwrap().is_some());
}

#[tokio::test]
async fn second_factor_rows_of_unknown_accounts_are_refused() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let ghost = sample_user(unique_email("ghost"));
    let factor = TotpFactor::new(ghost.id, "v1.0a1b2c3d.ghost".to_owned(), ghost.created_at);
    assert!(matches!(
        store.insert_totp_factor(&factor).await,
        Err(StoreError::Backend(_))
    ));
    let challenge = LoginChallenge::new(
        ghost.id,
        ghost.created_at,
        ghost.created_at + time::Duration::minutes(5),
        0,
    );
    assert!(matches!(
        store
            .insert_login_challenge(&hash(TokenKind::LoginChallenge), &challenge)
            .await,
        Err(StoreError::Backend(_))
    ));
}

#[tokio::test]
async fn a_login_challenge_hash_is_never_reused_across_accounts_or_by_its_own() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let (first, second) = (sample_user(unique_email("first")), sample_user(unique_email("second")));
    store.insert_user(&first).await.unwrap();
    store.insert_user(&second).await.unwrap();
    let taken = hash(TokenKind::LoginChallenge);
    let challenge = |user: &User| {
        LoginChallenge::new(
            user.id,
            user.created_at,
            user.created_at + time::Duration::minutes(5),
            0,
        )
    };
    store.insert_login_challenge(&taken, &challenge(&first)).await.unwrap();
    for user in [&first, &second] {
        assert!(matches!(
            store.insert_login_challenge(&taken, &challenge(user)).await,
            Err(StoreError::Backend(_))
        ));
    }
    assert_eq!(
        store.find_login_challenge(&taken).await.unwrap(),
        Some(challenge(&first)),
        "the refused inserts changed nothing"
    );
}

fn identity_of(user: &User, provider: &str, subject: &str) -> LinkedIdentity {
    let identity =
        ExternalIdentity::new(ProviderName::new(provider).unwrap(), subject).with_email(user.email.as_str(), true);
    LinkedIdentity::new(user.id, &identity, user.created_at)
}

/// A new account without a password, created with its first identity.
async fn passwordless(store: &PostgresStore, prefix: &str) -> (User, LinkedIdentity) {
    let user = sample_user(unique_email(prefix)).with_password_hash(None);
    let identity = identity_of(&user, "google", &format!("sub-{}", user.id));
    store.insert_user_with_identity(&user, &identity).await.unwrap();
    (user, identity)
}

/// A link in progress (a state naming the account) and a finished sign-in's code: the
/// rows of migration 6's tables for `user` beside its identity.
async fn sign_in_rows(store: &PostgresStore, user: &User, identity: &LinkedIdentity) -> (TokenHash, TokenHash) {
    let at = user.created_at;
    let state = ExternalLoginState::new(
        hash(TokenKind::ExternalLoginBinding),
        ProviderName::new("gitlab").unwrap(),
        ExternalLoginPurpose::Link {
            user_id: user.id,
            session_id: SessionId::new_at(at),
        },
        ReturnPath::parse("/account").unwrap(),
        at,
        at + time::Duration::minutes(10),
    );
    let state_hash = hash(TokenKind::ExternalLoginState);
    store.insert_login_state(&state_hash, &state).await.unwrap();
    let code = ExternalLoginCode::new(
        user.id,
        identity.id,
        auth_core::OpaqueToken::generate(auth_core::TokenKind::ExternalLoginBinding)
            .unwrap()
            .1,
        0,
        at,
        at + time::Duration::minutes(1),
    );
    let code_hash = hash(TokenKind::ExternalLoginCode);
    store.insert_login_code(&code_hash, &code).await.unwrap();
    (state_hash, code_hash)
}

#[tokio::test]
async fn migration_6_keeps_every_login_challenge_as_one_that_followed_a_password() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let user = sample_user(unique_email("before-identities"));
    store.insert_user(&user).await.unwrap();
    let at = user.created_at;
    let challenge = LoginChallenge::new(user.id, at, at + time::Duration::minutes(5), user.token_version);
    let challenge_hash = hash(TokenKind::LoginChallenge);
    store.insert_login_challenge(&challenge_hash, &challenge).await.unwrap();
    back_to_version_5(&store).await;
    let schema = store.schema().to_owned();
    let older = sample_user(unique_email("older-release"));
    store.insert_user(&older).await.unwrap();
    // An instance of the previous release, still running while another migrates, writes
    // challenges without the new column.
    let older_hash = hash(TokenKind::LoginChallenge);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.login_challenges (hash, user_id, created_at, expires_at, attempts, token_version)
         VALUES ($1, $2, $3, $3 + interval '5 minutes', 0, 0)"
    )))
    .bind(older_hash.as_bytes().as_slice())
    .bind(older.id.as_uuid())
    .bind(older.created_at)
    .execute(store.pool())
    .await
    .unwrap();

    store.migrate().await.unwrap();
    let applied = count(store.pool(), format!("SELECT count(*) FROM {schema}._sqlx_migrations")).await;
    assert_eq!(applied, SCHEMA_VERSION);
    let found = store.find_login_challenge(&challenge_hash).await.unwrap().unwrap();
    assert_eq!(found.first_factor, AuthMethod::PASSWORD);
    assert_eq!(found, challenge);
    let older_challenge = store.take_login_challenge(&older_hash).await.unwrap().unwrap();
    assert_eq!(
        (older_challenge.user_id, older_challenge.first_factor),
        (older.id, AuthMethod::PASSWORD)
    );
    // The new tables work on the migrated schema.
    let (linked, identity) = passwordless(&store, "after-identities").await;
    let (state_hash, code_hash) = sign_in_rows(&store, &linked, &identity).await;
    assert_eq!(store.list_identities(linked.id).await.unwrap(), vec![identity]);
    assert!(store.take_login_state(&state_hash).await.unwrap().is_some());
    assert!(store.take_login_code(&code_hash).await.unwrap().is_some());
}

#[tokio::test]
async fn a_challenges_first_factor_round_trips_and_one_that_does_not_parse_is_corrupt() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let user = sample_user(unique_email("first-factor"));
    store.insert_user(&user).await.unwrap();
    let at = user.created_at;
    let challenge =
        LoginChallenge::new(user.id, at, at + time::Duration::minutes(5), 0).with_first_factor(AuthMethod::FEDERATED);
    let challenge_hash = hash(TokenKind::LoginChallenge);
    store.insert_login_challenge(&challenge_hash, &challenge).await.unwrap();
    let found = store.find_login_challenge(&challenge_hash).await.unwrap().unwrap();
    assert_eq!(found.first_factor, AuthMethod::FEDERATED);

    execute(
        store.pool(),
        format!(
            "UPDATE {}.login_challenges SET first_factor = 'Not A Method' WHERE user_id = '{}'",
            store.schema(),
            user.id
        ),
    )
    .await;
    let error = store.find_login_challenge(&challenge_hash).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
}

#[tokio::test]
async fn deleting_an_account_deletes_its_identities_sign_ins_and_codes() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let (user, identity) = passwordless(&store, "deleted").await;
    let (other, other_identity) = passwordless(&store, "kept").await;
    sign_in_rows(&store, &user, &identity).await;
    sign_in_rows(&store, &other, &other_identity).await;
    let schema = store.schema().to_owned();
    let rows = |account: &User| {
        let id = account.id;
        format!(
            "SELECT (SELECT count(*) FROM {schema}.identities WHERE user_id = '{id}')
                  + (SELECT count(*) FROM {schema}.external_login_states WHERE user_id = '{id}')
                  + (SELECT count(*) FROM {schema}.external_login_codes WHERE user_id = '{id}')"
        )
    };
    assert_eq!(count(store.pool(), rows(&user)).await, 3);
    // An application deleting the account.
    execute(
        store.pool(),
        format!("DELETE FROM {schema}.users WHERE id = '{}'", user.id),
    )
    .await;
    assert_eq!(count(store.pool(), rows(&user)).await, 0);
    assert_eq!(count(store.pool(), rows(&other)).await, 3, "another account's are kept");
    assert_eq!(
        store
            .find_identity(&identity.provider, &identity.subject)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.list_identities(other.id).await.unwrap(), vec![other_identity]);
}

/// Deleting an account leaves no row of it in any table: every table of the store's
/// schema (but the migrations' record) holds rows of the account before, none after.
#[tokio::test]
async fn a_deleted_account_leaves_no_row_in_any_table() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let schema = store.schema().to_owned();
    let tables: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = '{schema}' AND tablename <> '_sqlx_migrations'
         ORDER BY tablename"
    )))
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(tables.len() >= 12, "{tables:?}");
    let everything = auth_core::conformance::account_with_everything(&store, "row-count").await;
    for table in &tables {
        let rows = count(store.pool(), format!("SELECT count(*) FROM {schema}.{table}")).await;
        assert!(
            rows > 0,
            "{table}: the account has no row here, so the test proves nothing for it"
        );
    }
    let pseudonym = auth_core::EventKey::new(b"row-count key").digest(&everything.user.email);
    auth_core::AccountDeletionStore::delete_user(&store, everything.user.id, &pseudonym)
        .await
        .unwrap()
        .unwrap();
    for table in &tables {
        let rows = count(store.pool(), format!("SELECT count(*) FROM {schema}.{table}")).await;
        if table == "audit_events" {
            // The log stays, naming the account by its pseudonym only.
            let named = count(
                store.pool(),
                format!(
                    "SELECT count(*) FROM {schema}.audit_events WHERE user_id IS NOT NULL OR ip IS NOT NULL
                     OR user_agent IS NOT NULL OR email_digest <> '{pseudonym}'"
                ),
            )
            .await;
            assert_eq!((rows, named), (1, 0));
            continue;
        }
        assert_eq!(rows, 0, "{table}: rows of the deleted account are left");
    }
}

/// `authenticate`'s read is one statement: the store answers both halves itself (the
/// conformance suite checks the answer equals the two separate reads).
#[tokio::test]
async fn an_account_and_its_session_are_read_in_one_call() {
    let Some(store) = common::fresh_store().await else {
        return;
    };
    let user = sample_user(unique_email("one-call"));
    store.insert_user(&user).await.unwrap();
    let session = sample_session(&user);
    store
        .insert_session(&session, &TokenHash::from_bytes([9; 32]))
        .await
        .unwrap();
    assert_eq!(
        store.find_user_and_session(user.id, session.id).await.unwrap(),
        Some((Some(user), Some(session)))
    );
}
