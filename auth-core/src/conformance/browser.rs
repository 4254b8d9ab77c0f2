//! The BrowserSessionStore cases.

use super::{micros_after, refresh_hash, sample_session, user_with_session};
use crate::session::Session;
use crate::store::{BrowserSessionStore, PurgeStore, SessionStore, UserStore};
use crate::token::{OpaqueToken, TokenHash, TokenKind};

fn browser_hash() -> TokenHash {
    OpaqueToken::generate(TokenKind::BrowserSession).unwrap().1
}

conformance_cases! { $
    /// Runs the [`BrowserSessionStore`](crate::BrowserSessionStore) cases: browser sessions
    /// name their session, are found by hash only, end with their session and mark it
    /// used: one `#[tokio::test]` per case, each on a fresh store made by the expression
    /// given (it may `.await`). See the [conformance suite](crate::conformance).
    macro browser_session_store_conformance_tests for [UserStore + SessionStore + BrowserSessionStore + PurgeStore + Clone + 'static];

    /// A browser session is found by its hash, with its session as stored now (revoked
    /// too); another hash finds nothing; deleting it is idempotent.
    pub async fn browser_sessions_are_found_by_hash_with_their_session(store: S) {
        let (user, session, _) = user_with_session(&store, "browser").await;
        let (cookie, other) = (browser_hash(), browser_hash());
        store
            .insert_browser_session(&cookie, session.id, session.created_at)
            .await
            .unwrap();
        assert_eq!(store.find_browser_session(&cookie).await.unwrap(), Some(session.clone()));
        assert_eq!(store.find_browser_session(&other).await.unwrap(), None);

        let revoked_at = micros_after(session.created_at, 5);
        assert!(store.revoke_session(user.id, session.id, revoked_at).await.unwrap());
        assert_eq!(
            store.find_browser_session(&cookie).await.unwrap(),
            Some(Session {
                revoked_at: Some(revoked_at),
                ..session
            }),
            "revoked sessions are found too: ending them is the service's call"
        );
        store.delete_browser_session(&cookie).await.unwrap();
        assert_eq!(store.find_browser_session(&cookie).await.unwrap(), None);
        store.delete_browser_session(&cookie).await.unwrap();
    }

    /// Two browser sessions may share a session; a hash is stored once; a browser session
    /// needs its session to exist.
    pub async fn browser_session_hashes_are_unique_and_need_their_session(store: S) {
        let (user, session, _) = user_with_session(&store, "browser-unique").await;
        let (first, second) = (browser_hash(), browser_hash());
        for cookie in [&first, &second] {
            store
                .insert_browser_session(cookie, session.id, session.created_at)
                .await
                .unwrap();
        }
        let other = sample_session(&user);
        store.insert_session(&other, &refresh_hash()).await.unwrap();
        assert!(
            store
                .insert_browser_session(&first, other.id, other.created_at)
                .await
                .is_err(),
            "a hash is stored once"
        );
        assert_eq!(
            store.find_browser_session(&first).await.unwrap().map(|s| s.id),
            Some(session.id),
            "a refused insert changes nothing"
        );
        let missing = crate::id::SessionId::new_at(session.created_at);
        assert!(
            store
                .insert_browser_session(&browser_hash(), missing, session.created_at)
                .await
                .is_err(),
            "no browser session without its session"
        );
    }

    /// Deleting an ended session deletes its browser sessions, and no other.
    pub async fn browser_sessions_end_with_their_session(store: S) {
        let (user, ended, _) = user_with_session(&store, "browser-purge").await;
        let live = sample_session(&user);
        store.insert_session(&live, &refresh_hash()).await.unwrap();
        let (of_ended, of_live) = (browser_hash(), browser_hash());
        store.insert_browser_session(&of_ended, ended.id, ended.created_at).await.unwrap();
        store.insert_browser_session(&of_live, live.id, live.created_at).await.unwrap();
        let now = micros_after(ended.created_at, 10);
        store.revoke_session(user.id, ended.id, now).await.unwrap();
        let idle_since = micros_after(ended.created_at, -1_000_000);
        assert!(store.delete_ended_sessions(now, idle_since).await.unwrap() >= 1);
        assert_eq!(store.find_browser_session(&of_ended).await.unwrap(), None);
        assert_eq!(store.find_browser_session(&of_live).await.unwrap().map(|s| s.id), Some(live.id));
    }

    /// `touch_session` moves `last_used_at` forward only, and never on a revoked session.
    pub async fn touching_a_session_moves_its_last_use_forward_only(store: S) {
        let (user, session, _) = user_with_session(&store, "browser-touch").await;
        let cookie = browser_hash();
        store.insert_browser_session(&cookie, session.id, session.created_at).await.unwrap();
        let later = micros_after(session.last_used_at, 60_000_000);
        assert!(store.touch_session(session.id, later).await.unwrap());
        let last_used = |store: S| async move { store.find_browser_session(&cookie).await.unwrap().unwrap().last_used_at };
        assert_eq!(last_used(store.clone()).await, later);
        assert!(!store.touch_session(session.id, session.last_used_at).await.unwrap(), "never backwards");
        assert_eq!(last_used(store.clone()).await, later);
        store.revoke_session(user.id, session.id, later).await.unwrap();
        assert!(!store.touch_session(session.id, micros_after(later, 1)).await.unwrap());
        assert_eq!(last_used(store.clone()).await, later);
        let missing = crate::id::SessionId::new_at(session.created_at);
        assert!(!store.touch_session(missing, later).await.unwrap());
    }
}
