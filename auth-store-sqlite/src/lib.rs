//! SQLite storage for [`auth_core`]: the embedded default, one file, zero setup.
//!
//! [`SqliteStore`] implements every store trait of `auth-core`, the base ones
//! ([`UserStore`], [`SessionStore`], [`OneTimeTokenStore`]) and every optional one
//! ([`UserDirectory`], [`RoleStore`], [`PurgeStore`], [`BrowserSessionStore`],
//! [`SecondFactorStore`], [`IdentityStore`]), on rusqlite (SQLite bundled by default, see
//! [Features](#features)):
//!
//! - the file is created, switched to WAL and migrated on [`open`](SqliteStore::open);
//!   migrations are embedded, versioned in the library's own `auth_schema_migrations`
//!   table (every table is prefixed `auth_`, so the file can be the application's own),
//!   idempotent, and a file written by a newer schema is refused, never altered;
//! - no call waits on an async worker: writes run on Tokio's blocking pool through one
//!   writer connection (so concurrent writers queue instead of failing with
//!   `SQLITE_BUSY`); reads go through a small pool of read-only connections, which WAL
//!   lets run beside the writer, in place when one is idle and the read meets no lock
//!   (a lookup of microseconds, cheaper than the trip to a blocking thread), on the
//!   blocking pool otherwise (see [`with_inline_reads`](SqliteStore::with_inline_reads));
//! - no call waits long for a lock: each has a budget, [`DEFAULT_LOCK_TIMEOUT`] (1 s)
//!   counted from when it was made, for its place in the write queue and for a lock held
//!   by another process (a `sqlite3` shell left in a transaction, a backup tool). When the
//!   budget runs out the call fails as [`StoreError::Unavailable`] (503 `unavailable` in
//!   the example servers), so however many writes queue behind such a lock, all of them
//!   answer within about the budget, and the first call after the lock goes succeeds; see
//!   [`with_lock_timeout`](SqliteStore::with_lock_timeout);
//! - the normalized email is a `UNIQUE` column compared bytewise (normalization happens
//!   in Rust: SQLite's own case folding is ASCII-only); a duplicate is the typed
//!   [`StoreError::DuplicateEmail`], decided by the constraint;
//! - single-use tokens are consumed by one `UPDATE ... WHERE used_at IS NULL RETURNING`;
//!   refresh rotation and session revocation are single transactions;
//! - second factors (migration 5: `auth_totp_factors`, `auth_recovery_codes`,
//!   `auth_login_challenges`, and `auth_users.requires_second_factor`): each TOTP time
//!   step, recovery code and login challenge is used at most once by one conditional
//!   `UPDATE` or `DELETE ... RETURNING`; confirming or deleting a factor writes it, its
//!   recovery codes and the account's flag in one transaction; a new login challenge
//!   replaces the account's previous one by an upsert, and a confirmed factor is never
//!   replaced by a new enrolment; all of them are deleted with their account;
//! - external identities (migration 6: `auth_identities`, `auth_external_login_states`,
//!   `auth_external_login_codes`, and `auth_login_challenges.first_factor`): (provider,
//!   subject) is unique by a constraint, whose conflict is the typed
//!   [`StoreError::DuplicateIdentity`] (`ON CONFLICT` on it, as for the email); an account
//!   and its first identity are one transaction, the identity inserted first so that its
//!   conflict is the one told when the email is taken too; a sign-in's state and code are
//!   each taken once by `DELETE ... RETURNING`; deleting an identity decides and deletes
//!   in one write transaction, so an account never loses its last way to sign in, even
//!   to concurrent deletions; identities, codes and a link's state are deleted with their
//!   account;
//! - the audit log (migration 8: `auth_audit_events`): every write a service records
//!   stores the record handed to it ([`auth_core::PendingRecords`]) in its own
//!   transaction when it changes something, so a change is never kept without its record;
//! - commits are durable: an acknowledged registration or password change survives the
//!   process being killed (tested with SIGKILL), and commits are fsync'd
//!   (`synchronous = FULL`) so that it also survives the machine losing power.
//!
//! SQLite serves one machine. Several application instances need one database they all
//! reach: use `auth-store-postgres`.
//!
//! # Tables
//!
//! | table | migration | holds |
//! |---|---|---|
//! | `auth_schema_migrations` | | the migrations applied (version, time) |
//! | `auth_users` | 1 (5: `requires_second_factor`) | accounts, unique on the normalized email |
//! | `auth_sessions` | 1 (2: `auth_methods`, `auth_time`; 3: no reference to `auth_users`) | sessions |
//! | `auth_refresh_tokens` | 1 | refresh token hashes, deleted with their session |
//! | `auth_one_time_tokens` | 1 | single-use token hashes (email verification, password reset) |
//! | `auth_browser_sessions` | 4 | browser session cookie hashes, deleted with their session |
//! | `auth_totp_factors` | 5 | an account's TOTP factor (its secret sealed) |
//! | `auth_recovery_codes` | 5 | an account's recovery code hashes |
//! | `auth_login_challenges` | 5 (6: `first_factor`) | a login waiting for its second factor, one per account |
//! | `auth_identities` | 6 | external identities linked to accounts, unique on (provider, subject) |
//! | `auth_external_login_states` | 6 | external sign-ins in progress, under their state's hash |
//! | `auth_external_login_codes` | 6 | finished external sign-ins' one-time codes, under their hash |
//!
//! # Features
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `bundled` | on | compiles SQLite into the program (rusqlite's `bundled`; needs a C compiler) |
//!
//! Off, the system's libsqlite3 is linked instead (`libsqlite3-dev` on Debian); it must
//! be 3.37 or newer, since the schema uses `STRICT` tables (and the store `RETURNING`,
//! 3.35). The crate's tests pass that way with Debian 12's SQLite 3.40.1. Features are unified across a
//! program, so `bundled` is on whenever any crate asks for it: turning it off here only
//! helps if nothing else in the program (rusqlite, sqlx's `sqlite`) turns it on.
//!
//! `auth-core` is a dependency without its default features: its legacy verifiers and JWT
//! backend are the application's choice, through its own `auth-core` dependency.
//!
//! # Linking SQLite: compatible versions
//!
//! A program can link SQLite once: every `libsqlite3-sys` declares `links = "sqlite3"`,
//! and cargo refuses a second one, even of another version. So this crate must share the
//! `libsqlite3-sys` of an application that already uses rusqlite or sqlx's SQLite driver.
//! It depends on rusqlite `>=0.32, <0.44` (every minor from 0.32 to 0.43 builds with it,
//! checked with `cargo check` against each), and on nothing else that links SQLite (no
//! r2d2_sqlite, which pins one rusqlite per release: the read connections are pooled by
//! the store itself). Cargo then picks the rusqlite whose `libsqlite3-sys` the rest of the
//! program accepts.
//!
//! Recorded with scratch applications outside the workspace, each depending on this crate
//! and `auth-core` (default features) and on the crate in the first column, built with
//! cargo 1.95 and run (each opened a store, registered and logged in, and queried
//! `sqlite_version()` through its own driver):
//!
//! | the application also depends on | resolves to | result |
//! |---|---|---|
//! | `rusqlite = "0.37"` (`bundled`) | rusqlite 0.37.0, libsqlite3-sys 0.35.0, for both | builds and runs, SQLite 3.50.2 |
//! | `sqlx = "0.8"` (`sqlite`, `runtime-tokio`) | sqlx 0.8.6, libsqlite3-sys 0.30.1; this crate on rusqlite 0.32.1 | builds and runs, SQLite 3.46.0 |
//! | `sqlx = "0.9"` (`sqlite`, `runtime-tokio`) | sqlx 0.9.1, libsqlite3-sys 0.40.0; this crate on rusqlite 0.43.0 | builds and runs, SQLite 3.54.1 |
//! | `sqlx = "=0.9.0"` (`sqlite`, `runtime-tokio`) | sqlx 0.9.0, libsqlite3-sys 0.37.0; this crate on rusqlite 0.39.0 | builds and runs, SQLite 3.51.3 |
//! | `rusqlite = "0.31"` or older | | does not resolve: rusqlite 0.31 links libsqlite3-sys 0.28, and no rusqlite this crate accepts uses it |
//!
//! So: rusqlite 0.32 to 0.43 in the application (libsqlite3-sys 0.30 to 0.40), sqlx 0.8.1
//! to 0.8.6 (libsqlite3-sys 0.30), and sqlx 0.9 (0.9.0 accepts libsqlite3-sys up to 0.37,
//! 0.9.1 up to 0.40) all work. Older rusqlite and sqlx 0.8.0 (libsqlite3-sys 0.28) cannot
//! share SQLite with this crate. An application pinning one rusqlite minor may get a
//! second rusqlite beside this crate's when both accept the same libsqlite3-sys (0.42 and
//! 0.43 share 0.40, for example): that is allowed and links SQLite once; `cargo update -p
//! rusqlite@<newer> --precise <older>` makes it one. To see what a program links,
//! `cargo tree -i libsqlite3-sys`.
//!
//! The store's own errors name rusqlite's types ([`OpenError::Sqlite`]); the rusqlite it
//! was built with is re-exported as [`rusqlite`], so they can be named
//! without pinning a rusqlite of your own.
//!
//! # Minimum Rust version
//!
//! 1.89, auth-core's (rusqlite declares none up to 0.40; 0.41 to 0.43 declare 1.89).
//!
//! # License
//!
//! MIT OR Apache-2.0, at your option.
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::{AuthService, ClientInfo, Password, SigningKey, Tokens};
//! use auth_store_sqlite::SqliteStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("auth.db");
//! let store = SqliteStore::open(&path).await?; // creates and migrates the file
//! let key = SigningKey::hs256(b"an example secret of at least 32 bytes!")?;
//! let auth = Arc::new(AuthService::new(store, Tokens::new(key, "https://auth.example.com", "api")));
//!
//! let client = ClientInfo::new(Some("curl/8.5"), Some("203.0.113.7".parse()?));
//! auth.register("ada@example.com", Password::new("analytical-engine-1843"), &client).await?;
//! let login = auth.login("Ada@Example.com", Password::new("analytical-engine-1843"), &client).await?.signed_in()?;
//! assert_eq!(login.user.email.as_str(), "ada@example.com");
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

/// The rusqlite this store was built with, for naming its errors
/// ([`OpenError::Sqlite`]) and writing a [`RegistrationHook`] without a dependency of
/// your own.
pub use rusqlite;

mod rows;
mod schema;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use auth_core::{
    AccountDeletionStore, AuditLogStore, AuditQuery, AuditRecord, BoxError, BrowserSessionStore, Email, EmailChange,
    EmailChangeStore, EmailConfirmation, EmailDigest, EventId, ExternalLoginCode, ExternalLoginState, HashedPassword,
    IdentityId, IdentityRemoval, IdentityStore, LinkedIdentity, LoginChallenge, OneTimeToken, OneTimeTokenStore,
    PasskeyCeremony, PasskeyCredential, PasskeyId, PasskeyRemoval, PasskeyStore, PendingRecords, ProviderName,
    PurgeStore, RefreshTokenRecord, Role, RoleStore, SecondFactorStore, Session, SessionId, SessionStore, StoreError,
    TokenHash, TokenPurpose, TotpFactor, User, UserDirectory, UserId, UserStore,
};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;
use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};

