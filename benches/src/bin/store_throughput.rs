//! Store-alone throughput (no hashing): registrations and login lookups per second on a
//! store holding `N` accounts.
//!
//! ```sh
//! cargo run --release -p benches --bin store_throughput -- sqlite 100000
//! cargo run --release -p benches --bin store_throughput -- postgres 100000   # DATABASE_URL or the local server
//! cargo run --release -p benches --bin store_throughput -- memory 100000
//! ```
//!
//! Registration inserts `N` accounts from 16 concurrent tasks (as a server would) into an
//! empty store (a new SQLite file; a new PostgreSQL schema, dropped afterwards); lookup
//! then runs 50,000 `find_user_by_email` of existing accounts from 16 tasks. Each account
//! gets a fixed PHC string: hashing is excluded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measurement script

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use auth_core::{Email, HashedPassword, MemoryStore, User, UserStore};
use auth_store_postgres::PostgresStore;
use auth_store_sqlite::SqliteStore;
use time::OffsetDateTime;

const TASKS: usize = 16;
const LOOKUPS: usize = 50_000;
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

fn email(i: usize) -> Email {
    Email::parse(&format!("user{i}@example.com")).unwrap()
}

/// (registrations per second, lookups per second).
async fn measure(store: Arc<dyn UserStore>, n: usize) -> (f64, f64) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let inserts: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, next) = (store.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let user = User::new(email(i), Some(HashedPassword::new(HASH)), OffsetDateTime::now_utc());
                    store.insert_user(&user).await.unwrap();
                }
            })
        })
        .collect();
    for task in inserts {
        task.await.unwrap();
    }
    let registrations = n as f64 / started.elapsed().as_secs_f64();

    let per_task = LOOKUPS / TASKS;
    let started = Instant::now();
    let lookups: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for k in 0..per_task {
                    // A cheap spread over all accounts, different per task.
                    let i = (k * 7919 + task * 104_729) % n;
                    assert!(store.find_user_by_email(&email(i)).await.unwrap().is_some());
                }
            })
        })
        .collect();
    for task in lookups {
        task.await.unwrap();
    }
    let lookups = (per_task * TASKS) as f64 / started.elapsed().as_secs_f64();
    (registrations, lookups)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".to_owned());
    let n: usize = args
        .next()
        .map_or(1000, |arg| arg.parse().expect("N: a number of accounts"));
    let dir = tempfile::tempdir().unwrap();
    let (registrations, lookups) = match backend.as_str() {
        "memory" => measure(Arc::new(MemoryStore::new()), n).await,
        "sqlite" => {
            let store = SqliteStore::open(dir.path().join("auth.db")).await.unwrap();
            measure(Arc::new(store), n).await
        }
        "postgres" => {
            let url = std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let schema = format!("auth_bench_{}", std::process::id());
            let store = PostgresStore::connect(&url)
                .await
                .unwrap()
                .with_schema(&schema)
                .unwrap();
            store.migrate().await.unwrap();
            let pool = store.pool().clone();
            let figures = measure(Arc::new(store), n).await;
            // Built from our own digits only: nothing to quote.
            let drop_schema = format!("DROP SCHEMA {schema} CASCADE");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop_schema)).execute(&pool).await;
            figures
        }
        other => panic!("unknown backend {other:?}: memory, sqlite or postgres"),
    };
    println!("{backend} users={n} registrations/s={registrations:.0} lookups/s={lookups:.0}");
}
