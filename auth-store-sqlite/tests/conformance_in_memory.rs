//! The conformance suite again on `open_in_memory`, which has no reader pool: reads go
//! through the writer connection.

auth_core::store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::user_directory_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::role_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::purge_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::browser_session_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::second_factor_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::identity_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::email_change_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::account_deletion_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::full_account_deletion_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::audit_log_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::recorded_change_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::passkey_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
auth_core::sign_in_method_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