use rows::{
    DbError, IDENTITY_COLUMNS, LOGIN_CHALLENGE_COLUMNS, LOGIN_CODE_COLUMNS, LOGIN_STATE_COLUMNS, PASSKEY_COLUMNS,
    SESSION_COLUMNS, TOTP_FACTOR_COLUMNS, USER_COLUMNS, identity_from_row, login_challenge_from_row,
    login_code_from_row, login_state_from_row, micros, one_time_token_from_row, session_from_row, totp_factor_from_row,
    user_from_row,
};

/// The schema version this release writes (see [`SqliteStore::schema_version`]).
pub const SCHEMA_VERSION: i64 = schema::LATEST;

/// How long [`open`](SqliteStore::open) and [`migrate`](SqliteStore::migrate) wait for a
/// lock held by another connection or process before they fail. Longer than
/// [`DEFAULT_LOCK_TIMEOUT`]: they run once, at start, often while other instances of the
/// application open or migrate the same file, and failing them stops the application.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The default budget of every store call for waiting: for its turn at the writer
/// connection, and for locks held by other connections or processes. Past it, the call
/// fails as [`StoreError::Unavailable`]. See
/// [`SqliteStore::with_lock_timeout`].
///
/// One second: an ordinary write takes milliseconds, so a call still waiting after a
/// second is behind a lock held elsewhere (or a queue too deep to drain soon), and the
/// client is better told at once to retry (503 with `Retry-After`) than held, while the
/// calls queued behind it pile up.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(auth_store_sqlite::DEFAULT_LOCK_TIMEOUT, Duration::from_secs(1));
/// ```
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest lock budget: SQLite takes its busy timeout as an `int` of milliseconds.
const MAX_LOCK_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// The most read-only connections beside the writer (opened as reads need them, then kept).
pub const DEFAULT_READERS: u32 = 4;

/// Prepared statements kept per connection: more than the store has, so none is
/// re-prepared under a mixed workload (rusqlite's default is 16).
const STATEMENT_CACHE: usize = 64;

/// Switches the database to WAL (readers never block the writer, nor it them), unless it
/// is already. Changing the journal mode ignores `busy_timeout`, so concurrent first
/// opens of one file retry here until the timeout.
fn use_wal(conn: &Connection) -> Result<(), OpenError> {
    let deadline = std::time::Instant::now() + DEFAULT_BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        let current: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        if current.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                tracing::warn!(%mode, "SQLite did not switch to WAL; reads will wait for writes");
                return Ok(());
            }
            Err(error)
                if error.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The file was migrated by a newer release of this crate; it is left untouched.
    #[error(
        "the auth database has schema version {found}, newer than this release supports ({supported}): \
         upgrade auth-store-sqlite instead of opening it with an older release"
    )]
    SchemaTooNew {
        /// The version found in the file.
        found: i64,
        /// The newest version this release knows.
        supported: i64,
    },
    /// A migration would have left rows referencing rows that are gone; nothing was
    /// changed. A bug of this crate: please report it.
    #[error("a migration of the auth database would break {rows} references; nothing was changed")]
    BrokenReferences {
        /// How many rows `PRAGMA foreign_key_check` found.
        rows: i64,
    },
    /// SQLite refused (not a database, no permission, disk full, ...). The error is
    /// rusqlite's, re-exported as [`auth_store_sqlite::rusqlite`](crate::rusqlite) so it
    /// can be named without a dependency of your own.
    #[error("cannot open the SQLite database")]
    Sqlite(#[from] rusqlite::Error),
    /// The blocking task running the open failed.
    #[error("the task opening the database failed")]
    Task(#[source] tokio::task::JoinError),
}

/// The SQLite store. Cheap to clone (the connections are shared); see the
/// [crate documentation](crate) for its design.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// Each call's budget for waiting; per handle, see [`with_lock_timeout`](Self::with_lock_timeout).
    lock_timeout: Duration,
    /// See [`with_registration_hook`](Self::with_registration_hook).
    on_registration: Option<Arc<RegistrationHook>>,
    /// See [`with_inline_reads`](Self::with_inline_reads).
    inline_reads: bool,
}

