//! The whole store conformance suite of `auth-core`, races included, on a real SQLite
//! file per case (in-memory databases skip WAL and the reader pool).

auth_core::store_conformance_tests!(common::fresh_store().await);

mod common;
