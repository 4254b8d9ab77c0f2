//! The store conformance suite: one `async fn` per behaviour of the store traits, races
//! included. Every backend runs all of it, so "passes the suite" means the same thing for
//! memory, SQLite and PostgreSQL.
//!
//! Enable the `conformance` feature in the backend's dev-dependencies and invoke the
//! macro with an expression that makes a fresh, migrated store (it may `.await`):
//!
//! ```ignore
//! // auth-store-sqlite/tests/conformance.rs
//! auth_core::store_conformance_tests!(auth_store_sqlite::SqliteStore::open_in_memory().await.unwrap());
//! ```
//!
//! This expands to one `#[tokio::test]` per case (multi-threaded, so races are real), so
//! the backend crate needs `tokio` with the `macros` and `rt-multi-thread` features as a
//! dev-dependency. Cases use unique emails, so they also pass on a store that already
//! holds data.
//!
//! Every case takes the whole [`AuthStore`] (users, sessions, one-time tokens). The
//! functions can also be called directly:
//!
//! ```
//! # #[tokio::main]
//! # async fn main() {
//! auth_core::conformance::duplicate_email_is_a_typed_conflict(auth_core::MemoryStore::new()).await;
//! # }
//! ```

// Test code: failing loudly, with the value that broke the contract, is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::clock::truncate_to_micros;
use crate::{
    AuthStore, Email, HashedPassword, OneTimeToken, OpaqueToken, Role, Session, SessionId, StoreError, TokenHash,
    TokenKind, TokenPurpose, User, UserId, UserStore,
};

/// Runs the whole suite as one `#[tokio::test]` per case; see the [module docs](self).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make_store:expr) => {
        $crate::__store_conformance_cases! { $make_store =>
            insert_then_find_by_id,
            insert_then_find_by_email,
            missing_users_are_none,
            list_users_pages_in_id_order,
            every_field_round_trips,
            duplicate_email_is_a_typed_conflict,
            emails_are_matched_literally,
            addresses_older_than_the_new_address_rules_still_load,
            long_values_round_trip,
            upgrade_password_hash_compares_and_sets,
            set_password_hash_revokes_tokens,
            set_password_hash_loses_to_a_disable,
            set_active_toggles_and_disabling_revokes,
            concurrent_registrations_of_one_email_leave_one_account,
            concurrent_password_changes_apply_once,
            concurrent_disables_lose_no_update,
            concurrent_hash_upgrades_apply_once,
            set_roles_replaces_roles_and_revokes_tokens,
            revoke_access_tokens_increments_the_version,
            mark_email_verified_only_for_the_current_address,
            sessions_round_trip_through_their_refresh_token,
            unknown_refresh_tokens_are_none,
            rotation_trades_a_token_once,
            rotation_stops_when_the_session_is_revoked,
            concurrent_rotations_of_one_token_apply_once,
            list_sessions_returns_live_sessions_oldest_first,
            revoke_session_only_ends_the_owners_session,
            find_session_returns_the_session_revoked_or_not,
            revoke_all_sessions_ends_every_session_of_the_user,
            one_time_tokens_are_found_then_consumed_once,
            one_time_token_purposes_are_separate,
            a_newer_one_time_token_replaces_older_unused_ones,
            concurrent_consumption_of_one_token_applies_once,
            concurrent_issues_for_one_purpose_leave_one_live_token,
            decoys_for_the_nil_account_are_stored_like_any_token,
            a_duplicate_one_time_token_hash_is_an_error,
            delete_spent_one_time_tokens_removes_only_spent_tokens,
            delete_ended_sessions_removes_only_ended_sessions,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
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

/// An inserted account is found by id, equal field for field.
pub async fn insert_then_find_by_id<S: UserStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("by-id"));
    store.insert_user(&user).await.unwrap();
    assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(user));
}

/// Accounts are listed in id order, a page at a time after a given id.
pub async fn list_users_pages_in_id_order<S: UserStore + Clone + 'static>(store: S) {
    // Ids from a random far-future millisecond: no other case's accounts fall between.
    let base = OffsetDateTime::from_unix_timestamp(200_000_000_000).unwrap()
        + time::Duration::milliseconds(i64::try_from(Uuid::new_v4().as_u128() % 1_000_000_000).unwrap());
    let mut ours = Vec::new();
    for i in 0..5 {
        let user = User {
            id: UserId::new_at(base + time::Duration::milliseconds(i)),
            ..sample_user(unique_email("listed"))
        };
        ours.push(user);
    }
    // Inserted out of order: the listing sorts.
    for user in ours.iter().rev() {
        store.insert_user(user).await.unwrap();
    }
    assert_eq!(
        store.list_users(Some(ours[0].id), 2).await.unwrap(),
        ours[1..3].to_vec()
    );
    let rest = store.list_users(Some(ours[2].id), 1000).await.unwrap();
    assert_eq!(rest[..2].to_vec(), ours[3..5].to_vec());
    let after_last = store.list_users(Some(ours[4].id), 1000).await.unwrap();
    assert!(after_last.iter().all(|user| !ours.contains(user)));
    assert!(store.list_users(Some(ours[0].id), 0).await.unwrap().is_empty());
    let first = store.list_users(None, 3).await.unwrap();
    assert!(!first.is_empty() && first.len() <= 3);
    assert!(first.windows(2).all(|pair| pair[0].id < pair[1].id), "ascending ids");
}

