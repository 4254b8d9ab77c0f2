//! `ComposedStore` forwards each trait to its part: composed of three separate
//! `MemoryStore`s, it passes every suite, the optional ones included.

use auth_core::{ComposedStore, MemoryStore};

fn composed() -> ComposedStore<MemoryStore, MemoryStore, MemoryStore> {
    ComposedStore::new(MemoryStore::new(), MemoryStore::new(), MemoryStore::new())
}

auth_core::store_conformance_tests!(composed());
auth_core::user_directory_conformance_tests!(composed());
auth_core::role_store_conformance_tests!(composed());
auth_core::second_factor_store_conformance_tests!(composed());
auth_core::identity_store_conformance_tests!(composed());
auth_core::email_change_store_conformance_tests!(composed());
auth_core::purge_store_conformance_tests!(composed());
auth_core::browser_session_store_conformance_tests!(composed());
