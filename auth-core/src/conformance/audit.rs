//! The AuditLogStore cases.

use time::OffsetDateTime;

use super::{micros_after, sample_user, unique_email};
use crate::audit::{AuditQuery, AuditRecord};
use crate::clock::truncate_to_micros;
use crate::event::{Action, AuthEvent, EventKey, Outcome, Refusal, Subject};
use crate::id::{SessionId, UserId};
use crate::session::ClientInfo;
use crate::store::{AuditLogStore, UserStore};

fn now() -> OffsetDateTime {
    truncate_to_micros(OffsetDateTime::now_utc())
}

fn record(at: OffsetDateTime, action: Action, outcome: Outcome, subject: Subject) -> AuditRecord {
    let client = ClientInfo::new(Some("Firefox/133.0 «ü»"), Some("203.0.113.5".parse().unwrap()));
    AuditRecord::of(&AuthEvent::new(
        at,
        action,
        outcome,
        subject,
        Some(SessionId::new_at(at)),
        client,
    ))
}

conformance_cases! { $
    /// Runs the [`AuditLogStore`](crate::AuditLogStore) cases: records read back whole in
    /// the order of their ids, filtered and paged by a cursor; a record of an account
    /// that is gone keeps no client; retention: one `#[tokio::test]` per case, each on a
    /// fresh store made by the expression given (it may `.await`). See the
    /// [conformance suite](crate::conformance).
    macro audit_log_store_conformance_tests for [UserStore + AuditLogStore + Clone + 'static];

    /// Records round-trip every field, list in the order of their ids whatever the order
    /// written, by account and kind, and page by the cursor.
    pub async fn audit_records_round_trip_in_order_and_page_by_a_cursor(store: S) {
        let user = sample_user(unique_email("audited"));
        store.insert_user(&user).await.unwrap();
        let at = now();
        let mine: Vec<AuditRecord> = (0..5)
            .map(|i| {
                let outcome = if i % 2 == 0 { Outcome::Success } else { Outcome::Refused(Refusal::WrongPassword) };
                record(micros_after(at, i * 1000), Action::Login, outcome, Subject::User(user.id))
            })
            .collect();
        let digest = EventKey::new(b"conformance").digest(&unique_email("someone"));
        let theirs = record(micros_after(at, 1500), Action::RequestPasswordReset, Outcome::Success, Subject::Email(digest));
        // Written out of order, in two batches.
        store.insert_audit_records(&[mine[3].clone(), mine[0].clone(), theirs.clone()]).await.unwrap();
        store.insert_audit_records(&[mine[4].clone(), mine[1].clone(), mine[2].clone()]).await.unwrap();

        let listed = store.list_audit_records(&AuditQuery::first(100).of_user(user.id)).await.unwrap();
        assert_eq!(listed, mine, "every field, in the order of ids");
        assert_eq!(listed[1].reason.as_deref(), Some("WrongPassword"));
        let failed = store
            .list_audit_records(&AuditQuery::first(100).of_user(user.id).of_kind("login_failed"))
            .await
            .unwrap();
        assert_eq!(failed, vec![mine[1].clone(), mine[3].clone()]);
        let first = store.list_audit_records(&AuditQuery::first(2).of_user(user.id)).await.unwrap();
        assert_eq!(first, mine[..2].to_vec());
        let next = store
            .list_audit_records(&AuditQuery::first(2).of_user(user.id).after(Some(first[1].id)))
            .await
            .unwrap();
        assert_eq!(next, mine[2..4].to_vec());
        let resets = store
            .list_audit_records(&AuditQuery::first(100).of_kind("reset_requested"))
            .await
            .unwrap();
        assert!(resets.contains(&theirs), "{resets:?}");
        assert_eq!(store.list_audit_records(&AuditQuery::first(100).of_user(UserId::new_at(at))).await.unwrap(), vec![]);
    }

    /// A record naming an account that does not exist keeps no account and no client.
    pub async fn a_record_of_an_account_that_is_gone_keeps_no_client(store: S) {
        let at = now();
        let gone = UserId::new_at(at);
        let written = record(at, Action::Login, Outcome::Success, Subject::User(gone));
        store.insert_audit_records(std::slice::from_ref(&written)).await.unwrap();
        let all = store.list_audit_records(&AuditQuery::first(1000)).await.unwrap();
        let kept = all.iter().find(|r| r.id == written.id).expect("the record is kept");
        assert_eq!((kept.user_id, kept.ip, kept.user_agent.as_deref()), (None, None, None));
        assert_eq!((kept.kind.as_str(), kept.at), ("login_succeeded", at));
    }

    /// Retention deletes the records from before a time, and only those.
    pub async fn retention_deletes_the_records_before_a_time(store: S) {
        let user = sample_user(unique_email("retained"));
        store.insert_user(&user).await.unwrap();
        let at = now() - time::Duration::days(400);
        let old = record(at, Action::Login, Outcome::Success, Subject::User(user.id));
        let recent = record(micros_after(at, 10), Action::Login, Outcome::Success, Subject::User(user.id));
        store.insert_audit_records(&[old, recent.clone()]).await.unwrap();
        assert!(store.delete_audit_records_before(micros_after(at, 10)).await.unwrap() >= 1);
        let left = store.list_audit_records(&AuditQuery::first(100).of_user(user.id)).await.unwrap();
        assert_eq!(left, vec![recent]);
    }
}
