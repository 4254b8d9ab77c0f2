//! Shared by this crate's test binaries: the server to test against, and a fresh schema
//! per test.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::{Once, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auth_store_postgres::PostgresStore;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

/// The variable naming the server the tests use (the README documents it).
pub const URL_VARIABLE: &str = "AUTH_TEST_DATABASE_URL";
/// Without it: the local server `.ci/run` guarantees.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Prefix of the schemas tests create; a schema's name carries its creation time, so
/// each test process drops the ones older than an hour.
const PREFIX: &str = "auth_test_";

pub fn url() -> String {
    std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A small pool on the test server, or `None` (with a notice) when it cannot be reached
/// outside CI. In CI (`CI=true`) an unreachable server fails the test: a missing service
/// is never a silent skip there.
pub async fn pool() -> Option<PgPool> {
    let url = url();
    let connected = if server_answers(&url) {
        PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
    } else {
        Err(sqlx::Error::PoolTimedOut)
    };
    match connected {
        Ok(pool) => Some(pool),
        Err(error) if in_ci() => panic!("PostgreSQL at {url} is required in CI: {error}"),
        // Something answers but refuses us (credentials, database): a configuration error
        // to fix, not an absent server to skip.
        Err(error) if server_answers(&url) => panic!("PostgreSQL at {url} refused the tests: {error}"),
        Err(error) => {
            eprintln!(
                "notice: skipping a PostgreSQL test: {url} does not answer ({error}); set {URL_VARIABLE} to run it"
            );
            None
        }
    }
}

/// Whether this is CI (`CI` set to anything but empty, `0` or `false`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}

/// Whether anything listens at the URL's address: asked once per process, so that a
/// laptop without PostgreSQL skips every test at once instead of waiting on each.
fn server_answers(url: &str) -> bool {
    static ANSWERS: OnceLock<bool> = OnceLock::new();
    *ANSWERS.get_or_init(|| {
        let Ok(options) = PgConnectOptions::from_str(url) else {
            return false;
        };
        let address = format!("{}:{}", options.get_host(), options.get_port());
        address
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.any(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()))
    })
}

/// A store in a new schema of its own, migrated; `None` if the server is absent outside CI.
pub async fn fresh_store() -> Option<PostgresStore> {
    let pool = pool().await?;
    sweep(&pool).await;
    let store = PostgresStore::new(pool).with_schema(&fresh_schema_name()).unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

/// A migrated store in a fresh schema, on its own small pool with `options` (a proxy's
/// address, an application name, a search path) and a one-second acquire timeout.
pub async fn store_with(options: PgConnectOptions) -> PostgresStore {
    let pool = PgPoolOptions::new()
        .max_connections(3)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(options)
        .await
        .unwrap();
    let store = PostgresStore::new(pool).with_schema(&fresh_schema_name()).unwrap();
    store.migrate().await.unwrap();
    store
}

pub fn fresh_schema_name() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    format!("{PREFIX}{now}_{}", uuid::Uuid::new_v4().simple())
}

/// Drops the schemas of test runs more than an hour old, once per process.
async fn sweep(pool: &PgPool) {
    static SWEEP: Once = Once::new();
    let mut first = false;
    SWEEP.call_once(|| first = true);
    if !first {
        return;
    }
    let hour_ago = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() - 3600;
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)")
            .bind(PREFIX)
            .fetch_all(pool)
            .await
            .unwrap();
    for schema in schemas {
        let created = schema[PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|t| t.parse::<u64>().ok());
        if created.is_some_and(|t| t < hour_ago) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(pool)
                .await;
        }
    }
}
