//! The library's migrations, embedded, and applied by sqlx's migrator into the store's own
//! schema, with their record in that schema too (`<schema>._sqlx_migrations`).

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Connection, Executor, PgConnection, PgPool, SqlSafeStr};

use crate::error::{MigrateError, is_unavailable};

/// Each migration, in order; never edit a released one. Unqualified names: they run with
/// `search_path` set to the store's schema, so one text serves every schema name (and its
/// checksum stays the same).
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "accounts, sessions, one-time tokens",
        r"
    CREATE TABLE users (
        id                uuid PRIMARY KEY,
        -- Normalized in Rust; compared exactly.
        email             text NOT NULL CONSTRAINT users_email_key UNIQUE,
        password_hash     text,
        is_active         boolean NOT NULL,
        email_verified_at timestamptz CHECK (isfinite(email_verified_at) AND email_verified_at < '10000-01-01'),
        roles             text[] NOT NULL,
        token_version     bigint NOT NULL,
        created_at        timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        updated_at        timestamptz NOT NULL CHECK (isfinite(updated_at) AND updated_at < '10000-01-01')
    );

    CREATE TABLE sessions (
        id           uuid PRIMARY KEY,
        user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        created_at   timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        last_used_at timestamptz NOT NULL CHECK (isfinite(last_used_at) AND last_used_at < '10000-01-01'),
        expires_at   timestamptz NOT NULL CHECK (isfinite(expires_at) AND expires_at < '10000-01-01'),
        user_agent   text,
        ip           text,
        revoked_at   timestamptz CHECK (isfinite(revoked_at) AND revoked_at < '10000-01-01')
    );
    CREATE INDEX sessions_by_user ON sessions (user_id, created_at, id);

    CREATE TABLE refresh_tokens (
        hash       bytea PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        used_at    timestamptz CHECK (isfinite(used_at) AND used_at < '10000-01-01')
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
        created_at    timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        expires_at    timestamptz NOT NULL CHECK (isfinite(expires_at) AND expires_at < '10000-01-01'),
        used_at       timestamptz CHECK (isfinite(used_at) AND used_at < '10000-01-01')
    );
    -- At most one unused token per account and purpose: the upsert target.
    CREATE UNIQUE INDEX one_time_tokens_unused ON one_time_tokens (user_id, purpose) WHERE used_at IS NULL;
    CREATE INDEX one_time_tokens_expiry ON one_time_tokens (expires_at);
    ",
    ),
    (
        "how each session began",
        // Rows from before, and rows an instance of an older release still writes, began
        // with a password at `created_at`: reads take `coalesce(auth_time, created_at)`.
        r"
    ALTER TABLE sessions
        ADD COLUMN auth_methods text NOT NULL DEFAULT 'pwd',
        ADD COLUMN auth_time    timestamptz CHECK (isfinite(auth_time) AND auth_time < '10000-01-01');
    ",
    ),
    (
        "sessions free of users",
        // An application that keeps its own accounts (auth_core::ComposedStore) keeps its
        // sessions here: they no longer reference `users`. The refresh tokens still
        // reference their sessions. The name is the one PostgreSQL gave migration 1's
        // constraint (`<table>_<column>_fkey`).
        r"
    ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
    ",
    ),
    (
        "browser sessions",
        // auth_core::BrowserSessionStore: a cookie's hash naming its session, deleted
        // with it.
        r"
    CREATE TABLE browser_sessions (
        hash       bytea PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01')
    );
    CREATE INDEX browser_sessions_by_session ON browser_sessions (session_id);
    ",
    ),
    (
        "second factors",
        // auth_core::SecondFactorStore: whether login asks for a second factor, on the
        // account (existing accounts do not: a constant default, so no table rewrite); an
        // account's TOTP factor, its recovery codes (hashes) and its login challenge, each
        // at most one per account, deleted with it.
        r"
    ALTER TABLE users ADD COLUMN requires_second_factor boolean NOT NULL DEFAULT false;

    CREATE TABLE totp_factors (
        user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        -- Sealed by auth_core::SecretCipher: never the secret in the clear.
        sealed_secret  text NOT NULL,
        created_at     timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        confirmed_at   timestamptz CHECK (isfinite(confirmed_at) AND confirmed_at < '10000-01-01'),
        -- The time step (Unix time / 30 s) of the last accepted code.
        last_used_step bigint
    );

    CREATE TABLE recovery_codes (
        user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        hash    bytea NOT NULL,
        used_at timestamptz CHECK (isfinite(used_at) AND used_at < '10000-01-01'),
        PRIMARY KEY (user_id, hash)
    );

    CREATE TABLE login_challenges (
        hash       bytea PRIMARY KEY,
        -- One per account: the upsert target of a new challenge, which replaces the
        -- account's previous one.
        user_id    uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        expires_at timestamptz NOT NULL CHECK (isfinite(expires_at) AND expires_at < '10000-01-01'),
        -- Codes presented so far, right or wrong: counted before each is checked.
        attempts   integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        -- The account's token version when the password was right: a password change
        -- or reset since kills the challenge.
        token_version bigint NOT NULL,
        user_agent text,
        ip         text
    );
    ",
    ),
    (
        "external identities",
        // auth_core::IdentityStore: the provider identities linked to an account, unique
        // on (provider, subject) by a named constraint whose violation is the typed
        // conflict, deleted with their account; the sign-ins in progress under the hash
        // of their state, and the one-time codes of finished ones under the hash of the
        // code, each taken once. A login challenge records how its first step proved who
        // it is (a constant default, so no table rewrite: rows from before, and rows an
        // instance of an older release still writes, followed a password).
        //
        // The identities' reference to their account is deferrable (immediate unless a
        // transaction defers it): an account created with its first identity inserts the
        // identity first, so that when the identity and the email are both taken the
        // conflict told is the identity's.
        r"
    ALTER TABLE login_challenges ADD COLUMN first_factor text NOT NULL DEFAULT 'pwd';

    CREATE TABLE identities (
        id           uuid PRIMARY KEY,
        user_id      uuid NOT NULL
                     CONSTRAINT identities_user_id_fkey REFERENCES users (id) ON DELETE CASCADE
                     DEFERRABLE INITIALLY IMMEDIATE,
        provider     text NOT NULL,
        -- The provider's `sub`, compared exactly.
        subject      text NOT NULL,
        -- As the provider gave it when linked: shown, never used to sign in.
        email        text,
        created_at   timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        last_used_at timestamptz CHECK (isfinite(last_used_at) AND last_used_at < '10000-01-01'),
        CONSTRAINT identities_provider_subject_key UNIQUE (provider, subject)
    );
    CREATE INDEX identities_by_user ON identities (user_id, created_at, id);

    CREATE TABLE external_login_states (
        hash         bytea PRIMARY KEY,
        -- The hash of the browser binding cookie.
        binding_hash bytea NOT NULL,
        provider     text NOT NULL,
        purpose      text NOT NULL CHECK (purpose IN ('sign_in', 'link')),
        -- A link's account and session; neither for a sign-in.
        user_id      uuid REFERENCES users (id) ON DELETE CASCADE,
        session_id   uuid,
        next         text NOT NULL,
        created_at   timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        expires_at   timestamptz NOT NULL CHECK (isfinite(expires_at) AND expires_at < '10000-01-01'),
        -- A native app's PKCE challenge (SHA-256) for the one-time code; NULL for a browser.
        exchange_challenge bytea CHECK (octet_length(exchange_challenge) = 32),
        CHECK ((purpose = 'link') = (user_id IS NOT NULL AND session_id IS NOT NULL))
    );
    CREATE INDEX external_login_states_expiry ON external_login_states (expires_at);

    CREATE TABLE external_login_codes (
        hash          bytea PRIMARY KEY,
        user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        identity_id   uuid NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
        binding_hash  bytea NOT NULL,
        token_version bigint NOT NULL,
        created_at    timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        expires_at    timestamptz NOT NULL CHECK (isfinite(expires_at) AND expires_at < '10000-01-01')
    );
    CREATE INDEX external_login_codes_expiry ON external_login_codes (expires_at);
    ",
    ),
    (
        "changes of an account's address",
        // Under the hashes of their confirmation and undo links, deleted with the account.
        r"
    CREATE TABLE email_changes (
        confirm_hash       bytea PRIMARY KEY,
        -- The order of insertion: undoing a change voids the ones stored after it.
        seq                bigint GENERATED ALWAYS AS IDENTITY,
        undo_hash          bytea NOT NULL UNIQUE,
        user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        old_email          text NOT NULL,
        new_email          text NOT NULL,
        -- The session that asked: confirming keeps it.
        session_id         uuid,
        token_version      bigint NOT NULL,
        requested_at       timestamptz NOT NULL CHECK (isfinite(requested_at) AND requested_at < '10000-01-01'),
        confirm_expires_at timestamptz NOT NULL CHECK (isfinite(confirm_expires_at) AND confirm_expires_at < '10000-01-01'),
        undo_expires_at    timestamptz NOT NULL CHECK (isfinite(undo_expires_at) AND undo_expires_at < '10000-01-01'),
        confirmed_at       timestamptz,
        undone_at          timestamptz
    );
    CREATE INDEX email_changes_by_user ON email_changes (user_id, requested_at);
    ",
    ),
    (
        "the audit log",
        // No foreign key to the account: its records outlive it, pseudonymized when it is
        // deleted.
        r"
    CREATE TABLE audit_events (
        id           uuid PRIMARY KEY,
        at           timestamptz NOT NULL CHECK (isfinite(at) AND at < '10000-01-01'),
        kind         text NOT NULL,
        action       text NOT NULL,
        outcome      text NOT NULL,
        reason       text,
        user_id      uuid,
        email_digest text,
        session_id   uuid,
        user_agent   text,
        ip           text
    );
    CREATE INDEX audit_events_by_user ON audit_events (user_id, id);
    CREATE INDEX audit_events_by_time ON audit_events (at);
    ",
    ),
    (
        "passkeys",
        // Credentials unique by the authenticator's credential id, and the WebAuthn
        // ceremonies in progress; both deleted with the account.
        r"
    CREATE TABLE passkeys (
        id            uuid PRIMARY KEY,
        user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        credential_id bytea NOT NULL UNIQUE,
        credential    text NOT NULL,
        counter       bigint NOT NULL CHECK (counter BETWEEN 0 AND 4294967295),
        name          text NOT NULL,
        created_at    timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        last_used_at  timestamptz CHECK (isfinite(last_used_at) AND last_used_at < '10000-01-01')
    );
    CREATE INDEX passkeys_by_user ON passkeys (user_id, created_at);

    CREATE TABLE passkey_ceremonies (
        token_hash bytea PRIMARY KEY,
        kind       text NOT NULL,
        user_id    uuid REFERENCES users (id) ON DELETE CASCADE,
        state      text NOT NULL,
        created_at timestamptz NOT NULL CHECK (isfinite(created_at) AND created_at < '10000-01-01'),
        expires_at timestamptz NOT NULL CHECK (isfinite(expires_at) AND expires_at < '10000-01-01')
    );
    CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);
    ",
    ),
];

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
    migrator.create_schema(format!("\"{schema}\""));
    migrator.dangerous_set_table_name(record_table(schema));
    // Our own lock (below) instead of sqlx's, which is one per database and so shared with
    // the application's migrations in unrelated schemas.
    migrator.set_locking(false);
    migrator
}