/// What an application does in the transaction that inserts a new account: see
/// [`SqliteStore::with_registration_hook`].
pub type RegistrationHook = dyn Fn(&rusqlite::Transaction<'_>, &User) -> Result<(), BoxError> + Send + Sync;

/// A call's lock budget ran out while it waited for its turn at the writer connection.
#[derive(Debug, thiserror::Error)]
#[error("the SQLite writer stayed busy for the whole lock timeout ({0:?})")]
struct WriterBusy(Duration);

/// A read's lock budget ran out while every read connection was in use.
#[derive(Debug, thiserror::Error)]
#[error("every SQLite read connection stayed busy for the whole lock timeout ({0:?})")]
struct ReadersBusy(Duration);

struct Inner {
    /// The only connection that writes: SQLite has one writer at a time anyway, and
    /// queueing here instead of in SQLite's busy handler means no `SQLITE_BUSY` between
    /// our own writers, however many. An async mutex, so that the wait for it is bounded
    /// by a timer and a caller that gives up leaves the queue (it is FIFO) without
    /// having taken a blocking thread.
    writer: Arc<Mutex<Connection>>,
    /// `None` for an in-memory database, which other connections cannot see.
    readers: Option<Arc<Readers>>,
    path: Option<PathBuf>,
}

/// The read-only connections beside the writer: at most [`DEFAULT_READERS`], each used by
/// one read at a time, opened when a read finds none idle and kept afterwards.
///
/// A pool of our own rather than r2d2: r2d2_sqlite pins one rusqlite minor per release,
/// which kept an application on another rusqlite (or on sqlx's SQLite) from resolving, and
/// r2d2 runs a reaper thread pool this store has no use for (SQLite connections to a local
/// file do not go stale). A read waits for its turn on an async semaphore, within its
/// budget, so a queued read holds no blocking thread.
struct Readers {
    path: PathBuf,
    turns: Arc<Semaphore>,
    idle: std::sync::Mutex<Vec<Connection>>,
}

impl Readers {
    /// Opens the first reader at once, so that a file that cannot be read fails `open`.
    fn open(path: &Path) -> Result<Self, rusqlite::Error> {
        let first = open_reader(path)?;
        Ok(Self {
            path: path.to_owned(),
            turns: Arc::new(Semaphore::new(DEFAULT_READERS as usize)),
            idle: std::sync::Mutex::new(vec![first]),
        })
    }

    /// An idle connection, or a new one.
    fn take(&self) -> Result<Connection, rusqlite::Error> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => open_reader(&self.path),
        }
    }

    fn give_back(&self, conn: Connection) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
    }

    /// Runs `f` here, on the caller's thread, if a turn and an idle connection are free
    /// right now, with no wait for any lock (busy timeout zero): `None` when it could not
    /// run or met a lock, and the caller then reads on the blocking pool within its budget.
    /// A read from a WAL database waits for no writer, so what runs here is the lookup
    /// itself: pages from SQLite's cache or the operating system's.
    fn try_inline<T, F>(&self, f: &F) -> Option<Result<T, DbError>>
    where
        F: Fn(&Connection) -> Result<T, DbError>,
    {
        let turn = self.turns.try_acquire().ok()?;
        let conn = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()?;
        let result = conn
            .busy_timeout(Duration::ZERO)
            .map_err(DbError::from)
            .and_then(|()| f(&conn));
        self.give_back(conn);
        drop(turn);
        match result {
            Err(DbError::Sqlite(error))
                if matches!(
                    error.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) =>
            {
                None
            }
            result => Some(result),
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Each read sets its own busy timeout, from its budget.
    conn.busy_timeout(DEFAULT_LOCK_TIMEOUT)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, and applies the migrations it
    /// lacks.
    ///
    /// # Errors
    ///
    /// [`OpenError::SchemaTooNew`] for a file from a newer release, and SQLite's own
    /// failures (not a database file, no permission, ...).
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(Some(path)))
            .await
            .map_err(OpenError::Task)?
    }

    /// A private in-memory database, migrated: for tests and examples. It disappears with
    /// the store.
    ///
    /// # Errors
    ///
    /// SQLite's own failures.
    pub async fn open_in_memory() -> Result<Self, OpenError> {
        tokio::task::spawn_blocking(|| Self::open_blocking(None))
            .await
            .map_err(OpenError::Task)?
    }

    fn open_blocking(path: Option<PathBuf>) -> Result<Self, OpenError> {
        let mut writer = match &path {
            Some(path) => Connection::open(path)?,
            None => Connection::open_in_memory()?,
        };
        writer.busy_timeout(DEFAULT_BUSY_TIMEOUT)?;
        writer.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "foreign_keys", true)?;
        // Before anything changes the file: a newer schema is refused untouched.
        schema::migrate(&mut writer)?;
        if path.is_some() {
            use_wal(&writer)?;
        }

        let readers = match &path {
            Some(path) => Some(Arc::new(Readers::open(path)?)),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                writer: Arc::new(Mutex::new(writer)),
                readers,
                path,
            }),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            on_registration: None,
            inline_reads: true,
        })
    }

    /// Sets how long each call of this handle may wait, in all, before it fails as
    /// [`StoreError::Unavailable`] (default [`DEFAULT_LOCK_TIMEOUT`], 1 s).
    ///
    /// The budget runs from when the call is made, and covers both waits a call can meet:
    /// its turn at the writer connection, behind this process's other writes, and a lock
    /// held by another connection or process (SQLite's `busy_timeout` is set to what is
    /// left of it before each statement). So when a `sqlite3` shell or a backup holds the
    /// write lock, every queued write fails within about the budget, not one budget after
    /// the other; a lock released in time is noticed within SQLite's retry interval (at
    /// most 100 ms), and the first call after it succeeds. Reads, which WAL does not
    /// make wait for writers, have the same budget for a read connection and for the
    /// rare locks that do hold them (a checkpoint, a recovery).
    ///
    /// What the budget does not bound is the work itself: a statement that has its lock
    /// runs to its end (a commit's `fsync` cannot be interrupted).
    ///
    /// Zero means never wait: a call that finds the writer or the file taken fails at
    /// once. Values past SQLite's limit (`i32::MAX` milliseconds, about 24 days) are
    /// clamped to it. The setting belongs to this handle and the clones made from it
    /// afterwards; other handles on the same connections keep their own. Waiting needs a
    /// Tokio runtime with the time driver enabled (`#[tokio::main]`, `Runtime::new` and
    /// Actix's runtime all enable it), as [`auth_core::HashPool`] does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use auth_store_sqlite::{DEFAULT_LOCK_TIMEOUT, SqliteStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("auth.db");
    /// let store = SqliteStore::open(&path).await?;
    /// assert_eq!(store.lock_timeout(), DEFAULT_LOCK_TIMEOUT);
    /// // A batch job that would rather wait out a backup's lock than fail.
    /// let patient = store.with_lock_timeout(Duration::from_secs(30));
    /// assert_eq!(patient.lock_timeout(), Duration::from_secs(30));
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_lock_timeout(mut self, lock_timeout: Duration) -> Self {
        self.lock_timeout = lock_timeout.min(MAX_LOCK_TIMEOUT);
        self
    }

    /// Whether a read may run on the calling task's thread (the default, `true`) rather
    /// than on Tokio's blocking pool.
    ///
    /// A read runs in place when a read connection is idle and its statement needs no lock
    /// it would have to wait for (its busy timeout is zero there; a read that meets a lock,
    /// such as a checkpoint's, moves to the blocking pool and waits there within the lock
    /// budget). In WAL mode a read never waits for the writer, so what runs in place is the
    /// lookup: a few pages from SQLite's page cache or the operating system's, microseconds,
    /// where the trip to a blocking thread and back costs more than the lookup (that trip
    /// was two thirds of `GET /me`'s time; `benches/BENCHMARKS.md` has the figures).
    ///
    /// Turn it off when the database is much larger than the memory that caches it: a read
    /// that misses the cache then waits for the disk on an async worker thread, holding up
    /// the other requests of that thread meanwhile. Writes always run on the blocking pool.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let store = auth_store_sqlite::SqliteStore::open(dir.path().join("auth.db")).await?;
    /// assert!(store.inline_reads());
    /// let on_the_pool = store.with_inline_reads(false);
    /// assert!(!on_the_pool.inline_reads());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_inline_reads(mut self, inline: bool) -> Self {
        self.inline_reads = inline;
        self
    }

    /// Whether reads may run in place: see [`with_inline_reads`](Self::with_inline_reads).
    pub fn inline_reads(&self) -> bool {
        self.inline_reads
    }

    /// Runs `hook` in the transaction that inserts each new account, after the insert (a
    /// registration, or a first sign-in through an identity provider, with the account's
    /// identity): an application creates its own row for the account (a profile, a tenant
    /// membership) so that both exist or neither does. An error from the hook rolls the
    /// registration back; it fails as a backend error (a 500, with the hook's error as its
    /// cause in the log), and the address stays free.
    ///
    /// The hook is synchronous: it runs on the store's blocking thread, holding SQLite's
    /// write lock, where awaiting anything would stall every other writer. Keep it to a
    /// few statements on the transaction it is given.
    ///
    /// ```
    /// use auth_core::{AuthService, ClientInfo, Password, SigningKey, Tokens};
    /// use auth_store_sqlite::SqliteStore;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.db");
    /// // The application's table, in the same file.
    /// rusqlite::Connection::open(&path)?
    ///     .execute_batch("CREATE TABLE profiles (user_id TEXT PRIMARY KEY, display_name TEXT NOT NULL)")?;
    /// let store = SqliteStore::open(&path).await?.with_registration_hook(|tx, user| {
    ///     let name = user.email.as_str().split('@').next().unwrap_or_default();
    ///     tx.execute("INSERT INTO profiles (user_id, display_name) VALUES (?1, ?2)", (user.id.to_string(), name))?;
    ///     Ok(())
    /// });
    /// let tokens = Tokens::new(SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?, "https://app.example", "app");
    /// let auth = AuthService::new(store, tokens);
    /// auth.register("ada@example.com", Password::new("analytical-engine-1843"), &ClientInfo::unknown()).await?;
    /// let name: String = rusqlite::Connection::open(&path)?.query_row("SELECT display_name FROM profiles", [], |row| row.get(0))?;
    /// assert_eq!(name, "ada");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_registration_hook(
        mut self,
        hook: impl Fn(&rusqlite::Transaction<'_>, &User) -> Result<(), BoxError> + Send + Sync + 'static,
    ) -> Self {
        self.on_registration = Some(Arc::new(hook));
        self
    }

    /// Each call's budget for waiting (see [`with_lock_timeout`](Self::with_lock_timeout)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = auth_store_sqlite::SqliteStore::open_in_memory().await?;
    /// assert_eq!(store.lock_timeout(), auth_store_sqlite::DEFAULT_LOCK_TIMEOUT);
    /// # Ok(())
    /// # }
    /// ```
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// Applies the migrations the database lacks (none, after [`open`](Self::open)); safe
    /// to call any number of times, from any number of processes. Returns the schema
    /// version.
    ///
    /// # Errors
    ///
    /// [`OpenError::SchemaTooNew`] if another process migrated the file further meanwhile;
    /// SQLite's failures.
    pub async fn migrate(&self) -> Result<i64, OpenError> {
        // Not within the calls' budget: like `open`, a migration runs once and may wait.
        let mut conn = Arc::clone(&self.inner.writer).lock_owned().await;
        tokio::task::spawn_blocking(move || {
            prepare_writer(&conn, DEFAULT_BUSY_TIMEOUT)?;
            schema::migrate(&mut conn)
        })
        .await
        .map_err(OpenError::Task)?
    }

    /// The schema version of the database (this release writes [`SCHEMA_VERSION`]).
    ///
    /// # Errors
    ///
    /// Backend failures.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            Ok(
                conn.query_row("SELECT max(version) FROM auth_schema_migrations", [], |row| {
                    row.get::<_, Option<i64>>(0)
                })?,
            )
        })
        .await
        .map(Option::unwrap_or_default)
    }

    /// The database file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Runs `f` with the writer connection on the blocking pool, within the call's budget.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        let budget = Budget::start(self.lock_timeout);
        let mut conn = self.writer(budget).await?;
        tokio::task::spawn_blocking(move || {
            prepare_writer(&conn, budget.left())?;
            f(&mut conn)
        })
        .await
        .map_err(StoreError::backend)?
        .map_err(DbError::into_store_error)
    }

    /// Runs `f` with a read-only connection (the writer's, in memory), within the call's
    /// budget: on the calling thread when a reader is idle and the read needs no lock it
    /// would have to wait for (see [`with_inline_reads`](Self::with_inline_reads)), on the
    /// blocking pool otherwise.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        let budget = Budget::start(self.lock_timeout);
        let result = match &self.inner.readers {
            Some(readers) => {
                if self.inline_reads
                    && let Some(result) = readers.try_inline(&f)
                {
                    return result.map_err(DbError::into_store_error);
                }
                let turn = tokio::time::timeout(budget.left(), Arc::clone(&readers.turns).acquire_owned())
                    .await
                    .map_err(|_elapsed| StoreError::unavailable(ReadersBusy(budget.total)))?
                    .map_err(StoreError::backend)?;
                let readers = Arc::clone(readers);
                tokio::task::spawn_blocking(move || {
                    let conn = readers.take()?;
                    conn.busy_timeout(budget.left())?;
                    let result = f(&conn);
                    // Not reached when the read panicked: that connection is dropped, and
                    // the turn is released by unwinding.
                    readers.give_back(conn);
                    drop(turn);
                    result
                })
                .await
            }
            None => {
                let conn = self.writer(budget).await?;
                tokio::task::spawn_blocking(move || {
                    prepare_writer(&conn, budget.left())?;
                    f(&conn)
                })
                .await
            }
        };
        result.map_err(StoreError::backend)?.map_err(DbError::into_store_error)
    }

    /// The writer connection, once this call's turn comes within its budget.
    ///
    /// The guard is owned so that it moves into the blocking task; a panic there drops it
    /// while unwinding, and rusqlite rolls back any transaction it had open, so the
    /// connection stays usable (`prepare_writer` checks).
    async fn writer(&self, budget: Budget) -> Result<OwnedMutexGuard<Connection>, StoreError> {
        // Uncontended, no timer is involved.
        if let Ok(conn) = Arc::clone(&self.inner.writer).try_lock_owned() {
            return Ok(conn);
        }
        tokio::time::timeout(budget.left(), Arc::clone(&self.inner.writer).lock_owned())
            .await
            .map_err(|_elapsed| StoreError::unavailable(WriterBusy(budget.total)))
    }
}

/// One call's budget for waiting, counted from when the call was made.
#[derive(Debug, Clone, Copy)]
struct Budget {
    arrived: Instant,
    total: Duration,
}

impl Budget {
    fn start(total: Duration) -> Self {
        Self {
            arrived: Instant::now(),
            total,
        }
    }

    /// What is left; zero once spent (SQLite then tries once without waiting).
    fn left(&self) -> Duration {
        self.total.saturating_sub(self.arrived.elapsed())
    }
}

/// Readies the writer for a call that may wait `wait` for locks held elsewhere.
///
/// `wait` goes into SQLite's `busy_timeout` (a cheap setting, no I/O) before every call,
/// because the budget is per call: a call that queued behind others has less left, and a
/// fixed timeout would let each queued call wait a full one in turn. Zero turns the busy
/// handler off, so a call whose budget is spent tries once and fails at once if the lock
/// is still taken.
fn prepare_writer(conn: &Connection, wait: Duration) -> Result<(), rusqlite::Error> {
    if !conn.is_autocommit() {
        // A transaction left open (a failed rollback): every later write would join it
        // and never commit. End it before anyone writes.
        tracing::error!("the SQLite writer held an open transaction; rolling it back");
        if let Err(error) = conn.execute_batch("ROLLBACK") {
            tracing::error!(%error, "rolling back the leftover transaction failed");
        }
    }
    conn.busy_timeout(wait)
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("lock_timeout", &self.lock_timeout)
            .field("registration_hook", &self.on_registration.is_some())
            .finish_non_exhaustive()
    }
}

