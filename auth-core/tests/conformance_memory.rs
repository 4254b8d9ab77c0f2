//! `MemoryStore` runs the same conformance suite as every database backend: the base
//! traits and every optional one, since it implements them all.

auth_core::store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::user_directory_conformance_tests!(auth_core::MemoryStore::new());
auth_core::role_store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::purge_store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::browser_session_store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::second_factor_store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::identity_store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::email_change_store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::account_deletion_store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::full_account_deletion_conformance_tests!(auth_core::MemoryStore::new());
auth_core::audit_log_store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::recorded_change_conformance_tests!(auth_core::MemoryStore::new());
auth_core::passkey_store_conformance_tests!(auth_core::MemoryStore::new());
auth_core::sign_in_method_conformance_tests!(auth_core::MemoryStore::new());

/// `MemoryRateLimiter` runs the rate-limiter suite every limiter backend runs.
mod rate_limiter {
    use std::sync::Arc;

    use auth_core::{ManualClock, MemoryRateLimiter, RateLimits};

    auth_core::rate_limiter_conformance_tests!(async |limits: RateLimits, clock: ManualClock| {
        MemoryRateLimiter::with_clock(limits, Arc::new(clock))
    });
}