/// An inserted account is found by its normalized email, however the lookup was typed.
pub async fn insert_then_find_by_email<S: UserStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("by-email"));
    store.insert_user(&user).await.unwrap();
    let typed = format!("  {}\t", user.email.as_str().to_uppercase());
    let lookup = Email::parse(&typed).unwrap();
    assert_eq!(store.find_user_by_email(&lookup).await.unwrap(), Some(user));
}

/// Unknown ids and emails are `Ok(None)`, and updates of unknown ids change nothing.
pub async fn missing_users_are_none<S: UserStore + Clone + 'static>(store: S) {
    let ghost = sample_user(unique_email("ghost"));
    assert_eq!(store.find_user_by_id(ghost.id).await.unwrap(), None);
    assert_eq!(store.find_user_by_email(&ghost.email).await.unwrap(), None);
    let at = ghost.updated_at;
    let hash = ghost.password_hash.clone().unwrap();
    assert!(
        !store
            .upgrade_password_hash(ghost.id, &hash, &sample_hash("x"), at)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .set_password_hash(ghost.id, &sample_hash("x"), 0, at)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.set_active(ghost.id, false, at).await.unwrap(), None);
    assert_eq!(store.find_user_by_id(ghost.id).await.unwrap(), None);
}

/// Every field survives the round trip: no password, several roles, a verification time,
/// a disabled flag, a token version, distinct microsecond timestamps, a Unicode email.
pub async fn every_field_round_trips<S: UserStore + Clone + 'static>(store: S) {
    let base = sample_user(Email::parse(&format!("Jürgen.{}@Bücher.de", Uuid::new_v4().simple())).unwrap());
    let user = User {
        password_hash: None,
        is_active: false,
        email_verified_at: Some(base.created_at + time::Duration::microseconds(123_457)),
        roles: ["admin", "billing:read", "team-1.owner_x"]
            .into_iter()
            .map(|r| Role::new(r).unwrap())
            .collect(),
        token_version: 7,
        created_at: truncate_to_micros(OffsetDateTime::from_unix_timestamp(1_000_000_000).unwrap()),
        updated_at: base.updated_at + time::Duration::microseconds(1),
        ..base
    };
    assert!(user.email.as_str().starts_with("jürgen."));
    store.insert_user(&user).await.unwrap();
    assert_eq!(store.find_user_by_id(user.id).await.unwrap().as_ref(), Some(&user));
    assert_eq!(store.find_user_by_email(&user.email).await.unwrap(), Some(user));
}

/// A second account with the same normalized email is [`StoreError::DuplicateEmail`], and
/// nothing of it is stored.
pub async fn duplicate_email_is_a_typed_conflict<S: UserStore + Clone + 'static>(store: S) {
    let first = sample_user(unique_email("dup"));
    store.insert_user(&first).await.unwrap();
    let variant = Email::parse(&format!(" {} ", first.email.as_str().to_uppercase())).unwrap();
    let second = User {
        password_hash: Some(sample_hash("second")),
        ..sample_user(variant)
    };
    match store.insert_user(&second).await {
        Err(StoreError::DuplicateEmail) => {}
        other => panic!("expected DuplicateEmail, got {other:?}"),
    }
    assert_eq!(store.find_user_by_id(second.id).await.unwrap(), None);
    assert_eq!(store.find_user_by_email(&first.email).await.unwrap(), Some(first));
}

/// Emails are compared byte for byte: `%`, `_` and quotes are ordinary characters, never
/// wildcards or SQL.
pub async fn emails_are_matched_literally<S: UserStore + Clone + 'static>(store: S) {
    let tag = Uuid::new_v4().simple().to_string();
    let email = |local: &str| Email::parse(&format!("{local}{tag}@example.com")).unwrap();
    let plain = sample_user(email("axb"));
    store.insert_user(&plain).await.unwrap();
    for pattern in ["a%b", "a_b", "%", "_xb", "a'b", "a''b", "ax%"] {
        assert_eq!(
            store.find_user_by_email(&email(pattern)).await.unwrap(),
            None,
            "{pattern}"
        );
    }
    for local in ["a%b", "a_b", "o'brien", "x'or'1'='1", "a'--", "100%", "_"] {
        let user = sample_user(email(local));
        store.insert_user(&user).await.unwrap();
        assert_eq!(
            store.find_user_by_email(&user.email).await.unwrap(),
            Some(user),
            "{local}"
        );
    }
    assert_eq!(store.find_user_by_email(&plain.email).await.unwrap(), Some(plain));
}

