//! The whole store conformance suite of `auth-core`, races included, against the real
//! PostgreSQL server, each case in a fresh schema.

mod common;

auth_core::store_conformance_tests!(match common::fresh_store().await {
    Some(store) => store,
    None => return,
});
