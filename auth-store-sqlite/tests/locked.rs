//! A database file locked by another process (a `sqlite3` shell left in a transaction, a
//! backup tool): a real second process, Python's own `sqlite3`, holds the write lock with
//! `BEGIN IMMEDIATE`. Calls must fail as `Unavailable` within their budget instead of
//! queueing one busy timeout after another, reads must go on (WAL), and the store must
//! work again as soon as the lock goes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;
#[path = "support/lock_holder.rs"]
mod lock_holder;

use std::time::Duration;

use auth_core::conformance::{sample_user, unique_email};
use auth_core::{StoreError, User, UserStore};
use auth_store_sqlite::{DEFAULT_LOCK_TIMEOUT, SqliteStore};
use common::scratch_dir;
use lock_holder::LockHolder;

fn users(count: usize, name: &str) -> Vec<User> {
    (0..count)
        .map(|i| sample_user(unique_email(&format!("{name}{i}"))))
        .collect()
}

/// Inserts every user concurrently, each from a task of its own.
async fn insert_concurrently(store: &SqliteStore, users: &[User]) -> Vec<Result<(), StoreError>> {
    let writes: Vec<_> = users
        .iter()
        .map(|user| {
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move { store.insert_user(&user).await })
        })
        .collect();
    let mut results = Vec::new();
    for write in writes {
        results.push(write.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_behind_another_process_lock_fail_within_one_budget_then_succeed() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.lock_timeout(), DEFAULT_LOCK_TIMEOUT);
    let known = sample_user(unique_email("before"));
    store.insert_user(&known).await.unwrap();

    let holder = LockHolder::hold(&path);
    // WAL: reads do not wait for the writer, whoever holds it.
    assert_eq!(
        store.find_user_by_email(&known.email).await.unwrap().as_ref(),
        Some(&known)
    );

    // Sixteen writes at once, so fifteen queue behind the first. Each is refused, and all
    // of them before the 8 s hold ends (`release` checks): one budget from each call's
    // arrival, not one budget each in turn (16 s), let alone 5 s each (80 s).
    let queued = users(16, "queued");
    for result in insert_concurrently(&store, &queued).await {
        assert!(matches!(result, Err(StoreError::Unavailable(_))), "{result:?}");
    }
    assert_eq!(
        store.find_user_by_email(&known.email).await.unwrap().as_ref(),
        Some(&known)
    );
    holder.release();

    // Nothing is left stuck: the same writes succeed now, and nothing of them was kept
    // from the refused attempts.
    for user in &queued {
        assert_eq!(store.find_user_by_email(&user.email).await.unwrap(), None);
    }
    for result in insert_concurrently(&store, &queued).await {
        result.unwrap();
    }
    for user in &queued {
        assert_eq!(store.find_user_by_id(user.id).await.unwrap().as_ref(), Some(user));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_lock_timeout_waits_out_a_lock_released_in_time() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path)
        .await
        .unwrap()
        .with_lock_timeout(Duration::from_secs(60));
    let holder = LockHolder::hold(&path);
    let user = sample_user(unique_email("patient"));
    let write = tokio::spawn({
        let (store, user) = (store.clone(), user.clone());
        async move { store.insert_user(&user).await }
    });
    // Past the default budget: with it the write would have failed by now; with 60 s it
    // can only still be waiting (the lock is held).
    tokio::time::sleep(DEFAULT_LOCK_TIMEOUT + Duration::from_millis(500)).await;
    assert!(!write.is_finished(), "the write waits for the lock");
    holder.release();
    write.await.unwrap().unwrap();
    assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(user));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_lock_timeout_never_waits_but_still_works() {
    let path = scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path)
        .await
        .unwrap()
        .with_lock_timeout(Duration::ZERO);
    let free = sample_user(unique_email("free"));
    store.insert_user(&free).await.unwrap();

    let holder = LockHolder::hold(&path);
    let locked = sample_user(unique_email("locked"));
    assert!(matches!(
        store.insert_user(&locked).await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(store.find_user_by_id(free.id).await.unwrap().as_ref(), Some(&free));
    holder.release();
    store.insert_user(&locked).await.unwrap();
}