/// Accounts created before a rule for new addresses was added (a misplaced dot, an emoji,
/// mixed scripts) still load and are found: a stored row is read with
/// [`Email::parse_existing`], so one such row cannot make a listing fail.
pub async fn addresses_older_than_the_new_address_rules_still_load<S: UserStore + Clone + 'static>(store: S) {
    let tag = Uuid::new_v4().simple().to_string();
    // Ids from a random far-future millisecond, as in `list_users_pages_in_id_order`: the
    // listing below holds ours alone.
    let base = OffsetDateTime::from_unix_timestamp(210_000_000_000).unwrap()
        + time::Duration::milliseconds(i64::try_from(Uuid::new_v4().as_u128() % 1_000_000_000).unwrap());
    let mut ours = Vec::new();
    let locals = [
        format!(".lead{tag}"),
        format!("a..b{tag}"),
        format!("{tag}."),
        format!("\u{1F600}{tag}"),
        format!("p\u{430}ypal{tag}"),
    ];
    for (i, local) in locals.into_iter().enumerate() {
        let email = Email::parse_existing(&format!("{local}@example.com")).unwrap();
        assert!(
            Email::parse(email.as_str()).is_err(),
            "{email} is refused for new accounts"
        );
        let user = User {
            id: UserId::new_at(base + time::Duration::milliseconds(i64::try_from(i).unwrap())),
            ..sample_user(email)
        };
        store.insert_user(&user).await.unwrap();
        assert_eq!(store.find_user_by_id(user.id).await.unwrap().as_ref(), Some(&user));
        assert_eq!(
            store.find_user_by_email(&user.email).await.unwrap().as_ref(),
            Some(&user)
        );
        ours.push(user);
    }
    let listed = store.list_users(Some(ours[0].id), 4).await.unwrap();
    assert_eq!(listed, ours[1..].to_vec());
}

/// The longest values the domain allows round-trip: a 254-byte email, 64-byte roles and a
/// long hash string.
pub async fn long_values_round_trip<S: UserStore + Clone + 'static>(store: S) {
    let tag = Uuid::new_v4().simple().to_string();
    let label = "a".repeat(63);
    let local = format!("{tag}{}", "b".repeat(64 - tag.len()));
    // 64 + 1 + (63 + 1 + 63 + 1 + 57 + 4) = 254 bytes.
    let domain = format!("{label}.{label}.{}.com", "c".repeat(57));
    let email = Email::parse(&format!("{local}@{domain}")).unwrap();
    assert_eq!(email.as_str().len(), 254);
    let user = User {
        roles: [Role::new("r".repeat(64)).unwrap(), Role::new("s".repeat(64)).unwrap()].into(),
        password_hash: Some(HashedPassword::new(format!(
            "{}{}",
            sample_hash("long").as_str(),
            "A".repeat(1024)
        ))),
        ..sample_user(email)
    };
    store.insert_user(&user).await.unwrap();
    assert_eq!(store.find_user_by_email(&user.email).await.unwrap(), Some(user));
}

/// `upgrade_password_hash` replaces the hash only while it is still the expected one, and
/// never touches the token version.
pub async fn upgrade_password_hash_compares_and_sets<S: UserStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("upgrade"));
    store.insert_user(&user).await.unwrap();
    let original = user.password_hash.clone().unwrap();
    let upgraded = sample_hash("upgraded");

    let stale = sample_hash("stale");
    assert!(
        !store
            .upgrade_password_hash(user.id, &stale, &upgraded, later(&user, 1))
            .await
            .unwrap()
    );
    assert_eq!(
        store.find_user_by_id(user.id).await.unwrap().as_ref(),
        Some(&user),
        "unchanged"
    );

    assert!(
        store
            .upgrade_password_hash(user.id, &original, &upgraded, later(&user, 2))
            .await
            .unwrap()
    );
    let stored = store.find_user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, Some(upgraded.clone()));
    assert_eq!(stored.updated_at, later(&user, 2));
    assert_eq!(stored.token_version, user.token_version);

    // The old hash is no longer current: a second upgrade from it fails.
    assert!(
        !store
            .upgrade_password_hash(user.id, &original, &sample_hash("again"), later(&user, 3))
            .await
            .unwrap()
    );

    let passwordless = User {
        password_hash: None,
        ..sample_user(unique_email("no-password"))
    };
    store.insert_user(&passwordless).await.unwrap();
    assert!(
        !store
            .upgrade_password_hash(passwordless.id, &original, &upgraded, later(&user, 4))
            .await
            .unwrap()
    );
    assert_eq!(
        store.find_user_by_id(passwordless.id).await.unwrap(),
        Some(passwordless)
    );
}

/// `set_password_hash` sets the hash, increments the token version, sets `updated_at` and
/// returns the updated account, but only while the token version is the expected one.
pub async fn set_password_hash_revokes_tokens<S: UserStore + Clone + 'static>(store: S) {
    let user = User {
        password_hash: None,
        token_version: 4,
        ..sample_user(unique_email("set-password"))
    };
    store.insert_user(&user).await.unwrap();

    let stale = store
        .set_password_hash(user.id, &sample_hash("stale"), 3, later(&user, 5))
        .await
        .unwrap();
    assert_eq!(stale, None, "an outdated token version changes nothing");
    assert_eq!(store.find_user_by_id(user.id).await.unwrap().as_ref(), Some(&user));

    let hash = sample_hash("new");
    let updated = store
        .set_password_hash(user.id, &hash, 4, later(&user, 10))
        .await
        .unwrap()
        .unwrap();
    let expected = User {
        password_hash: Some(hash),
        token_version: 5,
        updated_at: later(&user, 10),
        ..user.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(expected));
    let again = store
        .set_password_hash(user.id, &sample_hash("again"), 4, later(&user, 11))
        .await
        .unwrap();
    assert_eq!(again, None, "the version moved on");
}

/// A disable between reading an account and changing its password stops the change.
pub async fn set_password_hash_loses_to_a_disable<S: UserStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("disable-race"));
    store.insert_user(&user).await.unwrap();
    store
        .set_active(user.id, false, later(&user, 1))
        .await
        .unwrap()
        .unwrap();
    let write = store
        .set_password_hash(user.id, &sample_hash("late"), user.token_version, later(&user, 2))
        .await;
    assert_eq!(write.unwrap(), None);
    assert_eq!(
        store.find_user_by_id(user.id).await.unwrap().unwrap().password_hash,
        user.password_hash
    );
}

