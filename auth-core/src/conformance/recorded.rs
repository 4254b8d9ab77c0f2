//! The cases of audit records written in the transaction of the change they record.

use std::future::Future;

use time::OffsetDateTime;

use super::{refresh_hash, sample_hash, sample_one_time_token, sample_session, sample_user, unique_email};
use crate::audit::{AuditQuery, AuditRecord, MAX_AUDIT_PAGE, with_pending_records};
use crate::clock::truncate_to_micros;
use crate::event::{Action, AuthEvent, EventKey, Outcome, Subject};
use crate::id::PasskeyId;
use crate::identity::{ExternalIdentity, LinkedIdentity, ProviderName};
use crate::one_time::TokenPurpose;
use crate::passkey::PasskeyCredential;
use crate::role::Role;
use crate::second_factor::TotpFactor;
use crate::session::ClientInfo;
use crate::store::{
    AccountDeletionStore, AuditLogStore, EmailChange, EmailChangeStore, EmailConfirmation, IdentityRemoval,
    IdentityStore, OneTimeTokenStore, PasskeyRemoval, PasskeyStore, RoleStore, SecondFactorStore, SessionStore,
    UserStore,
};
use crate::token::{OpaqueToken, TokenHash, TokenKind};

fn hash(kind: TokenKind) -> TokenHash {
    OpaqueToken::generate(kind).unwrap().1
}

/// A record of `action` about `subject`, as the service hands it to a write.
fn record_of(action: Action, subject: Subject) -> AuditRecord {
    let at = truncate_to_micros(OffsetDateTime::now_utc());
    let client = ClientInfo::new(Some("Recorded/1.0"), Some("198.51.100.4".parse().unwrap()));
    AuditRecord::of(&AuthEvent::new(at, action, Outcome::Success, subject, None, client))
}

/// Awaits `write` with `record` pending for it; returns its output and whether the store
/// said it wrote the record.
async fn with_record<T>(record: &AuditRecord, write: impl Future<Output = T>) -> (T, bool) {
    with_pending_records(vec![record.clone()], write).await
}

/// The stored record with `record`'s id, if any.
async fn stored<S: AuditLogStore>(store: &S, record: &AuditRecord) -> Option<AuditRecord> {
    let mut after = None;
    loop {
        let page = store
            .list_audit_records(&AuditQuery::first(MAX_AUDIT_PAGE).after(after))
            .await
            .unwrap();
        if let Some(found) = page.iter().find(|kept| kept.id == record.id) {
            return Some(found.clone());
        }
        if page.len() < MAX_AUDIT_PAGE as usize {
            return None;
        }
        after = page.last().map(|kept| kept.id);
    }
}