// The queries every authenticated request makes, written once rather than per call.
static USER_BY_ID: LazyLock<String> = LazyLock::new(|| format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = ?1"));
static SESSION_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {SESSION_COLUMNS} FROM auth_sessions s WHERE s.id = ?1"));
static USER_AND_SESSION_BY_ID: LazyLock<String> = LazyLock::new(|| {
    let user_columns = USER_COLUMNS
        .split(',')
        .map(|column| format!("u.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {user_columns}, {SESSION_COLUMNS} FROM (SELECT 1) AS one
         LEFT JOIN auth_users u ON u.id = ?1
         LEFT JOIN auth_sessions s ON s.id = ?2"
    )
});

fn roles_text(roles: &BTreeSet<Role>) -> String {
    roles.iter().map(Role::as_str).collect::<Vec<_>>().join(" ")
}

/// Runs `sql` (an `UPDATE auth_users ... RETURNING` the user columns) in a transaction
/// and reads the row.
///
/// Why a transaction for one statement: `query_row` stops at the first row, and in
/// autocommit mode the commit happens when the statement is reset on drop, where rusqlite
/// discards its error; a failed commit (disk full, I/O) would then read as success. An
/// explicit commit reports it, and a row the domain refuses rolls the change back.
fn update_user(
    conn: &mut Connection,
    sql: &str,
    params: impl rusqlite::Params,
    pending: Option<PendingRecords>,
) -> Result<Option<User>, DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row = tx
        .prepare_cached(sql)?
        .query_row(params, rows::RawUser::from_row)
        .optional()?;
    let user = row.map(user_from_row).transpose()?;
    commit_recorded(tx, pending, user.is_some())?;
    Ok(user)
}

/// Inserts audit `records` in the caller's transaction. A record of an account that is
/// gone (deleted before this was written) keeps neither the account nor its client.
fn insert_audit_rows(conn: &Connection, records: &[AuditRecord]) -> Result<(), DbError> {
    for record in records {
        conn.prepare_cached(
            "INSERT INTO auth_audit_events (id, at, kind, action, outcome, reason, user_id, email_digest,
                                            session_id, user_agent, ip)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, u.id, ?8, ?9,
                    CASE WHEN ?7 IS NULL OR u.id IS NOT NULL THEN ?10 END,
                    CASE WHEN ?7 IS NULL OR u.id IS NOT NULL THEN ?11 END
             FROM (SELECT 1) LEFT JOIN auth_users u ON u.id = ?7",
        )?
        .execute(params![
            record.id.to_string(),
            micros(record.at)?,
            record.kind,
            record.action,
            record.outcome,
            record.reason,
            record.user_id.map(|id| id.to_string()),
            record.email_digest,
            record.session_id.map(|id| id.to_string()),
            record.user_agent,
            record.ip.map(|ip| ip.to_string()),
        ])?;
    }
    Ok(())
}

/// Commits `tx`, with the audit records pending for its change when it `changed`
/// something: the record and the change it records are kept together or not at all.
fn commit_recorded(
    tx: rusqlite::Transaction<'_>,
    pending: Option<PendingRecords>,
    changed: bool,
) -> Result<(), DbError> {
    let pending = match pending {
        Some(pending) if changed => {
            insert_audit_rows(&tx, pending.records())?;
            Some(pending)
        }
        _ => None,
    };
    tx.commit()?;
    if let Some(pending) = pending {
        pending.written();
    }
    Ok(())
}

/// Reads the account and, when `change` edits its roles, writes them back (incrementing
/// the token version): one write transaction, so the read-modify-write is atomic (SQLite
/// has one writer, and this holds it from the read on). Every role change goes through
/// here.
fn change_roles(
    conn: &mut Connection,
    id: UserId,
    at: OffsetDateTime,
    change: impl FnOnce(&mut BTreeSet<Role>) -> bool,
    pending: Option<PendingRecords>,
) -> Result<Option<User>, DbError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row = tx
        .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = ?1"))?
        .query_row([id.to_string()], rows::RawUser::from_row)
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut user = user_from_row(row)?;
    let changed = change(&mut user.roles);
    if changed {
        let sql = format!(
            "UPDATE auth_users SET roles = ?2, token_version = token_version + 1, updated_at = ?3
             WHERE id = ?1 RETURNING {USER_COLUMNS}"
        );
        let row = tx.prepare_cached(&sql)?.query_row(
            params![id.to_string(), roles_text(&user.roles), micros(at)?],
            rows::RawUser::from_row,
        )?;
        user = user_from_row(row)?;
    }
    commit_recorded(tx, pending, changed)?;
    Ok(Some(user))
}

/// Inserts the account, inside the caller's transaction. Returns `false` when the email
/// has an account: the constraint decides (never check-then-insert), and a conflict on
/// the email inserts nothing and is told apart from other failures without parsing text.
fn insert_user_row(tx: &rusqlite::Transaction<'_>, user: &User) -> Result<bool, DbError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO auth_users (id, email, password_hash, is_active, email_verified_at, roles,
                                     token_version, created_at, updated_at, requires_second_factor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (email) DO NOTHING",
        )?
        .execute(params![
            user.id.to_string(),
            user.email.as_str(),
            user.password_hash.as_ref().map(HashedPassword::as_str),
            user.is_active,
            user.email_verified_at.map(micros).transpose()?,
            roles_text(&user.roles),
            user.token_version,
            micros(user.created_at)?,
            micros(user.updated_at)?,
            user.requires_second_factor,
        ])?;
    Ok(inserted == 1)
}

/// Inserts a linked identity. Returns `false` when (provider, subject) is linked already:
/// as for the email, the unique constraint decides (`ON CONFLICT` names it, so any other
/// failure, an unknown account's foreign key or a reused id, stays an error).
fn insert_identity_row(conn: &Connection, identity: &LinkedIdentity) -> Result<bool, DbError> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO auth_identities (id, user_id, provider, subject, email, created_at, last_used_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (provider, subject) DO NOTHING",
        )?
        .execute(params![
            identity.id.to_string(),
            identity.user_id.to_string(),
            identity.provider.as_str(),
            identity.subject,
            identity.email,
            micros(identity.created_at)?,
            identity.last_used_at.map(micros).transpose()?,
        ])?;
    Ok(inserted == 1)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &User) -> Result<(), StoreError> {
        let user = user.clone();
        let hook = self.on_registration.clone();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !insert_user_row(&tx, &user)? {
                return Err(DbError::Duplicate);
            }
            if let Some(hook) = hook {
                hook(&tx, &user).map_err(DbError::Hook)?;
            }
            commit_recorded(tx, pending, true)?;
            Ok(())
        })
        .await
    }

    async fn find_user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&USER_BY_ID)?
                .query_row([id.to_string()], rows::RawUser::from_row)
                .optional()?;
            row.map(user_from_row).transpose()
        })
        .await
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let email = email.as_str().to_owned();
        self.read(move |conn| {
            // `=` under SQLite's default BINARY collation: literal, no pattern, no folding.
            let sql = format!("SELECT {USER_COLUMNS} FROM auth_users WHERE email = ?1");
            let row = conn
                .prepare_cached(&sql)?
                .query_row([&email], rows::RawUser::from_row)
                .optional()?;
            row.map(user_from_row).transpose()
        })
        .await
    }

    async fn upgrade_password_hash(
        &self,
        id: UserId,
        current: &HashedPassword,
        upgraded: &HashedPassword,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (current, upgraded) = (current.as_str().to_owned(), upgraded.as_str().to_owned());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE auth_users SET password_hash = ?3, updated_at = ?4
                     WHERE id = ?1 AND password_hash = ?2",
                )?
                .execute(params![id.to_string(), current, upgraded, micros(at)?])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &HashedPassword,
        if_token_version: i64,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let hash = hash.as_str().to_owned();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let sql = format!(
                "UPDATE auth_users SET password_hash = ?2, token_version = token_version + 1, updated_at = ?4
                 WHERE id = ?1 AND token_version = ?3 RETURNING {USER_COLUMNS}"
            );
            update_user(
                conn,
                &sql,
                params![id.to_string(), hash, if_token_version, micros(at)?],
                pending,
            )
        })
        .await
    }

    async fn set_active(&self, id: UserId, active: bool, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let sql = format!(
                "UPDATE auth_users
                 SET is_active = ?2, token_version = token_version + (CASE WHEN ?2 THEN 0 ELSE 1 END), updated_at = ?3
                 WHERE id = ?1 RETURNING {USER_COLUMNS}"
            );
            update_user(conn, &sql, params![id.to_string(), active, micros(at)?], pending)
        })
        .await
    }

    async fn revoke_access_tokens(&self, id: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let sql = format!(
                "UPDATE auth_users SET token_version = token_version + 1, updated_at = ?2
                 WHERE id = ?1 RETURNING {USER_COLUMNS}"
            );
            update_user(conn, &sql, params![id.to_string(), micros(at)?], pending)
        })
        .await
    }

    async fn mark_email_verified(
        &self,
        id: UserId,
        email: &Email,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let email = email.as_str().to_owned();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let sql = format!(
                "UPDATE auth_users SET email_verified_at = coalesce(email_verified_at, ?3), updated_at = ?3
                 WHERE id = ?1 AND email = ?2 RETURNING {USER_COLUMNS}"
            );
            update_user(conn, &sql, params![id.to_string(), email, micros(at)?], pending)
        })
        .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &Session, refresh_token: &TokenHash) -> Result<(), StoreError> {
        let (session, token) = (session.clone(), *refresh_token);
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO auth_sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip, revoked_at,
                                            auth_methods, auth_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                session.id.to_string(),
                session.user_id.to_string(),
                micros(session.created_at)?,
                micros(session.last_used_at)?,
                micros(session.expires_at)?,
                session.user_agent,
                session.ip.map(|ip| ip.to_string()),
                session.revoked_at.map(micros).transpose()?,
                session.auth_methods.to_string(),
                micros(session.auth_time)?,
            ])?;
            tx.prepare_cached("INSERT INTO auth_refresh_tokens (hash, session_id, used_at) VALUES (?1, ?2, NULL)")?
                .execute(params![token.as_bytes().as_slice(), session.id.to_string()])?;
            commit_recorded(tx, pending, true)?;
            Ok(())
        })
        .await
    }

    async fn find_refresh_token(&self, refresh_token: &TokenHash) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let token = *refresh_token;
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SESSION_COLUMNS}, r.used_at FROM auth_refresh_tokens r
                 JOIN auth_sessions s ON s.id = r.session_id WHERE r.hash = ?1"
            );
            let row = conn
                .prepare_cached(&sql)?
                .query_row([token.as_bytes().as_slice()], |row| {
                    let used_at = row.get::<_, Option<i64>>(rows::SESSION_COLUMN_COUNT)?;
                    Ok((rows::RawSession::from_row(row)?, used_at))
                })
                .optional()?;
            row.map(|(session, used_at)| {
                Ok(RefreshTokenRecord::new(
                    session_from_row(session)?,
                    used_at.map(rows::from_micros).transpose()?,
                ))
            })
            .transpose()
        })
        .await
    }

    async fn rotate_refresh_token(
        &self,
        session: SessionId,
        presented: &TokenHash,
        replacement: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let (presented, replacement) = (*presented, *replacement);
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let at = micros(at)?;
            let session = session.to_string();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let spent = tx
                .prepare_cached(
                    "UPDATE auth_refresh_tokens SET used_at = ?3
                     WHERE hash = ?1 AND session_id = ?2 AND used_at IS NULL
                       AND EXISTS (SELECT 1 FROM auth_sessions WHERE id = ?2 AND revoked_at IS NULL)",
                )?
                .execute(params![presented.as_bytes().as_slice(), session, at])?;
            if spent == 0 {
                return Ok(false);
            }
            tx.prepare_cached("INSERT INTO auth_refresh_tokens (hash, session_id, used_at) VALUES (?1, ?2, NULL)")?
                .execute(params![replacement.as_bytes().as_slice(), session])?;
            tx.prepare_cached("UPDATE auth_sessions SET last_used_at = ?2 WHERE id = ?1")?
                .execute(params![session, at])?;
            commit_recorded(tx, pending, true)?;
            Ok(true)
        })
        .await
    }

    async fn list_sessions(&self, user: UserId) -> Result<Vec<Session>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM auth_sessions s
                 WHERE s.user_id = ?1 AND s.revoked_at IS NULL ORDER BY s.created_at, s.id"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let raw = statement
                .query_map([user.to_string()], rows::RawSession::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter().map(session_from_row).collect()
        })
        .await
    }

    async fn find_session(&self, session: SessionId) -> Result<Option<Session>, StoreError> {
        self.read(move |conn| {
            let row = conn
                .prepare_cached(&SESSION_BY_ID)?
                .query_row([session.to_string()], rows::RawSession::from_row)
                .optional()?;
            row.map(session_from_row).transpose()
        })
        .await
    }

    /// One statement, so one read transaction (each costs SQLite's file locks): the two
    /// lookups by primary key joined to a one-row relation, so that the answer is one row
    /// whichever of the two exists.
    async fn find_user_and_session(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<Option<(Option<User>, Option<Session>)>, StoreError> {
        self.read(move |conn| {
            conn.prepare_cached(&USER_AND_SESSION_BY_ID)?
                .query_row([user.to_string(), session.to_string()], |row| {
                    let user = match row.get_ref(0)? {
                        ValueRef::Null => None,
                        _ => Some(rows::RawUser::from_row_at(row, 0)?),
                    };
                    let session = match row.get_ref(rows::USER_COLUMN_COUNT)? {
                        ValueRef::Null => None,
                        _ => Some(rows::RawSession::from_row_at(row, rows::USER_COLUMN_COUNT)?),
                    };
                    Ok((user, session))
                })
                .map_err(DbError::from)
                .and_then(|(user, session)| {
                    Ok(Some((
                        user.map(user_from_row).transpose()?,
                        session.map(session_from_row).transpose()?,
                    )))
                })
        })
        .await
    }

    async fn revoke_session(&self, user: UserId, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let revoked = tx
                .prepare_cached(
                    "UPDATE auth_sessions SET revoked_at = ?3 WHERE id = ?2 AND user_id = ?1 AND revoked_at IS NULL",
                )?
                .execute(params![user.to_string(), session.to_string(), micros(at)?])?
                == 1;
            commit_recorded(tx, pending, revoked)?;
            Ok(revoked)
        })
        .await
    }

    async fn revoke_all_sessions(&self, user: UserId, at: OffsetDateTime) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let revoked = conn
                .prepare_cached("UPDATE auth_sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL")?
                .execute(params![user.to_string(), micros(at)?])?;
            Ok(u64::try_from(revoked).unwrap_or(u64::MAX))
        })
        .await
    }
}

