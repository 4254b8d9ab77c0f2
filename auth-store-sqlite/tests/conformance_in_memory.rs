//! The conformance suite again on `open_in_memory`, which has no reader pool: reads go
//! through the writer connection.

auth_core::store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