/// Where applied migrations are recorded: in the store's schema, never beside the
/// application's own `_sqlx_migrations`.
fn record_table(schema: &str) -> String {
    format!("\"{schema}\"._sqlx_migrations")
}

/// How long `migrate` waits for another instance's migration (or for a lock on the
/// tables) before it fails instead of hanging.
const LOCK_WAIT_SECS: u32 = 60;

pub(crate) async fn migrate(pool: &PgPool, schema: &str) -> Result<(), MigrateError> {
    let migrator = migrator(schema);
    // Decided by reading only, so an application role without CREATE can start against a
    // schema a DBA created and migrated.
    if up_to_date(pool, schema, &migrator).await? {
        return Ok(());
    }
    // From the pool (bounded by its acquire timeout, with its connect hooks), then detached
    // so the search_path set below never returns to the pool.
    let mut conn = pool.acquire().await.map_err(connection_error)?.detach();
    let result = apply(&mut conn, schema, &migrator).await;
    let _ = conn.close().await;
    result?;
    tracing::info!(schema, version = LATEST, "auth schema migrated");
    Ok(())
}

async fn up_to_date(pool: &PgPool, schema: &str, migrator: &Migrator) -> Result<bool, MigrateError> {
    let table = record_table(schema);
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&table)
        .fetch_one(pool)
        .await
        .map_err(connection_error)?;
    if exists.is_none() {
        return Ok(false);
    }
    let applied: Vec<(i64, Vec<u8>, bool)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT version, checksum, success FROM {table} ORDER BY version"
    )))
    .fetch_all(pool)
    .await
    .map_err(connection_error)?;
    if let Some(found) = applied
        .iter()
        .map(|(version, ..)| *version)
        .find(|version| *version > LATEST)
    {
        return Err(MigrateError::SchemaTooNew {
            found,
            supported: LATEST,
        });
    }
    let known: Vec<(i64, &[u8])> = migrator
        .iter()
        .map(|migration| (migration.version, migration.checksum.as_ref()))
        .collect();
    Ok(applied.len() == known.len()
        && applied
            .iter()
            .zip(&known)
            .all(|((version, checksum, success), (known_version, known_checksum))| {
                *success && version == known_version && checksum.as_slice() == *known_checksum
            }))
}