#[async_trait]
impl OneTimeTokenStore for SqliteStore {
    async fn insert_one_time_token(&self, hash: &TokenHash, token: &OneTimeToken) -> Result<(), StoreError> {
        let (hash, token) = (*hash, token.clone());
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Only the newest works: the older unused token goes in the same transaction,
            // and comes back if the insert fails.
            tx.prepare_cached(
                "DELETE FROM auth_one_time_tokens
                 WHERE user_id = ?1 AND purpose = ?2 AND used_at IS NULL AND hash <> ?3",
            )?
            .execute(params![
                token.user_id.to_string(),
                token.purpose.as_str(),
                hash.as_bytes().as_slice()
            ])?;
            tx.prepare_cached(
                "INSERT INTO auth_one_time_tokens
                     (hash, user_id, purpose, email, token_version, created_at, expires_at, used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
            )?
            .execute(params![
                hash.as_bytes().as_slice(),
                token.user_id.to_string(),
                token.purpose.as_str(),
                token.email.as_str(),
                token.token_version,
                micros(token.created_at)?,
                micros(token.expires_at)?,
            ])?;
            commit_recorded(tx, pending, true)?;
            Ok(())
        })
        .await
    }

    async fn find_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        let hash = *hash;
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT user_id, purpose, email, token_version, created_at, expires_at FROM auth_one_time_tokens
                     WHERE hash = ?1 AND purpose = ?2 AND used_at IS NULL",
                )?
                .query_row(
                    params![hash.as_bytes().as_slice(), purpose.as_str()],
                    rows::RawOneTimeToken::from_row,
                )
                .optional()?;
            row.map(one_time_token_from_row).transpose()
        })
        .await
    }

    async fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        at: OffsetDateTime,
    ) -> Result<Option<OneTimeToken>, StoreError> {
        let hash = *hash;
        self.write(move |conn| {
            // One statement: of concurrent consumers, exactly one sees the row. In an
            // explicit transaction, so a failed commit is an error, not a token handed out
            // and left unused (see `update_user`).
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row = tx
                .prepare_cached(
                    "UPDATE auth_one_time_tokens SET used_at = ?3
                     WHERE hash = ?1 AND purpose = ?2 AND used_at IS NULL
                     RETURNING user_id, purpose, email, token_version, created_at, expires_at",
                )?
                .query_row(
                    params![hash.as_bytes().as_slice(), purpose.as_str(), micros(at)?],
                    rows::RawOneTimeToken::from_row,
                )
                .optional()?;
            let token = row.map(one_time_token_from_row).transpose()?;
            tx.commit()?;
            Ok(token)
        })
        .await
    }
}

#[async_trait]
impl UserDirectory for SqliteStore {
    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError> {
        self.read(move |conn| {
            // Hyphenated lowercase UUIDs sort as text in the order of their bytes.
            let sql = format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id > ?1 ORDER BY id LIMIT ?2");
            let after = after.map_or_else(String::new, |id| id.to_string());
            let mut statement = conn.prepare_cached(&sql)?;
            let raw = statement
                .query_map(params![after, limit], rows::RawUser::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter().map(user_from_row).collect()
        })
        .await
    }

    async fn search_users(
        &self,
        email_prefix: &str,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let prefix = email_prefix.to_owned();
        self.read(move |conn| {
            // `substr` and `length` count characters alike, and compare exactly: LIKE
            // would read `_` and `%` in the prefix as wildcards.
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM auth_users
                 WHERE substr(email, 1, length(?1)) = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            );
            let after = after.map_or_else(String::new, |id| id.to_string());
            let mut statement = conn.prepare_cached(&sql)?;
            let raw = statement
                .query_map(params![prefix, after, limit], rows::RawUser::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter().map(user_from_row).collect()
        })
        .await
    }
}

#[async_trait]
impl RoleStore for SqliteStore {
    async fn set_roles(
        &self,
        id: UserId,
        roles: &BTreeSet<Role>,
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let roles = roles.clone();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            change_roles(
                conn,
                id,
                at,
                |held| {
                    *held = roles;
                    true
                },
                pending,
            )
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
        let role = role.clone();
        let pending = PendingRecords::take();
        self.write(move |conn| change_roles(conn, id, at, |roles| role.grant_within(roles, max_roles), pending))
            .await
    }

    async fn revoke_role(&self, id: UserId, role: &Role, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let role = role.clone();
        let pending = PendingRecords::take();
        self.write(move |conn| change_roles(conn, id, at, |roles| roles.remove(&role), pending))
            .await
    }
}

#[async_trait]
impl PurgeStore for SqliteStore {
    async fn delete_ended_sessions(
        &self,
        ended_before: OffsetDateTime,
        idle_since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.write(move |conn| {
            // Refresh tokens go with their session (ON DELETE CASCADE).
            let deleted = conn
                .prepare_cached(
                    "DELETE FROM auth_sessions WHERE revoked_at <= ?1 OR expires_at <= ?1 OR last_used_at <= ?2",
                )?
                .execute(params![micros(ended_before)?, micros(idle_since)?])?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }

    async fn delete_spent_one_time_tokens(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM auth_one_time_tokens WHERE used_at <= ?1 OR expires_at <= ?1")?
                .execute([micros(before)?])?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }
}

#[async_trait]
impl BrowserSessionStore for SqliteStore {
    async fn insert_browser_session(
        &self,
        token: &TokenHash,
        session: SessionId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let token = *token;
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO auth_browser_sessions (hash, session_id, created_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![token.as_bytes().as_slice(), session.to_string(), micros(at)?])?;
            Ok(())
        })
        .await
    }

    async fn find_browser_session(&self, token: &TokenHash) -> Result<Option<Session>, StoreError> {
        let token = *token;
        self.read(move |conn| {
            let sql = format!(
                "SELECT {SESSION_COLUMNS} FROM auth_browser_sessions b
                 JOIN auth_sessions s ON s.id = b.session_id WHERE b.hash = ?1"
            );
            let row = conn
                .prepare_cached(&sql)?
                .query_row([token.as_bytes().as_slice()], rows::RawSession::from_row)
                .optional()?;
            row.map(session_from_row).transpose()
        })
        .await
    }

    async fn delete_browser_session(&self, token: &TokenHash) -> Result<(), StoreError> {
        let token = *token;
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM auth_browser_sessions WHERE hash = ?1")?
                .execute([token.as_bytes().as_slice()])?;
            Ok(())
        })
        .await
    }

    async fn touch_session(&self, session: SessionId, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let touched = conn
                .prepare_cached(
                    "UPDATE auth_sessions SET last_used_at = ?2
                     WHERE id = ?1 AND revoked_at IS NULL AND last_used_at < ?2",
                )?
                .execute(params![session.to_string(), micros(at)?])?;
            Ok(touched == 1)
        })
        .await
    }
}

