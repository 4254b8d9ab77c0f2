//! The IdentityStore cases.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{micros_after, sample_user, unique_email};
use crate::clock::truncate_to_micros;
use crate::error::StoreError;
use crate::id::{IdentityId, SessionId, UserId};
use crate::identity::{
    CodeChallenge, ExternalIdentity, ExternalLoginCode, ExternalLoginPurpose, ExternalLoginState, LinkedIdentity,
    ProviderName, ReturnPath,
};
use crate::store::{IdentityRemoval, IdentityStore, UserStore};
use crate::token::{OpaqueToken, TokenHash, TokenKind};
use crate::user::User;

fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

fn hash(kind: TokenKind) -> TokenHash {
    OpaqueToken::generate(kind).unwrap().1
}

fn provider(name: &str) -> ProviderName {
    ProviderName::new(name).unwrap()
}

/// A subject no other case (or run) uses.
fn unique_subject() -> String {
    format!("sub-{}", uuid::Uuid::new_v4().simple())
}

fn identity_of(user: &User, provider_name: &str, subject: &str, at: OffsetDateTime) -> LinkedIdentity {
    let identity =
        ExternalIdentity::new(provider(provider_name), subject).with_email("Ada.Lovelace@Example.com «ü»", true);
    LinkedIdentity::new(user.id, &identity, at)
}

/// A new account without a password, created with its first identity.
async fn passwordless<S: UserStore + IdentityStore>(store: &S, prefix: &str) -> (User, LinkedIdentity) {
    let at = now();
    let user = User::new(unique_email(prefix), None, at).with_email_verified_at(Some(at));
    let identity = identity_of(&user, "google", &unique_subject(), at).with_last_used_at(Some(at));
    store.insert_user_with_identity(&user, &identity).await.unwrap();
    (user, identity)
}