conformance_cases! { $
    /// Runs the cases of audit records kept in the transaction of the change they record
    /// ([`PendingRecords`](crate::PendingRecords)), for a store with every capability whose
    /// writes the service records: one `#[tokio::test]` per case, each on a fresh store
    /// made by the expression given (it may `.await`). See the
    /// [conformance suite](crate::conformance). Each bundled backend also shows, in its
    /// own tests, that a record the database refuses rolls its change back.
    macro recorded_change_conformance_tests for [UserStore + SessionStore + OneTimeTokenStore + RoleStore + SecondFactorStore + IdentityStore + EmailChangeStore + AccountDeletionStore + AuditLogStore + PasskeyStore + Clone + 'static];

    /// Every write a service's flow records takes the records handed to it and keeps them
    /// with its change: each says it wrote them, and each record reads back.
    pub async fn every_recorded_write_keeps_its_record(store: S) {
        let now = truncate_to_micros(OffsetDateTime::now_utc());
        let later = now + time::Duration::minutes(10);
        let user = sample_user(unique_email("recorded"));
        let me = Subject::User(user.id);
        let mut kept: Vec<(&str, AuditRecord)> = Vec::new();
        let check = async |what: &str, record: AuditRecord, written: bool| {
            assert!(written, "{what}: the store said it kept the record");
            stored(&store, &record).await.unwrap_or_else(|| panic!("{what}: the record is stored"))
        };

        let r = record_of(Action::Register, me.clone());
        let (inserted, written) = with_record(&r, store.insert_user(&user)).await;
        inserted.unwrap();
        kept.push(("insert_user", check("insert_user", r, written).await));

        let r = record_of(Action::ChangePassword, me.clone());
        let (user_now, written) =
            with_record(&r, store.set_password_hash(user.id, &sample_hash("new"), user.token_version, now)).await;
        let user_now = user_now.unwrap().expect("the password set");
        kept.push(("set_password_hash", check("set_password_hash", r, written).await));

        let r = record_of(Action::VerifyEmail, me.clone());
        let (verified, written) = with_record(&r, store.mark_email_verified(user.id, &user.email, now)).await;
        assert!(verified.unwrap().is_some());
        kept.push(("mark_email_verified", check("mark_email_verified", r, written).await));

        let r = record_of(Action::DisableAccount, me.clone());
        let (disabled, written) = with_record(&r, store.set_active(user.id, false, now)).await;
        assert!(disabled.unwrap().is_some());
        kept.push(("set_active", check("set_active", r, written).await));
        store.set_active(user.id, true, now).await.unwrap();

        let r = record_of(Action::LogoutAll, me.clone());
        let (revoked, written) = with_record(&r, store.revoke_access_tokens(user.id, now)).await;
        assert!(revoked.unwrap().is_some());
        kept.push(("revoke_access_tokens", check("revoke_access_tokens", r, written).await));

        let session = sample_session(&user_now);
        let refresh = refresh_hash();
        let r = record_of(Action::Login, me.clone());
        let (inserted, written) = with_record(&r, store.insert_session(&session, &refresh)).await;
        inserted.unwrap();
        kept.push(("insert_session", check("insert_session", r, written).await));

        let r = record_of(Action::Refresh, me.clone());
        let replacement = refresh_hash();
        let (rotated, written) =
            with_record(&r, store.rotate_refresh_token(session.id, &refresh, &replacement, now)).await;
        assert!(rotated.unwrap());
        kept.push(("rotate_refresh_token", check("rotate_refresh_token", r, written).await));

        let r = record_of(Action::RevokeSession, me.clone());
        let (revoked, written) = with_record(&r, store.revoke_session(user.id, session.id, now)).await;
        assert!(revoked.unwrap());
        kept.push(("revoke_session", check("revoke_session", r, written).await));

        let (reset, token) = sample_one_time_token(&user_now, TokenPurpose::PasswordReset);
        let r = record_of(Action::RequestPasswordReset, me.clone());
        let (issued, written) = with_record(&r, store.insert_one_time_token(&reset, &token)).await;
        issued.unwrap();
        kept.push(("insert_one_time_token", check("insert_one_time_token", r, written).await));

        let editor = Role::new("editor").unwrap();
        let r = record_of(Action::SetRoles, me.clone());
        let (set, written) = with_record(&r, store.set_roles(user.id, &[editor.clone()].into(), now)).await;
        assert!(set.unwrap().is_some());
        kept.push(("set_roles", check("set_roles", r, written).await));
        let viewer = Role::new("viewer").unwrap();
        let r = record_of(Action::GrantRole, me.clone());
        let (granted, written) = with_record(&r, store.grant_role(user.id, &viewer, 16, now)).await;
        assert!(granted.unwrap().unwrap().has_role("viewer"));
        kept.push(("grant_role", check("grant_role", r, written).await));
        let r = record_of(Action::RevokeRole, me.clone());
        let (revoked, written) = with_record(&r, store.revoke_role(user.id, &viewer, now)).await;
        assert!(!revoked.unwrap().unwrap().has_role("viewer"));
        kept.push(("revoke_role", check("revoke_role", r, written).await));

        let r = record_of(Action::BeginTotpEnrolment, me.clone());
        let factor = TotpFactor::new(user.id, "v1.sealed".to_owned(), now);
        let (begun, written) = with_record(&r, store.insert_totp_factor(&factor)).await;
        assert!(begun.unwrap());
        kept.push(("insert_totp_factor", check("insert_totp_factor", r, written).await));
        let r = record_of(Action::ConfirmTotp, me.clone());
        let codes = [hash(TokenKind::Refresh)];
        let (confirmed, written) =
            with_record(&r, store.confirm_totp_factor(user.id, "v1.sealed", 1, &codes, now)).await;
        assert!(confirmed.unwrap().is_some());
        kept.push(("confirm_totp_factor", check("confirm_totp_factor", r, written).await));
        let r = record_of(Action::RegenerateRecoveryCodes, me.clone());
        let (replaced, written) = with_record(&r, store.replace_recovery_codes(user.id, &codes, now)).await;
        assert!(replaced.unwrap());
        kept.push(("replace_recovery_codes", check("replace_recovery_codes", r, written).await));
        let r = record_of(Action::DisableTotp, me.clone());
        let (removed, written) = with_record(&r, store.delete_totp_factor(user.id, now)).await;
        assert!(removed.unwrap().is_some());
        kept.push(("delete_totp_factor", check("delete_totp_factor", r, written).await));

        let passkey = PasskeyCredential::new(user.id, uuid::Uuid::new_v4().as_bytes().to_vec(), "{}".into(), 0, "Key", now);
        let r = record_of(Action::RegisterPasskey, me.clone());
        let (inserted, written) = with_record(&r, store.insert_passkey(&passkey)).await;
        inserted.unwrap();
        kept.push(("insert_passkey", check("insert_passkey", r, written).await));
        let r = record_of(Action::RenamePasskey, me.clone());
        let (renamed, written) = with_record(&r, store.rename_passkey(user.id, passkey.id, "Laptop")).await;
        assert!(renamed.unwrap());
        kept.push(("rename_passkey", check("rename_passkey", r, written).await));
        let r = record_of(Action::DeletePasskey, me.clone());
        let (removal, written) = with_record(&r, store.delete_passkey(user.id, passkey.id)).await;
        assert_eq!(removal.unwrap(), PasskeyRemoval::Removed);
        kept.push(("delete_passkey", check("delete_passkey", r, written).await));

        let provider = ProviderName::new("google").unwrap();
        let identity = |owner: crate::id::UserId| {
            let subject = format!("sub-{}", uuid::Uuid::new_v4().simple());
            LinkedIdentity::new(owner, &ExternalIdentity::new(provider.clone(), subject), now)
        };
        let linked = identity(user.id);
        let r = record_of(Action::LinkIdentity, me.clone());
        let (inserted, written) = with_record(&r, store.insert_identity(&linked)).await;
        inserted.unwrap();
        kept.push(("insert_identity", check("insert_identity", r, written).await));
        let r = record_of(Action::UnlinkIdentity, me.clone());
        let (removal, written) = with_record(&r, store.delete_identity(user.id, linked.id)).await;
        assert_eq!(removal.unwrap(), IdentityRemoval::Removed);
        kept.push(("delete_identity", check("delete_identity", r, written).await));
        let newcomer = sample_user(unique_email("through-provider"));
        let r = record_of(Action::RegisterThroughProvider, Subject::User(newcomer.id));
        let (created, written) =
            with_record(&r, store.insert_user_with_identity(&newcomer, &identity(newcomer.id))).await;
        created.unwrap();
        kept.push(("insert_user_with_identity", check("insert_user_with_identity", r, written).await));

        let current = store.find_user_by_id(user.id).await.unwrap().unwrap();
        let change = EmailChange::new(&current, unique_email("moved"), None, now, later, later);
        let (confirm, undo) = (hash(TokenKind::EmailChange), hash(TokenKind::EmailChangeUndo));
        let r = record_of(Action::RequestEmailChange, me.clone());
        let (requested, written) = with_record(&r, store.insert_email_change(&change, &confirm, &undo)).await;
        requested.unwrap();
        kept.push(("insert_email_change", check("insert_email_change", r, written).await));
        // Confirmed and undone by their links: the store names the account in the record.
        let r = record_of(Action::ConfirmEmailChange, Subject::Unknown);
        let (confirmation, written) = with_record(&r, store.confirm_email_change(&confirm, now)).await;
        assert!(matches!(confirmation.unwrap(), Some(EmailConfirmation::Switched { .. })));
        kept.push(("confirm_email_change", check("confirm_email_change", r, written).await));
        let r = record_of(Action::UndoEmailChange, Subject::Unknown);
        let (undone, written) = with_record(&r, store.undo_email_change(&undo, now)).await;
        assert!(undone.unwrap().is_some());
        kept.push(("undo_email_change", check("undo_email_change", r, written).await));
        let links: Vec<_> = kept[kept.len() - 2..].iter().map(|(_, record)| record.user_id).collect();
        assert_eq!(links, [Some(user.id), Some(user.id)], "named by the store");

        let pseudonym = EventKey::new(b"conformance").digest(&user.email);
        let r = record_of(Action::DeleteAccount, Subject::Email(pseudonym));
        let (deleted, written) = with_record(&r, store.delete_user(user.id, &pseudonym)).await;
        assert!(deleted.unwrap().is_some());
        kept.push(("delete_user", check("delete_user", r, written).await));

        // The account is gone: its records name it by the pseudonym only, without clients;
        // the deletion's own record is kept as given.
        for (what, record) in &kept {
            let now_kept = stored(&store, record).await.unwrap_or_else(|| panic!("{what}: kept"));
            if *what == "insert_user_with_identity" {
                assert_eq!(now_kept.user_id, Some(newcomer.id), "{what}");
            } else if *what == "delete_user" {
                assert_eq!(&now_kept, record, "{what}");
            } else {
                assert_eq!(now_kept.user_id, None, "{what}");
                assert_eq!(now_kept.email_digest, Some(pseudonym.to_string()), "{what}");
                assert_eq!((&now_kept.user_agent, now_kept.ip), (&None, None), "{what}: no client");
            }
        }
        let newcomers = store
            .list_audit_records(&AuditQuery::first(10).of_user(newcomer.id))
            .await
            .unwrap();
        assert_eq!(newcomers.len(), 1);
    }

    /// A write that changes nothing (a compare-and-set that lost, an unknown id, a role
    /// held already, a link past its time) keeps no record and says so, and a write made
    /// without records keeps none.
    pub async fn a_write_that_changes_nothing_keeps_no_record(store: S) {
        let now = truncate_to_micros(OffsetDateTime::now_utc());
        let user = sample_user(unique_email("unrecorded"));
        store.insert_user(&user).await.unwrap();
        let me = Subject::User(user.id);
        let missing = async |what: &str, record: AuditRecord, written: bool| {
            assert!(!written, "{what}: nothing changed, nothing kept");
            assert_eq!(stored(&store, &record).await, None, "{what}");
        };

        let r = record_of(Action::ChangePassword, me.clone());
        let stale = user.token_version + 1;
        let (set, written) = with_record(&r, store.set_password_hash(user.id, &sample_hash("new"), stale, now)).await;
        assert_eq!(set.unwrap(), None);
        missing("set_password_hash, another version", r, written).await;

        let r = record_of(Action::DisableAccount, me.clone());
        let nobody = sample_user(unique_email("nobody")).id;
        let (disabled, written) = with_record(&r, store.set_active(nobody, false, now)).await;
        assert_eq!(disabled.unwrap(), None);
        missing("set_active, unknown account", r, written).await;

        let r = record_of(Action::RevokeSession, me.clone());
        let unknown = sample_session(&user).id;
        let (revoked, written) = with_record(&r, store.revoke_session(user.id, unknown, now)).await;
        assert!(!revoked.unwrap());
        missing("revoke_session, unknown session", r, written).await;

        let session = sample_session(&user);
        let refresh = refresh_hash();
        store.insert_session(&session, &refresh).await.unwrap();
        let r = record_of(Action::Refresh, me.clone());
        let (rotated, written) =
            with_record(&r, store.rotate_refresh_token(session.id, &refresh_hash(), &refresh_hash(), now)).await;
        assert!(!rotated.unwrap());
        missing("rotate_refresh_token, another token", r, written).await;

        let viewer = Role::new("viewer").unwrap();
        store.grant_role(user.id, &viewer, 16, now).await.unwrap();
        let r = record_of(Action::GrantRole, me.clone());
        let (granted, written) = with_record(&r, store.grant_role(user.id, &viewer, 16, now)).await;
        assert!(granted.unwrap().is_some());
        missing("grant_role, held already", r, written).await;
        let r = record_of(Action::RevokeRole, me.clone());
        let editor = Role::new("editor").unwrap();
        let (revoked, written) = with_record(&r, store.revoke_role(user.id, &editor, now)).await;
        assert!(revoked.unwrap().is_some());
        missing("revoke_role, not held", r, written).await;

        let r = record_of(Action::RegenerateRecoveryCodes, me.clone());
        let (replaced, written) =
            with_record(&r, store.replace_recovery_codes(user.id, &[hash(TokenKind::Refresh)], now)).await;
        assert!(!replaced.unwrap());
        missing("replace_recovery_codes, no factor", r, written).await;
        let r = record_of(Action::DisableTotp, me.clone());
        let (removed, written) = with_record(&r, store.delete_totp_factor(user.id, now)).await;
        assert_eq!(removed.unwrap(), None);
        missing("delete_totp_factor, no factor", r, written).await;

        let unknown = PasskeyId::new_at(now);
        let r = record_of(Action::RenamePasskey, me.clone());
        let (renamed, written) = with_record(&r, store.rename_passkey(user.id, unknown, "Laptop")).await;
        assert!(!renamed.unwrap());
        missing("rename_passkey, no passkey", r, written).await;
        let r = record_of(Action::DeletePasskey, me.clone());
        let (removal, written) = with_record(&r, store.delete_passkey(user.id, unknown)).await;
        assert_eq!(removal.unwrap(), PasskeyRemoval::NotFound);
        missing("delete_passkey, no passkey", r, written).await;

        let r = record_of(Action::UnlinkIdentity, me.clone());
        let linked = LinkedIdentity::new(
            user.id,
            &ExternalIdentity::new(ProviderName::new("google").unwrap(), "never-linked".to_owned()),
            now,
        );
        let (removal, written) = with_record(&r, store.delete_identity(user.id, linked.id)).await;
        assert_eq!(removal.unwrap(), IdentityRemoval::NotFound);
        missing("delete_identity, not linked", r, written).await;

        let past = now - time::Duration::minutes(1);
        let change = EmailChange::new(&user, unique_email("late"), None, past, past, now + time::Duration::days(7));
        let confirm = hash(TokenKind::EmailChange);
        store.insert_email_change(&change, &confirm, &hash(TokenKind::EmailChangeUndo)).await.unwrap();
        let r = record_of(Action::ConfirmEmailChange, Subject::Unknown);
        let (confirmation, written) = with_record(&r, store.confirm_email_change(&confirm, now)).await;
        assert!(matches!(confirmation.unwrap(), Some(EmailConfirmation::Expired(_))));
        missing("confirm_email_change, past its time", r, written).await;
        let r = record_of(Action::UndoEmailChange, Subject::Unknown);
        let (undone, written) = with_record(&r, store.undo_email_change(&hash(TokenKind::EmailChangeUndo), now)).await;
        assert!(undone.unwrap().is_none());
        missing("undo_email_change, unknown link", r, written).await;

        let r = record_of(Action::DeleteUser, me.clone());
        let pseudonym = EventKey::new(b"conformance").digest(&user.email);
        let (deleted, written) = with_record(&r, store.delete_user(nobody, &pseudonym)).await;
        assert_eq!(deleted.unwrap(), None);
        missing("delete_user, unknown account", r, written).await;

        // Outside a recorded write, nothing is kept.
        let before = store.list_audit_records(&AuditQuery::first(MAX_AUDIT_PAGE)).await.unwrap().len();
        store.revoke_all_sessions(user.id, now).await.unwrap();
        store.set_active(user.id, false, now).await.unwrap();
        let after = store.list_audit_records(&AuditQuery::first(MAX_AUDIT_PAGE)).await.unwrap().len();
        assert_eq!(before, after);
    }

    /// Records written while their account is being deleted never name it: each is
    /// either written first and rewritten by the deletion, or written after it without
    /// the account or its client. Raced, many times.
    pub async fn records_written_as_their_account_is_deleted_never_name_it(store: S) {
        for round in 0..20 {
            let user = sample_user(unique_email("racing"));
            store.insert_user(&user).await.unwrap();
            let mut writes = Vec::new();
            for _ in 0..4 {
                let (store, record) = (store.clone(), record_of(Action::Login, Subject::User(user.id)));
                writes.push(tokio::spawn(async move { store.insert_audit_records(&[record]).await }));
            }
            let pseudonym = EventKey::new(b"conformance").digest(&user.email);
            let deleting = store.clone();
            let deletion = tokio::spawn(async move { deleting.delete_user(user.id, &pseudonym).await });
            for write in writes {
                write.await.unwrap().unwrap();
            }
            assert!(deletion.await.unwrap().unwrap().is_some());
            let named = store.list_audit_records(&AuditQuery::first(100).of_user(user.id)).await.unwrap();
            assert_eq!(named, vec![], "round {round}: no record names the deleted account");
        }
    }
}
