//! The library's migrations, embedded, and applied by sqlx's migrator into the store's own
//! schema, with their record in that schema too (`<schema>._sqlx_migrations`).

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Connection, Executor, PgPool, SqlSafeStr};

use crate::MigrateError;
use crate::error::is_unavailable;

/// Each migration, in order; never edit a released one. Unqualified names: they run with
/// `search_path` set to the store's schema, so one text serves every schema name (and its
/// checksum stays the same).
const MIGRATIONS: &[(&str, &str)] = &[(
    "accounts, sessions, one-time tokens",
    r"
    CREATE TABLE users (
        id                uuid PRIMARY KEY,
        -- Normalized in Rust; compared exactly.
        email             text NOT NULL CONSTRAINT users_email_key UNIQUE,
        password_hash     text,
        is_active         boolean NOT NULL,
        email_verified_at timestamptz,
        roles             text[] NOT NULL,
        token_version     bigint NOT NULL,
        created_at        timestamptz NOT NULL,
        updated_at        timestamptz NOT NULL
    );

    CREATE TABLE sessions (
        id           uuid PRIMARY KEY,
        user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at   timestamptz NOT NULL,
        last_used_at timestamptz NOT NULL,
        expires_at   timestamptz NOT NULL,
        user_agent   text,
        ip           text,
        revoked_at   timestamptz
    );
    CREATE INDEX sessions_by_user ON sessions (user_id, created_at, id);

    CREATE TABLE refresh_tokens (
        hash       bytea PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        used_at    timestamptz
    );
    CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

    -- No foreign key to users: reset requests for unknown emails store decoys for the nil
    -- account, so that both answers cost the same.
    CREATE TABLE one_time_tokens (
        hash          bytea PRIMARY KEY,
        user_id       uuid NOT NULL,
        purpose       text NOT NULL,
        email         text NOT NULL,
        token_version bigint NOT NULL,
        created_at    timestamptz NOT NULL,
        expires_at    timestamptz NOT NULL,
        used_at       timestamptz
    );
    -- At most one unused token per account and purpose: the upsert target.
    CREATE UNIQUE INDEX one_time_tokens_unused ON one_time_tokens (user_id, purpose) WHERE used_at IS NULL;
    CREATE INDEX one_time_tokens_expiry ON one_time_tokens (expires_at);
    ",
)];

/// The newest migration this release knows.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

fn migrator(schema: &str) -> Migrator {
    let migrations = (1..)
        .zip(MIGRATIONS)
        .map(|(version, (description, sql))| {
            Migration::new(
                version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.create_schema(schema.to_owned());
    migrator.dangerous_set_table_name(format!("{schema}._sqlx_migrations"));
    migrator
}

pub(crate) async fn migrate(pool: &PgPool, schema: &str) -> Result<(), MigrateError> {
    // A connection of its own, so the search_path set here never leaks into the pool.
    let options = pool.connect_options();
    let mut conn = sqlx::PgConnection::connect_with(&options).await.map_err(|error| {
        if is_unavailable(&error) {
            MigrateError::Unavailable(error)
        } else {
            MigrateError::Failed(sqlx::migrate::MigrateError::Execute(error))
        }
    })?;
    conn.execute(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}")))
        .await
        .map_err(|error| MigrateError::Failed(sqlx::migrate::MigrateError::Execute(error)))?;
    let result = migrator(schema).run_direct(None, &mut conn, false).await;
    let _ = conn.close().await;
    result.map_err(MigrateError::from)?;
    tracing::debug!(schema, version = LATEST, "auth schema migrated");
    Ok(())
}
