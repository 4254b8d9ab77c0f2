//! PostgreSQL storage for [`auth_core`] on sqlx: the production store, shared by several
//! application instances.
//!
//! [`PostgresStore`] implements every store trait of `auth-core`, the base ones
//! ([`UserStore`], [`SessionStore`], [`OneTimeTokenStore`]) and every optional one
//! ([`UserDirectory`], [`RoleStore`], [`PurgeStore`], [`BrowserSessionStore`],
//! [`SecondFactorStore`], [`IdentityStore`]):
//!
//! - its tables live in a schema of its own (`auth` by default, [`with_schema`](PostgresStore::with_schema)),
//!   and so does the record of its migrations (`auth._sqlx_migrations`), which never meets
//!   the application's own `_sqlx_migrations`; [`migrate`](PostgresStore::migrate) is
//!   idempotent, read-only when nothing is missing, safe from several instances at once
//!   (an advisory lock of its own, per schema), and a
//!   database migrated by a newer release is refused;
//! - queries are built at run time: building needs no database;
//! - the normalized email has a `UNIQUE` constraint, and its violation (SQLSTATE 23505 on
//!   that constraint) is the typed [`StoreError::DuplicateEmail`]; single-use tokens are
//!   consumed by one `UPDATE ... WHERE used_at IS NULL RETURNING`; a new one-time token
//!   replaces the unused one by an upsert on a partial unique index; refresh rotation
//!   locks its session row, so it cannot interleave with a revocation; compare-and-set
//!   updates re-check their condition on the latest row version (read committed), so
//!   concurrent logins that rehash a legacy hash lose no update;
//! - second factors (migration 5: `totp_factors`, `recovery_codes`, `login_challenges`, and
//!   `users.requires_second_factor`): each TOTP time step, recovery code and login
//!   challenge is used at most once by one conditional `UPDATE` or `DELETE ... RETURNING`;
//!   confirming or deleting a factor writes it, its recovery codes and the account's flag
//!   in one transaction; a new login challenge replaces the account's previous one, and a
//!   new enrolment a pending factor (never a confirmed one), by upserts; all of them are
//!   deleted with their account;
//! - external identities (migration 6: `identities`, `external_login_states`,
//!   `external_login_codes`, and `login_challenges.first_factor`): (provider, subject) has
//!   a `UNIQUE` constraint, and its violation (23505 on that constraint) is the typed
//!   [`StoreError::DuplicateIdentity`]; an account and its first identity are one
//!   transaction, the identity inserted first (its reference to the account deferred to
//!   the commit) so that its conflict is the one told when the email is taken too; a
//!   sign-in's state and code are each taken once by `DELETE ... RETURNING`; deleting an
//!   identity locks the account's row first, so concurrent deletions of its last two
//!   identities queue and one is refused; identities, codes and a link's state are
//!   deleted with their account;
//! - the audit log (migration 8: `audit_events`): every write a service records stores
//!   the record handed to it ([`auth_core::PendingRecords`]) in its own transaction when
//!   it changes something, so a change is never kept without its record;
//! - a database that cannot be reached is [`StoreError::Unavailable`] after at most the
//!   pool's acquire timeout (3 s with [`connect`](PostgresStore::connect)), so a server
//!   answers 503 quickly; connections are checked before use, so the same store recovers
//!   by itself when the database is back.
//!
//! ```no_run
//! use std::sync::Arc;
//! use auth_core::{AuthService, SigningKey, Tokens};
//! use auth_store_postgres::PostgresStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::connect("postgres://auth@db.internal/app").await?;
//! store.migrate().await?;
//! let key = SigningKey::hs256(std::env::var("SECRET_KEY")?.as_bytes())?;
//! let auth = Arc::new(AuthService::new(store, Tokens::new(key, "https://auth.example.com", "api")));
//! # let _ = auth;
//! # Ok(())
//! # }
//! ```
//!
//! # Tables
//!
//! In the store's schema (`auth` by default):
//!
//! | table | migration | holds |
//! |---|---|---|
//! | `_sqlx_migrations` | | the migrations applied (sqlx's record) |
//! | `users` | 1 (5: `requires_second_factor`) | accounts, unique on the normalized email |
//! | `sessions` | 1 (2: `auth_methods`, `auth_time`; 3: no reference to `users`) | sessions |
//! | `refresh_tokens` | 1 | refresh token hashes, deleted with their session |
//! | `one_time_tokens` | 1 | single-use token hashes (email verification, password reset) |
//! | `browser_sessions` | 4 | browser session cookie hashes, deleted with their session |
//! | `totp_factors` | 5 | an account's TOTP factor (its secret sealed) |
//! | `recovery_codes` | 5 | an account's recovery code hashes |
//! | `login_challenges` | 5 (6: `first_factor`) | a login waiting for its second factor, one per account |
//! | `identities` | 6 | external identities linked to accounts, unique on (provider, subject) |
//! | `external_login_states` | 6 | external sign-ins in progress, under their state's hash |
//! | `external_login_codes` | 6 | finished external sign-ins' one-time codes, under their hash |
//!
//! # Features
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `tls-rustls` | off | TLS to the server through rustls on aws-lc-rs (sqlx's `tls-rustls-aws-lc-rs`), the backend auth-core's JWTs already link by default |
//!
//! Without a TLS feature only plaintext connections work: sqlx 0.9 then connects in
//! plaintext under the default `sslmode=prefer`, and refuses `sslmode=require` (or
//! `verify-ca`, `verify-full`) with "TLS upgrade required by connect options but SQLx was
//! built without TLS support enabled" (sqlx-postgres' `connection/tls.rs`). Any other sqlx TLS feature (`tls-rustls-ring`,
//! `tls-native-tls`) works as well when the application enables it on its own
//! `sqlx = "0.9"` dependency: features are unified, the store uses the same sqlx.
//!
//! `auth-core` is a dependency without its default features: its legacy verifiers and JWT
//! backend are the application's choice, through its own `auth-core` dependency (see
//! auth-core's documentation).
//!
//! # sqlx
//!
//! The store is built on sqlx 0.9 (`postgres`, `runtime-tokio`, `migrate`, `time`,
//! `uuid`; no macros, so building needs no database). [`PgPool`] and the whole [`sqlx`]
//! crate are re-exported: build a pool with [`sqlx::postgres::PgPoolOptions`] for
//! [`PostgresStore::new`], and name sqlx's errors in [`MigrateError`], without a sqlx
//! dependency of your own, so a second sqlx is never pinned by accident. An application
//! using sqlx itself must use 0.9 to share the pool.
//!
//! # Minimum Rust version
//!
//! 1.94, sqlx 0.9's (`.ci/rust-version.py` checks it against every dependency).
//!
//! # License
//!
//! MIT OR Apache-2.0, at your option.

#![forbid(unsafe_code)]

/// The sqlx this store was built with: build a pool with its
/// [`PgPoolOptions`] for [`PostgresStore::new`], write a [`RegistrationHook`], and name
/// its errors ([`MigrateError`]), without a dependency of your own.
pub use sqlx;
/// The pool [`PostgresStore::new`] takes and [`PostgresStore::pool`] shares.
pub use sqlx::PgPool;

mod error;
mod kept;
mod outage;
mod schema;

use outage::Guarded;

use std::collections::BTreeSet;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use auth_core::{
    AccountDeletionStore, AuditLogStore, AuditQuery, AuditRecord, AuthMethod, BoxError, BrowserSessionStore,
    CodeChallenge, Email, EmailChange, EmailChangeStore, EmailConfirmation, EmailDigest, EventId, ExternalIdentity,
    ExternalLoginCode, ExternalLoginPurpose, ExternalLoginState, HashedPassword, IdentityId, IdentityRemoval,
    IdentityStore, LinkedIdentity, LoginChallenge, OneTimeToken, OneTimeTokenStore, PasskeyCeremony,
    PasskeyCeremonyKind, PasskeyCredential, PasskeyId, PasskeyRemoval, PasskeyStore, PendingRecords, ProviderName,
    PurgeStore, RefreshTokenRecord, ReturnPath, Role, RoleStore, SecondFactorStore, Session, SessionId, SessionStore,
    StoreError, TokenHash, TokenPurpose, TotpFactor, User, UserDirectory, UserId, UserStore, stored,
};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use error::store_error;
pub use error::{MigrateError, SchemaNameError};

/// The newest migration this release applies (see [`PostgresStore::migrate`]): each is
/// recorded once in `<schema>._sqlx_migrations`.
pub const SCHEMA_VERSION: i64 = schema::LATEST;

/// The schema the store's tables live in unless [`PostgresStore::with_schema`] says
/// otherwise.
pub const DEFAULT_SCHEMA: &str = "auth";

/// How long [`PostgresStore::connect`]'s pool waits for a connection before the call
/// fails as [`StoreError::Unavailable`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Connections in [`PostgresStore::connect`]'s pool.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

/// `statement_timeout` of [`PostgresStore::connect`]'s connections.
pub const DEFAULT_STATEMENT_TIMEOUT: &str = "10s";

/// `lock_timeout` of [`PostgresStore::connect`]'s connections.
pub const DEFAULT_LOCK_TIMEOUT: &str = "5s";

const USER_COLUMNS: &str = "id, email, password_hash, is_active, email_verified_at, roles, token_version, created_at, \
     updated_at, requires_second_factor";
const SESSION_COLUMNS: &str = "s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.user_agent, s.ip, \
     s.revoked_at, s.auth_methods, coalesce(s.auth_time, s.created_at) AS auth_time";
const ONE_TIME_COLUMNS: &str = "user_id, purpose, email, token_version, created_at, expires_at";
const TOTP_FACTOR_COLUMNS: &str = "user_id, sealed_secret, created_at, confirmed_at, last_used_step";
const LOGIN_CHALLENGE_COLUMNS: &str =
    "user_id, created_at, expires_at, attempts, token_version, user_agent, ip, first_factor";
const IDENTITY_COLUMNS: &str = "id, user_id, provider, subject, email, created_at, last_used_at";
const PASSKEY_COLUMNS: &str = "id, user_id, credential_id, credential, counter, name, created_at, last_used_at";
const LOGIN_STATE_COLUMNS: &str =
    "binding_hash, provider, purpose, user_id, session_id, next, created_at, expires_at, exchange_challenge";
const LOGIN_CODE_COLUMNS: &str = "user_id, identity_id, token_version, created_at, expires_at, binding_hash";

/// The PostgreSQL store: a pool and the schema its tables live in. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    schema: String,
    /// See [`with_registration_hook`](Self::with_registration_hook).
    on_registration: Option<Arc<RegistrationHook>>,
    /// Fails calls at once while the database is down (see [`without_outage_watch`](Self::without_outage_watch)).
    outage: Arc<outage::OutageWatch>,
    /// Connections kept out of the pool between the hot reads (see `kept.rs`).
    kept: Arc<kept::KeptConnections>,
}

/// What a read of [`PostgresStore::read`] returns: its statement's future on the connection.
type ReadFuture<'c, T> = Pin<Box<dyn Future<Output = Result<T, sqlx::Error>> + Send + 'c>>;

/// What a [`RegistrationHook`] returns: a future borrowing the transaction and the account.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + 'a>>;

/// What an application does in the transaction that inserts a new account: see
/// [`PostgresStore::with_registration_hook`].
pub type RegistrationHook = dyn for<'a> Fn(&'a mut sqlx::PgConnection, &'a User) -> HookFuture<'a> + Send + Sync;