#[async_trait]
impl SecondFactorStore for SqliteStore {
    async fn insert_totp_factor(&self, factor: &TotpFactor) -> Result<bool, StoreError> {
        let factor = factor.clone();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            // One statement: a pending factor is replaced, a confirmed one is not (the
            // upsert's condition), and an unknown account is the foreign key's error.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let written =
                tx.prepare_cached(
                    "INSERT INTO auth_totp_factors (user_id, sealed_secret, created_at, confirmed_at, last_used_step)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (user_id) DO UPDATE
                     SET sealed_secret = excluded.sealed_secret, created_at = excluded.created_at,
                         confirmed_at = excluded.confirmed_at, last_used_step = excluded.last_used_step
                     WHERE auth_totp_factors.confirmed_at IS NULL",
                )?
                .execute(params![
                    factor.user_id.to_string(),
                    factor.sealed_secret,
                    micros(factor.created_at)?,
                    factor.confirmed_at.map(micros).transpose()?,
                    factor.last_used_step,
                ])? == 1;
            commit_recorded(tx, pending, written)?;
            Ok(written)
        })
        .await
    }

    async fn find_totp_factor(&self, user: UserId) -> Result<Option<TotpFactor>, StoreError> {
        self.read(move |conn| {
            let sql = format!("SELECT {TOTP_FACTOR_COLUMNS} FROM auth_totp_factors WHERE user_id = ?1");
            let row = conn
                .prepare_cached(&sql)?
                .query_row([user.to_string()], rows::RawTotpFactor::from_row)
                .optional()?;
            row.map(totp_factor_from_row).transpose()
        })
        .await
    }

    async fn confirm_totp_factor(
        &self,
        user: UserId,
        sealed_secret: &str,
        step: i64,
        recovery_codes: &[TokenHash],
        at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let (sealed_secret, recovery_codes) = (sealed_secret.to_owned(), recovery_codes.to_vec());
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let (user, at) = (user.to_string(), micros(at)?);
            // One transaction: the factor, its codes and the account's flag change together
            // or not at all (a failure rolls back when `tx` drops).
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let confirmed = tx
                .prepare_cached(
                    "UPDATE auth_totp_factors SET confirmed_at = ?3, last_used_step = ?4
                     WHERE user_id = ?1 AND sealed_secret = ?2 AND confirmed_at IS NULL",
                )?
                .execute(params![user, sealed_secret, at, step])?;
            if confirmed == 0 {
                return Ok(None);
            }
            replace_codes(&tx, &user, &recovery_codes)?;
            let updated = set_requires_second_factor(&tx, &user, true, at)?;
            commit_recorded(tx, pending, true)?;
            Ok(updated)
        })
        .await
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        self.write(move |conn| {
            // The condition and the write are one statement: of concurrent uses of one
            // step, exactly one changes the row.
            let used = conn
                .prepare_cached(
                    "UPDATE auth_totp_factors SET last_used_step = ?2
                     WHERE user_id = ?1 AND confirmed_at IS NOT NULL
                       AND (last_used_step IS NULL OR last_used_step < ?2)",
                )?
                .execute(params![user.to_string(), step])?;
            Ok(used == 1)
        })
        .await
    }

    async fn reseal_totp_factor(&self, user: UserId, current: &str, resealed: &str) -> Result<bool, StoreError> {
        let (current, resealed) = (current.to_owned(), resealed.to_owned());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE auth_totp_factors SET sealed_secret = ?3 WHERE user_id = ?1 AND sealed_secret = ?2",
                )?
                .execute(params![user.to_string(), current, resealed])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete_totp_factor(&self, user: UserId, at: OffsetDateTime) -> Result<Option<User>, StoreError> {
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let (user, at) = (user.to_string(), micros(at)?);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx
                .prepare_cached("DELETE FROM auth_totp_factors WHERE user_id = ?1")?
                .execute([&user])?;
            if deleted == 0 {
                return Ok(None);
            }
            replace_codes(&tx, &user, &[])?;
            let updated = set_requires_second_factor(&tx, &user, false, at)?;
            commit_recorded(tx, pending, true)?;
            Ok(updated)
        })
        .await
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        recovery_codes: &[TokenHash],
        _at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let recovery_codes = recovery_codes.to_vec();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let user = user.to_string();
            // The write transaction holds SQLite's one write lock from the read on, so the
            // factor cannot be deleted between the check and the replacement.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let confirmed = tx
                .prepare_cached("SELECT 1 FROM auth_totp_factors WHERE user_id = ?1 AND confirmed_at IS NOT NULL")?
                .exists([&user])?;
            if !confirmed {
                return Ok(false);
            }
            replace_codes(&tx, &user, &recovery_codes)?;
            commit_recorded(tx, pending, true)?;
            Ok(true)
        })
        .await
    }

    async fn use_recovery_code(&self, user: UserId, code: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError> {
        let code = *code;
        self.write(move |conn| {
            let used = conn
                .prepare_cached(
                    "UPDATE auth_recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND hash = ?2 AND used_at IS NULL",
                )?
                .execute(params![user.to_string(), code.as_bytes().as_slice(), micros(at)?])?;
            Ok(used == 1)
        })
        .await
    }

    async fn count_recovery_codes(&self, user: UserId) -> Result<u32, StoreError> {
        self.read(move |conn| {
            let unused: i64 = conn
                .prepare_cached("SELECT count(*) FROM auth_recovery_codes WHERE user_id = ?1 AND used_at IS NULL")?
                .query_row([user.to_string()], |row| row.get(0))?;
            Ok(u32::try_from(unused).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn insert_login_challenge(&self, hash: &TokenHash, challenge: &LoginChallenge) -> Result<(), StoreError> {
        let (hash, challenge) = (*hash, challenge.clone());
        self.write(move |conn| {
            // One statement: the account's previous challenge (the unique user_id) is
            // replaced in place; a hash held by another account's challenge is the primary
            // key's error, and unknown accounts the foreign key's.
            let written = conn
                .prepare_cached(
                    "INSERT INTO auth_login_challenges
                         (hash, user_id, created_at, expires_at, attempts, token_version, user_agent, ip, first_factor)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (user_id) DO UPDATE
                     SET hash = excluded.hash, created_at = excluded.created_at, expires_at = excluded.expires_at,
                         attempts = excluded.attempts, token_version = excluded.token_version,
                         user_agent = excluded.user_agent, ip = excluded.ip, first_factor = excluded.first_factor
                     WHERE auth_login_challenges.hash <> excluded.hash",
                )?
                .execute(params![
                    hash.as_bytes().as_slice(),
                    challenge.user_id.to_string(),
                    micros(challenge.created_at)?,
                    micros(challenge.expires_at)?,
                    challenge.attempts,
                    challenge.token_version,
                    challenge.user_agent,
                    challenge.ip.map(|ip| ip.to_string()),
                    challenge.first_factor.as_str(),
                ])?;
            // Nothing written: the account's challenge has this very hash already.
            if written == 0 {
                return Err(DbError::Store(StoreError::backend("duplicate login challenge hash")));
            }
            Ok(())
        })
        .await
    }

    async fn find_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError> {
        let hash = *hash;
        self.read(move |conn| {
            let sql = format!("SELECT {LOGIN_CHALLENGE_COLUMNS} FROM auth_login_challenges WHERE hash = ?1");
            let row = conn
                .prepare_cached(&sql)?
                .query_row([hash.as_bytes().as_slice()], rows::RawLoginChallenge::from_row)
                .optional()?;
            row.map(login_challenge_from_row).transpose()
        })
        .await
    }

    async fn record_login_challenge_attempt(&self, hash: &TokenHash) -> Result<Option<u32>, StoreError> {
        let hash = *hash;
        self.write(move |conn| {
            // In an explicit transaction, as every `RETURNING` read with `query_row`: a
            // failed commit is an error, not a count that was never stored (see
            // `update_user`).
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let attempts = tx
                .prepare_cached(
                    "UPDATE auth_login_challenges SET attempts = attempts + 1 WHERE hash = ?1 RETURNING attempts",
                )?
                .query_row([hash.as_bytes().as_slice()], |row| row.get::<_, i64>(0))
                .optional()?;
            let attempts = attempts.map(rows::attempts).transpose()?;
            tx.commit()?;
            Ok(attempts)
        })
        .await
    }

    async fn take_login_challenge(&self, hash: &TokenHash) -> Result<Option<LoginChallenge>, StoreError> {
        let hash = *hash;
        self.write(move |conn| {
            // One statement: of concurrent takers, exactly one gets the row; committed
            // explicitly so that a failed commit is not a challenge handed out and kept.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let sql = format!("DELETE FROM auth_login_challenges WHERE hash = ?1 RETURNING {LOGIN_CHALLENGE_COLUMNS}");
            let row = tx
                .prepare_cached(&sql)?
                .query_row([hash.as_bytes().as_slice()], rows::RawLoginChallenge::from_row)
                .optional()?;
            let challenge = row.map(login_challenge_from_row).transpose()?;
            tx.commit()?;
            Ok(challenge)
        })
        .await
    }
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn insert_user_with_identity(&self, user: &User, identity: &LinkedIdentity) -> Result<(), StoreError> {
        let (user, identity) = (user.clone(), identity.clone());
        let hook = self.on_registration.clone();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            // One transaction: the account and its identity (and the application's rows,
            // by its hook) are written together or not at all.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The identity goes in first, its reference to the account checked at the
            // commit instead (SQLite ends `defer_foreign_keys` with the transaction): when
            // the identity and the email are both taken, as for two first sign-ins of one
            // identity, which carry one email, the conflict told is the identity's, and
            // the service signs the loser in to the account the winner created.
            tx.pragma_update(None, "defer_foreign_keys", true)?;
            if !insert_identity_row(&tx, &identity)? {
                return Err(DbError::DuplicateIdentity);
            }
            if !insert_user_row(&tx, &user)? {
                return Err(DbError::Duplicate);
            }
            if let Some(hook) = hook {
                hook(&tx, &user).map_err(DbError::Hook)?;
            }
            commit_recorded(tx, pending, true)?;
            Ok(())
        })
        .await
    }

    async fn insert_identity(&self, identity: &LinkedIdentity) -> Result<(), StoreError> {
        let identity = identity.clone();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !insert_identity_row(&tx, &identity)? {
                return Err(DbError::DuplicateIdentity);
            }
            commit_recorded(tx, pending, true)
        })
        .await
    }

    async fn find_identity(
        &self,
        provider: &ProviderName,
        subject: &str,
    ) -> Result<Option<LinkedIdentity>, StoreError> {
        let (provider, subject) = (provider.clone(), subject.to_owned());
        self.read(move |conn| {
            let sql = format!("SELECT {IDENTITY_COLUMNS} FROM auth_identities WHERE provider = ?1 AND subject = ?2");
            let row = conn
                .prepare_cached(&sql)?
                .query_row(params![provider.as_str(), subject], rows::RawIdentity::from_row)
                .optional()?;
            row.map(identity_from_row).transpose()
        })
        .await
    }

    async fn list_identities(&self, user: UserId) -> Result<Vec<LinkedIdentity>, StoreError> {
        self.read(move |conn| {
            let sql =
                format!("SELECT {IDENTITY_COLUMNS} FROM auth_identities WHERE user_id = ?1 ORDER BY created_at, id");
            let mut statement = conn.prepare_cached(&sql)?;
            let raw = statement
                .query_map([user.to_string()], rows::RawIdentity::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter().map(identity_from_row).collect()
        })
        .await
    }

    async fn record_identity_use(&self, id: IdentityId, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let used = conn
                .prepare_cached("UPDATE auth_identities SET last_used_at = ?2 WHERE id = ?1")?
                .execute(params![id.to_string(), micros(at)?])?;
            Ok(used == 1)
        })
        .await
    }

    async fn delete_identity(&self, user: UserId, id: IdentityId) -> Result<IdentityRemoval, StoreError> {
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let (user, id) = (user.to_string(), id.to_string());
            // The write transaction holds SQLite's one write lock from its first read to
            // the commit: of two deletions of an account's last two identities, the second
            // runs after the first has committed, sees one identity left, and refuses.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (this_one, all): (i64, i64) = tx
                .prepare_cached(
                    "SELECT count(*) FILTER (WHERE id = ?2), count(*) FROM auth_identities WHERE user_id = ?1",
                )?
                .query_row(params![user, id], |row| Ok((row.get(0)?, row.get(1)?)))?;
            if this_one == 0 {
                return Ok(IdentityRemoval::NotFound);
            }
            let has_password = tx
                .prepare_cached("SELECT password_hash IS NOT NULL FROM auth_users WHERE id = ?1")?
                .query_row([&user], |row| row.get::<_, bool>(0))
                .optional()?
                .unwrap_or(false);
            let passkeys: i64 = tx
                .prepare_cached("SELECT count(*) FROM auth_passkeys WHERE user_id = ?1")?
                .query_row([&user], |row| row.get(0))?;
            if !has_password && all < 2 && passkeys == 0 {
                return Ok(IdentityRemoval::LastSignInMethod);
            }
            tx.prepare_cached("DELETE FROM auth_identities WHERE id = ?1 AND user_id = ?2")?
                .execute(params![id, user])?;
            commit_recorded(tx, pending, true)?;
            Ok(IdentityRemoval::Removed)
        })
        .await
    }

    async fn insert_login_state(&self, state: &TokenHash, record: &ExternalLoginState) -> Result<(), StoreError> {
        let (state, record) = (*state, record.clone());
        self.write(move |conn| {
            let (purpose, user_id, session_id) = rows::purpose_columns(&record.purpose)?;
            // A hash already stored is the primary key's error.
            conn.prepare_cached(
                "INSERT INTO auth_external_login_states
                     (hash, binding_hash, provider, purpose, user_id, session_id, next, created_at, expires_at,
                      exchange_challenge)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                state.as_bytes().as_slice(),
                record.binding.as_bytes().as_slice(),
                record.provider.as_str(),
                purpose,
                user_id,
                session_id,
                record.next.as_str(),
                micros(record.created_at)?,
                micros(record.expires_at)?,
                record
                    .exchange_challenge
                    .as_ref()
                    .map(|challenge| challenge.as_bytes().as_slice()),
            ])?;
            Ok(())
        })
        .await
    }

    async fn take_login_state(&self, state: &TokenHash) -> Result<Option<ExternalLoginState>, StoreError> {
        let state = *state;
        self.write(move |conn| {
            // One statement: of concurrent takers, exactly one gets the row; committed
            // explicitly so that a failed commit is not a state handed out and kept.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let sql = format!("DELETE FROM auth_external_login_states WHERE hash = ?1 RETURNING {LOGIN_STATE_COLUMNS}");
            let row = tx
                .prepare_cached(&sql)?
                .query_row([state.as_bytes().as_slice()], rows::RawLoginState::from_row)
                .optional()?;
            let record = row.map(login_state_from_row).transpose()?;
            tx.commit()?;
            Ok(record)
        })
        .await
    }

    async fn insert_login_code(&self, code: &TokenHash, record: &ExternalLoginCode) -> Result<(), StoreError> {
        let (code, record) = (*code, record.clone());
        self.write(move |conn| {
            // An unknown account or identity is a foreign key's error, a hash already
            // stored the primary key's.
            conn.prepare_cached(
                "INSERT INTO auth_external_login_codes
                     (hash, user_id, identity_id, token_version, created_at, expires_at, binding_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                code.as_bytes().as_slice(),
                record.user_id.to_string(),
                record.identity_id.to_string(),
                record.token_version,
                micros(record.created_at)?,
                micros(record.expires_at)?,
                record.binding.as_bytes().as_slice(),
            ])?;
            Ok(())
        })
        .await
    }

    async fn take_login_code(&self, code: &TokenHash) -> Result<Option<ExternalLoginCode>, StoreError> {
        let code = *code;
        self.write(move |conn| {
            // As `take_login_state`: one statement, committed explicitly.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let sql = format!("DELETE FROM auth_external_login_codes WHERE hash = ?1 RETURNING {LOGIN_CODE_COLUMNS}");
            let row = tx
                .prepare_cached(&sql)?
                .query_row([code.as_bytes().as_slice()], rows::RawLoginCode::from_row)
                .optional()?;
            let record = row.map(login_code_from_row).transpose()?;
            tx.commit()?;
            Ok(record)
        })
        .await
    }

    async fn delete_expired_logins(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let before = micros(before)?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let states = tx
                .prepare_cached("DELETE FROM auth_external_login_states WHERE expires_at < ?1")?
                .execute([before])?;
            let codes = tx
                .prepare_cached("DELETE FROM auth_external_login_codes WHERE expires_at < ?1")?
                .execute([before])?;
            tx.commit()?;
            Ok(u64::try_from(states + codes).unwrap_or(u64::MAX))
        })
        .await
    }
}

