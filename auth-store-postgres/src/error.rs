//! From sqlx's errors to the store's: reaching the database (`Unavailable`, HTTP 503)
//! apart from everything else, and the unique constraints of the email and of an external
//! identity as typed conflicts.

use auth_core::StoreError;
use sqlx::error::ErrorKind;

/// The name given to the email's unique constraint in the first migration.
const EMAIL_CONSTRAINT: &str = "users_email_key";

/// The name given to the (provider, subject) unique constraint in migration 6.
const IDENTITY_CONSTRAINT: &str = "identities_provider_subject_key";

/// A schema name that is not a plain lowercase SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schema name {0:?}: use a lowercase identifier ([a-z_][a-z0-9_]*, at most 63 bytes, not pg_*)")]
pub struct SchemaNameError(pub String);

/// Why [`PostgresStore::migrate`](crate::PostgresStore::migrate) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The schema was migrated by a newer release of this crate (it records version
    /// `found`, this release knows up to `supported`); nothing was changed.
    #[error(
        "the auth schema has migration {found}, newer than this release supports ({supported}): \
         upgrade auth-store-postgres instead of running an older release against it"
    )]
    SchemaTooNew {
        /// The unknown version found in the database.
        found: i64,
        /// The newest version this release knows.
        supported: i64,
    },
    /// The database could not be reached.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A migration failed, or was changed after it was applied.
    #[error("migrating the auth schema failed")]
    Failed(#[source] sqlx::migrate::MigrateError),
}

/// Whether `error` is about reaching the database rather than about the request: a lost
/// connection, or a transient condition of the server.
pub(crate) fn is_unavailable(error: &sqlx::Error) -> bool {
    if is_connection_lost(error) {
        return true;
    }
    match error {
        sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // Transient conditions of the server, not faults of the request (a retry may
            // succeed): 57P03 starting up or shutting down; 57014 statement timeout; 55P03
            // lock timeout; 40001 and 40P01 serialization failure and deadlock; 25006 a
            // read-only server (a standby after failover); 53100, 53200, 53300 disk full,
            // out of memory, too many connections.
            matches!(
                code.as_ref(),
                "57P03" | "57014" | "55P03" | "40001" | "40P01" | "25006" | "53100" | "53200" | "53300"
            )
        }),
        _ => false,
    }
}

/// Whether `error` says the connection itself is gone (the server ended it, or the
/// socket broke), so that a statement that changes nothing may run again on another.
pub(crate) fn is_connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        // Class 08 connection exceptions; 57P01-57P02 the server or an administrator
        // ended the backend; 57P05 and 25P03 the server's idle timeouts.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P05" | "25P03")
        }),
        _ => false,
    }
}

pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    if is_unavailable(&error) {
        StoreError::unavailable(error)
    } else {
        StoreError::backend(error)
    }
}

/// As [`store_error`], except that a violation of the email's unique constraint (SQLSTATE
/// 23505 on that constraint, read from the error's fields, not its message) is the typed
/// conflict.
pub(crate) fn insert_user_error(error: sqlx::Error) -> StoreError {
    if violates(&error, EMAIL_CONSTRAINT) {
        return StoreError::DuplicateEmail;
    }
    store_error(error)
}

/// As [`store_error`], except that a violation of the (provider, subject) unique
/// constraint of `identities` (23505 on that constraint, read from the error's fields) is
/// [`StoreError::DuplicateIdentity`].
pub(crate) fn insert_identity_error(error: sqlx::Error) -> StoreError {
    if violates(&error, IDENTITY_CONSTRAINT) {
        return StoreError::DuplicateIdentity;
    }
    store_error(error)
}

/// Whether `error` is a unique violation of `constraint`.
fn violates(error: &sqlx::Error, constraint: &str) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.kind() == ErrorKind::UniqueViolation && db.constraint() == Some(constraint))
}
