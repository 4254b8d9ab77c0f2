//! A commit that fails is an error, never a success: with a file-size limit the WAL
//! cannot grow, commits fail (SQLITE_IOERR), and a single-use token must then either be
//! consumed for real or be reported as an error, never handed out while it stays usable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use std::process::Command;

use auth_core::conformance::{sample_one_time_token, sample_user, unique_email};
use auth_core::{OneTimeTokenStore, TokenHash, TokenPurpose};
use auth_store_sqlite::SqliteStore;

const CHILD_DB: &str = "AUTH_SQLITE_FSIZE_CHILD_DB";

/// The child, under `ulimit -f`: consumes every token and reports what it was told and
/// what is true afterwards.
#[test]
#[ignore = "the child process of failed_commits_are_errors, which starts it"]
fn fsize_child() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let hashes: Vec<TokenHash> = rusqlite::Connection::open(&path)
        .unwrap()
        .prepare("SELECT hash FROM auth_one_time_tokens")
        .unwrap()
        .query_map([], |row| row.get::<_, [u8; 32]>(0))
        .unwrap()
        .map(|hash| TokenHash::from_bytes(hash.unwrap()))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(&path).await.unwrap();
        let at = time::OffsetDateTime::now_utc();
        for (i, hash) in hashes.iter().enumerate() {
            let consumed = store
                .consume_one_time_token(hash, TokenPurpose::PasswordReset, at)
                .await;
            let live = store.find_one_time_token(hash, TokenPurpose::PasswordReset).await;
            println!(
                "RESULT {i} consumed={} err={} still_live={}",
                matches!(consumed, Ok(Some(_))),
                consumed.is_err(),
                matches!(live, Ok(Some(_)))
            );
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_commits_are_errors() {
    let path = common::scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    for _ in 0..60 {
        let user = sample_user(unique_email("fsize"));
        let (hash, token) = sample_one_time_token(&user, TokenPurpose::PasswordReset);
        store.insert_one_time_token(&hash, &token).await.unwrap();
    }
    drop(store);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();

    // 64 KiB per file: room for the 32 KiB -shm and a few WAL frames, then EFBIG.
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"trap "" XFSZ; ulimit -f 64; exec "$0" "$@""#)
        .arg(std::env::current_exe().unwrap())
        .args(["fsize_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The first result may share its line with libtest's "test fsize_child ... ".
    let lines: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.find("RESULT ").map(|at| &line[at..]))
        .collect();
    assert_eq!(
        lines.len(),
        60,
        "the child ran: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lines.iter().any(|line| line.contains("err=true")),
        "the size limit was hit: {lines:?}"
    );
    let lies: Vec<_> = lines
        .iter()
        .filter(|line| line.contains("consumed=true") && line.contains("still_live=true"))
        .collect();
    assert!(lies.is_empty(), "handed out but still usable (replayable): {lies:?}");
}
