//! The store conformance suite: one `async fn` per behaviour of the store traits, races
//! included. Every backend runs all of it for every trait it implements, so "passes the
//! suite" means the same thing for memory, SQLite and PostgreSQL. Rate-limiter backends
//! have a suite of their own, [`rate_limiter`].
//!
//! Enable the `conformance` feature in the backend's dev-dependencies and invoke, for each
//! trait the backend implements, that trait's macro with an expression that makes a
//! fresh, migrated store (it may `.await`):
//!
//! | trait | macro |
//! |---|---|
//! | [`UserStore`], [`SessionStore`], [`OneTimeTokenStore`](crate::OneTimeTokenStore) (the base, [`AuthStore`](crate::AuthStore)) | [`store_conformance_tests!`](crate::store_conformance_tests) |
//! | [`UserDirectory`](crate::UserDirectory) | [`user_directory_conformance_tests!`](crate::user_directory_conformance_tests) |
//! | [`RoleStore`](crate::RoleStore) | [`role_store_conformance_tests!`](crate::role_store_conformance_tests) |
//! | [`PurgeStore`](crate::PurgeStore) | [`purge_store_conformance_tests!`](crate::purge_store_conformance_tests) |
//! | [`BrowserSessionStore`](crate::BrowserSessionStore) (with [`PurgeStore`](crate::PurgeStore)) | [`browser_session_store_conformance_tests!`](crate::browser_session_store_conformance_tests) |
//! | [`SecondFactorStore`](crate::SecondFactorStore) | [`second_factor_store_conformance_tests!`](crate::second_factor_store_conformance_tests) |
//! | [`IdentityStore`](crate::IdentityStore) | [`identity_store_conformance_tests!`](crate::identity_store_conformance_tests) |
//! | [`AuditLogStore`](crate::AuditLogStore) | [`audit_log_store_conformance_tests!`](crate::audit_log_store_conformance_tests) |
//! | [`AccountDeletionStore`](crate::AccountDeletionStore) | [`account_deletion_store_conformance_tests!`](crate::account_deletion_store_conformance_tests) |
//! | [`EmailChangeStore`](crate::EmailChangeStore) | [`email_change_store_conformance_tests!`](crate::email_change_store_conformance_tests) |
//!
//! ```ignore
//! // auth-store-sqlite/tests/conformance.rs
//! auth_core::store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
//! auth_core::role_store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
//! ```
//!
//! Each expands to one `#[tokio::test]` per case (multi-threaded, so races are real), so
//! the backend crate needs `tokio` with the `macros` and `rt-multi-thread` features as a
//! dev-dependency. Cases use unique emails, so they also pass on a store that already
//! holds data.
//!
//! A case is written once: inside its trait's `conformance_cases!` block, which defines
//! the function and puts it in that trait's macro, so no case can be defined and not run.
//! The functions can also be called directly:
//!
//! ```
//! # #[tokio::main]
//! # async fn main() {
//! auth_core::conformance::duplicate_email_is_a_typed_conflict(auth_core::MemoryStore::new()).await;
//! # }
//! ```
//!
//! The cases and helpers are a test suite, not a stable API: they change with the
//! contracts they check, in any release.

