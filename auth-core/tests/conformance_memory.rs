//! `MemoryStore` runs the same conformance suite as every database backend.

auth_core::store_conformance_tests!(auth_core::MemoryStore::new());
