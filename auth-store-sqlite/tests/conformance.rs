//! The whole store conformance suite of `auth-core`, races included, on a real SQLite
//! file per case (in-memory databases skip WAL and the reader pool): the base traits and
//! every optional one, since the store implements them all.

auth_core::store_conformance_tests!(common::fresh_store().await);
auth_core::user_directory_conformance_tests!(common::fresh_store().await);
auth_core::role_store_conformance_tests!(common::fresh_store().await);
auth_core::purge_store_conformance_tests!(common::fresh_store().await);
auth_core::browser_session_store_conformance_tests!(common::fresh_store().await);
auth_core::second_factor_store_conformance_tests!(common::fresh_store().await);
auth_core::identity_store_conformance_tests!(common::fresh_store().await);
auth_core::email_change_store_conformance_tests!(common::fresh_store().await);
auth_core::account_deletion_store_conformance_tests!(common::fresh_store().await);
auth_core::full_account_deletion_conformance_tests!(common::fresh_store().await);
auth_core::audit_log_store_conformance_tests!(common::fresh_store().await);
auth_core::recorded_change_conformance_tests!(common::fresh_store().await);
auth_core::passkey_store_conformance_tests!(common::fresh_store().await);
auth_core::sign_in_method_conformance_tests!(common::fresh_store().await);

mod common;

/// An application's own accounts (a `MemoryStore` stands in for them) with this store's
/// sessions and single-use tokens: no reference from those tables to `auth_users` gets in
/// the way. The accounts' capabilities (directory, roles, second factors, identities) are
/// the application's part here, so their suites are not run again on the composition.
mod composed_with_own_users {
    async fn composed()
    -> auth_core::ComposedStore<auth_core::MemoryStore, auth_store_sqlite::SqliteStore, auth_store_sqlite::SqliteStore>
    {
        let shipped = super::common::fresh_store().await;
        auth_core::ComposedStore::new(auth_core::MemoryStore::new(), shipped.clone(), shipped)
    }

    auth_core::store_conformance_tests!(composed().await);
    auth_core::purge_store_conformance_tests!(composed().await);
    auth_core::browser_session_store_conformance_tests!(composed().await);
}

/// Every read on the blocking pool instead of in place (`with_inline_reads(false)`): the
/// base suite, races included, answers alike.
mod reads_on_the_blocking_pool {
    auth_core::store_conformance_tests!(super::common::fresh_store().await.with_inline_reads(false));
}
