//! The OneTimeTokenStore cases.

use uuid::Uuid;

use super::{micros_after, sample_one_time_token, sample_user, unique_email};
use crate::email::Email;
use crate::one_time::{OneTimeToken, TokenPurpose};
use crate::store::{OneTimeTokenStore, UserStore};
use crate::token::TokenHash;
use crate::user::User;

conformance_cases! { $
    /// Runs the [`OneTimeTokenStore`](crate::OneTimeTokenStore) cases: single use under
    /// concurrency, replacement by a newer token, decoys: one `#[tokio::test]` per case, each
    /// on a fresh store made by the expression given (it may `.await`). See the [conformance
    /// suite](crate::conformance).
    macro one_time_token_store_conformance_tests for [UserStore + OneTimeTokenStore + Clone + 'static];

    /// Stored, found (field for field), consumed once, then gone.
    pub async fn one_time_tokens_are_found_then_consumed_once(store: S) {
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
    pub async fn one_time_token_purposes_are_separate(store: S) {
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
    pub async fn a_newer_one_time_token_replaces_older_unused_ones(store: S) {
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
    pub async fn concurrent_consumption_of_one_token_applies_once(store: S) {
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
    pub async fn concurrent_issues_for_one_purpose_leave_one_live_token(store: S) {
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
    pub async fn decoys_for_the_nil_account_are_stored_like_any_token(store: S) {
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
    pub async fn a_duplicate_one_time_token_hash_is_an_error(store: S) {
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
}