/// `set_active(false)` disables and increments the token version; `set_active(true)`
/// enables without touching it.
pub async fn set_active_toggles_and_disabling_revokes<S: UserStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("active"));
    store.insert_user(&user).await.unwrap();

    let disabled = store
        .set_active(user.id, false, later(&user, 1))
        .await
        .unwrap()
        .unwrap();
    assert!(!disabled.is_active);
    assert_eq!(disabled.token_version, user.token_version + 1);
    assert_eq!(disabled.updated_at, later(&user, 1));

    let enabled = store.set_active(user.id, true, later(&user, 2)).await.unwrap().unwrap();
    assert!(enabled.is_active);
    assert_eq!(enabled.token_version, user.token_version + 1);
    assert_eq!(enabled.updated_at, later(&user, 2));
    assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(enabled));
}

/// 50 concurrent registrations of one address, typed with different case and whitespace,
/// leave exactly one account and 49 [`StoreError::DuplicateEmail`].
pub async fn concurrent_registrations_of_one_email_leave_one_account<S: UserStore + Clone + 'static>(store: S) {
    let local = format!("race-{}", Uuid::new_v4().simple());
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let typed = match i % 4 {
                0 => format!("{local}@example.com"),
                1 => format!("  {}@EXAMPLE.COM", local.to_uppercase()),
                2 => format!("\t{local}@Example.Com\n"),
                _ => format!("{}@example.com ", local.to_uppercase()),
            };
            let user = sample_user(Email::parse(&typed).unwrap());
            let store = store.clone();
            tokio::spawn(async move { store.insert_user(&user).await.map(|()| user) })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(user) => winners.push(user),
            Err(StoreError::DuplicateEmail) => conflicts += 1,
            Err(other) => panic!("expected DuplicateEmail, got {other:?}"),
        }
    }
    assert_eq!((winners.len(), conflicts), (1, 49));
    let email = Email::parse(&format!("{local}@example.com")).unwrap();
    assert_eq!(store.find_user_by_email(&email).await.unwrap(), winners.pop());
}

/// 20 concurrent password changes from the same token version: exactly one applies.
pub async fn concurrent_password_changes_apply_once<S: UserStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("changes"));
    store.insert_user(&user).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let hash = sample_hash(&format!("c{i}"));
            let (version, at) = (user.token_version, later(&user, 1));
            tokio::spawn(async move {
                let applied = store.set_password_hash(user.id, &hash, version, at).await.unwrap();
                applied.map(|_| hash)
            })
        })
        .collect();
    let mut applied = Vec::new();
    for task in tasks {
        applied.extend(task.await.unwrap());
    }
    assert_eq!(applied.len(), 1, "exactly one change applies");
    let stored = store.find_user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, applied.pop());
    assert_eq!(stored.token_version, user.token_version + 1);
}

/// 20 concurrent disables each increment the token version: none is lost.
pub async fn concurrent_disables_lose_no_update<S: UserStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("disables"));
    store.insert_user(&user).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let at = later(&user, i + 1);
            tokio::spawn(async move { store.set_active(user.id, false, at).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap().is_some());
    }
    let stored = store.find_user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.token_version, user.token_version + 20);
    assert!(!stored.is_active);
}

/// 20 concurrent upgrades from the same hash: exactly one applies, and its hash is stored.
pub async fn concurrent_hash_upgrades_apply_once<S: UserStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("upgrades"));
    store.insert_user(&user).await.unwrap();
    let current = user.password_hash.clone().unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, current) = (store.clone(), current.clone());
            let upgraded = sample_hash(&format!("u{i}"));
            let at = later(&user, 1);
            tokio::spawn(async move {
                let applied = store
                    .upgrade_password_hash(user.id, &current, &upgraded, at)
                    .await
                    .unwrap();
                applied.then_some(upgraded)
            })
        })
        .collect();
    let mut applied = Vec::new();
    for task in tasks {
        applied.extend(task.await.unwrap());
    }
    assert_eq!(applied.len(), 1, "exactly one upgrade applies");
    let stored = store.find_user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, applied.pop());
    assert_eq!(stored.token_version, user.token_version);
}

// ---------------------------------------------------------------- roles, revocation, verification

/// `set_roles` replaces the set, increments the token version and sets `updated_at`.
pub async fn set_roles_replaces_roles_and_revokes_tokens<S: AuthStore + Clone + 'static>(store: S) {
    let user = User {
        roles: [Role::new("viewer").unwrap()].into(),
        ..sample_user(unique_email("roles"))
    };
    store.insert_user(&user).await.unwrap();
    let roles: BTreeSet<Role> = ["admin", "billing:write"]
        .into_iter()
        .map(|r| Role::new(r).unwrap())
        .collect();
    let updated = store
        .set_roles(user.id, &roles, later(&user, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (&updated.roles, updated.token_version, updated.updated_at),
        (&roles, 1, later(&user, 1))
    );
    let cleared = store
        .set_roles(user.id, &BTreeSet::new(), later(&user, 2))
        .await
        .unwrap()
        .unwrap();
    assert!(cleared.roles.is_empty());
    assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(cleared));
    let ghost = sample_user(unique_email("ghost"));
    assert_eq!(store.set_roles(ghost.id, &roles, later(&user, 3)).await.unwrap(), None);
}