impl PostgresStore {
    /// A store on `pool`, in the schema [`DEFAULT_SCHEMA`] (`auth`). Size the pool with a
    /// bounded `acquire_timeout` (a few seconds): it bounds a call's wait for a connection
    /// when all are busy, and when the database stops answering without closing its
    /// connections (a network that drops packets).
    ///
    /// When the database closes its connections and refuses new ones (it stopped,
    /// restarts or fails over), calls fail at once instead: a task beside the pool keeps
    /// one connection of its own (named `auth-store-postgres outage watch` in
    /// `pg_stat_activity`) and checks it every 250 ms; while it can neither use it nor
    /// make a new one, every call, the ones already waiting for a connection too, is
    /// [`StoreError::Unavailable`] (HTTP 503 with `Retry-After`) without waiting, and the
    /// calls succeed again once it connects. Meanwhile
    /// [`known_unavailable`](UserStore::known_unavailable) is `true`, so a registration is
    /// refused before it hashes the password. The task starts with the first call and
    /// stops with the last clone of the store.
    /// [`without_outage_watch`](Self::without_outage_watch) turns it off.
    ///
    /// The store's most frequent reads (the account and session of
    /// [`find_user_and_session`](SessionStore::find_user_and_session), which authentication
    /// reads on every request, an account by id or email, a session) run on connections
    /// the store keeps out of the pool between them, at most half of `max_connections`
    /// (none of a pool of one), so that each costs one round trip: sqlx's pool checks
    /// every connection taken and given back with one more each. Reads take turns at the
    /// kept connections, waiting for a turn at most the pool's acquire timeout; the pool's
    /// other half stays for writes and the application. A kept connection the server ended
    /// fails the read on it, which runs once more on another. Closing the pool
    /// ([`PgPool::close`]) gives the kept connections back to it.
    pub fn new(pool: PgPool) -> Self {
        Self {
            kept: Arc::new(kept::KeptConnections::new(
                pool.options().get_max_connections(),
                pool.options().get_acquire_timeout(),
            )),
            pool,
            schema: DEFAULT_SCHEMA.to_owned(),
            on_registration: None,
            outage: outage::OutageWatch::new(true),
        }
    }

    /// Turns off the outage watch of [`new`](Self::new) (its one extra connection): in
    /// an outage, each call then waits out the pool's `acquire_timeout` before it fails as
    /// [`StoreError::Unavailable`]. For a database that counts every connection (a
    /// connection pooler's small limit).
    ///
    /// ```no_run
    /// use auth_store_postgres::PostgresStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::connect("postgres://app@localhost/app").await?.without_outage_watch();
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn without_outage_watch(mut self) -> Self {
        self.outage = outage::OutageWatch::new(false);
        self
    }

    /// Runs `hook` in the transaction that inserts each new account, after the insert (a
    /// registration, or a first sign-in through an identity provider, with the account's
    /// identity): an application creates its own row for the account (a profile, a tenant
    /// membership) so that both exist or neither does. An error from the hook rolls the
    /// registration back; it fails as a backend error (a 500, with the hook's error as its
    /// cause in the log), and the address stays free. Without a hook, a registration's
    /// insert is one statement; with one, it is a transaction of the insert and the hook's
    /// statements.
    ///
    /// ```no_run
    /// use auth_store_postgres::PostgresStore;
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::connect("postgres://app@localhost/app").await?.with_registration_hook(|conn, user| {
    ///     Box::pin(async move {
    ///         sqlx::query("INSERT INTO public.profiles (user_id, email) VALUES ($1, $2)")
    ///             .bind(user.id.as_uuid())
    ///             .bind(user.email.as_str())
    ///             .execute(conn)
    ///             .await?;
    ///         Ok(())
    ///     })
    /// });
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_registration_hook(
        mut self,
        hook: impl for<'a> Fn(&'a mut sqlx::PgConnection, &'a User) -> HookFuture<'a> + Send + Sync + 'static,
    ) -> Self {
        self.on_registration = Some(Arc::new(hook));
        self
    }

    /// Connects to `url` (`postgres://user:password@host:5432/database`) with a pool of
    /// [`DEFAULT_MAX_CONNECTIONS`], [`DEFAULT_ACQUIRE_TIMEOUT`], and server-side limits of
    /// [`DEFAULT_STATEMENT_TIMEOUT`] per statement and [`DEFAULT_LOCK_TIMEOUT`] per lock
    /// wait. Does not migrate.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] if the server cannot be reached, `Backend` for a bad
    /// URL or refused credentials.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(store_error)?.options([
            // Once connected, nothing waits without bound either: a stalled query or a
            // lock held by a long transaction becomes `unavailable`, not a hung request.
            ("statement_timeout", DEFAULT_STATEMENT_TIMEOUT),
            ("lock_timeout", DEFAULT_LOCK_TIMEOUT),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(DEFAULT_MAX_CONNECTIONS)
            .acquire_timeout(DEFAULT_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(store_error)?;
        Ok(Self::new(pool))
    }

    /// Keeps the tables in `schema` instead: a lowercase SQL identifier (`[a-z_][a-z0-9_]*`,
    /// at most 63 bytes; not `public`, `information_schema` or `pg_*`, which other software
    /// shares), so several deployments (or tests) can share a database. Each schema's
    /// queries are prepared separately: with many schemas on one pool, raise sqlx's
    /// `statement_cache_capacity` (100 by default, about four schemas' worth).
    ///
    /// # Errors
    ///
    /// [`SchemaNameError`] for any other name: it is written into SQL.
    pub fn with_schema(mut self, schema: &str) -> Result<Self, SchemaNameError> {
        let valid = !schema.is_empty()
            && schema.len() <= 63
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !schema.as_bytes()[0].is_ascii_digit()
            && !schema.starts_with("pg_")
            // Shared with everyone: our migration record would meet the application's.
            && !matches!(schema, "public" | "information_schema");
        if !valid {
            return Err(SchemaNameError(schema.to_owned()));
        }
        schema.clone_into(&mut self.schema);
        Ok(self)
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The pool, to share with the application.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates the schema and applies the migrations it lacks; idempotent, and safe to run
    /// from several instances at once (they wait, at most 60 s, on an advisory lock of the
    /// store's own). When nothing is missing it only reads, so a role without `CREATE`
    /// can run it at every start.
    ///
    /// # Errors
    ///
    /// [`MigrateError::SchemaTooNew`] for a database migrated by a newer release (nothing
    /// is changed), [`MigrateError::Unavailable`], and failures of the migration itself.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        schema::migrate(&self.pool, &self.schema).await
    }

    /// `template` with `{s}` replaced by the schema and `{USER_COLUMNS}` (and the like) by
    /// the column lists: the schema name was validated as a plain identifier, so the result
    /// is as safe as the template.
    fn sql(&self, template: &'static str) -> AssertSqlSafe<String> {
        AssertSqlSafe(
            template
                .replace("{USER_COLUMNS}", USER_COLUMNS)
                .replace("{SESSION_COLUMNS}", SESSION_COLUMNS)
                .replace("{JOINED_SESSION_COLUMNS}", JOINED_SESSION_COLUMNS)
                .replace("{ONE_TIME_COLUMNS}", ONE_TIME_COLUMNS)
                .replace("{TOTP_FACTOR_COLUMNS}", TOTP_FACTOR_COLUMNS)
                .replace("{LOGIN_CHALLENGE_COLUMNS}", LOGIN_CHALLENGE_COLUMNS)
                .replace("{IDENTITY_COLUMNS}", IDENTITY_COLUMNS)
                .replace("{PASSKEY_COLUMNS}", PASSKEY_COLUMNS)
                .replace("{LOGIN_STATE_COLUMNS}", LOGIN_STATE_COLUMNS)
                .replace("{LOGIN_CODE_COLUMNS}", LOGIN_CODE_COLUMNS)
                .replace("{EMAIL_CHANGE_COLUMNS}", EMAIL_CHANGE_COLUMNS)
                .replace("{AUDIT_COLUMNS}", AUDIT_COLUMNS)
                // Quoted: a valid name may still be a reserved word (`user`, `order`).
                .replace("{s}", &format!("\"{}\"", self.schema)),
        )
    }

    async fn fetch_user(&self, sql: AssertSqlSafe<String>, bind: UserQuery<'_>) -> Result<Option<User>, StoreError> {
        let row = self
            .read(|conn| {
                let query = sqlx::query(AssertSqlSafe(sql.0.as_str()));
                let query = match bind {
                    UserQuery::Id(id) => query.bind(id),
                    UserQuery::Email(email) => query.bind(email.to_owned()),
                };
                Box::pin(query.fetch_optional(conn))
            })
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Runs `read`, a statement that changes nothing, once it is this read's turn: on a
    /// connection kept between reads (see `kept.rs`), or on a new one from the pool when
    /// none is idle. When a kept connection turns out lost (the server ended it), the other
    /// idle ones go back to the pool, which checks them, and `read` runs once more.
    async fn read<T>(
        &self,
        read: impl for<'c> Fn(&'c mut sqlx::PgConnection) -> ReadFuture<'c, T>,
    ) -> Result<T, StoreError> {
        let work = async {
            if !self.kept.keeps_any() || self.pool.is_closed() {
                return read(&mut *self.pool.acquire().await?).await;
            }
            let Some(_turn) = self.kept.turn().await else {
                return Err(sqlx::Error::PoolTimedOut);
            };
            let outages = self.outage.changes();
            let mut lost_one = false;
            loop {
                if let Some(mut kept) = self.kept.take(outages) {
                    match read(&mut kept.connection).await {
                        Ok(value) => {
                            self.kept.put_back(kept, &self.pool);
                            return Ok(value);
                        }
                        // `kept` is dropped: back to the pool, which closes or cleans it.
                        Err(error) if lost_one || !error::is_connection_lost(&error) => return Err(error),
                        Err(error) => {
                            tracing::debug!(%error, "a kept connection was lost: the read runs once more");
                            lost_one = true;
                            self.kept.forget_idle();
                            continue;
                        }
                    }
                }
                let mut connection = self.pool.acquire().await?;
                let value = read(&mut connection).await?;
                self.kept.keep_new(connection, outages, &self.pool);
                return Ok(value);
            }
        };
        self.outage.guard(&self.pool, work).await.map_err(store_error)
    }
}

impl PostgresStore {
    /// Inserts audit `records` in the caller's transaction. A record of an account that
    /// is gone (deleted before this was written) keeps neither the account nor its client.
    ///
    /// The accounts the records name are share-locked first, in one order: a deletion
    /// (which locks its account's row for update before anything else) then either waits
    /// for this transaction and rewrites these records with the others, or finishes first
    /// and this finds the account gone. Without the lock, a record inserted while the
    /// deletion runs is invisible to its rewrite and keeps naming the deleted account.
    async fn insert_audit_rows(&self, tx: &mut sqlx::PgConnection, records: &[AuditRecord]) -> Result<(), StoreError> {
        let mut named: Vec<Uuid> = records
            .iter()
            .filter_map(|record| record.user_id.map(|id| *id.as_uuid()))
            .collect();
        named.sort_unstable();
        named.dedup();
        let present: std::collections::HashSet<Uuid> = if named.is_empty() {
            std::collections::HashSet::new()
        } else {
            sqlx::query_scalar(self.sql("SELECT id FROM {s}.users WHERE id = ANY($1) ORDER BY id FOR SHARE"))
                .bind(&named)
                .fetch_all(&mut *tx)
                .await
                .map_err(store_error)?
                .into_iter()
                .collect()
        };
        for record in records {
            let named = record.user_id.map(|id| *id.as_uuid());
            let kept = named.filter(|id| present.contains(id));
            // A record of an account that is gone keeps no client either.
            let client_kept = named.is_none() || kept.is_some();
            sqlx::query(self.sql(
                "INSERT INTO {s}.audit_events (id, at, kind, action, outcome, reason, user_id, email_digest,
                                               session_id, user_agent, ip)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            ))
            .bind(record.id.as_uuid())
            .bind(record.at)
            .bind(&record.kind)
            .bind(&record.action)
            .bind(&record.outcome)
            .bind(&record.reason)
            .bind(kept)
            .bind(&record.email_digest)
            .bind(record.session_id.map(|id| *id.as_uuid()))
            .bind(record.user_agent.as_deref().filter(|_| client_kept))
            .bind(record.ip.map(|ip| ip.to_string()).filter(|_| client_kept))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        }
        Ok(())
    }

    /// Inserts the audit records pending for the change just made in `tx`, when it
    /// `changed` something; returns them, to say [`PendingRecords::written`] once `tx`
    /// committed.
    async fn keep_pending(
        &self,
        tx: &mut sqlx::PgConnection,
        pending: Option<PendingRecords>,
        changed: bool,
    ) -> Result<Option<PendingRecords>, StoreError> {
        match pending {
            Some(pending) if changed => {
                self.insert_audit_rows(tx, pending.records()).await?;
                Ok(Some(pending))
            }
            _ => Ok(None),
        }
    }

    /// Commits `tx`, with the audit records pending for its change when it `changed`
    /// something: the record and the change it records are kept together or not at all.
    async fn commit_recorded(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        pending: Option<PendingRecords>,
        changed: bool,
    ) -> Result<(), StoreError> {
        let kept = self.keep_pending(&mut tx, pending, changed).await?;
        tx.commit().await.map_err(store_error)?;
        if let Some(kept) = kept {
            kept.written();
        }
        Ok(())
    }

    /// Where a one-statement write runs: on a pooled connection, as without an audit log;
    /// or, when the service handed it audit records ([`PendingRecords`]), in a transaction
    /// that takes them too. End it with [`finish`](Self::finish).
    async fn writer(&self) -> Result<Writer, StoreError> {
        Ok(match PendingRecords::take() {
            Some(pending) => Writer::Recording(self.pool.begin().guarded(self).await.map_err(store_error)?, pending),
            None => Writer::Direct(self.pool.acquire().guarded(self).await.map_err(store_error)?),
        })
    }

    /// Ends a write made on `writer`: commits its records with the change when the write
    /// `changed` something (see [`commit_recorded`](Self::commit_recorded)).
    async fn finish(&self, writer: Writer, changed: bool) -> Result<(), StoreError> {
        match writer {
            Writer::Direct(_) => Ok(()),
            Writer::Recording(tx, pending) => self.commit_recorded(tx, Some(pending), changed).await,
        }
    }

    /// The insert of a linked identity, on the pool or in a transaction: a taken
    /// (provider, subject) is [`StoreError::DuplicateIdentity`], decided by the constraint.
    async fn insert_identity_on<'e>(
        &self,
        executor: impl sqlx::PgExecutor<'e>,
        identity: &LinkedIdentity,
    ) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO {s}.identities (id, user_id, provider, subject, email, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ))
        .bind(identity.id.as_uuid())
        .bind(identity.user_id.as_uuid())
        .bind(identity.provider.as_str())
        .bind(identity.subject.as_str())
        .bind(identity.email.as_deref())
        .bind(identity.created_at)
        .bind(identity.last_used_at)
        .execute(executor)
        .await
        .map_err(error::insert_identity_error)?;
        Ok(())
    }

    /// The insert of a new account, on the pool or in the hook's transaction.
    async fn insert_user_on<'e>(&self, executor: impl sqlx::PgExecutor<'e>, user: &User) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO {s}.users (id, email, password_hash, is_active, email_verified_at, roles,
                                    token_version, created_at, updated_at, requires_second_factor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ))
        .bind(user.id.as_uuid())
        .bind(user.email.as_str())
        .bind(user.password_hash.as_ref().map(HashedPassword::as_str))
        .bind(user.is_active)
        .bind(user.email_verified_at)
        .bind(roles_vec(&user.roles))
        .bind(user.token_version)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(user.requires_second_factor)
        .execute(executor)
        .await
        .map_err(error::insert_user_error)?;
        Ok(())
    }

    /// Reads the account with its row locked and, when `change` edits its roles, writes
    /// them back (incrementing the token version): one transaction, so concurrent changes
    /// of one account's roles queue on the lock and none is lost. Every role change goes
    /// through here.
    async fn change_roles(
        &self,
        id: UserId,
        at: OffsetDateTime,
        change: impl FnOnce(&mut BTreeSet<Role>) -> bool + Send,
    ) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        let row = sqlx::query(self.sql("SELECT {USER_COLUMNS} FROM {s}.users WHERE id = $1 FOR UPDATE"))
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut user = user_from_row(&row)?;
        let changed = change(&mut user.roles);
        if changed {
            let row = sqlx::query(self.sql(
                "UPDATE {s}.users SET roles = $2, token_version = token_version + 1, updated_at = $3
                 WHERE id = $1 RETURNING {USER_COLUMNS}",
            ))
            .bind(id.as_uuid())
            .bind(roles_vec(&user.roles))
            .bind(at)
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
            user = user_from_row(&row)?;
        }
        self.commit_recorded(tx, pending, changed).await?;
        Ok(Some(user))
    }

    /// Replaces the account's recovery codes (used or not) with `codes`, inside the
    /// caller's transaction: one delete, one insert of them all. A hash given twice is
    /// stored once.
    /// Sets the account's `requires_second_factor` and `updated_at`, inside the caller's
    /// transaction: the account as it is now, or `None` if there is none.
    async fn set_requires_second_factor(
        &self,
        tx: &mut sqlx::PgConnection,
        user: UserId,
        required: bool,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(self.sql(
            "UPDATE {s}.users SET requires_second_factor = $3, updated_at = $2
             WHERE id = $1 RETURNING {USER_COLUMNS}",
        ))
        .bind(user.as_uuid())
        .bind(at)
        .bind(required)
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn replace_codes(
        &self,
        tx: &mut sqlx::PgConnection,
        user: UserId,
        codes: &[TokenHash],
    ) -> Result<(), StoreError> {
        sqlx::query(self.sql("DELETE FROM {s}.recovery_codes WHERE user_id = $1"))
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let hashes: Vec<&[u8]> = codes.iter().map(|code| code.as_bytes().as_slice()).collect();
        sqlx::query(self.sql(
            "INSERT INTO {s}.recovery_codes (user_id, hash, used_at)
             SELECT $1, code, NULL FROM unnest($2::bytea[]) AS code
             ON CONFLICT (user_id, hash) DO NOTHING",
        ))
        .bind(user.as_uuid())
        .bind(hashes)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        Ok(())
    }
}