/// Replaces the account's recovery codes (used or not) with `codes`, inside the caller's
/// transaction. A hash given twice is stored once.
fn replace_codes(tx: &rusqlite::Transaction<'_>, user: &str, codes: &[TokenHash]) -> Result<(), DbError> {
    tx.prepare_cached("DELETE FROM auth_recovery_codes WHERE user_id = ?1")?
        .execute([user])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO auth_recovery_codes (user_id, hash, used_at) VALUES (?1, ?2, NULL)
         ON CONFLICT (user_id, hash) DO NOTHING",
    )?;
    for code in codes {
        insert.execute(params![user, code.as_bytes().as_slice()])?;
    }
    Ok(())
}

/// Sets the account's `requires_second_factor` and `updated_at` (microseconds), inside the
/// caller's transaction: the account as it is now, or `None` if there is none.
fn set_requires_second_factor(
    tx: &rusqlite::Transaction<'_>,
    user: &str,
    required: bool,
    at: i64,
) -> Result<Option<User>, DbError> {
    let sql = format!(
        "UPDATE auth_users SET requires_second_factor = ?3, updated_at = ?2
         WHERE id = ?1 RETURNING {USER_COLUMNS}"
    );
    let row = tx
        .prepare_cached(&sql)?
        .query_row(params![user, at, required], rows::RawUser::from_row)
        .optional()?;
    row.map(user_from_row).transpose()
}

/// Whether a SQLite failure is about reaching the database rather than the request:
/// locks held too long elsewhere, I/O, a full disk, a file that cannot be opened.
fn is_unavailable(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::SystemIoFailure
                | ErrorCode::DiskFull
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
        )
    )
}

/// The columns of `auth_email_changes` but its hashes, in the order [`email_change_from_row`]
/// reads them.
const EMAIL_CHANGE_COLUMNS: &str =
    "user_id, old_email, new_email, session_id, token_version, requested_at, confirm_expires_at, undo_expires_at";

fn email_change_from_row(row: &rusqlite::Row<'_>) -> Result<EmailChange, DbError> {
    let user_id: UserId = rows::uuid(&row.get::<_, String>(0)?)?;
    let session_id: Option<SessionId> = row
        .get::<_, Option<String>>(3)?
        .map(|text| rows::uuid(&text))
        .transpose()?;
    let old_email = auth_core::stored::email(&row.get::<_, String>(1)?)?;
    let new_email = auth_core::stored::email(&row.get::<_, String>(2)?)?;
    let requested_at = rows::from_micros(row.get(5)?)?;
    let user = User::existing(user_id, old_email, requested_at).with_token_version(row.get(4)?);
    let change = EmailChange::new(
        &user,
        new_email,
        session_id,
        requested_at,
        rows::from_micros(row.get(6)?)?,
        rows::from_micros(row.get(7)?)?,
    );
    Ok(change)
}

/// Sets the account's address, verified at `at`, and bumps its token version, inside the
/// caller's transaction. `Duplicate` when another account has the address: the unique
/// constraint decides.
fn switch_email(
    tx: &rusqlite::Transaction<'_>,
    user: UserId,
    email: &Email,
    at: OffsetDateTime,
) -> Result<Option<User>, DbError> {
    let sql = format!(
        "UPDATE auth_users SET email = ?2, email_verified_at = ?3, token_version = token_version + 1, updated_at = ?3
         WHERE id = ?1 RETURNING {USER_COLUMNS}"
    );
    let row = tx
        .prepare_cached(&sql)?
        .query_row(
            params![user.to_string(), email.as_str(), micros(at)?],
            rows::RawUser::from_row,
        )
        .optional()
        .map_err(|error| match error {
            rusqlite::Error::SqliteFailure(failure, _)
                if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                DbError::Duplicate
            }
            other => DbError::Sqlite(other),
        })?;
    row.map(user_from_row).transpose()
}

#[async_trait]
impl EmailChangeStore for SqliteStore {
    async fn insert_email_change(
        &self,
        change: &EmailChange,
        confirm: &TokenHash,
        undo: &TokenHash,
    ) -> Result<(), StoreError> {
        let (change, confirm, undo) = (change.clone(), *confirm, *undo);
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached("DELETE FROM auth_email_changes WHERE user_id = ?1 AND undo_expires_at <= ?2")?
                .execute(params![change.user_id.to_string(), micros(change.requested_at)?])?;
            tx.prepare_cached(
                "INSERT INTO auth_email_changes (confirm_hash, undo_hash, user_id, old_email, new_email, session_id,
                                                 token_version, requested_at, confirm_expires_at, undo_expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                confirm.as_bytes().as_slice(),
                undo.as_bytes().as_slice(),
                change.user_id.to_string(),
                change.old_email.as_str(),
                change.new_email.as_str(),
                change.session_id.map(|id| id.to_string()),
                change.token_version,
                micros(change.requested_at)?,
                micros(change.confirm_expires_at)?,
                micros(change.undo_expires_at)?,
            ])?;
            commit_recorded(tx, pending, true)?;
            Ok(())
        })
        .await
    }

    async fn confirm_email_change(
        &self,
        confirm: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Option<EmailConfirmation>, StoreError> {
        let confirm = *confirm;
        let mut pending = PendingRecords::take();
        self.write(move |conn| {
            // One writer, held from the read on: the read-check-write is atomic.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let change = tx
                .prepare_cached(&format!(
                    "SELECT {EMAIL_CHANGE_COLUMNS} FROM auth_email_changes
                     WHERE confirm_hash = ?1 AND confirmed_at IS NULL AND undone_at IS NULL"
                ))?
                .query_row(params![confirm.as_bytes().as_slice()], |row| {
                    Ok(email_change_from_row(row))
                })
                .optional()?
                .transpose()?;
            let Some(change) = change else {
                return Ok(None);
            };
            if at >= change.confirm_expires_at {
                return Ok(Some(EmailConfirmation::Expired(change)));
            }
            let version: Option<i64> = tx
                .prepare_cached("SELECT token_version FROM auth_users WHERE id = ?1")?
                .query_row(params![change.user_id.to_string()], |row| row.get(0))
                .optional()?;
            if version != Some(change.token_version) {
                return Ok(Some(EmailConfirmation::Stale(change)));
            }
            let Some(user) = switch_email(&tx, change.user_id, &change.new_email, at)? else {
                return Ok(Some(EmailConfirmation::Stale(change)));
            };
            tx.prepare_cached("UPDATE auth_email_changes SET confirmed_at = ?2 WHERE confirm_hash = ?1")?
                .execute(params![confirm.as_bytes().as_slice(), micros(at)?])?;
            if let Some(pending) = &mut pending {
                pending.about(user.id);
            }
            commit_recorded(tx, pending, true)?;
            Ok(Some(EmailConfirmation::Switched { change, user }))
        })
        .await
    }

    async fn undo_email_change(
        &self,
        undo: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<Option<(EmailChange, User)>, StoreError> {
        let undo = *undo;
        let mut pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The rowid keeps the order of insertion (a new row's is above every other's).
            let found = tx
                .prepare_cached(&format!(
                    "SELECT {EMAIL_CHANGE_COLUMNS}, rowid FROM auth_email_changes
                     WHERE undo_hash = ?1 AND undone_at IS NULL AND undo_expires_at > ?2"
                ))?
                .query_row(params![undo.as_bytes().as_slice(), micros(at)?], |row| {
                    Ok(email_change_from_row(row).map(|change| (change, row.get::<_, i64>(8))))
                })
                .optional()?
                .transpose()?;
            let Some((change, rowid)) = found else {
                return Ok(None);
            };
            let rowid = rowid?;
            let Some(user) = switch_email(&tx, change.user_id, &change.old_email, at)? else {
                return Ok(None);
            };
            tx.prepare_cached(
                "UPDATE auth_email_changes SET undone_at = ?3
                 WHERE user_id = ?1 AND rowid >= ?2 AND undone_at IS NULL",
            )?
            .execute(params![change.user_id.to_string(), rowid, micros(at)?])?;
            if let Some(pending) = &mut pending {
                pending.about(user.id);
            }
            commit_recorded(tx, pending, true)?;
            Ok(Some((change, user)))
        })
        .await
    }
}

