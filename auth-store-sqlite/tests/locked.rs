//! A database file locked by another process (a `sqlite3` shell left in a transaction, a
//! backup tool): a real second process, Python's own `sqlite3`, holds the write lock with
//! `BEGIN IMMEDIATE`. Calls must fail as `Unavailable` within their budget instead of
//! queueing one busy timeout after another, reads must go on (WAL), and the store must
//! work again as soon as the lock goes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use auth_core::conformance::{sample_user, unique_email};
use auth_core::{StoreError, User, UserStore};
use auth_store_sqlite::{DEFAULT_LOCK_TIMEOUT, SqliteStore};
use common::scratch_dir;

/// Takes the write lock, says `locked`, and holds it until its stdin closes or `HOLD`
/// seconds pass, whichever comes first; then says which it was. The hold is the bound
/// the ordering claims rest on: released by the test means everything the test did
/// before closing stdin happened while the lock was held.
const HOLDER: &str = r#"
import select, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
closed, _, _ = select.select([sys.stdin], [], [], float(sys.argv[2]))
conn.execute("ROLLBACK")
conn.close()
print("released by the test" if closed else "hold ran out", flush=True)
"#;

/// Generous beside the default budget of 1 s: the old behaviour (5 s per queued write,
/// in turn) would outlast it with the second write.
const HOLD: Duration = Duration::from_secs(8);

/// Another process holding the database's write lock. Killed on drop, so a failing test
/// leaves no lock behind.
struct LockHolder {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl LockHolder {
    /// Returns once the lock is held.
    fn hold(path: &Path) -> Self {
        let mut child = Command::new("python3")
            .args(["-c", HOLDER])
            .arg(path)
            .arg(HOLD.as_secs().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut holder = Self {
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        };
        assert_eq!(holder.line(), "locked");
        holder
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_owned()
    }

    /// Releases the lock; fails the test unless it was still held until now.
    fn release(mut self) {
        drop(self.child.stdin.take());
        assert_eq!(
            self.line(),
            "released by the test",
            "the lock was held until the test released it"
        );
        assert!(self.child.wait().unwrap().success());
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