/// The connection a one-statement write runs on ([`PostgresStore::writer`]).
enum Writer {
    /// A pooled connection, each statement committed by itself.
    Direct(sqlx::pool::PoolConnection<sqlx::Postgres>),
    /// A transaction that also takes the write's audit records.
    Recording(sqlx::Transaction<'static, sqlx::Postgres>, PendingRecords),
}

impl std::ops::Deref for Writer {
    type Target = sqlx::PgConnection;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Direct(connection) => connection,
            Self::Recording(tx, _) => tx,
        }
    }
}

impl std::ops::DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            Self::Direct(connection) => connection,
            Self::Recording(tx, _) => tx,
        }
    }
}

enum UserQuery<'a> {
    Id(Uuid),
    Email(&'a str),
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool.size())
            .field("registration_hook", &self.on_registration.is_some())
            .finish_non_exhaustive()
    }
}

fn roles_vec(roles: &BTreeSet<Role>) -> Vec<String> {
    roles.iter().map(|role| role.as_str().to_owned()).collect()
}

fn user_from_row(row: &PgRow) -> Result<User, StoreError> {
    let email: String = row.try_get("email").map_err(store_error)?;
    let roles: Vec<String> = row.try_get("roles").map_err(store_error)?;
    Ok(User::existing(
        UserId::from_uuid(row.try_get("id").map_err(store_error)?),
        stored::email(&email)?,
        row.try_get("created_at").map_err(store_error)?,
    )
    .with_password_hash(
        row.try_get::<Option<String>, _>("password_hash")
            .map_err(store_error)?
            .map(HashedPassword::new),
    )
    .with_active(row.try_get("is_active").map_err(store_error)?)
    .with_email_verified_at(row.try_get("email_verified_at").map_err(store_error)?)
    .with_roles(stored::roles(roles.iter().map(String::as_str))?)
    .with_token_version(row.try_get("token_version").map_err(store_error)?)
    .with_updated_at(row.try_get("updated_at").map_err(store_error)?)
    .with_requires_second_factor(row.try_get("requires_second_factor").map_err(store_error)?))
}

/// The names a row gives a session's columns: [`SESSION_COLUMNS`]' own, or
/// [`JOINED_SESSION_COLUMNS`]' beside an account's.
struct SessionColumnNames {
    id: &'static str,
    user_id: &'static str,
    created_at: &'static str,
    expires_at: &'static str,
    last_used_at: &'static str,
    user_agent: &'static str,
    ip: &'static str,
    revoked_at: &'static str,
    auth_methods: &'static str,
    auth_time: &'static str,
}

const SESSION_NAMES: SessionColumnNames = SessionColumnNames {
    id: "id",
    user_id: "user_id",
    created_at: "created_at",
    expires_at: "expires_at",
    last_used_at: "last_used_at",
    user_agent: "user_agent",
    ip: "ip",
    revoked_at: "revoked_at",
    auth_methods: "auth_methods",
    auth_time: "auth_time",
};

/// [`SESSION_COLUMNS`] renamed so that they can stand beside [`USER_COLUMNS`] in one row.
const JOINED_SESSION_COLUMNS: &str = "s.id AS s_id, s.user_id AS s_user_id, s.created_at AS s_created_at, \
     s.last_used_at AS s_last_used_at, s.expires_at AS s_expires_at, s.user_agent AS s_user_agent, s.ip AS s_ip, \
     s.revoked_at AS s_revoked_at, s.auth_methods AS s_auth_methods, coalesce(s.auth_time, s.created_at) AS s_auth_time";

const JOINED_SESSION_NAMES: SessionColumnNames = SessionColumnNames {
    id: "s_id",
    user_id: "s_user_id",
    created_at: "s_created_at",
    expires_at: "s_expires_at",
    last_used_at: "s_last_used_at",
    user_agent: "s_user_agent",
    ip: "s_ip",
    revoked_at: "s_revoked_at",
    auth_methods: "s_auth_methods",
    auth_time: "s_auth_time",
};

fn session_from_row(row: &PgRow) -> Result<Session, StoreError> {
    session_from_named_row(row, &SESSION_NAMES)
}

