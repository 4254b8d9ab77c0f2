//! The PasskeyStore cases.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{micros_after, sample_user, unique_email};
use crate::clock::truncate_to_micros;
use crate::error::StoreError;
use crate::id::PasskeyId;
use crate::passkey::{PasskeyCeremony, PasskeyCeremonyKind, PasskeyCredential};
use crate::store::{PasskeyRemoval, PasskeyStore, UserStore};
use crate::token::{OpaqueToken, TokenHash, TokenKind};
use crate::user::User;

fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

fn token() -> TokenHash {
    OpaqueToken::generate(TokenKind::LoginChallenge).unwrap().1
}

/// A credential id no other case (or run) uses, of a length real authenticators give.
fn credential_id() -> Vec<u8> {
    let mut id = uuid::Uuid::new_v4().as_bytes().to_vec();
    id.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    id
}

fn passkey_of(user: &User, name: &str, at: OffsetDateTime) -> PasskeyCredential {
    let credential = format!(
        r#"{{"cred":{{"cred_id":"{}","counter":0,"note":"«ü»"}}}}"#,
        uuid::Uuid::new_v4()
    );
    PasskeyCredential::new(user.id, credential_id(), credential, 0, name, at)
}

async fn passwordless<S: UserStore>(store: &S, prefix: &str) -> User {
    let user = User::new(unique_email(prefix), None, now());
    store.insert_user(&user).await.unwrap();
    user
}