#[async_trait]
impl AccountDeletionStore for SqliteStore {
    async fn delete_user(&self, id: UserId, pseudonym: &EmailDigest) -> Result<Option<User>, StoreError> {
        let pseudonym = pseudonym.to_string();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let user = tx
                .prepare_cached(&format!("SELECT {USER_COLUMNS} FROM auth_users WHERE id = ?1"))?
                .query_row(params![id.to_string()], rows::RawUser::from_row)
                .optional()?
                .map(user_from_row)
                .transpose()?;
            if user.is_none() {
                return Ok(None);
            }
            // Sessions hold no foreign key to their account (an application may keep its
            // accounts elsewhere) and one-time tokens none either (decoys name no
            // account): deleted by hand. Refresh tokens and browser sessions go with their
            // sessions, everything else with the account (ON DELETE CASCADE).
            tx.prepare_cached("DELETE FROM auth_sessions WHERE user_id = ?1")?
                .execute(params![id.to_string()])?;
            tx.prepare_cached("DELETE FROM auth_one_time_tokens WHERE user_id = ?1")?
                .execute(params![id.to_string()])?;
            tx.prepare_cached("DELETE FROM auth_users WHERE id = ?1")?
                .execute(params![id.to_string()])?;
            // Its audit records stay, naming it by the pseudonym only.
            tx.prepare_cached(
                "UPDATE auth_audit_events SET user_id = NULL, email_digest = ?2, user_agent = NULL, ip = NULL
                 WHERE user_id = ?1",
            )?
            .execute(params![id.to_string(), pseudonym])?;
            commit_recorded(tx, pending, true)?;
            Ok(user)
        })
        .await
    }
}

const AUDIT_COLUMNS: &str = "id, at, kind, action, outcome, reason, user_id, email_digest, session_id, user_agent, ip";

fn audit_record_from_row(row: &rusqlite::Row<'_>) -> Result<AuditRecord, DbError> {
    let id: EventId = rows::uuid(&row.get::<_, String>(0)?)?;
    let user_id: Option<UserId> = row
        .get::<_, Option<String>>(6)?
        .map(|text| rows::uuid(&text))
        .transpose()?;
    let session_id: Option<SessionId> = row
        .get::<_, Option<String>>(8)?
        .map(|text| rows::uuid(&text))
        .transpose()?;
    let ip = row
        .get::<_, Option<String>>(10)?
        .map(|text| auth_core::stored::ip(&text))
        .transpose()?;
    Ok(AuditRecord::stored(
        id,
        rows::from_micros(row.get(1)?)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        (user_id, row.get(7)?),
        session_id,
        (row.get(9)?, ip),
    ))
}

#[async_trait]
impl AuditLogStore for SqliteStore {
    async fn insert_audit_records(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let records = records.to_vec();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            insert_audit_rows(&tx, &records)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn list_audit_records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM auth_audit_events
                 WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR kind = ?2) AND (?3 IS NULL OR id > ?3)
                 ORDER BY id LIMIT ?4"
            );
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(
                params![
                    query.user.map(|id| id.to_string()),
                    query.kind,
                    query.after.map(|id| id.to_string()),
                    i64::from(query.limit),
                ],
                |row| Ok(audit_record_from_row(row)),
            )?;
            let mut records = Vec::new();
            for row in rows {
                records.push(row??);
            }
            Ok(records)
        })
        .await
    }

    async fn delete_audit_records_before(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM auth_audit_events WHERE at < ?1")?
                .execute(params![micros(before)?])?;
            Ok(deleted as u64)
        })
        .await
    }
}

#[async_trait]
impl PasskeyStore for SqliteStore {
    async fn insert_passkey(&self, passkey: &PasskeyCredential) -> Result<(), StoreError> {
        let passkey = passkey.clone();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The credential id's constraint decides (named, so any other failure, an
            // unknown account's foreign key or a reused id, stays an error).
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO auth_passkeys (id, user_id, credential_id, credential, counter, name, created_at,
                                                last_used_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (credential_id) DO NOTHING",
                )?
                .execute(params![
                    passkey.id.to_string(),
                    passkey.user_id.to_string(),
                    passkey.credential_id,
                    passkey.credential,
                    i64::from(passkey.counter),
                    passkey.name,
                    micros(passkey.created_at)?,
                    passkey.last_used_at.map(micros).transpose()?,
                ])?;
            if inserted == 0 {
                return Err(DbError::Store(StoreError::DuplicateCredential));
            }
            commit_recorded(tx, pending, true)
        })
        .await
    }

    async fn find_passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyCredential>, StoreError> {
        let credential_id = credential_id.to_vec();
        self.read(move |conn| {
            let sql = format!("SELECT {PASSKEY_COLUMNS} FROM auth_passkeys WHERE credential_id = ?1");
            let row = conn
                .prepare_cached(&sql)?
                .query_row([&credential_id], rows::RawPasskey::from_row)
                .optional()?;
            row.map(rows::passkey_from_row).transpose()
        })
        .await
    }

    async fn list_passkeys(&self, user: UserId) -> Result<Vec<PasskeyCredential>, StoreError> {
        self.read(move |conn| {
            let sql = format!("SELECT {PASSKEY_COLUMNS} FROM auth_passkeys WHERE user_id = ?1 ORDER BY created_at, id");
            let mut statement = conn.prepare_cached(&sql)?;
            let raw = statement
                .query_map([user.to_string()], rows::RawPasskey::from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            raw.into_iter().map(rows::passkey_from_row).collect()
        })
        .await
    }

    async fn record_passkey_use(
        &self,
        id: PasskeyId,
        if_counter: u32,
        credential: &str,
        counter: u32,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let credential = credential.to_owned();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let used = tx
                .prepare_cached(
                    "UPDATE auth_passkeys SET credential = ?3, counter = ?4, last_used_at = ?5
                     WHERE id = ?1 AND counter = ?2",
                )?
                .execute(params![
                    id.to_string(),
                    i64::from(if_counter),
                    credential,
                    i64::from(counter),
                    micros(at)?
                ])?;
            tx.commit()?;
            Ok(used == 1)
        })
        .await
    }

    async fn rename_passkey(&self, user: UserId, id: PasskeyId, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let renamed = tx
                .prepare_cached("UPDATE auth_passkeys SET name = ?3 WHERE id = ?2 AND user_id = ?1")?
                .execute(params![user.to_string(), id.to_string(), name])?;
            commit_recorded(tx, pending, renamed == 1)?;
            Ok(renamed == 1)
        })
        .await
    }

    async fn delete_passkey(&self, user: UserId, id: PasskeyId) -> Result<PasskeyRemoval, StoreError> {
        let pending = PendingRecords::take();
        self.write(move |conn| {
            let (user, id) = (user.to_string(), id.to_string());
            // One write transaction from the first read to the commit: of two deletions of
            // an account's last two ways to sign in, the second sees what the first left.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let (this_one, all): (i64, i64) = tx
                .prepare_cached(
                    "SELECT count(*) FILTER (WHERE id = ?2), count(*) FROM auth_passkeys WHERE user_id = ?1",
                )?
                .query_row(params![user, id], |row| Ok((row.get(0)?, row.get(1)?)))?;
            if this_one == 0 {
                return Ok(PasskeyRemoval::NotFound);
            }
            let has_password = tx
                .prepare_cached("SELECT password_hash IS NOT NULL FROM auth_users WHERE id = ?1")?
                .query_row([&user], |row| row.get::<_, bool>(0))
                .optional()?
                .unwrap_or(false);
            let identities: i64 = tx
                .prepare_cached("SELECT count(*) FROM auth_identities WHERE user_id = ?1")?
                .query_row([&user], |row| row.get(0))?;
            if !has_password && identities == 0 && all < 2 {
                return Ok(PasskeyRemoval::LastSignInMethod);
            }
            tx.prepare_cached("DELETE FROM auth_passkeys WHERE id = ?1 AND user_id = ?2")?
                .execute(params![id, user])?;
            commit_recorded(tx, pending, true)?;
            Ok(PasskeyRemoval::Removed)
        })
        .await
    }

    async fn insert_passkey_ceremony(&self, token: &TokenHash, ceremony: &PasskeyCeremony) -> Result<(), StoreError> {
        let (token, ceremony) = (*token, ceremony.clone());
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "INSERT INTO auth_passkey_ceremonies (token_hash, kind, user_id, state, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                token.as_bytes().as_slice(),
                ceremony.kind.as_str(),
                ceremony.user_id.map(|id| id.to_string()),
                ceremony.state,
                micros(ceremony.created_at)?,
                micros(ceremony.expires_at)?,
            ])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn take_passkey_ceremony(&self, token: &TokenHash) -> Result<Option<PasskeyCeremony>, StoreError> {
        let token = *token;
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let row = tx
                .prepare_cached(
                    "DELETE FROM auth_passkey_ceremonies WHERE token_hash = ?1
                     RETURNING kind, user_id, state, created_at, expires_at",
                )?
                .query_row([token.as_bytes().as_slice()], rows::RawPasskeyCeremony::from_row)
                .optional()?;
            tx.commit()?;
            row.map(rows::passkey_ceremony_from_row).transpose()
        })
        .await
    }

    async fn delete_expired_passkey_ceremonies(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        self.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM auth_passkey_ceremonies WHERE expires_at < ?1")?
                .execute([micros(before)?])?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .await
    }
}