fn session_from_named_row(row: &PgRow, names: &SessionColumnNames) -> Result<Session, StoreError> {
    let ip: Option<String> = row.try_get(names.ip).map_err(store_error)?;
    Ok(Session::new(
        SessionId::from_uuid(row.try_get(names.id).map_err(store_error)?),
        UserId::from_uuid(row.try_get(names.user_id).map_err(store_error)?),
        row.try_get(names.created_at).map_err(store_error)?,
        row.try_get(names.expires_at).map_err(store_error)?,
    )
    .with_last_used_at(row.try_get(names.last_used_at).map_err(store_error)?)
    .with_user_agent(row.try_get(names.user_agent).map_err(store_error)?)
    .with_ip(ip.as_deref().map(stored::ip).transpose()?)
    .with_revoked_at(row.try_get(names.revoked_at).map_err(store_error)?)
    .with_auth_methods(stored::auth_methods(
        &row.try_get::<String, _>(names.auth_methods).map_err(store_error)?,
    )?)
    .with_auth_time(row.try_get(names.auth_time).map_err(store_error)?))
}

fn one_time_token_from_row(row: &PgRow) -> Result<OneTimeToken, StoreError> {
    let purpose: String = row.try_get("purpose").map_err(store_error)?;
    let email: String = row.try_get("email").map_err(store_error)?;
    Ok(OneTimeToken::new(
        UserId::from_uuid(row.try_get("user_id").map_err(store_error)?),
        stored::purpose(&purpose)?,
        stored::email(&email)?,
        row.try_get("token_version").map_err(store_error)?,
        row.try_get("created_at").map_err(store_error)?,
        row.try_get("expires_at").map_err(store_error)?,
    ))
}

fn totp_factor_from_row(row: &PgRow) -> Result<TotpFactor, StoreError> {
    Ok(TotpFactor::new(
        UserId::from_uuid(row.try_get("user_id").map_err(store_error)?),
        row.try_get("sealed_secret").map_err(store_error)?,
        row.try_get("created_at").map_err(store_error)?,
    )
    .with_confirmed_at(row.try_get("confirmed_at").map_err(store_error)?)
    .with_last_used_step(row.try_get("last_used_step").map_err(store_error)?))
}

fn login_challenge_from_row(row: &PgRow) -> Result<LoginChallenge, StoreError> {
    let ip: Option<String> = row.try_get("ip").map_err(store_error)?;
    let first_factor: String = row.try_get("first_factor").map_err(store_error)?;
    let first_factor = AuthMethod::new(first_factor.as_str())
        .map_err(|_| StoreError::Corrupt(format!("invalid login challenge first factor {first_factor:?}")))?;
    Ok(LoginChallenge::new(
        UserId::from_uuid(row.try_get("user_id").map_err(store_error)?),
        row.try_get("created_at").map_err(store_error)?,
        row.try_get("expires_at").map_err(store_error)?,
        row.try_get("token_version").map_err(store_error)?,
    )
    .with_attempts(attempts_from_row(row)?)
    .with_user_agent(row.try_get("user_agent").map_err(store_error)?)
    .with_ip(ip.as_deref().map(stored::ip).transpose()?)
    .with_first_factor(first_factor))
}

/// A stored provider name.
fn provider_from_row(row: &PgRow) -> Result<ProviderName, StoreError> {
    let provider: String = row.try_get("provider").map_err(store_error)?;
    ProviderName::new(provider.as_str()).map_err(|_| StoreError::Corrupt(format!("invalid provider name {provider:?}")))
}

fn passkey_from_row(row: &PgRow) -> Result<PasskeyCredential, StoreError> {
    let counter: i64 = row.try_get("counter").map_err(store_error)?;
    let counter = u32::try_from(counter).map_err(|_| StoreError::Corrupt(format!("a sign counter of {counter}")))?;
    Ok(PasskeyCredential::new(
        UserId::from_uuid(row.try_get("user_id").map_err(store_error)?),
        row.try_get("credential_id").map_err(store_error)?,
        row.try_get("credential").map_err(store_error)?,
        counter,
        row.try_get::<String, _>("name").map_err(store_error)?,
        row.try_get("created_at").map_err(store_error)?,
    )
    .with_id(PasskeyId::from_uuid(row.try_get("id").map_err(store_error)?))
    .with_last_used_at(row.try_get("last_used_at").map_err(store_error)?))
}

fn passkey_ceremony_from_row(row: &PgRow) -> Result<PasskeyCeremony, StoreError> {
    let kind: String = row.try_get("kind").map_err(store_error)?;
    let kind = PasskeyCeremonyKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("a passkey ceremony of kind {kind:?}")))?;
    Ok(PasskeyCeremony::new(
        kind,
        row.try_get::<Option<Uuid>, _>("user_id")
            .map_err(store_error)?
            .map(UserId::from_uuid),
        row.try_get("state").map_err(store_error)?,
        row.try_get("created_at").map_err(store_error)?,
        row.try_get("expires_at").map_err(store_error)?,
    ))
}

fn identity_from_row(row: &PgRow) -> Result<LinkedIdentity, StoreError> {
    let mut identity = ExternalIdentity::new(
        provider_from_row(row)?,
        row.try_get::<String, _>("subject").map_err(store_error)?,
    );
    if let Some(email) = row.try_get::<Option<String>, _>("email").map_err(store_error)? {
        // Whether the provider verified it is not kept: a linked identity has no use for it.
        identity = identity.with_email(email, false);
    }
    Ok(LinkedIdentity::new(
        UserId::from_uuid(row.try_get("user_id").map_err(store_error)?),
        &identity,
        row.try_get("created_at").map_err(store_error)?,
    )
    .with_id(IdentityId::from_uuid(row.try_get("id").map_err(store_error)?))
    .with_last_used_at(row.try_get("last_used_at").map_err(store_error)?))
}

/// How a purpose is stored: its name, and a link's account and session.
fn purpose_columns(purpose: &ExternalLoginPurpose) -> Result<(&'static str, Option<Uuid>, Option<Uuid>), StoreError> {
    match purpose {
        ExternalLoginPurpose::SignIn => Ok(("sign_in", None, None)),
        ExternalLoginPurpose::Link { user_id, session_id } => {
            Ok(("link", Some(*user_id.as_uuid()), Some(*session_id.as_uuid())))
        }
        // The enum is non-exhaustive: a purpose a later auth-core adds has no column here
        // yet, and is refused rather than stored as another.
        other => Err(StoreError::backend(format!(
            "this store cannot keep the external login purpose {other:?}"
        ))),
    }
}

fn login_state_from_row(row: &PgRow) -> Result<ExternalLoginState, StoreError> {
    let purpose: String = row.try_get("purpose").map_err(store_error)?;
    let user_id: Option<Uuid> = row.try_get("user_id").map_err(store_error)?;
    let session_id: Option<Uuid> = row.try_get("session_id").map_err(store_error)?;
    let purpose = match (purpose.as_str(), user_id, session_id) {
        ("sign_in", None, None) => ExternalLoginPurpose::SignIn,
        ("link", Some(user_id), Some(session_id)) => ExternalLoginPurpose::Link {
            user_id: UserId::from_uuid(user_id),
            session_id: SessionId::from_uuid(session_id),
        },
        (purpose, ..) => {
            return Err(StoreError::Corrupt(format!(
                "invalid external login purpose {purpose:?}"
            )));
        }
    };
    let binding: Vec<u8> = row.try_get("binding_hash").map_err(store_error)?;
    let binding = <[u8; 32]>::try_from(binding.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("a stored hash has {} bytes, not 32", binding.len())))?;
    let next: String = row.try_get("next").map_err(store_error)?;
    let next = ReturnPath::parse(&next)
        .map_err(|_| StoreError::Corrupt(format!("invalid external login return path {next:?}")))?;
    let challenge: Option<Vec<u8>> = row.try_get("exchange_challenge").map_err(store_error)?;
    let challenge = challenge
        .map(|digest| {
            <[u8; 32]>::try_from(digest.as_slice())
                .map(CodeChallenge::from_bytes)
                .map_err(|_| StoreError::Corrupt(format!("a stored challenge has {} bytes, not 32", digest.len())))
        })
        .transpose()?;
    Ok(ExternalLoginState::new(
        TokenHash::from_bytes(binding),
        provider_from_row(row)?,
        purpose,
        next,
        row.try_get("created_at").map_err(store_error)?,
        row.try_get("expires_at").map_err(store_error)?,
    )
    .with_exchange_challenge(challenge))
}

fn login_code_from_row(row: &PgRow) -> Result<ExternalLoginCode, StoreError> {
    let binding: Vec<u8> = row.try_get("binding_hash").map_err(store_error)?;
    let binding = <[u8; 32]>::try_from(binding.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("a stored hash has {} bytes, not 32", binding.len())))?;
    Ok(ExternalLoginCode::new(
        UserId::from_uuid(row.try_get("user_id").map_err(store_error)?),
        IdentityId::from_uuid(row.try_get("identity_id").map_err(store_error)?),
        TokenHash::from_bytes(binding),
        row.try_get("token_version").map_err(store_error)?,
        row.try_get("created_at").map_err(store_error)?,
        row.try_get("expires_at").map_err(store_error)?,
    ))
}

