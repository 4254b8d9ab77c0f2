//! `MemoryStore` runs the same conformance suite as every database backend.

auth_core::user_store_conformance_tests!(auth_core::MemoryStore::new());