conformance_cases! { $
    /// Runs the [`PasskeyStore`](crate::PasskeyStore) cases: passkeys round-trip and are
    /// found by credential id, a credential id is registered once (raced), a sign counter
    /// never moves back (raced), the last way to sign in is never deleted (raced), and
    /// ceremonies are taken once (raced): one `#[tokio::test]` per case, each on a fresh
    /// store made by the expression given (it may `.await`). See the
    /// [conformance suite](crate::conformance).
    macro passkey_store_conformance_tests for [UserStore + PasskeyStore + Clone + 'static];

    /// Passkeys round-trip every field, list oldest first per account, are found by
    /// credential id, and are renamed by their owner only.
    pub async fn passkeys_round_trip_and_are_found_by_credential_id(store: S) {
        let user = sample_user(unique_email("passkeys"));
        store.insert_user(&user).await.unwrap();
        let other = sample_user(unique_email("passkeys-other"));
        store.insert_user(&other).await.unwrap();
        let at = now();
        let laptop = passkey_of(&user, "Laptop «ü»", at);
        let mut phone = passkey_of(&user, "Phone", micros_after(at, 1));
        phone.counter = u32::MAX;
        phone.last_used_at = Some(micros_after(at, 2));
        let theirs = passkey_of(&other, "Key", at);
        for passkey in [&phone, &laptop, &theirs] {
            store.insert_passkey(passkey).await.unwrap();
        }
        assert_eq!(store.list_passkeys(user.id).await.unwrap(), vec![laptop.clone(), phone.clone()]);
        assert_eq!(store.find_passkey(&phone.credential_id).await.unwrap(), Some(phone.clone()));
        assert_eq!(store.find_passkey(&credential_id()).await.unwrap(), None);
        assert_eq!(store.list_passkeys(sample_user(unique_email("nobody")).id).await.unwrap(), vec![]);

        assert!(store.rename_passkey(user.id, laptop.id, "Work laptop").await.unwrap());
        assert!(!store.rename_passkey(other.id, laptop.id, "Stolen").await.unwrap(), "someone else's");
        assert!(!store.rename_passkey(user.id, PasskeyId::new_at(at), "None").await.unwrap());
        let renamed = store.find_passkey(&laptop.credential_id).await.unwrap().unwrap();
        assert_eq!(renamed.name, "Work laptop");

        let orphan = PasskeyCredential::new(sample_user(unique_email("ghost")).id, credential_id(), "{}".into(), 0, "x", at);
        assert!(store.insert_passkey(&orphan).await.is_err(), "an unknown account is refused");
    }

    /// Twenty concurrent registrations of one credential id (to one account and to
    /// others): exactly one is stored, the others get `DuplicateCredential`.
    pub async fn a_credential_id_is_registered_once_even_when_raced(store: S) {
        let store = Arc::new(store);
        let shared = credential_id();
        let at = now();
        let mut registrations = Vec::new();
        for i in 0..20 {
            let user = sample_user(unique_email("passkey-race"));
            store.insert_user(&user).await.unwrap();
            let mut passkey = passkey_of(&user, &format!("key {i}"), at);
            passkey.credential_id.clone_from(&shared);
            let store = Arc::clone(&store);
            registrations.push(tokio::spawn(async move { store.insert_passkey(&passkey).await }));
        }
        let mut stored = 0;
        for registration in registrations {
            match registration.await.unwrap() {
                Ok(()) => stored += 1,
                Err(StoreError::DuplicateCredential) => {}
                Err(other) => panic!("a concurrent registration failed with {other:?}"),
            }
        }
        assert_eq!(stored, 1);
        assert!(store.find_passkey(&shared).await.unwrap().is_some());
    }

    /// A sign-in applies over the counter it read only: a stale one changes nothing, and
    /// of twenty concurrent sign-ins that read one counter exactly one applies.
    pub async fn a_sign_counter_never_moves_back(store: S) {
        let user = sample_user(unique_email("passkey-counter"));
        store.insert_user(&user).await.unwrap();
        let passkey = passkey_of(&user, "Key", now());
        store.insert_passkey(&passkey).await.unwrap();
        let at = micros_after(now(), 10);
        assert!(store.record_passkey_use(passkey.id, 0, r#"{"counter":5}"#, 5, at).await.unwrap());
        assert!(!store.record_passkey_use(passkey.id, 0, r#"{"counter":3}"#, 3, at).await.unwrap(), "stale");
        assert!(!store.record_passkey_use(PasskeyId::new_at(at), 5, "{}", 6, at).await.unwrap(), "unknown");
        let used = store.find_passkey(&passkey.credential_id).await.unwrap().unwrap();
        assert_eq!((used.counter, used.credential.as_str(), used.last_used_at), (5, r#"{"counter":5}"#, Some(at)));

        let store = Arc::new(store);
        let uses: Vec<_> = (6..26)
            .map(|counter| {
                let store = Arc::clone(&store);
                let id = passkey.id;
                tokio::spawn(async move { store.record_passkey_use(id, 5, &format!("{{\"counter\":{counter}}}"), counter, at).await.unwrap() })
            })
            .collect();
        let mut applied = 0;
        for done in uses {
            applied += usize::from(done.await.unwrap());
        }
        assert_eq!(applied, 1);
        let used = store.find_passkey(&passkey.credential_id).await.unwrap().unwrap();
        assert_eq!(used.credential, format!("{{\"counter\":{}}}", used.counter), "credential and counter together");
    }

    /// A passkey is deleted by its owner only, never as an account's last way to sign in:
    /// of two concurrent deletions of a passwordless account's last two passkeys, one is
    /// refused. With a password, the last passkey goes.
    pub async fn the_last_passkey_of_a_passwordless_account_is_never_deleted(store: S) {
        let user = passwordless(&store, "passkey-last").await;
        let first = passkey_of(&user, "First", now());
        store.insert_passkey(&first).await.unwrap();
        assert_eq!(store.delete_passkey(user.id, first.id).await.unwrap(), PasskeyRemoval::LastSignInMethod);
        let stranger = sample_user(unique_email("passkey-stranger"));
        store.insert_user(&stranger).await.unwrap();
        assert_eq!(store.delete_passkey(stranger.id, first.id).await.unwrap(), PasskeyRemoval::NotFound);

        let store = Arc::new(store);
        for round in 0..20 {
            store.insert_passkey(&passkey_of(&user, "Second", now())).await.unwrap();
            let current = store.list_passkeys(user.id).await.unwrap();
            assert_eq!(current.len(), 2, "round {round}");
            let deletions: Vec<_> = current
                .iter()
                .map(|passkey| {
                    let store = Arc::clone(&store);
                    let (user_id, id) = (user.id, passkey.id);
                    tokio::spawn(async move { store.delete_passkey(user_id, id).await.unwrap() })
                })
                .collect();
            let mut outcomes = Vec::new();
            for deletion in deletions {
                outcomes.push(deletion.await.unwrap());
            }
            outcomes.sort_by_key(|outcome| *outcome == PasskeyRemoval::Removed);
            assert_eq!(outcomes, vec![PasskeyRemoval::LastSignInMethod, PasskeyRemoval::Removed], "round {round}");
            assert_eq!(store.list_passkeys(user.id).await.unwrap().len(), 1, "round {round}");
        }

        let with_password = sample_user(unique_email("passkey-password"));
        store.insert_user(&with_password).await.unwrap();
        let only = passkey_of(&with_password, "Only", now());
        store.insert_passkey(&only).await.unwrap();
        assert_eq!(store.delete_passkey(with_password.id, only.id).await.unwrap(), PasskeyRemoval::Removed);
        assert_eq!(store.find_passkey(&only.credential_id).await.unwrap(), None);
        store.insert_passkey(&only).await.unwrap();
    }

    /// A ceremony round-trips and is taken once, even by twenty concurrent takes; expired
    /// ones are deleted, live ones kept.
    pub async fn ceremonies_are_taken_once_and_expired_ones_deleted(store: S) {
        let user = sample_user(unique_email("passkey-ceremony"));
        store.insert_user(&user).await.unwrap();
        let at = now();
        let registration = PasskeyCeremony::new(
            PasskeyCeremonyKind::Registration,
            Some(user.id),
            r#"{"rs":{"challenge":"«ü»"}}"#.into(),
            at,
            micros_after(at, 300_000_000),
        );
        let key = token();
        store.insert_passkey_ceremony(&key, &registration).await.unwrap();
        let store = Arc::new(store);
        let takes: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.take_passkey_ceremony(&key).await.unwrap() })
            })
            .collect();
        let mut taken = Vec::new();
        for take in takes {
            taken.extend(take.await.unwrap());
        }
        assert_eq!(taken, vec![registration]);

        let login = |expires_at| PasskeyCeremony::new(PasskeyCeremonyKind::Login, None, "{}".into(), at, expires_at);
        let (expired, live) = (token(), token());
        store.insert_passkey_ceremony(&expired, &login(micros_after(at, 1))).await.unwrap();
        store.insert_passkey_ceremony(&live, &login(micros_after(at, 600_000_000))).await.unwrap();
        assert!(store.delete_expired_passkey_ceremonies(micros_after(at, 2)).await.unwrap() >= 1);
        assert_eq!(store.take_passkey_ceremony(&expired).await.unwrap(), None);
        assert_eq!(store.take_passkey_ceremony(&live).await.unwrap(), Some(login(micros_after(at, 600_000_000))));
    }
}
