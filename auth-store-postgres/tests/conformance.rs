//! The whole store conformance suite of `auth-core`, races included, against the real
//! PostgreSQL server, each case in a fresh schema: the base traits and every optional one,
//! since the store implements them all.

mod common;

macro_rules! fresh_store {
    () => {
        match common::fresh_store().await {
            Some(store) => store,
            None => return,
        }
    };
}

auth_core::store_conformance_tests!(fresh_store!());
auth_core::user_directory_conformance_tests!(fresh_store!());
auth_core::role_store_conformance_tests!(fresh_store!());
auth_core::purge_store_conformance_tests!(fresh_store!());
auth_core::browser_session_store_conformance_tests!(fresh_store!());
auth_core::second_factor_store_conformance_tests!(fresh_store!());
auth_core::identity_store_conformance_tests!(fresh_store!());
auth_core::email_change_store_conformance_tests!(fresh_store!());
auth_core::account_deletion_store_conformance_tests!(fresh_store!());
auth_core::full_account_deletion_conformance_tests!(fresh_store!());
auth_core::audit_log_store_conformance_tests!(fresh_store!());
auth_core::recorded_change_conformance_tests!(fresh_store!());
auth_core::passkey_store_conformance_tests!(fresh_store!());
auth_core::sign_in_method_conformance_tests!(fresh_store!());

/// An application's own accounts (a `MemoryStore` stands in for them) with this store's
/// sessions and single-use tokens: no reference from those tables to `users` gets in the
/// way. The accounts' capabilities (directory, roles, second factors, identities) are
/// the application's part here, so their suites are not run again on the composition.
mod composed_with_own_users {
    use super::common;

    macro_rules! composed {
        () => {{
            let shipped = fresh_store!();
            auth_core::ComposedStore::new(auth_core::MemoryStore::new(), shipped.clone(), shipped)
        }};
    }

    auth_core::store_conformance_tests!(composed!());
    auth_core::purge_store_conformance_tests!(composed!());
    auth_core::browser_session_store_conformance_tests!(composed!());
}
