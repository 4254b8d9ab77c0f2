//! Shared by the test binaries of this crate.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, SystemTime};

use auth_store_sqlite::SqliteStore;

/// A directory for one test's database files, under cargo's per-target scratch space.
///
/// It is not deleted when the test ends (a conformance case takes the store by value, and
/// its clones may outlive the case); instead, each test process clears directories older
/// than an hour, so runs never accumulate files.
pub fn scratch_dir() -> PathBuf {
    static SWEEP: Once = Once::new();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("auth-store-sqlite");
    SWEEP.call_once(|| {
        let Ok(entries) = std::fs::read_dir(&root) else {
            return;
        };
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|at| at < hour_ago);
            if old {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
    std::fs::create_dir_all(&root).unwrap();
    tempfile::Builder::new()
        .prefix("case-")
        .tempdir_in(&root)
        .unwrap()
        .keep()
}

/// A store on a new database file.
pub async fn fresh_store() -> SqliteStore {
    SqliteStore::open(scratch_dir().join("auth.db")).await.unwrap()
}