/// `revoke_access_tokens` increments the token version and nothing else but `updated_at`.
pub async fn revoke_access_tokens_increments_the_version<S: AuthStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("revoke"));
    store.insert_user(&user).await.unwrap();
    let updated = store
        .revoke_access_tokens(user.id, later(&user, 1))
        .await
        .unwrap()
        .unwrap();
    let expected = User {
        token_version: user.token_version + 1,
        updated_at: later(&user, 1),
        ..user.clone()
    };
    assert_eq!(updated, expected);
    let ghost = sample_user(unique_email("ghost"));
    assert_eq!(
        store.revoke_access_tokens(ghost.id, later(&user, 2)).await.unwrap(),
        None
    );
}

/// `mark_email_verified` applies only while the account has the given address, and keeps
/// the first verification time.
pub async fn mark_email_verified_only_for_the_current_address<S: AuthStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("verify"));
    store.insert_user(&user).await.unwrap();
    let other = unique_email("other");
    assert_eq!(
        store
            .mark_email_verified(user.id, &other, later(&user, 1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.find_user_by_id(user.id).await.unwrap().as_ref(), Some(&user));

    let verified = store
        .mark_email_verified(user.id, &user.email, later(&user, 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(verified.email_verified_at, Some(later(&user, 2)));
    let again = store
        .mark_email_verified(user.id, &user.email, later(&user, 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.email_verified_at,
        Some(later(&user, 2)),
        "the first verification time is kept"
    );
    assert_eq!(again.updated_at, later(&user, 3));
}

// ---------------------------------------------------------------- sessions

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
    }
}

fn refresh_hash() -> TokenHash {
    OpaqueToken::generate(TokenKind::Refresh).unwrap().1
}

async fn user_with_session<S: AuthStore>(store: &S, prefix: &str) -> (User, Session, TokenHash) {
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

/// A stored session comes back, field for field, through its refresh token's hash; IPv4
/// and missing metadata round-trip too.
pub async fn sessions_round_trip_through_their_refresh_token<S: AuthStore + Clone + 'static>(store: S) {
    let (user, session, token) = user_with_session(&store, "session").await;
    let record = store.find_refresh_token(&token).await.unwrap().unwrap();
    assert_eq!((record.session, record.used_at), (session, None));

    let bare = Session {
        id: SessionId::new_at(user.created_at),
        user_agent: None,
        ip: Some("203.0.113.9".parse().unwrap()),
        ..sample_session(&user)
    };
    let bare_token = refresh_hash();
    store.insert_session(&bare, &bare_token).await.unwrap();
    assert_eq!(
        store.find_refresh_token(&bare_token).await.unwrap().unwrap().session,
        bare
    );
}

/// A hash nobody stored finds nothing.
pub async fn unknown_refresh_tokens_are_none<S: AuthStore + Clone + 'static>(store: S) {
    assert_eq!(store.find_refresh_token(&refresh_hash()).await.unwrap(), None);
    let (_, session, _) = user_with_session(&store, "unknown").await;
    let now = session.created_at;
    assert!(
        !store
            .rotate_refresh_token(session.id, &refresh_hash(), &refresh_hash(), now)
            .await
            .unwrap()
    );
}

/// Rotation marks the presented token used, makes the replacement current and touches the
/// session; the used token cannot rotate again, nor can a token through another session.
pub async fn rotation_trades_a_token_once<S: AuthStore + Clone + 'static>(store: S) {
    let (_, session, first) = user_with_session(&store, "rotate").await;
    let (_, other_session, _) = user_with_session(&store, "rotate-other").await;
    let second = refresh_hash();
    let at = micros_after(session.last_used_at, 5);

    assert!(
        !store
            .rotate_refresh_token(other_session.id, &first, &second, at)
            .await
            .unwrap(),
        "wrong session"
    );
    assert!(
        store
            .rotate_refresh_token(session.id, &first, &second, at)
            .await
            .unwrap()
    );

    let used = store.find_refresh_token(&first).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(at));
    let current = store.find_refresh_token(&second).await.unwrap().unwrap();
    assert_eq!(current.used_at, None);
    assert_eq!(
        current.session,
        Session {
            last_used_at: at,
            ..session.clone()
        }
    );

    let third = refresh_hash();
    assert!(
        !store
            .rotate_refresh_token(session.id, &first, &third, micros_after(at, 1))
            .await
            .unwrap()
    );
    assert_eq!(
        store.find_refresh_token(&third).await.unwrap(),
        None,
        "a failed rotation stores nothing"
    );
    assert!(
        store
            .rotate_refresh_token(session.id, &second, &third, micros_after(at, 2))
            .await
            .unwrap()
    );
}

/// A revoked session's current token no longer rotates.
pub async fn rotation_stops_when_the_session_is_revoked<S: AuthStore + Clone + 'static>(store: S) {
    let (user, session, token) = user_with_session(&store, "rotate-revoked").await;
    let at = micros_after(session.created_at, 1);
    assert!(store.revoke_session(user.id, session.id, at).await.unwrap());
    assert!(
        !store
            .rotate_refresh_token(session.id, &token, &refresh_hash(), at)
            .await
            .unwrap()
    );
    let record = store.find_refresh_token(&token).await.unwrap().unwrap();
    assert_eq!((record.used_at, record.session.revoked_at), (None, Some(at)));
}