conformance_cases! { $
    /// Runs the [`IdentityStore`](crate::IdentityStore) cases: identities unique on
    /// (provider, subject) by the store's own constraint, an account created with its
    /// first identity in one write, the last way to sign in never deleted, and sign-in
    /// states and codes taken once: one `#[tokio::test]` per case, each on a fresh store
    /// made by the expression given (it may `.await`). See the
    /// [conformance suite](crate::conformance).
    macro identity_store_conformance_tests for [UserStore + IdentityStore + Clone + 'static];

    /// An account created with its identity round-trips both; the identity is found by
    /// provider and subject (exactly: another provider or a subject in another case is
    /// another identity), listed oldest first, and its use recorded.
    pub async fn identities_round_trip_and_are_found_by_provider_and_subject(store: S) {
        let (user, identity) = passwordless(&store, "identity-round-trip").await;
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), Some(user.clone()));
        assert_eq!(
            store.find_identity(&identity.provider, &identity.subject).await.unwrap(),
            Some(identity.clone())
        );
        assert_eq!(store.find_identity(&provider("gitlab"), &identity.subject).await.unwrap(), None);
        assert_eq!(
            store.find_identity(&identity.provider, &identity.subject.to_uppercase()).await.unwrap(),
            None,
            "subjects compare byte for byte"
        );
        let second = identity_of(&user, "gitlab", &unique_subject(), micros_after(identity.created_at, 5));
        store.insert_identity(&second).await.unwrap();
        assert_eq!(store.list_identities(user.id).await.unwrap(), vec![identity.clone(), second.clone()]);
        let used = micros_after(second.created_at, 7);
        assert!(store.record_identity_use(second.id, used).await.unwrap());
        assert_eq!(
            store.find_identity(&second.provider, &second.subject).await.unwrap().unwrap().last_used_at,
            Some(used)
        );
        assert!(!store.record_identity_use(IdentityId::new_at(used), used).await.unwrap());
        let other = sample_user(unique_email("identity-round-trip-other"));
        store.insert_user(&other).await.unwrap();
        assert_eq!(store.list_identities(other.id).await.unwrap(), vec![]);
    }

    /// (provider, subject) is unique: linking it again, to another account or the same,
    /// is a typed conflict, and creating an account with it writes nothing; an account
    /// with a taken email is a typed conflict too, and nothing of it is written.
    pub async fn an_identity_is_linked_once_and_a_failed_creation_writes_nothing(store: S) {
        let (user, identity) = passwordless(&store, "identity-unique").await;
        let other = sample_user(unique_email("identity-unique-other"));
        store.insert_user(&other).await.unwrap();
        let again = identity_of(&other, identity.provider.as_str(), &identity.subject, now());
        assert!(matches!(store.insert_identity(&again).await, Err(StoreError::DuplicateIdentity)));
        let same_account = identity_of(&user, identity.provider.as_str(), &identity.subject, now());
        assert!(matches!(store.insert_identity(&same_account).await, Err(StoreError::DuplicateIdentity)));

        let at = now();
        let newcomer = User::new(unique_email("identity-unique-new"), None, at);
        let taken = identity_of(&newcomer, identity.provider.as_str(), &identity.subject, at);
        assert!(matches!(
            store.insert_user_with_identity(&newcomer, &taken).await,
            Err(StoreError::DuplicateIdentity)
        ));
        assert_eq!(store.find_user_by_id(newcomer.id).await.unwrap(), None, "no account without its identity");
        assert_eq!(store.find_user_by_email(&newcomer.email).await.unwrap(), None);
        // A second first sign-in of it (its email taken too): the identity's conflict.
        let twin = User::new(user.email.clone(), None, at);
        let twin_identity = identity_of(&twin, identity.provider.as_str(), &identity.subject, at);
        assert!(matches!(
            store.insert_user_with_identity(&twin, &twin_identity).await,
            Err(StoreError::DuplicateIdentity)
        ));
        assert_eq!(store.find_user_by_id(twin.id).await.unwrap(), None);

        let same_email = User::new(user.email.clone(), None, at);
        let fresh = identity_of(&same_email, "google", &unique_subject(), at);
        assert!(matches!(
            store.insert_user_with_identity(&same_email, &fresh).await,
            Err(StoreError::DuplicateEmail)
        ));
        assert_eq!(store.find_identity(&fresh.provider, &fresh.subject).await.unwrap(), None, "no identity without its account");
        assert_eq!(store.list_identities(user.id).await.unwrap(), vec![identity]);
    }

    /// Twenty concurrent first sign-ins of one new identity, each with its own new
    /// account of one email (what two browsers finishing the same first sign-in send):
    /// exactly one creates its account, the others get the identity's conflict (not the
    /// email's, so the service signs them in) and leave nothing behind.
    pub async fn concurrent_first_sign_ins_of_one_identity_create_one_account(store: S) {
        let store = Arc::new(store);
        let subject = unique_subject();
        let email = unique_email("identity-race");
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                let subject = subject.clone();
                let email = email.clone();
                tokio::spawn(async move {
                    let at = now();
                    let user = User::new(email, None, at);
                    let identity = identity_of(&user, "google", &subject, at);
                    let result = store.insert_user_with_identity(&user, &identity).await;
                    (user, result)
                })
            })
            .collect();
        let mut created = Vec::new();
        for task in tasks {
            let (user, result) = task.await.unwrap();
            match result {
                Ok(()) => created.push(user),
                Err(StoreError::DuplicateIdentity) => {
                    assert_eq!(store.find_user_by_id(user.id).await.unwrap(), None, "a loser left its account");
                }
                Err(other) => panic!("a concurrent first sign-in failed with {other:?}"),
            }
        }
        assert_eq!(created.len(), 1, "exactly one account per identity");
        let linked = store.find_identity(&provider("google"), &subject).await.unwrap().unwrap();
        assert_eq!(linked.user_id, created[0].id);
    }

    /// An identity is deleted only by its own account, and never the last way to sign in
    /// of an account without a password; with a password, the last identity goes. Of two
    /// concurrent deletions of an account's last two identities, one is refused.
    pub async fn the_last_way_to_sign_in_is_never_deleted(store: S) {
        let (user, first) = passwordless(&store, "identity-last").await;
        assert_eq!(store.delete_identity(user.id, first.id).await.unwrap(), IdentityRemoval::LastSignInMethod);
        let stranger = sample_user(unique_email("identity-last-stranger"));
        store.insert_user(&stranger).await.unwrap();
        assert_eq!(store.delete_identity(stranger.id, first.id).await.unwrap(), IdentityRemoval::NotFound);
        assert_eq!(
            store.delete_identity(user.id, IdentityId::new_at(now())).await.unwrap(),
            IdentityRemoval::NotFound
        );
        assert_eq!(store.list_identities(user.id).await.unwrap(), vec![first.clone()]);

        let store = Arc::new(store);
        for round in 0..20 {
            let second = identity_of(&user, "gitlab", &unique_subject(), now());
            store.insert_identity(&second).await.unwrap();
            let current = store.list_identities(user.id).await.unwrap();
            assert_eq!(current.len(), 2, "round {round}");
            let deletions: Vec<_> = current
                .iter()
                .map(|identity| {
                    let store = Arc::clone(&store);
                    let (user_id, id) = (user.id, identity.id);
                    tokio::spawn(async move { store.delete_identity(user_id, id).await.unwrap() })
                })
                .collect();
            let mut outcomes = Vec::new();
            for deletion in deletions {
                outcomes.push(deletion.await.unwrap());
            }
            outcomes.sort_by_key(|outcome| *outcome == IdentityRemoval::Removed);
            assert_eq!(outcomes, vec![IdentityRemoval::LastSignInMethod, IdentityRemoval::Removed], "round {round}");
            assert_eq!(store.list_identities(user.id).await.unwrap().len(), 1, "round {round}");
        }

        let with_password = sample_user(unique_email("identity-last-password"));
        store.insert_user(&with_password).await.unwrap();
        let only = identity_of(&with_password, "google", &unique_subject(), now());
        store.insert_identity(&only).await.unwrap();
        assert_eq!(store.delete_identity(with_password.id, only.id).await.unwrap(), IdentityRemoval::Removed);
        assert_eq!(store.find_identity(&only.provider, &only.subject).await.unwrap(), None);
    }

    /// A sign-in state round-trips (both purposes, with and without a native app's
    /// challenge) and is taken once, even by twenty concurrent takes; a code likewise;
    /// expired ones are deleted, live ones kept.
    pub async fn states_and_codes_are_taken_once_and_expired_ones_deleted(store: S) {
        let (user, identity) = passwordless(&store, "identity-states").await;
        let at = now();
        let sign_in = ExternalLoginState::new(
            hash(TokenKind::ExternalLoginBinding),
            provider("google"),
            ExternalLoginPurpose::SignIn,
            ReturnPath::parse("/ui/oauth/finish?then=%2Fapp#top").unwrap(),
            at,
            micros_after(at, 600_000_000),
        )
        .with_exchange_challenge(Some(
            CodeChallenge::s256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap(),
        ));
        let link = ExternalLoginState::new(
            hash(TokenKind::ExternalLoginBinding),
            provider("gitlab"),
            ExternalLoginPurpose::Link {
                user_id: user.id,
                session_id: SessionId::new_at(at),
            },
            ReturnPath::parse("/").unwrap(),
            at,
            micros_after(at, 1),
        );
        let (sign_in_key, link_key) = (hash(TokenKind::ExternalLoginState), hash(TokenKind::ExternalLoginState));
        store.insert_login_state(&sign_in_key, &sign_in).await.unwrap();
        store.insert_login_state(&link_key, &link).await.unwrap();
        assert_eq!(store.take_login_state(&link_key).await.unwrap(), Some(link.clone()));
        assert_eq!(store.take_login_state(&link_key).await.unwrap(), None);

        let store = Arc::new(store);
        let takes: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.take_login_state(&sign_in_key).await.unwrap() })
            })
            .collect();
        let mut taken = Vec::new();
        for take in takes {
            taken.extend(take.await.unwrap());
        }
        assert_eq!(taken, vec![sign_in.clone()], "a state is taken exactly once");

        let code = ExternalLoginCode::new(user.id, identity.id, hash(TokenKind::ExternalLoginBinding), 4, at, micros_after(at, 60_000_000));
        let code_key = hash(TokenKind::ExternalLoginCode);
        store.insert_login_code(&code_key, &code).await.unwrap();
        let takes: Vec<_> = (0..20)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.take_login_code(&code_key).await.unwrap() })
            })
            .collect();
        let mut taken = Vec::new();
        for take in takes {
            taken.extend(take.await.unwrap());
        }
        assert_eq!(taken, vec![code.clone()], "a code is taken exactly once");

        // Expiry: one of each expired at `at + 1 µs`, one of each living on.
        let (old_state, live_state) = (hash(TokenKind::ExternalLoginState), hash(TokenKind::ExternalLoginState));
        store.insert_login_state(&old_state, &link).await.unwrap();
        store.insert_login_state(&live_state, &sign_in).await.unwrap();
        let (old_code, live_code) = (hash(TokenKind::ExternalLoginCode), hash(TokenKind::ExternalLoginCode));
        let expired = ExternalLoginCode::new(user.id, identity.id, hash(TokenKind::ExternalLoginBinding), 4, at, micros_after(at, 1));
        store.insert_login_code(&old_code, &expired).await.unwrap();
        store.insert_login_code(&live_code, &code).await.unwrap();
        let deleted = store.delete_expired_logins(micros_after(at, 2)).await.unwrap();
        assert!(deleted >= 2, "deleted {deleted}");
        assert_eq!(store.take_login_state(&old_state).await.unwrap(), None);
        assert_eq!(store.take_login_code(&old_code).await.unwrap(), None);
        assert_eq!(store.take_login_state(&live_state).await.unwrap(), Some(sign_in));
        assert_eq!(store.take_login_code(&live_code).await.unwrap(), Some(code));
    }

    /// Rows name what exists: an identity, a code or a link's state for an unknown
    /// account, and a code naming an unknown identity, are refused.
    pub async fn sign_in_rows_need_their_account_and_identity(store: S) {
        let at = now();
        let ghost = sample_user(unique_email("identity-orphan"));
        let orphan = identity_of(&ghost, "google", &unique_subject(), at);
        assert!(store.insert_identity(&orphan).await.is_err(), "an identity needs its account");
        let code = |user: UserId, identity: IdentityId| {
            ExternalLoginCode::new(user, identity, hash(TokenKind::ExternalLoginBinding), 0, at, micros_after(at, 60_000_000))
        };
        assert!(store.insert_login_code(&hash(TokenKind::ExternalLoginCode), &code(ghost.id, orphan.id)).await.is_err());
        let link = ExternalLoginState::new(
            hash(TokenKind::ExternalLoginBinding),
            provider("google"),
            ExternalLoginPurpose::Link { user_id: ghost.id, session_id: SessionId::new_at(at) },
            ReturnPath::parse("/").unwrap(),
            at,
            micros_after(at, 600_000_000),
        );
        assert!(store.insert_login_state(&hash(TokenKind::ExternalLoginState), &link).await.is_err());
        let (user, _) = passwordless(&store, "identity-orphan-code").await;
        assert!(
            store.insert_login_code(&hash(TokenKind::ExternalLoginCode), &code(user.id, orphan.id)).await.is_err(),
            "a code needs its identity"
        );
    }
}
