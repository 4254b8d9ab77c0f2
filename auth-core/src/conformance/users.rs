//! The UserStore cases.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{later, sample_hash, sample_user, unique_email};
use crate::clock::truncate_to_micros;
use crate::email::Email;
use crate::error::StoreError;
use crate::hash::HashedPassword;
use crate::role::Role;
use crate::store::UserStore;
use crate::user::User;

conformance_cases! { $
    /// Runs the [`UserStore`](crate::UserStore) cases: lookups, uniqueness, every field's round
    /// trip, the compare-and-set updates and their races: one `#[tokio::test]` per case, each
    /// on a fresh store made by the expression given (it may `.await`). See the [conformance
    /// suite](crate::conformance).
    macro user_store_conformance_tests for [UserStore + Clone + 'static];

    /// An inserted account is found by id, equal field for field.
    pub async fn insert_then_find_by_id(store: S) {
        let user = sample_user(unique_email("by-id"));
        store.insert_user(&user).await.unwrap();
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(user));
    }

    /// An inserted account is found by its normalized email, however the lookup was typed.
    pub async fn insert_then_find_by_email(store: S) {
        let user = sample_user(unique_email("by-email"));
        store.insert_user(&user).await.unwrap();
        let typed = format!("  {}\t", user.email.as_str().to_uppercase());
        let lookup = Email::parse(&typed).unwrap();
        assert_eq!(store.find_user_by_email(&lookup).await.unwrap(), Some(user));
    }

    /// A store that answers is not [known to be unavailable](crate::UserStore::known_unavailable),
    /// before its first call and after: a wrong `true` would refuse every registration.
    pub async fn a_working_store_is_not_known_unavailable(store: S) {
        assert!(!store.known_unavailable().await, "before any call");
        let user = sample_user(unique_email("available"));
        store.insert_user(&user).await.unwrap();
        assert!(store.find_user_by_id(user.id).await.unwrap().is_some());
        assert!(!store.known_unavailable().await, "after calls that worked");
    }

    /// Unknown ids and emails are `Ok(None)`, and updates of unknown ids change nothing.
    pub async fn missing_users_are_none(store: S) {
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
    /// a disabled flag, a token version, distinct microsecond timestamps, a Unicode email, a
    /// second factor required.
    pub async fn every_field_round_trips(store: S) {
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
            requires_second_factor: true,
            ..base
        };
        assert!(user.email.as_str().starts_with("jürgen."));
        store.insert_user(&user).await.unwrap();
        assert_eq!(store.find_user_by_id(user.id).await.unwrap().as_ref(), Some(&user));
        assert_eq!(store.find_user_by_email(&user.email).await.unwrap(), Some(user));
    }

    /// A second account with the same normalized email is [`StoreError::DuplicateEmail`], and
    /// nothing of it is stored.
    pub async fn duplicate_email_is_a_typed_conflict(store: S) {
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
    pub async fn emails_are_matched_literally(store: S) {
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

    /// The longest values the domain allows round-trip: a 254-byte email, 64-byte roles and a
    /// long hash string.
    pub async fn long_values_round_trip(store: S) {
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
    pub async fn upgrade_password_hash_compares_and_sets(store: S) {
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
    pub async fn set_password_hash_revokes_tokens(store: S) {
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
    pub async fn set_password_hash_loses_to_a_disable(store: S) {
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
    pub async fn set_active_toggles_and_disabling_revokes(store: S) {
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
    pub async fn concurrent_registrations_of_one_email_leave_one_account(store: S) {
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
    pub async fn concurrent_password_changes_apply_once(store: S) {
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
    pub async fn concurrent_disables_lose_no_update(store: S) {
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
    pub async fn concurrent_hash_upgrades_apply_once(store: S) {
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

    /// `revoke_access_tokens` increments the token version and nothing else but `updated_at`.
    pub async fn revoke_access_tokens_increments_the_version(store: S) {
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
    pub async fn mark_email_verified_only_for_the_current_address(store: S) {
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
}