/// 20 concurrent rotations of one token: exactly one succeeds, and only its replacement is
/// stored.
pub async fn concurrent_rotations_of_one_token_apply_once<S: AuthStore + Clone + 'static>(store: S) {
    let (_, session, token) = user_with_session(&store, "rotate-race").await;
    let at = micros_after(session.created_at, 1);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let replacement = refresh_hash();
            tokio::spawn(async move {
                let rotated = store
                    .rotate_refresh_token(session.id, &token, &replacement, at)
                    .await
                    .unwrap();
                (rotated, replacement)
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        let (rotated, replacement) = task.await.unwrap();
        let stored = store.find_refresh_token(&replacement).await.unwrap();
        assert_eq!(stored.is_some(), rotated, "only the winner's replacement exists");
        winners += usize::from(rotated);
    }
    assert_eq!(winners, 1);
}

/// `list_sessions` returns the user's sessions that are not revoked, oldest first, and
/// nobody else's.
pub async fn list_sessions_returns_live_sessions_oldest_first<S: AuthStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("list"));
    store.insert_user(&user).await.unwrap();
    let base = sample_session(&user);
    let sessions: Vec<Session> = (0..3)
        .map(|i| Session {
            id: SessionId::new_at(micros_after(base.created_at, i)),
            created_at: micros_after(base.created_at, i),
            ..base.clone()
        })
        .collect();
    for session in sessions.iter().rev() {
        store.insert_session(session, &refresh_hash()).await.unwrap();
    }
    // Created in the same microsecond: ordered by id.
    let (tie_early, tie_late) = {
        let mut ids = [SessionId::new_at(base.created_at), SessionId::new_at(base.created_at)];
        ids.sort();
        (ids[0], ids[1])
    };
    let late_at = micros_after(base.created_at, 10);
    for id in [tie_late, tie_early] {
        let tied = Session {
            id,
            created_at: late_at,
            ..base.clone()
        };
        store.insert_session(&tied, &refresh_hash()).await.unwrap();
    }
    let (_, _, _) = user_with_session(&store, "list-other").await;
    assert!(
        store
            .revoke_session(user.id, sessions[1].id, base.created_at)
            .await
            .unwrap()
    );
    let listed: Vec<SessionId> = store
        .list_sessions(user.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, vec![sessions[0].id, sessions[2].id, tie_early, tie_late]);
}

/// `revoke_session` ends only a live session of its owner, once.
pub async fn revoke_session_only_ends_the_owners_session<S: AuthStore + Clone + 'static>(store: S) {
    let (owner, session, _) = user_with_session(&store, "owner").await;
    let (intruder, _, _) = user_with_session(&store, "intruder").await;
    let at = micros_after(session.created_at, 3);
    assert!(
        !store.revoke_session(intruder.id, session.id, at).await.unwrap(),
        "not the intruder's"
    );
    assert!(
        !store.revoke_session(owner.id, SessionId::new_at(at), at).await.unwrap(),
        "no such session"
    );
    assert!(store.revoke_session(owner.id, session.id, at).await.unwrap());
    assert!(
        !store
            .revoke_session(owner.id, session.id, micros_after(at, 1))
            .await
            .unwrap(),
        "already ended"
    );
    assert!(store.list_sessions(owner.id).await.unwrap().is_empty());
}

/// `find_session` returns the session by id, as stored, revoked or not; an unknown id is
/// `None`.
pub async fn find_session_returns_the_session_revoked_or_not<S: AuthStore + Clone + 'static>(store: S) {
    let (owner, session, _) = user_with_session(&store, "find-session").await;
    assert_eq!(store.find_session(session.id).await.unwrap(), Some(session.clone()));
    let unknown = SessionId::new_at(micros_after(session.created_at, 1));
    assert_eq!(store.find_session(unknown).await.unwrap(), None);
    let at = micros_after(session.created_at, 2);
    assert!(store.revoke_session(owner.id, session.id, at).await.unwrap());
    let found = store
        .find_session(session.id)
        .await
        .unwrap()
        .expect("revoked, not deleted");
    assert_eq!(found.revoked_at, Some(at));
    assert_eq!(found.id, session.id);
    assert_eq!(found.user_id, owner.id);
}

/// `revoke_all_sessions` ends every live session of the user and reports how many.
pub async fn revoke_all_sessions_ends_every_session_of_the_user<S: AuthStore + Clone + 'static>(store: S) {
    let (user, first, _) = user_with_session(&store, "all").await;
    let second = Session {
        id: SessionId::new_at(micros_after(first.created_at, 1)),
        ..sample_session(&user)
    };
    store.insert_session(&second, &refresh_hash()).await.unwrap();
    let (bystander, _, _) = user_with_session(&store, "bystander").await;
    let at = micros_after(first.created_at, 2);
    assert_eq!(store.revoke_all_sessions(user.id, at).await.unwrap(), 2);
    assert_eq!(store.revoke_all_sessions(user.id, at).await.unwrap(), 0);
    assert!(store.list_sessions(user.id).await.unwrap().is_empty());
    assert_eq!(store.list_sessions(bystander.id).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------- one-time tokens

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

/// Stored, found (field for field), consumed once, then gone.
pub async fn one_time_tokens_are_found_then_consumed_once<S: AuthStore + Clone + 'static>(store: S) {
    let user = User {
        token_version: 3,
        ..sample_user(unique_email("one-time"))
    };
    store.insert_user(&user).await.unwrap();
    let (hash, token) = sample_one_time_token(&user, TokenPurpose::PasswordReset);
    store.insert_one_time_token(&hash, &token).await.unwrap();
    let purpose = TokenPurpose::PasswordReset;
    assert_eq!(
        store.find_one_time_token(&hash, purpose).await.unwrap().as_ref(),
        Some(&token)
    );
    let at = micros_after(token.created_at, 1);
    assert_eq!(
        store.consume_one_time_token(&hash, purpose, at).await.unwrap(),
        Some(token)
    );
    assert_eq!(store.find_one_time_token(&hash, purpose).await.unwrap(), None);
    assert_eq!(store.consume_one_time_token(&hash, purpose, at).await.unwrap(), None);
    let (unknown, _) = sample_one_time_token(&user, purpose);
    assert_eq!(store.consume_one_time_token(&unknown, purpose, at).await.unwrap(), None);
}

