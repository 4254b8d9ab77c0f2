//! The library's migrations, embedded and versioned in a table of its own.
//!
//! `PRAGMA user_version` belongs to whoever owns the database file, and an application
//! that embeds this store in its own SQLite file may use it; so versions are kept in
//! `auth_schema_migrations`, and every table is prefixed `auth_`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use time::OffsetDateTime;

use crate::OpenError;

/// Each migration, in order; version `i + 1` is `MIGRATIONS[i]`. Never edit a released
/// one: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, sessions with their refresh tokens, one-time tokens.
    r"
    CREATE TABLE auth_users (
        id                TEXT PRIMARY KEY NOT NULL,
        -- Normalized in Rust (SQLite's NOCASE folds ASCII only): compared bytewise.
        email             TEXT NOT NULL UNIQUE,
        password_hash     TEXT,
        is_active         INTEGER NOT NULL,
        email_verified_at INTEGER,
        -- Role names, space-separated (a role name has no spaces).
        roles             TEXT NOT NULL,
        token_version     INTEGER NOT NULL,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE auth_sessions (
        id           TEXT PRIMARY KEY NOT NULL,
        user_id      TEXT NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        user_agent   TEXT,
        ip           TEXT,
        revoked_at   INTEGER
    ) STRICT;
    CREATE INDEX auth_sessions_by_user ON auth_sessions (user_id, created_at, id);

    CREATE TABLE auth_refresh_tokens (
        hash       BLOB PRIMARY KEY NOT NULL,
        session_id TEXT NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
        used_at    INTEGER
    ) STRICT;
    CREATE INDEX auth_refresh_tokens_by_session ON auth_refresh_tokens (session_id);

    -- No foreign key to auth_users: reset requests for unknown emails store decoys for
    -- the nil account, so that both answers cost the same.
    CREATE TABLE auth_one_time_tokens (
        hash          BLOB PRIMARY KEY NOT NULL,
        user_id       TEXT NOT NULL,
        purpose       TEXT NOT NULL,
        email         TEXT NOT NULL,
        token_version INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        used_at       INTEGER
    ) STRICT;
    -- At most one unused token per account and purpose: only the newest works.
    CREATE UNIQUE INDEX auth_one_time_tokens_unused
        ON auth_one_time_tokens (user_id, purpose) WHERE used_at IS NULL;
    ",
    // 2: how each session began (`amr`) and when (`auth_time`). Rows from before, and
    // rows an instance of an older release still writes, began with a password at
    // `created_at`: reads take `coalesce(auth_time, created_at)`.
    r"
    ALTER TABLE auth_sessions ADD COLUMN auth_methods TEXT NOT NULL DEFAULT 'pwd';
    ALTER TABLE auth_sessions ADD COLUMN auth_time INTEGER;
    ",
    // 3: sessions no longer reference auth_users, so an application that keeps its own
    // accounts (auth_core::ComposedStore) can keep its sessions here. SQLite drops a
    // foreign key only by rebuilding the table (its documented procedure, run with
    // foreign keys off, see `migrate`), keeping every row, index and the refresh tokens'
    // reference to the sessions.
    r"
    CREATE TABLE auth_sessions_rebuilt (
        id           TEXT PRIMARY KEY NOT NULL,
        user_id      TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        user_agent   TEXT,
        ip           TEXT,
        revoked_at   INTEGER,
        auth_methods TEXT NOT NULL DEFAULT 'pwd',
        auth_time    INTEGER
    ) STRICT;
    INSERT INTO auth_sessions_rebuilt
        (id, user_id, created_at, last_used_at, expires_at, user_agent, ip, revoked_at, auth_methods, auth_time)
        SELECT id, user_id, created_at, last_used_at, expires_at, user_agent, ip, revoked_at, auth_methods, auth_time
        FROM auth_sessions;
    DROP TABLE auth_sessions;
    ALTER TABLE auth_sessions_rebuilt RENAME TO auth_sessions;
    CREATE INDEX auth_sessions_by_user ON auth_sessions (user_id, created_at, id);
    ",
    // 4: browser sessions (auth_core::BrowserSessionStore): a cookie's hash naming its
    // session, deleted with it.
    r"
    CREATE TABLE auth_browser_sessions (
        hash       BLOB PRIMARY KEY NOT NULL,
        session_id TEXT NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX auth_browser_sessions_by_session ON auth_browser_sessions (session_id);
    ",
    // 5: second factors (auth_core::SecondFactorStore): whether login asks for one, on the
    // account (existing accounts do not); an account's TOTP factor, its recovery codes
    // (hashes) and its login challenge, each at most one per account, deleted with it.
    r"
    ALTER TABLE auth_users ADD COLUMN requires_second_factor INTEGER NOT NULL DEFAULT 0;

    CREATE TABLE auth_totp_factors (
        user_id        TEXT PRIMARY KEY NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
        -- Sealed by auth_core::SecretCipher: never the secret in the clear.
        sealed_secret  TEXT NOT NULL,
        created_at     INTEGER NOT NULL,
        confirmed_at   INTEGER,
        -- The time step (Unix time / 30 s) of the last accepted code.
        last_used_step INTEGER
    ) STRICT;

    CREATE TABLE auth_recovery_codes (
        user_id TEXT NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
        hash    BLOB NOT NULL,
        used_at INTEGER,
        PRIMARY KEY (user_id, hash)
    ) STRICT;

    CREATE TABLE auth_login_challenges (
        hash       BLOB PRIMARY KEY NOT NULL,
        -- One per account: a new challenge replaces the account's previous one.
        user_id    TEXT NOT NULL UNIQUE REFERENCES auth_users (id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        -- Codes presented so far, right or wrong: counted before each is checked.
        attempts   INTEGER NOT NULL DEFAULT 0,
        -- The account's token version when the password was right: a password change
        -- or reset since kills the challenge.
        token_version INTEGER NOT NULL,
        user_agent TEXT,
        ip         TEXT
    ) STRICT;
    ",
    // 6: external identities (auth_core::IdentityStore): the provider identities linked to
    // an account, unique on (provider, subject) by the constraint itself, deleted with
    // their account; the sign-ins in progress under the hash of their state, and the
    // one-time codes of finished ones under the hash of the code, each taken once. A login
    // challenge records how its first step proved who it is (rows from before, and rows
    // an instance of an older release still writes, followed a password).
    r"
    ALTER TABLE auth_login_challenges ADD COLUMN first_factor TEXT NOT NULL DEFAULT 'pwd';

    CREATE TABLE auth_identities (
        id           TEXT PRIMARY KEY NOT NULL,
        user_id      TEXT NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
        provider     TEXT NOT NULL,
        -- The provider's `sub`, compared bytewise (BINARY).
        subject      TEXT NOT NULL,
        -- As the provider gave it when linked: shown, never used to sign in.
        email        TEXT,
        created_at   INTEGER NOT NULL,
        last_used_at INTEGER,
        CONSTRAINT auth_identities_provider_subject UNIQUE (provider, subject)
    ) STRICT;
    CREATE INDEX auth_identities_by_user ON auth_identities (user_id, created_at, id);

    CREATE TABLE auth_external_login_states (
        hash         BLOB PRIMARY KEY NOT NULL,
        -- The hash of the browser binding cookie.
        binding_hash BLOB NOT NULL,
        provider     TEXT NOT NULL,
        purpose      TEXT NOT NULL CHECK (purpose IN ('sign_in', 'link')),
        -- A link's account and session; neither for a sign-in.
        user_id      TEXT REFERENCES auth_users (id) ON DELETE CASCADE,
        session_id   TEXT,
        next         TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        -- A native app's PKCE challenge (SHA-256) for the one-time code; NULL for a browser.
        exchange_challenge BLOB CHECK (length(exchange_challenge) = 32),
        CHECK ((purpose = 'link') = (user_id IS NOT NULL AND session_id IS NOT NULL))
    ) STRICT;
    CREATE INDEX auth_external_login_states_by_expiry ON auth_external_login_states (expires_at);

    CREATE TABLE auth_external_login_codes (
        hash          BLOB PRIMARY KEY NOT NULL,
        user_id       TEXT NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
        identity_id   TEXT NOT NULL REFERENCES auth_identities (id) ON DELETE CASCADE,
        binding_hash  BLOB NOT NULL,
        token_version INTEGER NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX auth_external_login_codes_by_expiry ON auth_external_login_codes (expires_at);
    ",
    // 7: changes of an account's address, under the hashes of their confirmation and undo
    // links, deleted with the account.
    r"
    CREATE TABLE auth_email_changes (
        confirm_hash       BLOB PRIMARY KEY NOT NULL,
        undo_hash          BLOB NOT NULL UNIQUE,
        user_id            TEXT NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
        old_email          TEXT NOT NULL,
        new_email          TEXT NOT NULL,
        -- The session that asked: confirming keeps it.
        session_id         TEXT,
        token_version      INTEGER NOT NULL,
        requested_at       INTEGER NOT NULL,
        confirm_expires_at INTEGER NOT NULL,
        undo_expires_at    INTEGER NOT NULL,
        confirmed_at       INTEGER,
        undone_at          INTEGER
    ) STRICT;
    CREATE INDEX auth_email_changes_by_user ON auth_email_changes (user_id, requested_at);
    ",
    // 8: the audit log (auth_core::AuditLogStore). No foreign key to the account: its
    // records outlive it, pseudonymized when it is deleted.
    r"
    CREATE TABLE auth_audit_events (
        id           TEXT PRIMARY KEY NOT NULL,
        at           INTEGER NOT NULL,
        kind         TEXT NOT NULL,
        action       TEXT NOT NULL,
        outcome      TEXT NOT NULL,
        reason       TEXT,
        user_id      TEXT,
        email_digest TEXT,
        session_id   TEXT,
        user_agent   TEXT,
        ip           TEXT
    ) STRICT;
    CREATE INDEX auth_audit_events_by_user ON auth_audit_events (user_id, id);
    CREATE INDEX auth_audit_events_by_time ON auth_audit_events (at);
    ",
    // 9: passkeys (auth_core::PasskeyStore): credentials unique by the authenticator's
    // credential id, and the WebAuthn ceremonies in progress; both deleted with the account.
    r"
    CREATE TABLE auth_passkeys (
        id            TEXT PRIMARY KEY NOT NULL,
        user_id       TEXT NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
        credential_id BLOB NOT NULL UNIQUE,
        credential    TEXT NOT NULL,
        counter       INTEGER NOT NULL CHECK (counter BETWEEN 0 AND 4294967295),
        name          TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        last_used_at  INTEGER
    ) STRICT;
    CREATE INDEX auth_passkeys_by_user ON auth_passkeys (user_id, created_at);

    CREATE TABLE auth_passkey_ceremonies (
        token_hash BLOB PRIMARY KEY NOT NULL,
        kind       TEXT NOT NULL,
        user_id    TEXT REFERENCES auth_users (id) ON DELETE CASCADE,
        state      TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX auth_passkey_ceremonies_by_expiry ON auth_passkey_ceremonies (expires_at);
    ",
];

/// The schema version this build writes and understands.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Applies the migrations `conn`'s database lacks, in one immediate transaction, so
/// concurrent openers (threads or processes) apply each exactly once.
///
/// Foreign keys are off while it runs, on this connection only (SQLite ignores the
/// pragma inside a transaction): a migration that rebuilds a table drops the old one,
/// which with them on would delete, by cascade, the rows that reference it. Before the
/// commit, `foreign_key_check` must find no row whose reference broke; after, they are on
/// again, whatever happened.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, OpenError> {
    let enforced: bool = conn.pragma_query_value(None, "foreign_keys", |row| row.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let migrated = migrate_unchecked(conn);
    let restored = conn.pragma_update(None, "foreign_keys", enforced);
    let version = migrated?;
    restored?;
    Ok(version)
}

fn migrate_unchecked(conn: &mut Connection) -> Result<i64, OpenError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS auth_schema_migrations (
            version    INTEGER PRIMARY KEY NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT;",
    )?;
    let current: i64 = tx
        .query_row("SELECT max(version) FROM auth_schema_migrations", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0);
    if current > LATEST {
        // Written by a newer release: its tables may mean something this one would break.
        return Err(OpenError::SchemaTooNew {
            found: current,
            supported: LATEST,
        });
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    for (version, sql) in (1..).zip(MIGRATIONS).skip(usize::try_from(current).unwrap_or(0)) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO auth_schema_migrations (version, applied_at) VALUES (?1, ?2)",
            (version, now),
        )?;
        tracing::info!(version, "applied auth schema migration");
    }
    let broken: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| row.get(0))?;
    if broken > 0 {
        // Rolled back when `tx` drops: the file stays as it was.
        return Err(OpenError::BrokenReferences { rows: broken });
    }
    tx.commit()?;
    Ok(LATEST)
}