async fn apply(conn: &mut PgConnection, schema: &str, migrator: &Migrator) -> Result<(), MigrateError> {
    for setting in [
        format!("SET lock_timeout = '{LOCK_WAIT_SECS}s'"),
        format!("SET search_path TO \"{schema}\""),
    ] {
        conn.execute(sqlx::AssertSqlSafe(setting))
            .await
            .map_err(connection_error)?;
    }
    // One lock per store schema, in a key space of its own (two keys), so instances
    // starting together apply each migration once and nobody else waits on us.
    sqlx::query("SELECT pg_advisory_lock(hashtext('auth-store-postgres'), hashtext($1))")
        .bind(schema)
        .execute(&mut *conn)
        .await
        .map_err(connection_error)?;
    let result = migrator.run_direct(None, &mut *conn, false).await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext('auth-store-postgres'), hashtext($1))")
        .bind(schema)
        .execute(&mut *conn)
        .await;
    result.map_err(MigrateError::from)
}

fn connection_error(error: sqlx::Error) -> MigrateError {
    if is_unavailable(&error) {
        MigrateError::Unavailable(error)
    } else {
        MigrateError::Failed(sqlx::migrate::MigrateError::Execute(error))
    }
}

impl From<sqlx::migrate::MigrateError> for MigrateError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::Execute(error) | sqlx::migrate::MigrateError::ExecuteMigration(error, _)
                if is_unavailable(&error) =>
            {
                Self::Unavailable(error)
            }
            // A version we do not know but below ours is no newer release: a real failure.
            sqlx::migrate::MigrateError::VersionMissing(found) if found > LATEST => Self::SchemaTooNew {
                found,
                supported: LATEST,
            },
            other => Self::Failed(other),
        }
    }
}