/// A token is found and consumed only under its own purpose.
pub async fn one_time_token_purposes_are_separate<S: AuthStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("purpose"));
    store.insert_user(&user).await.unwrap();
    let (hash, token) = sample_one_time_token(&user, TokenPurpose::EmailVerification);
    store.insert_one_time_token(&hash, &token).await.unwrap();
    let at = micros_after(token.created_at, 1);
    assert_eq!(
        store
            .find_one_time_token(&hash, TokenPurpose::PasswordReset)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .consume_one_time_token(&hash, TokenPurpose::PasswordReset, at)
            .await
            .unwrap(),
        None
    );
    let found = store
        .consume_one_time_token(&hash, TokenPurpose::EmailVerification, at)
        .await
        .unwrap();
    assert_eq!(found, Some(token), "the wrong-purpose attempt did not spend it");
}

/// A new token replaces the account's unused tokens of the same purpose, and no others.
pub async fn a_newer_one_time_token_replaces_older_unused_ones<S: AuthStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("newer"));
    let other = sample_user(unique_email("newer-other"));
    store.insert_user(&user).await.unwrap();
    store.insert_user(&other).await.unwrap();
    let (old_reset, old_reset_token) = sample_one_time_token(&user, TokenPurpose::PasswordReset);
    let (verification, verification_token) = sample_one_time_token(&user, TokenPurpose::EmailVerification);
    let (others_reset, others_reset_token) = sample_one_time_token(&other, TokenPurpose::PasswordReset);
    for (hash, token) in [
        (&old_reset, &old_reset_token),
        (&verification, &verification_token),
        (&others_reset, &others_reset_token),
    ] {
        store.insert_one_time_token(hash, token).await.unwrap();
    }
    let (new_reset, new_reset_token) = sample_one_time_token(&user, TokenPurpose::PasswordReset);
    store.insert_one_time_token(&new_reset, &new_reset_token).await.unwrap();

    let reset = TokenPurpose::PasswordReset;
    assert_eq!(
        store.find_one_time_token(&old_reset, reset).await.unwrap(),
        None,
        "superseded"
    );
    assert_eq!(
        store.find_one_time_token(&new_reset, reset).await.unwrap(),
        Some(new_reset_token)
    );
    assert_eq!(
        store.find_one_time_token(&others_reset, reset).await.unwrap(),
        Some(others_reset_token)
    );
    let still = store
        .find_one_time_token(&verification, TokenPurpose::EmailVerification)
        .await
        .unwrap();
    assert_eq!(still, Some(verification_token));
}

