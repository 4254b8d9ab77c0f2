//! What is particular to SQLite: files, migrations, schema versions, concurrency of
//! writers, literal matching of odd values, corrupt rows.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use auth_core::conformance::{sample_session, sample_user, unique_email};
use auth_core::{
    AuthMethod, Email, ExternalIdentity, ExternalLoginCode, ExternalLoginPurpose, ExternalLoginState, HashedPassword,
    IdentityStore, LinkedIdentity, LoginChallenge, OpaqueToken, ProviderName, ReturnPath, SecondFactorStore, SessionId,
    SessionStore, StoreError, TokenHash, TokenKind, TotpFactor, User, UserStore,
};
use auth_store_sqlite::{OpenError, SCHEMA_VERSION, SqliteStore};
use common::scratch_dir;

fn raw(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

#[tokio::test]
async fn open_creates_a_migrated_wal_file_and_data_survives_reopening() {
    let path = scratch_dir().join("auth.db");
    assert!(!path.exists());
    let store = SqliteStore::open(&path).await.unwrap();
    assert!(path.exists());
    assert_eq!(store.path(), Some(path.as_path()));
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    let user = sample_user(unique_email("persist"));
    store.insert_user(&user).await.unwrap();
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(reopened.find_user_by_email(&user.email).await.unwrap(), Some(user));
    let mode: String = raw(&path).query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn migrations_are_idempotent_and_live_in_tables_of_their_own() {
    let path = scratch_dir().join("auth.db");
    // The application's own use of the file: its tables and its user_version stay put.
    raw(&path)
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); PRAGMA user_version = 7;")
        .unwrap();
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(store.migrate().await.unwrap(), SCHEMA_VERSION);
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(reopened.schema_version().await.unwrap(), SCHEMA_VERSION);

    let conn = raw(&path);
    let applied: i64 = conn
        .query_row("SELECT count(*) FROM auth_schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, SCHEMA_VERSION, "each migration recorded once");
    let user_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(user_version, 7);
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    tables.retain(|name| name != "users");
    assert!(tables.iter().all(|name| name.starts_with("auth_")), "{tables:?}");
}

#[tokio::test]
async fn concurrent_opens_migrate_once() {
    let path = scratch_dir().join("auth.db");
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move { SqliteStore::open(path).await })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
    let applied: i64 = raw(&path)
        .query_row("SELECT count(*) FROM auth_schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(applied, SCHEMA_VERSION);
}

#[tokio::test]
async fn a_database_from_a_newer_release_is_refused_and_left_untouched() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let user = sample_user(unique_email("future"));
    store.insert_user(&user).await.unwrap();
    drop(store);
    raw(&path)
        .execute(
            "INSERT INTO auth_schema_migrations (version, applied_at) VALUES (99, 0)",
            [],
        )
        .unwrap();

    let error = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(error, OpenError::SchemaTooNew { found: 99, supported } if supported == SCHEMA_VERSION),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("newer than this release supports"),
        "{error}"
    );
    let conn = raw(&path);
    let (users, latest): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM auth_users), (SELECT max(version) FROM auth_schema_migrations)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((users, latest), (1, 99));
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_open_error() {
    let path = scratch_dir().join("auth.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let error = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(error, OpenError::Sqlite(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_writers_on_two_stores_never_see_busy() {
    // Two stores on one file stand for two processes: their writers contend in SQLite
    // itself, not only in our queue. SQLite's busy handler is not fair (a waiter sleeps
    // and retries while the other side may take the lock again), so in such a burst a
    // call can wait past the default budget of 1 s; the subject here is that contention
    // is waited out, never an error, so the budget is generous.
    let path = scratch_dir().join("auth.db");
    let patient = Duration::from_secs(60);
    let stores = [
        SqliteStore::open(&path).await.unwrap().with_lock_timeout(patient),
        SqliteStore::open(&path).await.unwrap().with_lock_timeout(patient),
    ];
    let writers: Vec<_> = (0..100)
        .map(|i| {
            let store = stores[i % 2].clone();
            tokio::spawn(async move {
                let user = sample_user(unique_email(&format!("writer{i}")));
                store.insert_user(&user).await?;
                let session = sample_session(&user);
                let token = OpaqueToken::generate(TokenKind::Refresh).unwrap().1;
                store.insert_session(&session, &token).await?;
                store.revoke_access_tokens(user.id, user.updated_at).await?;
                Ok::<_, StoreError>(user)
            })
        })
        .collect();
    let mut users = Vec::new();
    for writer in writers {
        users.push(writer.await.unwrap().unwrap());
    }
    for user in users {
        let stored = stores[1].find_user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(stored.token_version, user.token_version + 1);
    }
}

#[tokio::test]
async fn odd_values_are_stored_and_matched_literally() {
    let store = common::fresh_store().await;
    let odd = "nul\0quote' double\" percent% underscore_ backslash\\ semicolon; --";
    let user = sample_user(unique_email("odd")).with_password_hash(Some(HashedPassword::new(format!("$legacy${odd}"))));
    store.insert_user(&user).await.unwrap();
    assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(user.clone()));

    // Compare-and-set matches the hash literally: a pattern of it does not.
    let pattern = HashedPassword::new("$legacy$nul%");
    let replacement = HashedPassword::new("$argon2id$replacement");
    assert!(
        !store
            .upgrade_password_hash(user.id, &pattern, &replacement, user.updated_at)
            .await
            .unwrap()
    );
    let current = user.password_hash.clone().unwrap();
    assert!(
        store
            .upgrade_password_hash(user.id, &current, &replacement, user.updated_at)
            .await
            .unwrap()
    );

    let session = sample_session(&user).with_user_agent(Some(odd.to_owned()));
    let token = OpaqueToken::generate(TokenKind::Refresh).unwrap().1;
    store.insert_session(&session, &token).await.unwrap();
    let found = store.find_refresh_token(&token).await.unwrap().unwrap();
    assert_eq!(found.session.user_agent.as_deref(), Some(odd));

    for pattern in ["%", "_", "%@%", "odd-%"] {
        let lookup = Email::parse(&format!("{pattern}@example.com"));
        if let Ok(lookup) = lookup {
            assert_eq!(store.find_user_by_email(&lookup).await.unwrap(), None, "{pattern}");
        }
    }
}

