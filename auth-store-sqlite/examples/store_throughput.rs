//! Store-alone throughput (no hashing): registrations and login lookups per second on a
//! database holding `N` accounts.
//!
//! ```sh
//! cargo run --release -p auth-store-sqlite --example store_throughput -- 1000
//! cargo run --release -p auth-store-sqlite --example store_throughput -- 100000
//! ```
//!
//! Registration inserts `N` accounts from 16 concurrent tasks (as a server would) into a
//! fresh file; lookup then runs 50,000 `find_user_by_email` of random existing accounts
//! from 16 tasks. Hashing is excluded: each account gets a fixed PHC string.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measurement script

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use auth_core::{Email, HashedPassword, User, UserStore};
use auth_store_sqlite::SqliteStore;
use time::OffsetDateTime;

const TASKS: usize = 16;
const LOOKUPS: usize = 50_000;

fn email(i: usize) -> Email {
    Email::parse(&format!("user{i}@example.com")).unwrap()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).map_or(1000, |arg| arg.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("auth.db")).await.unwrap();
    let hash = HashedPassword::new(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
    );

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let inserts: Vec<_> = (0..TASKS)
        .map(|_| {
            let (store, next, hash) = (store.clone(), next.clone(), hash.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let user = User::new(email(i), Some(hash.clone()), OffsetDateTime::now_utc());
                    store.insert_user(&user).await.unwrap();
                }
            })
        })
        .collect();
    for task in inserts {
        task.await.unwrap();
    }
    let insert_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let lookups: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for k in 0..LOOKUPS / TASKS {
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
    let lookup_secs = started.elapsed().as_secs_f64();
    println!(
        "sqlite users={n} registrations/s={:.0} lookups/s={:.0} (insert {:.2} s, {} lookups {:.2} s)",
        n as f64 / insert_secs,
        (LOOKUPS / TASKS * TASKS) as f64 / lookup_secs,
        insert_secs,
        LOOKUPS / TASKS * TASKS,
        lookup_secs
    );
}
