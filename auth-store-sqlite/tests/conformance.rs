//! The whole store conformance suite of `auth-core`, races included, on a real SQLite
//! file per case (in-memory databases skip WAL and the reader pool): the base traits and
//! every optional one, since the store implements them all.

auth_core::store_conformance_tests!(common::fresh_store().await);
auth_core::user_directory_conformance_tests!(common::fresh_store().await);
auth_core::role_store_conformance_tests!(common::fresh_store().await);
auth_core::purge_store_conformance_tests!(common::fresh_store().await);

mod common;