/// A login challenge's count of codes presented (`integer`, never negative by its check).
fn attempts_from_row(row: &PgRow) -> Result<u32, StoreError> {
    let attempts: i32 = row.try_get("attempts").map_err(store_error)?;
    u32::try_from(attempts)
        .map_err(|_| StoreError::Corrupt(format!("login challenge attempts out of range: {attempts}")))
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let Some(hook) = &self.on_registration else {
            let mut writer = self.writer().await?;
            self.insert_user_on(&mut *writer, user).await?;
            return self.finish(writer, true).await;
        };
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        self.insert_user_on(&mut *tx, user).await?;
        hook(&mut tx, user).await.map_err(StoreError::Backend)?;
        self.commit_recorded(tx, pending, true).await
    }

    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = self.sql("SELECT {USER_COLUMNS} FROM {s}.users WHERE id = $1");
        self.fetch_user(sql, UserQuery::Id(*id.as_uuid())).await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let sql = self.sql("SELECT {USER_COLUMNS} FROM {s}.users WHERE email = $1");
        self.fetch_user(sql, UserQuery::Email(email.as_str())).await
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        current: &HashedPassword,
        upgraded: &HashedPassword,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // Read committed re-checks the condition on the newest row version after waiting
        // for a concurrent writer: of racing upgrades, exactly one applies.
        let done = sqlx::query(
            self.sql("UPDATE {s}.users SET password_hash = $3, updated_at = $4 WHERE id = $1 AND password_hash = $2"),
        )
        .bind(id.as_uuid())
        .bind(current.as_str())
        .bind(upgraded.as_str())
        .bind(at)
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &HashedPassword,
        if_token_version: i64,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let mut writer = self.writer().await?;
        let row = sqlx::query(self.sql(
            "UPDATE {s}.users SET password_hash = $2, token_version = token_version + 1, updated_at = $4
             WHERE id = $1 AND token_version = $3 RETURNING {USER_COLUMNS}",
        ))
        .bind(id.as_uuid())
        .bind(hash.as_str())
        .bind(if_token_version)
        .bind(at)
        .fetch_optional(&mut *writer)
        .await
        .map_err(store_error)?;
        let user = row.as_ref().map(user_from_row).transpose()?;
        self.finish(writer, user.is_some()).await?;
        Ok(user)
    }

    async fn set_active(&self, id: UserId, active: bool, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let mut writer = self.writer().await?;
        let row = sqlx::query(self.sql(
            "UPDATE {s}.users
             SET is_active = $2, token_version = token_version + (CASE WHEN $2 THEN 0 ELSE 1 END), updated_at = $3
             WHERE id = $1 RETURNING {USER_COLUMNS}",
        ))
        .bind(id.as_uuid())
        .bind(active)
        .bind(at)
        .fetch_optional(&mut *writer)
        .await
        .map_err(store_error)?;
        let user = row.as_ref().map(user_from_row).transpose()?;
        self.finish(writer, user.is_some()).await?;
        Ok(user)
    }

    async fn revoke_access_tokens(&self, id: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let mut writer = self.writer().await?;
        let row = sqlx::query(self.sql(
            "UPDATE {s}.users SET token_version = token_version + 1, updated_at = $2
             WHERE id = $1 RETURNING {USER_COLUMNS}",
        ))
        .bind(id.as_uuid())
        .bind(at)
        .fetch_optional(&mut *writer)
        .await
        .map_err(store_error)?;
        let user = row.as_ref().map(user_from_row).transpose()?;
        self.finish(writer, user.is_some()).await?;
        Ok(user)
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let mut writer = self.writer().await?;
        let row = sqlx::query(self.sql(
            "UPDATE {s}.users SET email_verified_at = coalesce(email_verified_at, $3), updated_at = $3
             WHERE id = $1 AND email = $2 RETURNING {USER_COLUMNS}",
        ))
        .bind(id.as_uuid())
        .bind(email.as_str())
        .bind(at)
        .fetch_optional(&mut *writer)
        .await
        .map_err(store_error)?;
        let user = row.as_ref().map(user_from_row).transpose()?;
        self.finish(writer, user.is_some()).await?;
        Ok(user)
    }

    /// `true` while the store's outage watch sees the database down, and once the pool is
    /// closed: every call would fail with [`StoreError::Unavailable`] then.
    async fn known_unavailable(&self) -> bool {
        self.outage.is_down() || self.pool.is_closed()
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn insert_session(&self, session: &Session, refresh_token: &TokenHash) -> Result<(), StoreError> {
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        sqlx::query(self.sql(
            "INSERT INTO {s}.sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip, revoked_at,
                                       auth_methods, auth_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ))
        .bind(session.id.as_uuid())
        .bind(session.user_id.as_uuid())
        .bind(session.created_at)
        .bind(session.last_used_at)
        .bind(session.expires_at)
        .bind(session.user_agent.as_deref())
        .bind(session.ip.map(|ip| ip.to_string()))
        .bind(session.revoked_at)
        .bind(session.auth_methods.to_string())
        .bind(session.auth_time)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        sqlx::query(self.sql("INSERT INTO {s}.refresh_tokens (hash, session_id, used_at) VALUES ($1, $2, NULL)"))
            .bind(refresh_token.as_bytes().as_slice())
            .bind(session.id.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        self.commit_recorded(tx, pending, true).await
    }

    async fn find_refresh_token(&self, refresh_token: &TokenHash) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT {SESSION_COLUMNS}, r.used_at AS token_used_at FROM {s}.refresh_tokens r
             JOIN {s}.sessions s ON s.id = r.session_id WHERE r.hash = $1",
        ))
        .bind(refresh_token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        row.map(|row| {
            Ok(RefreshTokenRecord::new(
                session_from_row(&row)?,
                row.try_get("token_used_at").map_err(store_error)?,
            ))
        })
        .transpose()
    }

    async fn rotate_refresh_token(
        &self,
        session: SessionId,
        presented: &TokenHash,
        replacement: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        // The session row's lock orders this rotation against a concurrent revocation
        // (which updates that row): either the revocation sees the rotation done, or the
        // rotation sees the session revoked; never a new token for a revoked session.
        let live = sqlx::query(self.sql("SELECT 1 FROM {s}.sessions WHERE id = $1 AND revoked_at IS NULL FOR UPDATE"))
            .bind(session.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
        if live.is_none() {
            return Ok(false);
        }
        let spent =
            sqlx::query(self.sql(
                "UPDATE {s}.refresh_tokens SET used_at = $3 WHERE hash = $1 AND session_id = $2 AND used_at IS NULL",
            ))
            .bind(presented.as_bytes().as_slice())
            .bind(session.as_uuid())
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if spent.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(self.sql("INSERT INTO {s}.refresh_tokens (hash, session_id, used_at) VALUES ($1, $2, NULL)"))
            .bind(replacement.as_bytes().as_slice())
            .bind(session.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query(self.sql("UPDATE {s}.sessions SET last_used_at = $2 WHERE id = $1"))
            .bind(session.as_uuid())
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let kept = self.keep_pending(&mut tx, pending, true).await?;
        match tx.commit().await.map_err(store_error) {
            Ok(()) => {
                if let Some(kept) = kept {
                    kept.written();
                }
                Ok(true)
            }
            // The connection died around the COMMIT: it may have happened. Answering
            // `unavailable` after a commit would make the client retry its old token, which
            // then reads as reuse and ends the session; so look, once.
            Err(error @ StoreError::Unavailable(_)) => {
                let committed = sqlx::query(self.sql("SELECT 1 FROM {s}.refresh_tokens WHERE hash = $1"))
                    .bind(replacement.as_bytes().as_slice())
                    .fetch_optional(&self.pool)
                    .guarded(self)
                    .await;
                match committed {
                    Ok(Some(_)) => {
                        if let Some(kept) = kept {
                            kept.written();
                        }
                        Ok(true)
                    }
                    _ => Err(error),
                }
            }
            Err(error) => Err(error),
        }
    }

    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT {SESSION_COLUMNS} FROM {s}.sessions s
             WHERE s.user_id = $1 AND s.revoked_at IS NULL ORDER BY s.created_at, s.id",
        ))
        .bind(user.as_uuid())
        .fetch_all(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn find_session(&self, session: SessionId) -> Result<Option<Session>, StoreError> {
        let sql = self.sql("SELECT {SESSION_COLUMNS} FROM {s}.sessions s WHERE s.id = $1");
        let row = self
            .read(|conn| {
                Box::pin(
                    sqlx::query(AssertSqlSafe(sql.0.as_str()))
                        .bind(*session.as_uuid())
                        .fetch_optional(conn),
                )
            })
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// One statement: each side a lateral lookup by primary key, joined to a one-row
    /// relation so that the answer is one row whichever of the two exists.
    async fn find_user_and_session(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<Option<(Option<User>, Option<Session>)>, StoreError> {
        let sql = self.sql(
            "SELECT u.*, s.* FROM (SELECT 1) AS one
             LEFT JOIN LATERAL (SELECT {USER_COLUMNS} FROM {s}.users WHERE id = $1) AS u ON true
             LEFT JOIN LATERAL (SELECT {JOINED_SESSION_COLUMNS} FROM {s}.sessions s WHERE s.id = $2) AS s ON true",
        );
        let row = self
            .read(|conn| {
                Box::pin(
                    sqlx::query(AssertSqlSafe(sql.0.as_str()))
                        .bind(*user.as_uuid())
                        .bind(*session.as_uuid())
                        .fetch_one(conn),
                )
            })
            .await?;
        let user = match row.try_get::<Option<Uuid>, _>("id").map_err(store_error)? {
            Some(_) => Some(user_from_row(&row)?),
            None => None,
        };
        let session = match row.try_get::<Option<Uuid>, _>("s_id").map_err(store_error)? {
            Some(_) => Some(session_from_named_row(&row, &JOINED_SESSION_NAMES)?),
            None => None,
        };
        Ok(Some((user, session)))
    }

    async fn revoke_session(&self, user: UserId, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        let mut writer = self.writer().await?;
        let done = sqlx::query(
            self.sql("UPDATE {s}.sessions SET revoked_at = $3 WHERE id = $2 AND user_id = $1 AND revoked_at IS NULL"),
        )
        .bind(user.as_uuid())
        .bind(session.as_uuid())
        .bind(at)
        .execute(&mut *writer)
        .await
        .map_err(store_error)?;
        let revoked = done.rows_affected() == 1;
        self.finish(writer, revoked).await?;
        Ok(revoked)
    }

    async fn revoke_all_sessions(&self, user: UserId, at: OffsetDateTime) -> Result<u64, StoreError> {
        let done =
            sqlx::query(self.sql("UPDATE {s}.sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL"))
                .bind(user.as_uuid())
                .bind(at)
                .execute(&self.pool)
                .guarded(self)
                .await
                .map_err(store_error)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl OneTimeTokenStore for PostgresStore {
    async fn insert_one_time_token(&self, hash: &TokenHash, token: &OneTimeToken) -> Result<(), StoreError> {
        // One statement on the partial unique index of unused tokens: concurrent issues for
        // one account and purpose leave exactly one live token (a delete-then-insert would
        // not, under read committed).
        let mut writer = self.writer().await?;
        let done = sqlx::query(self.sql(
            "INSERT INTO {s}.one_time_tokens
                 (hash, user_id, purpose, email, token_version, created_at, expires_at, used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
             ON CONFLICT (user_id, purpose) WHERE used_at IS NULL DO UPDATE
             SET hash = EXCLUDED.hash, email = EXCLUDED.email, token_version = EXCLUDED.token_version,
                 created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
             WHERE one_time_tokens.hash <> EXCLUDED.hash",
        ))
        .bind(hash.as_bytes().as_slice())
        .bind(token.user_id.as_uuid())
        .bind(token.purpose.as_str())
        .bind(token.email.as_str())
        .bind(token.token_version)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&mut *writer)
        .await
        .map_err(store_error)?;
        // Nothing written: the unused token of this account and purpose has this very hash
        // (a hash elsewhere is a primary-key violation, an error already).
        if done.rows_affected() == 0 {
            return Err(StoreError::backend("duplicate one-time token hash"));
        }
        self.finish(writer, true).await
    }

    async fn find_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT {ONE_TIME_COLUMNS} FROM {s}.one_time_tokens WHERE hash = $1 AND purpose = $2 AND used_at IS NULL",
        ))
        .bind(hash.as_bytes().as_slice())
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        row.as_ref().map(one_time_token_from_row).transpose()
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        at: OffsetDateTime,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        let row = sqlx::query(self.sql(
            "UPDATE {s}.one_time_tokens SET used_at = $3
             WHERE hash = $1 AND purpose = $2 AND used_at IS NULL RETURNING {ONE_TIME_COLUMNS}",
        ))
        .bind(hash.as_bytes().as_slice())
        .bind(purpose.as_str())
        .bind(at)
        .fetch_optional(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        row.as_ref().map(one_time_token_from_row).transpose()
    }
}

#[async_trait]
impl UserDirectory for PostgresStore {
    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(
            self.sql("SELECT {USER_COLUMNS} FROM {s}.users WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2"),
        )
        .bind(after.map(|id| *id.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn search_users(
        &self,
        email_prefix: &str,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        // `starts_with` compares exactly: LIKE would read `_` and `%` as wildcards.
        let rows = sqlx::query(self.sql(
            "SELECT {USER_COLUMNS} FROM {s}.users
             WHERE starts_with(email, $1) AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
        ))
        .bind(email_prefix)
        .bind(after.map(|id| *id.as_uuid()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        rows.iter().map(user_from_row).collect()
    }
}

#[async_trait]
impl RoleStore for PostgresStore {
    async fn set_roles(
        &self,
        id: UserId,
        roles: &BTreeSet<Role>,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        self.change_roles(id, at, |held| {
            held.clone_from(roles);
            true
        })
        .await
    }

    async fn grant_role(
        &self,
        id: UserId,
        role: &Role,
        max_roles: usize,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        self.change_roles(id, at, |roles| role.grant_within(roles, max_roles))
            .await
    }

    async fn revoke_role(&self, id: UserId, role: &Role, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        self.change_roles(id, at, |roles| roles.remove(role)).await
    }
}

#[async_trait]
impl BrowserSessionStore for PostgresStore {
    async fn insert_browser_session(
        &self,
        token: &TokenHash,
        session: SessionId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(self.sql("INSERT INTO {s}.browser_sessions (hash, session_id, created_at) VALUES ($1, $2, $3)"))
            .bind(token.as_bytes().as_slice())
            .bind(session.as_uuid())
            .bind(at)
            .execute(&self.pool)
            .guarded(self)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn find_browser_session(&self, token: &TokenHash) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(self.sql(
            "SELECT {SESSION_COLUMNS} FROM {s}.browser_sessions b
             JOIN {s}.sessions s ON s.id = b.session_id WHERE b.hash = $1",
        ))
        .bind(token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn delete_browser_session(&self, token: &TokenHash) -> Result<(), StoreError> {
        sqlx::query(self.sql("DELETE FROM {s}.browser_sessions WHERE hash = $1"))
            .bind(token.as_bytes().as_slice())
            .execute(&self.pool)
            .guarded(self)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn touch_session(&self, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query(self.sql(
            "UPDATE {s}.sessions SET last_used_at = $2 WHERE id = $1 AND revoked_at IS NULL AND last_used_at < $2",
        ))
        .bind(session.as_uuid())
        .bind(at)
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl SecondFactorStore for PostgresStore {
    async fn insert_totp_factor(&self, factor: &TotpFactor) -> Result<bool, StoreError> {
        // One statement: a pending factor is replaced, a confirmed one is not (the upsert's
        // condition, re-checked on the latest row version under read committed), and an
        // unknown account is the foreign key's error.
        let mut writer = self.writer().await?;
        let done = sqlx::query(self.sql(
            "INSERT INTO {s}.totp_factors (user_id, sealed_secret, created_at, confirmed_at, last_used_step)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_id) DO UPDATE
             SET sealed_secret = EXCLUDED.sealed_secret, created_at = EXCLUDED.created_at,
                 confirmed_at = EXCLUDED.confirmed_at, last_used_step = EXCLUDED.last_used_step
             WHERE totp_factors.confirmed_at IS NULL",
        ))
        .bind(factor.user_id.as_uuid())
        .bind(factor.sealed_secret.as_str())
        .bind(factor.created_at)
        .bind(factor.confirmed_at)
        .bind(factor.last_used_step)
        .execute(&mut *writer)
        .await
        .map_err(store_error)?;
        let written = done.rows_affected() == 1;
        self.finish(writer, written).await?;
        Ok(written)
    }

    async fn find_totp_factor(&self, user: UserId) -> Result<Option<TotpFactor>, StoreError> {
        let row = sqlx::query(self.sql("SELECT {TOTP_FACTOR_COLUMNS} FROM {s}.totp_factors WHERE user_id = $1"))
            .bind(user.as_uuid())
            .fetch_optional(&self.pool)
            .guarded(self)
            .await
            .map_err(store_error)?;
        row.as_ref().map(totp_factor_from_row).transpose()
    }

    async fn confirm_totp_factor(
        &self,
        user: UserId,
        sealed_secret: &str,
        step: i64,
        recovery_codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        // One transaction: the factor, its codes and the account's flag change together or
        // not at all (dropped uncommitted, it rolls back). The conditional update locks the
        // factor's row: of concurrent confirmations, one finds it pending.
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        let confirmed = sqlx::query(self.sql(
            "UPDATE {s}.totp_factors SET confirmed_at = $3, last_used_step = $4
             WHERE user_id = $1 AND sealed_secret = $2 AND confirmed_at IS NULL",
        ))
        .bind(user.as_uuid())
        .bind(sealed_secret)
        .bind(at)
        .bind(step)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if confirmed.rows_affected() == 0 {
            return Ok(None);
        }
        self.replace_codes(&mut tx, user, recovery_codes).await?;
        let updated = self.set_requires_second_factor(&mut tx, user, true, at).await?;
        self.commit_recorded(tx, pending, true).await?;
        Ok(updated)
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        // Read committed re-checks the condition on the newest row version after waiting
        // for a concurrent writer: of racing uses of one step, exactly one applies.
        let done = sqlx::query(self.sql(
            "UPDATE {s}.totp_factors SET last_used_step = $2
             WHERE user_id = $1 AND confirmed_at IS NOT NULL AND (last_used_step IS NULL OR last_used_step < $2)",
        ))
        .bind(user.as_uuid())
        .bind(step)
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn reseal_totp_factor(&self, user: UserId, current: &str, resealed: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            self.sql("UPDATE {s}.totp_factors SET sealed_secret = $3 WHERE user_id = $1 AND sealed_secret = $2"),
        )
        .bind(user.as_uuid())
        .bind(current)
        .bind(resealed)
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_totp_factor(&self, user: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        let deleted = sqlx::query(self.sql("DELETE FROM {s}.totp_factors WHERE user_id = $1"))
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if deleted.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query(self.sql("DELETE FROM {s}.recovery_codes WHERE user_id = $1"))
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        let updated = self.set_requires_second_factor(&mut tx, user, false, at).await?;
        self.commit_recorded(tx, pending, true).await?;
        Ok(updated)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        recovery_codes: &[TokenHash],
        _at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        // The confirmed factor's row lock, held to the commit, orders this replacement
        // against a concurrent removal of the factor (which deletes that row): either the
        // removal deletes the new codes too, or this finds no factor; never codes without
        // a factor.
        let confirmed = sqlx::query(
            self.sql("SELECT 1 FROM {s}.totp_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL FOR UPDATE"),
        )
        .bind(user.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        if confirmed.is_none() {
            return Ok(false);
        }
        self.replace_codes(&mut tx, user, recovery_codes).await?;
        self.commit_recorded(tx, pending, true).await?;
        Ok(true)
    }

    async fn use_recovery_code(&self, user: UserId, code: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query(
            self.sql("UPDATE {s}.recovery_codes SET used_at = $3 WHERE user_id = $1 AND hash = $2 AND used_at IS NULL"),
        )
        .bind(user.as_uuid())
        .bind(code.as_bytes().as_slice())
        .bind(at)
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn count_recovery_codes(&self, user: UserId) -> Result<u32, StoreError> {
        let unused: i64 = sqlx::query_scalar(
            self.sql("SELECT count(*) FROM {s}.recovery_codes WHERE user_id = $1 AND used_at IS NULL"),
        )
        .bind(user.as_uuid())
        .fetch_one(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(u32::try_from(unused).unwrap_or(u32::MAX))
    }

    async fn insert_login_challenge(&self, hash: &TokenHash, challenge: &LoginChallenge) -> Result<(), StoreError> {
        let attempts = i32::try_from(challenge.attempts).map_err(|_| {
            StoreError::backend(format!("login challenge attempts out of range: {}", challenge.attempts))
        })?;
        // One statement on the unique user_id: concurrent challenges of one account leave
        // exactly one (a delete-then-insert would not, under read committed). A hash held
        // by another account's challenge is the primary key's error, an unknown account
        // the foreign key's.
        let done = sqlx::query(self.sql(
            "INSERT INTO {s}.login_challenges
                 (hash, user_id, created_at, expires_at, attempts, token_version, user_agent, ip, first_factor)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (user_id) DO UPDATE
             SET hash = EXCLUDED.hash, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at,
                 attempts = EXCLUDED.attempts, token_version = EXCLUDED.token_version,
                 user_agent = EXCLUDED.user_agent, ip = EXCLUDED.ip, first_factor = EXCLUDED.first_factor
             WHERE login_challenges.hash <> EXCLUDED.hash",
        ))
        .bind(hash.as_bytes().as_slice())
        .bind(challenge.user_id.as_uuid())
        .bind(challenge.created_at)
        .bind(challenge.expires_at)
        .bind(attempts)
        .bind(challenge.token_version)
        .bind(challenge.user_agent.as_deref())
        .bind(challenge.ip.map(|ip| ip.to_string()))
        .bind(challenge.first_factor.as_str())
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        // Nothing written: the account's challenge has this very hash already.
        if done.rows_affected() == 0 {
            return Err(StoreError::backend("duplicate login challenge hash"));
        }
        Ok(())
    }

    async fn find_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError> {
        let row = sqlx::query(self.sql("SELECT {LOGIN_CHALLENGE_COLUMNS} FROM {s}.login_challenges WHERE hash = $1"))
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .guarded(self)
            .await
            .map_err(store_error)?;
        row.as_ref().map(login_challenge_from_row).transpose()
    }

    async fn record_login_challenge_attempt(&self, hash: &TokenHash) -> Result<Option<u32>, StoreError> {
        // The increment happens on the latest row version: concurrent attempts each count.
        let row = sqlx::query(
            self.sql("UPDATE {s}.login_challenges SET attempts = attempts + 1 WHERE hash = $1 RETURNING attempts"),
        )
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        row.as_ref().map(attempts_from_row).transpose()
    }

    async fn take_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError> {
        // One statement: of concurrent takers, exactly one gets the row.
        let row = sqlx::query(
            self.sql("DELETE FROM {s}.login_challenges WHERE hash = $1 RETURNING {LOGIN_CHALLENGE_COLUMNS}"),
        )
        .bind(hash.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        row.as_ref().map(login_challenge_from_row).transpose()
    }
}

#[async_trait]
impl IdentityStore for PostgresStore {
    async fn insert_user_with_identity(&self, user: &User, identity: &LinkedIdentity) -> Result<(), StoreError> {
        // One transaction: the account and its identity (and the application's rows, by
        // its hook) are written together or not at all; an error drops it uncommitted.
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        // The identity goes in first, its reference to the account checked at the commit
        // (the constraint is deferrable, immediate elsewhere): when the identity and the
        // email are both taken, as for two first sign-ins of one identity, which carry one
        // email, the conflict told is the identity's (the later one waits on the unique
        // index for the earlier one's outcome), and the service signs the loser in to the
        // account the winner created.
        sqlx::query(self.sql("SET CONSTRAINTS {s}.identities_user_id_fkey DEFERRED"))
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        self.insert_identity_on(&mut *tx, identity).await?;
        self.insert_user_on(&mut *tx, user).await?;
        if let Some(hook) = &self.on_registration {
            hook(&mut tx, user).await.map_err(StoreError::Backend)?;
        }
        self.commit_recorded(tx, pending, true).await
    }

    async fn insert_identity(&self, identity: &LinkedIdentity) -> Result<(), StoreError> {
        // An unknown account is the foreign key's error (immediate here).
        let mut writer = self.writer().await?;
        self.insert_identity_on(&mut *writer, identity).await?;
        self.finish(writer, true).await
    }

    async fn find_identity(
        &self,
        provider: &ProviderName,
        subject: &str,
    ) -> Result<Option<LinkedIdentity>, StoreError> {
        let row =
            sqlx::query(self.sql("SELECT {IDENTITY_COLUMNS} FROM {s}.identities WHERE provider = $1 AND subject = $2"))
                .bind(provider.as_str())
                .bind(subject)
                .fetch_optional(&self.pool)
                .guarded(self)
                .await
                .map_err(store_error)?;
        row.as_ref().map(identity_from_row).transpose()
    }

    async fn list_identities(&self, user: UserId) -> Result<Vec<LinkedIdentity>, StoreError> {
        let rows = sqlx::query(
            self.sql("SELECT {IDENTITY_COLUMNS} FROM {s}.identities WHERE user_id = $1 ORDER BY created_at, id"),
        )
        .bind(user.as_uuid())
        .fetch_all(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        rows.iter().map(identity_from_row).collect()
    }

    async fn record_identity_use(&self, id: IdentityId, at: OffsetDateTime) -> Result<bool, StoreError> {
        let done = sqlx::query(self.sql("UPDATE {s}.identities SET last_used_at = $2 WHERE id = $1"))
            .bind(id.as_uuid())
            .bind(at)
            .execute(&self.pool)
            .guarded(self)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_identity(&self, user: UserId, id: IdentityId) -> Result<IdentityRemoval, StoreError> {
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        // The account's row lock, held to the commit, queues the deletions of one
        // account's identities: each decides on what the previous one left (read
        // committed reads it afresh after the wait), so of two concurrent deletions of
        // the last two identities one is refused. Without the lock both would see the
        // other identity still there and both delete.
        let account = sqlx::query(
            self.sql("SELECT password_hash IS NOT NULL AS has_password FROM {s}.users WHERE id = $1 FOR UPDATE"),
        )
        .bind(user.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(account) = account else {
            return Ok(IdentityRemoval::NotFound);
        };
        let has_password: bool = account.try_get("has_password").map_err(store_error)?;
        let counts = sqlx::query(self.sql(
            "SELECT count(*) FILTER (WHERE id = $2) AS this_one, count(*) AS all_of_them
             FROM {s}.identities WHERE user_id = $1",
        ))
        .bind(user.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let this_one: i64 = counts.try_get("this_one").map_err(store_error)?;
        let all_of_them: i64 = counts.try_get("all_of_them").map_err(store_error)?;
        if this_one == 0 {
            return Ok(IdentityRemoval::NotFound);
        }
        let passkeys: i64 = sqlx::query_scalar(self.sql("SELECT count(*) FROM {s}.passkeys WHERE user_id = $1"))
            .bind(user.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .map_err(store_error)?;
        if !has_password && all_of_them < 2 && passkeys == 0 {
            return Ok(IdentityRemoval::LastSignInMethod);
        }
        sqlx::query(self.sql("DELETE FROM {s}.identities WHERE id = $1 AND user_id = $2"))
            .bind(id.as_uuid())
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        self.commit_recorded(tx, pending, true).await?;
        Ok(IdentityRemoval::Removed)
    }

    async fn insert_login_state(&self, state: &TokenHash, record: &ExternalLoginState) -> Result<(), StoreError> {
        let (purpose, user_id, session_id) = purpose_columns(&record.purpose)?;
        // A hash already stored is the primary key's error.
        sqlx::query(self.sql(
            "INSERT INTO {s}.external_login_states
                 (hash, binding_hash, provider, purpose, user_id, session_id, next, created_at, expires_at,
                  exchange_challenge)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ))
        .bind(state.as_bytes().as_slice())
        .bind(record.binding.as_bytes().as_slice())
        .bind(record.provider.as_str())
        .bind(purpose)
        .bind(user_id)
        .bind(session_id)
        .bind(record.next.as_str())
        .bind(record.created_at)
        .bind(record.expires_at)
        .bind(
            record
                .exchange_challenge
                .as_ref()
                .map(|challenge| challenge.as_bytes().as_slice()),
        )
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn take_login_state(&self, state: &TokenHash) -> Result<Option<ExternalLoginState>, StoreError> {
        // One statement: of concurrent takers, exactly one gets the row.
        let row = sqlx::query(
            self.sql("DELETE FROM {s}.external_login_states WHERE hash = $1 RETURNING {LOGIN_STATE_COLUMNS}"),
        )
        .bind(state.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        row.as_ref().map(login_state_from_row).transpose()
    }

    async fn insert_login_code(&self, code: &TokenHash, record: &ExternalLoginCode) -> Result<(), StoreError> {
        // An unknown account or identity is a foreign key's error, a hash already stored
        // the primary key's.
        sqlx::query(self.sql(
            "INSERT INTO {s}.external_login_codes
                 (hash, user_id, identity_id, token_version, created_at, expires_at, binding_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ))
        .bind(code.as_bytes().as_slice())
        .bind(record.user_id.as_uuid())
        .bind(record.identity_id.as_uuid())
        .bind(record.token_version)
        .bind(record.created_at)
        .bind(record.expires_at)
        .bind(record.binding.as_bytes().as_slice())
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn take_login_code(&self, code: &TokenHash) -> Result<Option<ExternalLoginCode>, StoreError> {
        // One statement: of concurrent takers, exactly one gets the row.
        let row = sqlx::query(
            self.sql("DELETE FROM {s}.external_login_codes WHERE hash = $1 RETURNING {LOGIN_CODE_COLUMNS}"),
        )
        .bind(code.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        row.as_ref().map(login_code_from_row).transpose()
    }

    async fn delete_expired_logins(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        let mut deleted = 0;
        for table in [
            self.sql("DELETE FROM {s}.external_login_states WHERE expires_at < $1"),
            self.sql("DELETE FROM {s}.external_login_codes WHERE expires_at < $1"),
        ] {
            let done = sqlx::query(table)
                .bind(before)
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
            deleted += done.rows_affected();
        }
        tx.commit().await.map_err(store_error)?;
        Ok(deleted)
    }
}

#[async_trait]
impl PurgeStore for PostgresStore {
    async fn delete_ended_sessions(
        &self,
        ended_before: OffsetDateTime,
        idle_since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        // Inclusive boundaries, as `Session::is_live`; refresh tokens go by cascade.
        let done = sqlx::query(
            self.sql("DELETE FROM {s}.sessions WHERE revoked_at <= $1 OR expires_at <= $1 OR last_used_at <= $2"),
        )
        .bind(ended_before)
        .bind(idle_since)
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected())
    }

    async fn delete_spent_one_time_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(self.sql("DELETE FROM {s}.one_time_tokens WHERE used_at <= $1 OR expires_at <= $1"))
            .bind(before)
            .execute(&self.pool)
            .guarded(self)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected())
    }
}

const EMAIL_CHANGE_COLUMNS: &str =
    "user_id, old_email, new_email, session_id, token_version, requested_at, confirm_expires_at, undo_expires_at";

fn email_change_from_row(row: &PgRow) -> Result<EmailChange, StoreError> {
    let old_email: String = row.try_get("old_email").map_err(store_error)?;
    let new_email: String = row.try_get("new_email").map_err(store_error)?;
    let requested_at: OffsetDateTime = row.try_get("requested_at").map_err(store_error)?;
    let user = User::existing(
        UserId::from_uuid(row.try_get("user_id").map_err(store_error)?),
        stored::email(&old_email)?,
        requested_at,
    )
    .with_token_version(row.try_get("token_version").map_err(store_error)?);
    Ok(EmailChange::new(
        &user,
        stored::email(&new_email)?,
        row.try_get::<Option<Uuid>, _>("session_id")
            .map_err(store_error)?
            .map(SessionId::from_uuid),
        requested_at,
        row.try_get("confirm_expires_at").map_err(store_error)?,
        row.try_get("undo_expires_at").map_err(store_error)?,
    ))
}

impl PostgresStore {
    /// The change `locate` finds (its `user_id`; `$1` bound to `hash`, `$2` to `at` when
    /// given), read with `read` (the same conditions, its columns) after locking its
    /// account's row: every confirmation and undo of one account takes the account's lock
    /// first, so they queue and never deadlock on each other's change rows.
    async fn locked_email_change(
        &self,
        tx: &mut sqlx::PgConnection,
        (locate, read): (&'static str, &'static str),
        hash: &TokenHash,
        at: Option<OffsetDateTime>,
    ) -> Result<Option<EmailChange>, StoreError> {
        let mut query = sqlx::query_scalar(self.sql(locate)).bind(hash.as_bytes().as_slice());
        if let Some(at) = at {
            query = query.bind(at);
        }
        let user: Option<Uuid> = query.fetch_optional(&mut *tx).await.map_err(store_error)?;
        let Some(user) = user else {
            return Ok(None);
        };
        sqlx::query(self.sql("SELECT 1 FROM {s}.users WHERE id = $1 FOR UPDATE"))
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        // Read again under the lock: a racing confirmation or undo may have spent it.
        let mut query = sqlx::query(self.sql(read)).bind(hash.as_bytes().as_slice());
        if let Some(at) = at {
            query = query.bind(at);
        }
        let row = query.fetch_optional(&mut *tx).await.map_err(store_error)?;
        row.as_ref().map(email_change_from_row).transpose()
    }

    /// Sets the account's address, verified at `at`, and bumps its token version, in the
    /// caller's transaction; the email's unique constraint decides a conflict.
    async fn switch_email(
        &self,
        tx: &mut sqlx::PgConnection,
        user: UserId,
        email: &Email,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(self.sql(
            "UPDATE {s}.users SET email = $2, email_verified_at = $3, token_version = token_version + 1,
                                  updated_at = $3
             WHERE id = $1 RETURNING {USER_COLUMNS}",
        ))
        .bind(user.as_uuid())
        .bind(email.as_str())
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(error::insert_user_error)?;
        row.as_ref().map(user_from_row).transpose()
    }
}

#[async_trait]
impl EmailChangeStore for PostgresStore {
    async fn insert_email_change(
        &self,
        change: &EmailChange,
        confirm: &TokenHash,
        undo: &TokenHash,
    ) -> Result<(), StoreError> {
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        sqlx::query(self.sql("DELETE FROM {s}.email_changes WHERE user_id = $1 AND undo_expires_at <= $2"))
            .bind(change.user_id.as_uuid())
            .bind(change.requested_at)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        sqlx::query(self.sql(
            "INSERT INTO {s}.email_changes (confirm_hash, undo_hash, user_id, old_email, new_email, session_id,
                                            token_version, requested_at, confirm_expires_at, undo_expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ))
        .bind(confirm.as_bytes().as_slice())
        .bind(undo.as_bytes().as_slice())
        .bind(change.user_id.as_uuid())
        .bind(change.old_email.as_str())
        .bind(change.new_email.as_str())
        .bind(change.session_id.map(|id| *id.as_uuid()))
        .bind(change.token_version)
        .bind(change.requested_at)
        .bind(change.confirm_expires_at)
        .bind(change.undo_expires_at)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        self.commit_recorded(tx, pending, true).await
    }

    async fn confirm_email_change(
        &self,
        confirm: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Option<EmailConfirmation>, StoreError> {
        let mut pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        let change = self
            .locked_email_change(
                &mut tx,
                (
                    "SELECT user_id FROM {s}.email_changes
                     WHERE confirm_hash = $1 AND confirmed_at IS NULL AND undone_at IS NULL",
                    "SELECT {EMAIL_CHANGE_COLUMNS} FROM {s}.email_changes
                     WHERE confirm_hash = $1 AND confirmed_at IS NULL AND undone_at IS NULL",
                ),
                confirm,
                None,
            )
            .await?;
        let Some(change) = change else {
            return Ok(None);
        };
        if at >= change.confirm_expires_at {
            return Ok(Some(EmailConfirmation::Expired(change)));
        }
        let version: Option<i64> = sqlx::query_scalar(self.sql("SELECT token_version FROM {s}.users WHERE id = $1"))
            .bind(change.user_id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
        if version != Some(change.token_version) {
            return Ok(Some(EmailConfirmation::Stale(change)));
        }
        let Some(user) = self
            .switch_email(&mut tx, change.user_id, &change.new_email, at)
            .await?
        else {
            return Ok(Some(EmailConfirmation::Stale(change)));
        };
        sqlx::query(self.sql("UPDATE {s}.email_changes SET confirmed_at = $2 WHERE confirm_hash = $1"))
            .bind(confirm.as_bytes().as_slice())
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        if let Some(pending) = &mut pending {
            pending.about(user.id);
        }
        self.commit_recorded(tx, pending, true).await?;
        Ok(Some(EmailConfirmation::Switched { change, user }))
    }

    async fn undo_email_change(
        &self,
        undo: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Option<(EmailChange, User)>, StoreError> {
        let mut pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        let change = self
            .locked_email_change(
                &mut tx,
                (
                    "SELECT user_id FROM {s}.email_changes
                     WHERE undo_hash = $1 AND undone_at IS NULL AND undo_expires_at > $2",
                    "SELECT {EMAIL_CHANGE_COLUMNS} FROM {s}.email_changes
                     WHERE undo_hash = $1 AND undone_at IS NULL AND undo_expires_at > $2",
                ),
                undo,
                Some(at),
            )
            .await?;
        let Some(change) = change else {
            return Ok(None);
        };
        let Some(user) = self
            .switch_email(&mut tx, change.user_id, &change.old_email, at)
            .await?
        else {
            return Ok(None);
        };
        sqlx::query(self.sql(
            "UPDATE {s}.email_changes SET undone_at = $3
             WHERE user_id = $1 AND undone_at IS NULL
               AND seq >= (SELECT seq FROM {s}.email_changes WHERE undo_hash = $2)",
        ))
        .bind(change.user_id.as_uuid())
        .bind(undo.as_bytes().as_slice())
        .bind(at)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        if let Some(pending) = &mut pending {
            pending.about(user.id);
        }
        self.commit_recorded(tx, pending, true).await?;
        Ok(Some((change, user)))
    }
}

#[async_trait]
impl AccountDeletionStore for PostgresStore {
    async fn delete_user(&self, id: UserId, pseudonym: &EmailDigest) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        // Locked first: a racing deletion waits here, then finds nothing.
        let row = sqlx::query(self.sql("SELECT {USER_COLUMNS} FROM {s}.users WHERE id = $1 FOR UPDATE"))
            .bind(id.as_uuid())
            .fetch_optional(&mut *tx)
            .await
            .map_err(store_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let user = user_from_row(&row)?;
        // Sessions hold no foreign key to their account (an application may keep its
        // accounts elsewhere) and one-time tokens none either (decoys name no account):
        // deleted by hand. Refresh tokens and browser sessions go with their sessions,
        // everything else with the account (ON DELETE CASCADE).
        for sql in [
            "DELETE FROM {s}.sessions WHERE user_id = $1",
            "DELETE FROM {s}.one_time_tokens WHERE user_id = $1",
            "DELETE FROM {s}.users WHERE id = $1",
        ] {
            sqlx::query(self.sql(sql))
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
        }
        // Its audit records stay, naming it by the pseudonym only.
        sqlx::query(self.sql(
            "UPDATE {s}.audit_events SET user_id = NULL, email_digest = $2, user_agent = NULL, ip = NULL
             WHERE user_id = $1",
        ))
        .bind(id.as_uuid())
        .bind(pseudonym.to_string())
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        self.commit_recorded(tx, pending, true).await?;
        Ok(Some(user))
    }
}

const AUDIT_COLUMNS: &str = "id, at, kind, action, outcome, reason, user_id, email_digest, session_id, user_agent, ip";

fn audit_record_from_row(row: &PgRow) -> Result<AuditRecord, StoreError> {
    let ip = row
        .try_get::<Option<String>, _>("ip")
        .map_err(store_error)?
        .map(|text| stored::ip(&text))
        .transpose()?;
    Ok(AuditRecord::stored(
        EventId::from_uuid(row.try_get("id").map_err(store_error)?),
        row.try_get("at").map_err(store_error)?,
        row.try_get("kind").map_err(store_error)?,
        row.try_get("action").map_err(store_error)?,
        row.try_get("outcome").map_err(store_error)?,
        row.try_get("reason").map_err(store_error)?,
        (
            row.try_get::<Option<Uuid>, _>("user_id")
                .map_err(store_error)?
                .map(UserId::from_uuid),
            row.try_get("email_digest").map_err(store_error)?,
        ),
        row.try_get::<Option<Uuid>, _>("session_id")
            .map_err(store_error)?
            .map(SessionId::from_uuid),
        (row.try_get("user_agent").map_err(store_error)?, ip),
    ))
}

#[async_trait]
impl AuditLogStore for PostgresStore {
    async fn insert_audit_records(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        self.insert_audit_rows(&mut tx, records).await?;
        tx.commit().await.map_err(store_error)
    }

    async fn list_audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT {AUDIT_COLUMNS} FROM {s}.audit_events
             WHERE ($1::uuid IS NULL OR user_id = $1) AND ($2::text IS NULL OR kind = $2)
               AND ($3::uuid IS NULL OR id > $3)
             ORDER BY id LIMIT $4",
        ))
        .bind(query.user.map(|id| *id.as_uuid()))
        .bind(&query.kind)
        .bind(query.after.map(|id| *id.as_uuid()))
        .bind(i64::from(query.limit))
        .fetch_all(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        rows.iter().map(audit_record_from_row).collect()
    }

    async fn delete_audit_records_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(self.sql("DELETE FROM {s}.audit_events WHERE at < $1"))
            .bind(before)
            .execute(&self.pool)
            .guarded(self)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl PasskeyStore for PostgresStore {
    async fn insert_passkey(&self, passkey: &PasskeyCredential) -> Result<(), StoreError> {
        // The credential id's unique index decides: a concurrent insert of one waits for
        // the other's outcome, then writes nothing.
        let mut writer = self.writer().await?;
        let done = sqlx::query(self.sql(
            "INSERT INTO {s}.passkeys (id, user_id, credential_id, credential, counter, name, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (credential_id) DO NOTHING",
        ))
        .bind(passkey.id.as_uuid())
        .bind(passkey.user_id.as_uuid())
        .bind(passkey.credential_id.as_slice())
        .bind(passkey.credential.as_str())
        .bind(i64::from(passkey.counter))
        .bind(passkey.name.as_str())
        .bind(passkey.created_at)
        .bind(passkey.last_used_at)
        .execute(&mut *writer)
        .await
        .map_err(store_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::DuplicateCredential);
        }
        self.finish(writer, true).await
    }

    async fn find_passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyCredential>, StoreError> {
        let row = sqlx::query(self.sql("SELECT {PASSKEY_COLUMNS} FROM {s}.passkeys WHERE credential_id = $1"))
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .guarded(self)
            .await
            .map_err(store_error)?;
        row.as_ref().map(passkey_from_row).transpose()
    }

    async fn list_passkeys(&self, user: UserId) -> Result<Vec<PasskeyCredential>, StoreError> {
        let rows = sqlx::query(
            self.sql("SELECT {PASSKEY_COLUMNS} FROM {s}.passkeys WHERE user_id = $1 ORDER BY created_at, id"),
        )
        .bind(user.as_uuid())
        .fetch_all(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        rows.iter().map(passkey_from_row).collect()
    }

    async fn record_passkey_use(
        &self,
        id: PasskeyId,
        if_counter: u32,
        credential: &str,
        counter: u32,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // Read committed re-checks the condition on the newest row version after waiting
        // for a concurrent writer: of sign-ins that read one counter, one applies.
        let done = sqlx::query(self.sql(
            "UPDATE {s}.passkeys SET credential = $3, counter = $4, last_used_at = $5 WHERE id = $1 AND counter = $2",
        ))
        .bind(id.as_uuid())
        .bind(i64::from(if_counter))
        .bind(credential)
        .bind(i64::from(counter))
        .bind(at)
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn rename_passkey(&self, user: UserId, id: PasskeyId, name: &str) -> Result<bool, StoreError> {
        let mut writer = self.writer().await?;
        let done = sqlx::query(self.sql("UPDATE {s}.passkeys SET name = $3 WHERE id = $2 AND user_id = $1"))
            .bind(user.as_uuid())
            .bind(id.as_uuid())
            .bind(name)
            .execute(&mut *writer)
            .await
            .map_err(store_error)?;
        let renamed = done.rows_affected() == 1;
        self.finish(writer, renamed).await?;
        Ok(renamed)
    }

    async fn delete_passkey(&self, user: UserId, id: PasskeyId) -> Result<PasskeyRemoval, StoreError> {
        let pending = PendingRecords::take();
        let mut tx = self.pool.begin().guarded(self).await.map_err(store_error)?;
        // The account's row lock, held to the commit, queues every deletion of one
        // account's ways to sign in (identities take it too): each decides on what the
        // previous one left.
        let account = sqlx::query(
            self.sql("SELECT password_hash IS NOT NULL AS has_password FROM {s}.users WHERE id = $1 FOR UPDATE"),
        )
        .bind(user.as_uuid())
        .fetch_optional(&mut *tx)
        .await
        .map_err(store_error)?;
        let Some(account) = account else {
            return Ok(PasskeyRemoval::NotFound);
        };
        let has_password: bool = account.try_get("has_password").map_err(store_error)?;
        let counts = sqlx::query(self.sql(
            "SELECT (SELECT count(*) FROM {s}.passkeys WHERE user_id = $1 AND id = $2) AS this_one,
                    (SELECT count(*) FROM {s}.passkeys WHERE user_id = $1) AS passkeys,
                    (SELECT count(*) FROM {s}.identities WHERE user_id = $1) AS identities",
        ))
        .bind(user.as_uuid())
        .bind(id.as_uuid())
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        let this_one: i64 = counts.try_get("this_one").map_err(store_error)?;
        let passkeys: i64 = counts.try_get("passkeys").map_err(store_error)?;
        let identities: i64 = counts.try_get("identities").map_err(store_error)?;
        if this_one == 0 {
            return Ok(PasskeyRemoval::NotFound);
        }
        if !has_password && identities == 0 && passkeys < 2 {
            return Ok(PasskeyRemoval::LastSignInMethod);
        }
        sqlx::query(self.sql("DELETE FROM {s}.passkeys WHERE id = $1 AND user_id = $2"))
            .bind(id.as_uuid())
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await
            .map_err(store_error)?;
        self.commit_recorded(tx, pending, true).await?;
        Ok(PasskeyRemoval::Removed)
    }

    async fn insert_passkey_ceremony(&self, token: &TokenHash, ceremony: &PasskeyCeremony) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO {s}.passkey_ceremonies (token_hash, kind, user_id, state, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(token.as_bytes().as_slice())
        .bind(ceremony.kind.as_str())
        .bind(ceremony.user_id.map(|id| *id.as_uuid()))
        .bind(ceremony.state.as_str())
        .bind(ceremony.created_at)
        .bind(ceremony.expires_at)
        .execute(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn take_passkey_ceremony(&self, token: &TokenHash) -> Result<Option<PasskeyCeremony>, StoreError> {
        let row = sqlx::query(self.sql(
            "DELETE FROM {s}.passkey_ceremonies WHERE token_hash = $1
             RETURNING kind, user_id, state, created_at, expires_at",
        ))
        .bind(token.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .guarded(self)
        .await
        .map_err(store_error)?;
        row.as_ref().map(passkey_ceremony_from_row).transpose()
    }

    async fn delete_expired_passkey_ceremonies(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(self.sql("DELETE FROM {s}.passkey_ceremonies WHERE expires_at < $1"))
            .bind(before)
            .execute(&self.pool)
            .guarded(self)
            .await
            .map_err(store_error)?;
        Ok(done.rows_affected())
    }
}
