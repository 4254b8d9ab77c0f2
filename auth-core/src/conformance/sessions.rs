//! The SessionStore cases.

use super::{micros_after, refresh_hash, sample_session, sample_user, unique_email, user_with_session};
use crate::auth_method::{AuthMethod, AuthMethods};
use crate::id::SessionId;
use crate::session::Session;
use crate::store::{SessionStore, UserStore};

conformance_cases! { $
    /// Runs the [`SessionStore`](crate::SessionStore) cases: sessions and their refresh tokens,
    /// rotation and its race, revocation: one `#[tokio::test]` per case, each on a fresh store
    /// made by the expression given (it may `.await`). See the [conformance
    /// suite](crate::conformance).
    macro session_store_conformance_tests for [UserStore + SessionStore + Clone + 'static];

    /// A stored session comes back, field for field, through its refresh token's hash; IPv4
    /// and missing metadata round-trip too.
    pub async fn sessions_round_trip_through_their_refresh_token(store: S) {
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
    pub async fn unknown_refresh_tokens_are_none(store: S) {
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
    pub async fn rotation_trades_a_token_once(store: S) {
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
    pub async fn rotation_stops_when_the_session_is_revoked(store: S) {
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
    pub async fn concurrent_rotations_of_one_token_apply_once(store: S) {
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
    pub async fn list_sessions_returns_live_sessions_oldest_first(store: S) {
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
    pub async fn revoke_session_only_ends_the_owners_session(store: S) {
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
    pub async fn find_session_returns_the_session_revoked_or_not(store: S) {
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
    pub async fn revoke_all_sessions_ends_every_session_of_the_user(store: S) {
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

    /// How a session began, its methods and their time (distinct from `created_at`), comes
    /// back through every read: by refresh token, by id, in the account's list.
    pub async fn how_a_session_began_round_trips(store: S) {
        let user = sample_user(unique_email("began"));
        store.insert_user(&user).await.unwrap();
        let base = sample_session(&user);
        let session = Session {
            auth_methods: AuthMethods::from(AuthMethod::HARDWARE_KEY)
                .with(AuthMethod::MULTI_FACTOR)
                .with(AuthMethod::new("x-provider_1").unwrap()),
            auth_time: micros_after(base.created_at, -300_000_001),
            ..base
        };
        let token = refresh_hash();
        store.insert_session(&session, &token).await.unwrap();
        let record = store.find_refresh_token(&token).await.unwrap().unwrap();
        assert_eq!(record.session, session);
        assert_eq!(store.find_session(session.id).await.unwrap().as_ref(), Some(&session));
        assert_eq!(store.list_sessions(user.id).await.unwrap(), vec![session.clone()]);
        let at = micros_after(session.created_at, 1);
        assert!(store.rotate_refresh_token(session.id, &token, &refresh_hash(), at).await.unwrap());
        let rotated = store.find_session(session.id).await.unwrap().unwrap();
        assert_eq!(
            (&rotated.auth_methods, rotated.auth_time),
            (&session.auth_methods, session.auth_time),
            "a refresh keeps how and when the session began"
        );
    }

    /// `find_user_and_session`, where a store reads the two together, answers what
    /// `find_user_by_id` and `find_session` answer: both found, either or both missing, a
    /// revoked session, a session of another account (the service, not the store, checks
    /// whose it is).
    pub async fn an_account_and_a_session_read_together_are_what_two_reads_answer(store: S) {
        let (owner, session, _) = user_with_session(&store, "together").await;
        let (other, others_session, _) = user_with_session(&store, "together-other").await;
        let unknown_user = sample_user(unique_email("together-nobody")).id;
        let unknown_session = SessionId::new_at(micros_after(session.created_at, 1));
        let pairs = [
            (owner.id, session.id),
            (owner.id, others_session.id),
            (other.id, others_session.id),
            (unknown_user, session.id),
            (owner.id, unknown_session),
            (unknown_user, unknown_session),
        ];
        let check = |when: &'static str| {
            let store = store.clone();
            async move {
                for (user, session) in pairs {
                    let Some(both) = store.find_user_and_session(user, session).await.unwrap() else {
                        continue;
                    };
                    let apart = (
                        store.find_user_by_id(user).await.unwrap(),
                        store.find_session(session).await.unwrap(),
                    );
                    assert_eq!(both, apart, "{when}: account {user}, session {session}");
                }
            }
        };
        check("live").await;
        let at = micros_after(session.created_at, 2);
        assert!(store.revoke_session(owner.id, session.id, at).await.unwrap());
        check("revoked").await;
    }
}
