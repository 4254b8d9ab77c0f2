//! The PurgeStore cases.

use super::{
    micros_after, refresh_hash, sample_one_time_token, sample_session, sample_user, unique_email, user_with_session,
};
use crate::id::SessionId;
use crate::one_time::TokenPurpose;
use crate::session::Session;
use crate::store::{OneTimeTokenStore, PurgeStore, SessionStore, UserStore};
use crate::user::User;

conformance_cases! { $
    /// Runs the [`PurgeStore`](crate::PurgeStore) cases: what is deleted, and that nothing live
    /// is: one `#[tokio::test]` per case, each on a fresh store made by the expression given
    /// (it may `.await`). See the [conformance suite](crate::conformance).
    macro purge_store_conformance_tests for [UserStore + SessionStore + OneTimeTokenStore + PurgeStore + Clone + 'static];

    /// `delete_spent_one_time_tokens` deletes used and expired tokens, nothing live.
    pub async fn delete_spent_one_time_tokens_removes_only_spent_tokens(store: S) {
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
    pub async fn delete_ended_sessions_removes_only_ended_sessions(store: S) {
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
}