#[tokio::test]
async fn a_row_the_domain_refuses_is_a_corrupt_error_not_a_panic() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let user = sample_user(unique_email("corrupt"));
    store.insert_user(&user).await.unwrap();
    let conn = raw(&path);
    conn.execute(
        "UPDATE auth_users SET email = 'Not.Normalized@Example.com' WHERE id = ?1",
        [user.id.to_string()],
    )
    .unwrap();
    let error = store.find_user_by_id(user.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");

    conn.execute(
        "UPDATE auth_users SET email = ?2, roles = 'Admin' WHERE id = ?1",
        [user.id.to_string(), user.email.as_str().to_owned()],
    )
    .unwrap();
    let error = store.find_user_by_id(user.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
}

#[tokio::test]
async fn stores_are_object_safe_and_shareable() {
    let store: Arc<dyn auth_core::UserStore> = Arc::new(common::fresh_store().await);
    let user = sample_user(unique_email("dyn"));
    store.insert_user(&user).await.unwrap();
    assert!(matches!(
        store.insert_user(&sample_user(user.email.clone())).await,
        Err(StoreError::DuplicateEmail)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_first_opens_of_one_file_all_succeed() {
    // Switching a new file to WAL ignores busy_timeout: openers must wait their turn.
    for _ in 0..20 {
        let path = scratch_dir().join("auth.db");
        let opens: Vec<_> = (0..16).map(|_| tokio::spawn(SqliteStore::open(path.clone()))).collect();
        for open in opens {
            open.await.unwrap().unwrap();
        }
    }
}

/// Puts a database of this release back to schema version 5, before external identities
/// (and the address changes, audit log and passkeys after them): without their tables and
/// without `auth_login_challenges.first_factor`, every other row kept.
fn back_to_version_5(path: &std::path::Path) {
    raw(path)
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             BEGIN;
             DROP TABLE auth_passkey_ceremonies;
             DROP TABLE auth_passkeys;
             DROP TABLE auth_audit_events;
             DROP TABLE auth_email_changes;
             DROP TABLE auth_external_login_codes;
             DROP TABLE auth_external_login_states;
             DROP TABLE auth_identities;
             ALTER TABLE auth_login_challenges DROP COLUMN first_factor;
             DELETE FROM auth_schema_migrations WHERE version > 5;
             COMMIT;",
        )
        .unwrap();
}

/// Puts a database of this release back to schema version 4, before second factors:
/// without their tables and without `auth_users.requires_second_factor`, every other row
/// kept.
fn back_to_version_4(path: &std::path::Path) {
    back_to_version_5(path);
    raw(path)
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             BEGIN;
             DROP TABLE auth_login_challenges;
             DROP TABLE auth_recovery_codes;
             DROP TABLE auth_totp_factors;
             ALTER TABLE auth_users DROP COLUMN requires_second_factor;
             DELETE FROM auth_schema_migrations WHERE version > 4;
             COMMIT;",
        )
        .unwrap();
}

/// Puts a database of this release back to schema version 2, when sessions still
/// referenced `auth_users`: the table as release 2 created it, with its rows, and none of
/// the tables of later migrations.
fn back_to_version_2(path: &std::path::Path) {
    back_to_version_4(path);
    raw(path)
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             BEGIN;
             DROP TABLE auth_browser_sessions;
             CREATE TABLE auth_sessions_v2 (
                 id           TEXT PRIMARY KEY NOT NULL,
                 user_id      TEXT NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
                 created_at   INTEGER NOT NULL,
                 last_used_at INTEGER NOT NULL,
                 expires_at   INTEGER NOT NULL,
                 user_agent   TEXT,
                 ip           TEXT,
                 revoked_at   INTEGER,
                 auth_methods TEXT NOT NULL DEFAULT 'pwd',
                 auth_time    INTEGER
             ) STRICT;
             INSERT INTO auth_sessions_v2 SELECT * FROM auth_sessions;
             DROP TABLE auth_sessions;
             ALTER TABLE auth_sessions_v2 RENAME TO auth_sessions;
             CREATE INDEX auth_sessions_by_user ON auth_sessions (user_id, created_at, id);
             DELETE FROM auth_schema_migrations WHERE version > 2;
             COMMIT;",
        )
        .unwrap();
}

#[tokio::test]
async fn migration_3_frees_sessions_from_auth_users_and_keeps_every_session_and_refresh_token() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let user = sample_user(unique_email("upgrade"));
    store.insert_user(&user).await.unwrap();
    let session = sample_session(&user);
    let first = OpaqueToken::generate(TokenKind::Refresh).unwrap().1;
    store.insert_session(&session, &first).await.unwrap();
    drop(store);
    back_to_version_2(&path);
    let references = |table: &str| -> i64 {
        raw(&path)
            .query_row(
                &format!("SELECT count(*) FROM pragma_foreign_key_list('{table}')"),
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(
        references("auth_sessions"),
        1,
        "the version 2 schema, as release 2 had it"
    );

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!((references("auth_sessions"), references("auth_refresh_tokens")), (0, 1));
    // The rows survived the rebuild, and the refresh token still rotates once.
    assert_eq!(store.find_session(session.id).await.unwrap(), Some(session.clone()));
    let next = OpaqueToken::generate(TokenKind::Refresh).unwrap().1;
    let at = session.created_at + Duration::from_secs(1);
    assert!(store.rotate_refresh_token(session.id, &first, &next, at).await.unwrap());
    assert!(!store.rotate_refresh_token(session.id, &first, &next, at).await.unwrap());
    // A session of an account this store does not hold (an application's own users).
    let elsewhere = sample_user(unique_email("elsewhere"));
    let foreign = sample_session(&elsewhere);
    store
        .insert_session(&foreign, &OpaqueToken::generate(TokenKind::Refresh).unwrap().1)
        .await
        .unwrap();
    assert_eq!(store.list_sessions(elsewhere.id).await.unwrap(), vec![foreign]);
}

fn hash(kind: TokenKind) -> TokenHash {
    OpaqueToken::generate(kind).unwrap().1
}

/// A confirmed TOTP factor with two recovery codes, and a login challenge: every row of
/// migration 5's tables for `user`. Returns the account as confirming left it.
async fn enrol(store: &SqliteStore, user: &User) -> User {
    let factor = TotpFactor::new(user.id, "v1.0a1b2c3d.sealed".to_owned(), user.updated_at);
    assert!(store.insert_totp_factor(&factor).await.unwrap());
    let codes = [hash(TokenKind::PasswordReset), hash(TokenKind::PasswordReset)];
    let at = user.updated_at + Duration::from_secs(1);
    let enrolled = store
        .confirm_totp_factor(user.id, &factor.sealed_secret, 7, &codes, at)
        .await
        .unwrap()
        .unwrap();
    let challenge = LoginChallenge::new(user.id, at, at + Duration::from_secs(300), user.token_version);
    store
        .insert_login_challenge(&hash(TokenKind::LoginChallenge), &challenge)
        .await
        .unwrap();
    enrolled
}

fn column_count(path: &std::path::Path, table: &str, column: &str) -> i64 {
    raw(path)
        .query_row(
            "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn migration_5_keeps_every_account_and_asks_none_of_them_for_a_second_factor() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let user = sample_user(unique_email("before-2fa"));
    store.insert_user(&user).await.unwrap();
    let session = sample_session(&user);
    store.insert_session(&session, &hash(TokenKind::Refresh)).await.unwrap();
    drop(store);
    back_to_version_4(&path);
    assert_eq!(
        column_count(&path, "auth_users", "requires_second_factor"),
        0,
        "the version 4 schema"
    );

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(column_count(&path, "auth_users", "requires_second_factor"), 1);
    // The account and its session survived, and login asks it for nothing more.
    let found = store.find_user_by_id(user.id).await.unwrap().unwrap();
    assert!(!found.requires_second_factor);
    assert_eq!(found, user);
    assert_eq!(store.find_session(session.id).await.unwrap(), Some(session));
    // The new tables work on the migrated file, and what they hold survives reopening.
    let enrolled = enrol(&store, &user).await;
    assert!(enrolled.requires_second_factor);
    drop(store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(reopened.find_user_by_id(user.id).await.unwrap(), Some(enrolled));
    assert_eq!(reopened.count_recovery_codes(user.id).await.unwrap(), 2);
}

#[tokio::test]
async fn deleting_an_account_deletes_its_factor_recovery_codes_and_challenge() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (user, other) = (sample_user(unique_email("deleted")), sample_user(unique_email("kept")));
    for account in [&user, &other] {
        store.insert_user(account).await.unwrap();
        enrol(&store, account).await;
    }
    let rows = |conn: &rusqlite::Connection, id: &User| -> i64 {
        conn.query_row(
            "SELECT (SELECT count(*) FROM auth_totp_factors WHERE user_id = ?1)
                  + (SELECT count(*) FROM auth_recovery_codes WHERE user_id = ?1)
                  + (SELECT count(*) FROM auth_login_challenges WHERE user_id = ?1)",
            [id.id.to_string()],
            |r| r.get(0),
        )
        .unwrap()
    };
    // An application deleting the account (foreign keys are per connection in SQLite).
    let conn = raw(&path);
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    assert_eq!(rows(&conn, &user), 4);
    conn.execute("DELETE FROM auth_users WHERE id = ?1", [user.id.to_string()])
        .unwrap();
    assert_eq!(rows(&conn, &user), 0);
    assert_eq!(rows(&conn, &other), 4, "another account's are kept");
    assert_eq!(store.find_totp_factor(user.id).await.unwrap(), None);
    assert!(store.find_totp_factor(other.id).await.unwrap().is_some());
}

#[tokio::test]
async fn second_factor_rows_of_unknown_accounts_are_refused() {
    let store = common::fresh_store().await;
    let ghost = sample_user(unique_email("ghost"));
    let factor = TotpFactor::new(ghost.id, "v1.0a1b2c3d.ghost".to_owned(), ghost.created_at);
    assert!(matches!(
        store.insert_totp_factor(&factor).await,
        Err(StoreError::Backend(_))
    ));
    let challenge = LoginChallenge::new(
        ghost.id,
        ghost.created_at,
        ghost.created_at + Duration::from_secs(300),
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
    let store = common::fresh_store().await;
    let (first, second) = (sample_user(unique_email("first")), sample_user(unique_email("second")));
    store.insert_user(&first).await.unwrap();
    store.insert_user(&second).await.unwrap();
    let taken = hash(TokenKind::LoginChallenge);
    let challenge =
        |user: &User| LoginChallenge::new(user.id, user.created_at, user.created_at + Duration::from_secs(300), 0);
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
async fn passwordless(store: &SqliteStore, prefix: &str) -> (User, LinkedIdentity) {
    let user = sample_user(unique_email(prefix)).with_password_hash(None);
    let identity = identity_of(&user, "google", &format!("sub-{}", user.id));
    store.insert_user_with_identity(&user, &identity).await.unwrap();
    (user, identity)
}

/// A link in progress (a state naming the account) and a finished sign-in's code: the
/// rows of migration 6's tables for `user` beside its identity.
async fn sign_in_rows(store: &SqliteStore, user: &User, identity: &LinkedIdentity) -> (TokenHash, TokenHash) {
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
        at + Duration::from_secs(600),
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
        at + Duration::from_secs(60),
    );
    let code_hash = hash(TokenKind::ExternalLoginCode);
    store.insert_login_code(&code_hash, &code).await.unwrap();
    (state_hash, code_hash)
}

#[tokio::test]
async fn migration_6_keeps_every_login_challenge_as_one_that_followed_a_password() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let user = sample_user(unique_email("before-identities"));
    store.insert_user(&user).await.unwrap();
    let at = user.created_at;
    let challenge = LoginChallenge::new(user.id, at, at + Duration::from_secs(300), user.token_version);
    let challenge_hash = hash(TokenKind::LoginChallenge);
    store.insert_login_challenge(&challenge_hash, &challenge).await.unwrap();
    drop(store);
    back_to_version_5(&path);
    assert_eq!(
        column_count(&path, "auth_login_challenges", "first_factor"),
        0,
        "the version 5 schema"
    );
    // An instance of the previous release, still running while another migrates, writes
    // challenges without the new column.
    let older = sample_user(unique_email("older-release"));
    store_raw_user_and_challenge(&path, &older);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(column_count(&path, "auth_login_challenges", "first_factor"), 1);
    let found = store.find_login_challenge(&challenge_hash).await.unwrap().unwrap();
    assert_eq!(found.first_factor, AuthMethod::PASSWORD);
    assert_eq!(found, challenge);
    let older_challenge = store.take_login_challenge(&older_hash()).await.unwrap().unwrap();
    assert_eq!(
        (older_challenge.user_id, older_challenge.first_factor),
        (older.id, AuthMethod::PASSWORD)
    );
    // The new tables work on the migrated file, and what they hold survives reopening.
    let (linked, identity) = passwordless(&store, "after-identities").await;
    let (state_hash, code_hash) = sign_in_rows(&store, &linked, &identity).await;
    drop(store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(reopened.list_identities(linked.id).await.unwrap(), vec![identity]);
    assert!(reopened.take_login_state(&state_hash).await.unwrap().is_some());
    assert!(reopened.take_login_code(&code_hash).await.unwrap().is_some());
}

/// The hash under which [`store_raw_user_and_challenge`] stores its challenge.
fn older_hash() -> TokenHash {
    TokenHash::from_bytes([7; 32])
}

/// An account and its login challenge as release 5 wrote them (no `first_factor`).
fn store_raw_user_and_challenge(path: &std::path::Path, user: &User) {
    let conn = raw(path);
    conn.execute(
        "INSERT INTO auth_users (id, email, password_hash, is_active, email_verified_at, roles, token_version,
                                 created_at, updated_at, requires_second_factor)
         VALUES (?1, ?2, 'hash', 1, NULL, '', 0, 0, 0, 1)",
        (user.id.to_string(), user.email.as_str()),
    )
    .unwrap();
    conn.execute(
        "INSERT INTO auth_login_challenges (hash, user_id, created_at, expires_at, attempts, token_version)
         VALUES (?1, ?2, 0, 300000000, 0, 0)",
        (older_hash().as_bytes().as_slice(), user.id.to_string()),
    )
    .unwrap();
}

#[tokio::test]
async fn a_challenges_first_factor_round_trips_and_one_that_does_not_parse_is_corrupt() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let user = sample_user(unique_email("first-factor"));
    store.insert_user(&user).await.unwrap();
    let at = user.created_at;
    let challenge =
        LoginChallenge::new(user.id, at, at + Duration::from_secs(300), 0).with_first_factor(AuthMethod::FEDERATED);
    let challenge_hash = hash(TokenKind::LoginChallenge);
    store.insert_login_challenge(&challenge_hash, &challenge).await.unwrap();
    let found = store.find_login_challenge(&challenge_hash).await.unwrap().unwrap();
    assert_eq!(found.first_factor, AuthMethod::FEDERATED);

    raw(&path)
        .execute(
            "UPDATE auth_login_challenges SET first_factor = 'Not A Method' WHERE user_id = ?1",
            [user.id.to_string()],
        )
        .unwrap();
    let error = store.find_login_challenge(&challenge_hash).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    let error = store.take_login_challenge(&challenge_hash).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
}

#[tokio::test]
async fn deleting_an_account_deletes_its_identities_sign_ins_and_codes() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (user, identity) = passwordless(&store, "deleted").await;
    let (other, other_identity) = passwordless(&store, "kept").await;
    sign_in_rows(&store, &user, &identity).await;
    sign_in_rows(&store, &other, &other_identity).await;
    let rows = |conn: &rusqlite::Connection, id: &User| -> i64 {
        conn.query_row(
            "SELECT (SELECT count(*) FROM auth_identities WHERE user_id = ?1)
                  + (SELECT count(*) FROM auth_external_login_states WHERE user_id = ?1)
                  + (SELECT count(*) FROM auth_external_login_codes WHERE user_id = ?1)",
            [id.id.to_string()],
            |r| r.get(0),
        )
        .unwrap()
    };
    // An application deleting the account (foreign keys are per connection in SQLite).
    let conn = raw(&path);
    conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    assert_eq!(rows(&conn, &user), 3);
    conn.execute("DELETE FROM auth_users WHERE id = ?1", [user.id.to_string()])
        .unwrap();
    assert_eq!(rows(&conn, &user), 0);
    assert_eq!(rows(&conn, &other), 3, "another account's are kept");
    assert_eq!(
        store
            .find_identity(&identity.provider, &identity.subject)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.list_identities(other.id).await.unwrap(), vec![other_identity]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_sign_ins_of_one_identity_with_one_email_create_one_account() {
    // What two browsers finishing the same first sign-in send: one identity, one email.
    let path = scratch_dir().join("auth.db");
    let stores = [
        SqliteStore::open(&path).await.unwrap(),
        SqliteStore::open(&path).await.unwrap(),
    ];
    let email = unique_email("twins");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = stores[i % 2].clone();
            let email = email.clone();
            tokio::spawn(async move {
                let user = sample_user(email).with_password_hash(None);
                let identity = identity_of(&user, "google", "twin-subject");
                (user.id, store.insert_user_with_identity(&user, &identity).await)
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (id, Ok(())) => created.push(id),
            (_, Err(StoreError::DuplicateIdentity)) => {}
            (_, Err(other)) => panic!("a concurrent first sign-in failed with {other:?}"),
        }
    }
    assert_eq!(created.len(), 1);
    let linked = stores[0]
        .find_identity(&ProviderName::new("google").unwrap(), "twin-subject")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.user_id, created[0]);
}

#[tokio::test]
async fn a_stored_identity_or_sign_in_the_domain_refuses_is_corrupt() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (user, identity) = passwordless(&store, "corrupt-identity").await;
    let (state_hash, _) = sign_in_rows(&store, &user, &identity).await;
    let conn = raw(&path);
    conn.execute(
        "UPDATE auth_identities SET provider = 'Google' WHERE id = ?1",
        [identity.id.to_string()],
    )
    .unwrap();
    let error = store.list_identities(user.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    conn.execute(
        "UPDATE auth_external_login_states SET next = 'https://evil.example/' WHERE hash = ?1",
        [state_hash.as_bytes().as_slice()],
    )
    .unwrap();
    let error = store.take_login_state(&state_hash).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    conn.execute(
        "UPDATE auth_external_login_states SET next = '/', binding_hash = x'00' WHERE hash = ?1",
        [state_hash.as_bytes().as_slice()],
    )
    .unwrap();
    let error = store.take_login_state(&state_hash).await.unwrap_err();
    assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
}

/// Deleting an account leaves no row of it in any table: every table of the store (but
/// the migrations' record) holds rows of the account before, none after.
#[tokio::test]
async fn a_deleted_account_leaves_no_row_in_any_table() {
    let path = scratch_dir().join("row-count.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = raw
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'auth\\_%' ESCAPE '\\'
             AND name <> 'auth_schema_migrations' ORDER BY name",
        )
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 12, "{tables:?}");
    let count = |table: &str| -> i64 {
        raw.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))
            .unwrap()
    };
    let everything = auth_core::conformance::account_with_everything(&store, "row-count").await;
    for table in &tables {
        assert!(
            count(table) > 0,
            "{table}: the account has no row here, so the test proves nothing for it"
        );
    }
    let pseudonym = auth_core::EventKey::new(b"row-count key").digest(&everything.user.email);
    auth_core::AccountDeletionStore::delete_user(&store, everything.user.id, &pseudonym)
        .await
        .unwrap()
        .unwrap();
    for table in &tables {
        if table == "auth_audit_events" {
            // The log stays, naming the account by its pseudonym only.
            let named: i64 = raw
                .query_row(
                    "SELECT count(*) FROM auth_audit_events WHERE user_id IS NOT NULL OR ip IS NOT NULL
                     OR user_agent IS NOT NULL OR email_digest <> ?1",
                    [pseudonym.to_string()],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!((count(table), named), (1, 0));
            continue;
        }
        assert_eq!(count(table), 0, "{table}: rows of the deleted account are left");
    }
}

/// `authenticate`'s read is one trip: the store answers both halves itself (the
/// conformance suite checks the answer equals the two separate reads).
#[tokio::test]
async fn an_account_and_its_session_are_read_in_one_call() {
    let store = SqliteStore::open(&scratch_dir().join("auth.db")).await.unwrap();
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
