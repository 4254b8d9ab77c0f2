//! The audit record of a change is written in the change's own transaction: when the
//! database refuses the record, the change is rolled back with it and the caller gets
//! the store's error; no change is ever left without its record.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

mod common;

use auth_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread")]
async fn a_change_whose_record_is_refused_is_rolled_back_and_reported() {
    let path = common::scratch_dir().join("auth.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let raw = || rusqlite::Connection::open(&path).unwrap();
    auth_core::conformance::a_change_whose_record_is_refused_is_rolled_back(
        store,
        // Every insert into the audit log fails, as a full or broken table would.
        async || {
            raw()
                .execute_batch(
                    "CREATE TRIGGER refuse_records BEFORE INSERT ON auth_audit_events
                     BEGIN SELECT RAISE(ABORT, 'the audit log refuses records'); END",
                )
                .unwrap();
        },
        async || raw().execute_batch("DROP TRIGGER refuse_records").unwrap(),
    )
    .await;
}