// Test code: failing loudly, with the value that broke the contract, is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Defines the cases of one store trait and the exported macro that runs them all: each
/// case written once, as `pub async fn name(store: S) { ... }`, becomes
/// `pub async fn name<S: bound>(store: S)` and one line of the macro. The `$` given first
/// is the token the exported macro's own variables are written with.
macro_rules! conformance_cases {
    (@case [$($bound:tt)+] $(#[$attr:meta])* pub async fn $case:ident($store:ident: S) $body:block) => {
        $(#[$attr])*
        pub async fn $case<S: $($bound)+>($store: S) $body
    };
    (
        $d:tt
        $(#[$suite_attr:meta])*
        macro $suite:ident for $bounds:tt;
        $(
            $(#[$case_attr:meta])*
            pub async fn $case:ident($store:ident: S) $body:block
        )+
    ) => {
        $(
            conformance_cases! { @case $bounds $(#[$case_attr])* pub async fn $case($store: S) $body }
        )+

        $(#[$suite_attr])*
        #[macro_export]
        macro_rules! $suite {
            ($d make_store:expr) => {
                $crate::__conformance_tests! { $d make_store => $($case),+ }
            };
        }
    };
}

mod audit;
mod browser;
mod deletion;
mod directory;
mod email_change;
mod identity;
mod one_time;
mod passkey;
mod purge;
pub mod rate_limiter;
mod recorded;
mod roles;
mod rollback;
mod second_factor;
mod sessions;
mod sign_in_methods;
mod users;

use time::OffsetDateTime;
use uuid::Uuid;

pub use audit::*;
pub use browser::*;
pub use deletion::*;
pub use directory::*;
pub use email_change::*;
pub use identity::*;
pub use one_time::*;
pub use passkey::*;
pub use purge::*;
pub use recorded::*;
pub use roles::*;
pub use rollback::*;
pub use second_factor::*;
pub use sessions::*;
pub use sign_in_methods::*;
pub use users::*;

use crate::auth_method::{AuthMethod, AuthMethods};
use crate::clock::truncate_to_micros;
use crate::email::Email;
use crate::hash::HashedPassword;
use crate::id::SessionId;
use crate::one_time::{OneTimeToken, TokenPurpose};
use crate::session::Session;
use crate::store::{SessionStore, UserStore};
use crate::token::{OpaqueToken, TokenHash, TokenKind};
use crate::user::User;

/// Runs the cases of the three base traits ([`AuthStore`](crate::AuthStore)):
/// [`user_store_conformance_tests!`](crate::user_store_conformance_tests),
/// [`session_store_conformance_tests!`](crate::session_store_conformance_tests) and
/// [`one_time_token_store_conformance_tests!`](crate::one_time_token_store_conformance_tests);
/// see the [module docs](self).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make_store:expr) => {
        $crate::user_store_conformance_tests!($make_store);
        $crate::session_store_conformance_tests!($make_store);
        $crate::one_time_token_store_conformance_tests!($make_store);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($make_store:expr => $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store = $make_store;
                $crate::conformance::$case(store).await;
            }
        )+
    };
}

/// A fresh address that no other case (or run) uses.
pub fn unique_email(prefix: &str) -> Email {
    Email::parse(&format!("{prefix}-{}@example.com", Uuid::new_v4().simple())).unwrap()
}

/// A plausible account for `email`, with microsecond timestamps as the service makes them.
pub fn sample_user(email: Email) -> User {
    User::new(
        email,
        Some(sample_hash("first")),
        truncate_to_micros(OffsetDateTime::now_utc()),
    )
}

/// A syntactically valid argon2id PHC string (stores never parse hashes); `tag` makes it
/// unique.
pub fn sample_hash(tag: &str) -> HashedPassword {
    HashedPassword::new(format!(
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA${tag}{}",
        Uuid::new_v4().simple()
    ))
}

fn later(user: &User, micros: i64) -> OffsetDateTime {
    user.updated_at + time::Duration::microseconds(micros)
}

/// A session for `user`, with client metadata, as login makes it.
pub fn sample_session(user: &User) -> Session {
    let now = truncate_to_micros(OffsetDateTime::now_utc());
    Session {
        id: SessionId::new_at(now),
        user_id: user.id,
        created_at: now,
        last_used_at: now,
        expires_at: now + time::Duration::days(30),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0 «ü»".to_owned()),
        ip: Some("2001:db8::7".parse().unwrap()),
        revoked_at: None,
        auth_methods: AuthMethods::from(AuthMethod::PASSWORD),
        auth_time: now,
    }
}

fn refresh_hash() -> TokenHash {
    OpaqueToken::generate(TokenKind::Refresh).unwrap().1
}

async fn user_with_session<S: UserStore + SessionStore>(store: &S, prefix: &str) -> (User, Session, TokenHash) {
    let user = sample_user(unique_email(prefix));
    store.insert_user(&user).await.unwrap();
    let session = sample_session(&user);
    let token = refresh_hash();
    store.insert_session(&session, &token).await.unwrap();
    (user, session, token)
}

fn micros_after(t: OffsetDateTime, micros: i64) -> OffsetDateTime {
    t + time::Duration::microseconds(micros)
}

/// A single-use token for `user`, as the service issues it.
pub fn sample_one_time_token(user: &User, purpose: TokenPurpose) -> (TokenHash, OneTimeToken) {
    let (_, hash) = OpaqueToken::generate(purpose.kind()).unwrap();
    let now = truncate_to_micros(OffsetDateTime::now_utc());
    let token = OneTimeToken {
        user_id: user.id,
        purpose,
        email: user.email.clone(),
        token_version: user.token_version,
        created_at: now,
        expires_at: now + time::Duration::hours(1),
    };
    (hash, token)
}

#[cfg(test)]
mod tests {
    /// Every suite file is its imports and one `conformance_cases!` block: a case written
    /// outside the block would be defined and never run.
    #[test]
    fn every_case_is_inside_its_suites_block() {
        let suites = [
            ("directory.rs", include_str!("directory.rs")),
            ("one_time.rs", include_str!("one_time.rs")),
            ("passkey.rs", include_str!("passkey.rs")),
            ("purge.rs", include_str!("purge.rs")),
            ("recorded.rs", include_str!("recorded.rs")),
            ("roles.rs", include_str!("roles.rs")),
            ("second_factor.rs", include_str!("second_factor.rs")),
            ("sessions.rs", include_str!("sessions.rs")),
            ("sign_in_methods.rs", include_str!("sign_in_methods.rs")),
            ("users.rs", include_str!("users.rs")),
        ];
        for (file, text) in suites {
            let (_imports, block) = text
                .split_once("\nconformance_cases! { $\n")
                .unwrap_or_else(|| panic!("{file}: no conformance_cases! block"));
            let top_level: Vec<&str> = block
                .lines()
                .filter(|line| !line.is_empty() && !line.starts_with(char::is_whitespace))
                .collect();
            assert_eq!(top_level, ["}"], "{file}: only the block's end at the top level");
            let cases = text.matches("\n    pub async fn ").count();
            assert_eq!(
                cases,
                text.matches("pub async fn ").count(),
                "{file}: a case off the block's level"
            );
            assert!(cases > 0, "{file}");
        }
    }
}