/// 20 concurrent consumptions of one token: exactly one gets it.
pub async fn concurrent_consumption_of_one_token_applies_once<S: AuthStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("consume-race"));
    store.insert_user(&user).await.unwrap();
    let (hash, token) = sample_one_time_token(&user, TokenPurpose::PasswordReset);
    store.insert_one_time_token(&hash, &token).await.unwrap();
    let at = micros_after(token.created_at, 1);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .consume_one_time_token(&hash, TokenPurpose::PasswordReset, at)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if let Some(consumed) = task.await.unwrap() {
            assert_eq!(consumed, token);
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

/// Concurrent issues of a token with one purpose for one account leave exactly one unused
/// token (the replacement is atomic, not a racy delete-then-insert).
pub async fn concurrent_issues_for_one_purpose_leave_one_live_token<S: AuthStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("issue-race"));
    store.insert_user(&user).await.unwrap();
    let issued: Vec<(TokenHash, OneTimeToken)> = (0..20)
        .map(|_| sample_one_time_token(&user, TokenPurpose::PasswordReset))
        .collect();
    let tasks: Vec<_> = issued
        .iter()
        .cloned()
        .map(|(hash, token)| {
            let store = store.clone();
            tokio::spawn(async move { store.insert_one_time_token(&hash, &token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut live = 0;
    for (hash, _) in &issued {
        live += usize::from(
            store
                .find_one_time_token(hash, TokenPurpose::PasswordReset)
                .await
                .unwrap()
                .is_some(),
        );
    }
    assert_eq!(live, 1, "only the newest token works");
}

/// The service stores decoys for the nil account (which cannot exist) so every answer to
/// a reset request costs the same: stores keep them like any token, with no reference to
/// an existing account.
pub async fn decoys_for_the_nil_account_are_stored_like_any_token<S: AuthStore + Clone + 'static>(store: S) {
    let nobody = User {
        id: crate::UserId::from_uuid(Uuid::nil()),
        ..sample_user(Email::decoy())
    };
    for _ in 0..3 {
        let (hash, token) = sample_one_time_token(&nobody, TokenPurpose::PasswordReset);
        store.insert_one_time_token(&hash, &token).await.unwrap();
        assert_eq!(
            store
                .find_one_time_token(&hash, TokenPurpose::PasswordReset)
                .await
                .unwrap(),
            Some(token)
        );
    }
}

/// Storing a hash that already exists fails and changes nothing, even for a used token.
pub async fn a_duplicate_one_time_token_hash_is_an_error<S: AuthStore + Clone + 'static>(store: S) {
    let user = sample_user(unique_email("duplicate-hash"));
    store.insert_user(&user).await.unwrap();
    let (hash, token) = sample_one_time_token(&user, TokenPurpose::EmailVerification);
    store.insert_one_time_token(&hash, &token).await.unwrap();
    let again = OneTimeToken {
        purpose: TokenPurpose::PasswordReset,
        ..token.clone()
    };
    assert!(store.insert_one_time_token(&hash, &again).await.is_err());
    // The same hash for the same account and purpose is no replacement either (a store
    // that first deletes the unused token of that purpose must not delete this very one).
    let same_purpose = OneTimeToken {
        token_version: token.token_version + 5,
        ..token.clone()
    };
    assert!(store.insert_one_time_token(&hash, &same_purpose).await.is_err());
    assert_eq!(
        store
            .find_one_time_token(&hash, TokenPurpose::EmailVerification)
            .await
            .unwrap(),
        Some(token.clone())
    );
    let at = micros_after(token.created_at, 1);
    store
        .consume_one_time_token(&hash, TokenPurpose::EmailVerification, at)
        .await
        .unwrap()
        .unwrap();
    assert!(
        store.insert_one_time_token(&hash, &token).await.is_err(),
        "a used token cannot be revived"
    );
    assert_eq!(
        store
            .find_one_time_token(&hash, TokenPurpose::EmailVerification)
            .await
            .unwrap(),
        None
    );
}

/// `delete_spent_one_time_tokens` deletes used and expired tokens, nothing live.
pub async fn delete_spent_one_time_tokens_removes_only_spent_tokens<S: AuthStore + Clone + 'static>(store: S) {
    let users: Vec<User> = (0..3).map(|_| sample_user(unique_email("spent"))).collect();
    for user in &users {
        store.insert_user(user).await.unwrap();
    }
    let (used, used_token) = sample_one_time_token(&users[0], TokenPurpose::PasswordReset);
    let (expired, mut expired_token) = sample_one_time_token(&users[1], TokenPurpose::PasswordReset);
    // Expires exactly at `now` below: boundaries are inclusive.
    expired_token.expires_at = micros_after(used_token.created_at, 20);
    let (live, live_token) = sample_one_time_token(&users[2], TokenPurpose::PasswordReset);
    for (hash, token) in [(&used, &used_token), (&expired, &expired_token), (&live, &live_token)] {
        store.insert_one_time_token(hash, token).await.unwrap();
    }
    let now = micros_after(used_token.created_at, 20);
    store
        .consume_one_time_token(&used, TokenPurpose::PasswordReset, now)
        .await
        .unwrap()
        .unwrap();

    let deleted = store.delete_spent_one_time_tokens(now).await.unwrap();
    assert!(deleted >= 2, "the used and the expired token ({deleted})");
    assert_eq!(
        store
            .find_one_time_token(&live, TokenPurpose::PasswordReset)
            .await
            .unwrap(),
        Some(live_token)
    );
    let gone = store
        .consume_one_time_token(&expired, TokenPurpose::PasswordReset, now)
        .await
        .unwrap();
    assert_eq!(gone, None, "the expired token is gone");
}

/// `delete_ended_sessions` deletes revoked, expired and idle sessions with their refresh
/// tokens, and nothing live.
pub async fn delete_ended_sessions_removes_only_ended_sessions<S: AuthStore + Clone + 'static>(store: S) {
    let (user, live, live_token) = user_with_session(&store, "purge").await;
    let now = micros_after(live.created_at, 1_000);
    let idle_since = micros_after(live.created_at, -1_000);
    // Boundaries are inclusive, as in `Session::is_live`: these three end exactly now.
    let mut ended = Vec::new();
    for (label, change) in [("revoked", 0), ("expired", 1), ("idle", 2)] {
        let session = Session {
            id: SessionId::new_at(micros_after(live.created_at, change)),
            expires_at: if label == "expired" { now } else { live.expires_at },
            last_used_at: if label == "idle" { idle_since } else { live.last_used_at },
            ..sample_session(&user)
        };
        let token = refresh_hash();
        store.insert_session(&session, &token).await.unwrap();
        if label == "revoked" {
            store.revoke_session(user.id, session.id, now).await.unwrap();
        }
        ended.push(token);
    }
    assert!(store.delete_ended_sessions(now, idle_since).await.unwrap() >= 3);
    for token in &ended {
        assert_eq!(
            store.find_refresh_token(token).await.unwrap(),
            None,
            "ended sessions go with their tokens"
        );
    }
    assert_eq!(
        store.find_refresh_token(&live_token).await.unwrap().map(|r| r.session),
        Some(live)
    );
}
