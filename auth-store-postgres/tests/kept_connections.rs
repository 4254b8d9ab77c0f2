//! The connections the store keeps out of its pool between reads (so that a session check
//! costs one round trip, not sqlx's three): at most half the pool, taken in turns, given
//! back when the pool closes. That a kept connection the server ended is replaced is
//! `outage.rs`'s `backends_killed_by_the_server_are_replaced_transparently`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::str::FromStr;
use std::time::Duration;

use auth_core::UserStore;
use auth_core::conformance::{sample_user, unique_email};
use auth_store_postgres::PostgresStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A migrated store in a fresh schema on a pool of `max` connections.
async fn store_on_pool_of(max: u32, acquire_timeout: Duration) -> Option<PostgresStore> {
    drop(common::pool().await?);
    let pool = PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire_timeout)
        .connect_with(PgConnectOptions::from_str(&common::url()).unwrap())
        .await
        .unwrap();
    let store = PostgresStore::new(pool)
        .with_schema(&common::fresh_schema_name())
        .unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

/// Connections out of the pool: in use, or kept by the store.
fn checked_out(store: &PostgresStore) -> u32 {
    let pool = store.pool();
    pool.size() - u32::try_from(pool.num_idle()).unwrap()
}

/// Reads `user` `count` times at once, each in a task of its own, and checks each answer.
async fn read_at_once(store: &PostgresStore, user: &auth_core::User, count: usize, context: &str) {
    let reads: Vec<_> = (0..count)
        .map(|_| {
            let (store, id) = (store.clone(), user.id);
            tokio::spawn(async move { store.find_user_by_id(id).await })
        })
        .collect();
    for read in reads {
        let found = read.await.unwrap();
        assert_eq!(found.unwrap().unwrap().id, user.id, "{context}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_keep_at_most_half_the_pool_and_writes_find_the_other_half() {
    let Some(store) = store_on_pool_of(4, Duration::from_secs(10)).await else {
        return;
    };
    let user = sample_user(unique_email("kept"));
    store.insert_user(&user).await.unwrap();

    for round in 0..3 {
        read_at_once(&store, &user, 16, &format!("round {round}")).await;
    }

    // The pool takes its connections back in tasks of its own: wait for them.
    let settled = async {
        while checked_out(&store) > 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), settled)
        .await
        .expect("at most half the pool (2 of 4) stays out with the store");
    assert!(checked_out(&store) >= 1, "the reads kept a connection");

    // Two long transactions get the two others at once.
    let first = tokio::time::timeout(Duration::from_secs(5), store.pool().begin()).await;
    let second = tokio::time::timeout(Duration::from_secs(5), store.pool().begin()).await;
    let (mut first, second) = (first.unwrap().unwrap(), second.unwrap().unwrap());
    // And reads still run, on the kept connections.
    assert_eq!(store.find_user_by_id(user.id).await.unwrap().unwrap().id, user.id);
    sqlx::query("SELECT 1").execute(&mut *first).await.unwrap();
    drop((first, second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_beyond_the_kept_connections_wait_for_a_turn_not_for_an_exhausted_pool() {
    // A short acquire timeout: a read left waiting for the pool fails within the test.
    let Some(store) = store_on_pool_of(2, Duration::from_secs(2)).await else {
        return;
    };
    let user = sample_user(unique_email("waiting"));
    store.insert_user(&user).await.unwrap();
    // One connection kept by the store, the other held by a transaction for the whole test:
    // the pool has nothing more to give.
    store.find_user_by_id(user.id).await.unwrap();
    let held = store.pool().begin().await.unwrap();

    for round in 0..3 {
        read_at_once(&store, &user, 8, &format!("round {round}")).await;
    }
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_one_connection_keeps_none() {
    let Some(store) = store_on_pool_of(1, Duration::from_secs(2)).await else {
        return;
    };
    let user = sample_user(unique_email("single"));
    store.insert_user(&user).await.unwrap();
    for _ in 0..3 {
        assert_eq!(store.find_user_by_id(user.id).await.unwrap().unwrap().id, user.id);
        // A write right after a read finds the pool's only connection.
        store.insert_user(&sample_user(unique_email("single"))).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_pool_gets_the_kept_connections_back() {
    let Some(store) = store_on_pool_of(4, Duration::from_secs(2)).await else {
        return;
    };
    let user = sample_user(unique_email("closing"));
    store.insert_user(&user).await.unwrap();
    read_at_once(&store, &user, 8, "before closing").await;
    assert!(checked_out(&store) >= 1, "the reads kept a connection");

    // `close` waits for every connection out of the pool, the kept ones too.
    tokio::time::timeout(Duration::from_secs(10), store.pool().close())
        .await
        .expect("closing the pool does not wait for the store to be dropped");
    let error = store.find_user_by_id(user.id).await.unwrap_err();
    assert!(matches!(error, auth_core::StoreError::Unavailable(_)), "{error:?}");
    assert!(store.known_unavailable().await, "a closed pool is a known outage");
}
