//! The AccountDeletionStore cases.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{sample_one_time_token, sample_user, unique_email, user_with_session};
use crate::audit::{AuditQuery, AuditRecord, MAX_AUDIT_PAGE as MAX};
use crate::clock::truncate_to_micros;
use crate::event::{Action, AuthEvent, Outcome, Subject};
use crate::event::{EmailDigest, EventKey};
use crate::identity::{
    ExternalIdentity, ExternalLoginCode, ExternalLoginPurpose, ExternalLoginState, LinkedIdentity, ProviderName,
    ReturnPath,
};
use crate::one_time::TokenPurpose;
use crate::passkey::{PasskeyCeremony, PasskeyCeremonyKind, PasskeyCredential};
use crate::second_factor::{LoginChallenge, TotpFactor};
use crate::session::ClientInfo;
use crate::store::{
    AccountDeletionStore, AuditLogStore, BrowserSessionStore, EmailChange, EmailChangeStore, IdentityStore,
    OneTimeTokenStore, PasskeyStore, SecondFactorStore, SessionStore, UserStore,
};
use crate::token::{OpaqueToken, TokenHash, TokenKind};
use crate::user::User;

/// The digest a deletion names the account's audit records by.
fn pseudonym(user: &User) -> EmailDigest {
    EventKey::new(b"conformance event key").digest(&user.email)
}

fn hash(kind: TokenKind) -> TokenHash {
    OpaqueToken::generate(kind).unwrap().1
}

/// The hashes of what [`account_with_everything`] stored, to look each up after.
#[derive(Debug, Clone)]
pub struct Everything {
    /// The account.
    pub user: User,
    /// Its session's refresh token.
    pub refresh: TokenHash,
    /// Its browser session.
    pub browser: TokenHash,
    /// Its password-reset token.
    pub reset: TokenHash,
    /// Its login challenge.
    pub challenge: TokenHash,
    /// Its link in progress.
    pub login_state: TokenHash,
    /// Its one-time sign-in code.
    pub login_code: TokenHash,
    /// Its address change's undo token.
    pub undo: TokenHash,
    /// Its passkey's credential id.
    pub passkey: Vec<u8>,
    /// Its passkey registration in progress.
    pub passkey_ceremony: TokenHash,
}

/// Stores an account with a row of every kind a store with every capability keeps for
/// it: a session with its refresh token and a browser session, a reset token, a confirmed
/// TOTP factor with recovery codes, a login challenge, a linked identity, a link in
/// progress, a one-time sign-in code and an address change. For a backend's own test
/// that deletion leaves no row behind in any table.
pub async fn account_with_everything<S>(store: &S, prefix: &str) -> Everything
where
    S: UserStore
        + SessionStore
        + OneTimeTokenStore
        + BrowserSessionStore
        + SecondFactorStore
        + IdentityStore
        + EmailChangeStore
        + PasskeyStore
        + AuditLogStore,
{
    let (user, session, refresh) = user_with_session(store, prefix).await;
    let now = truncate_to_micros(OffsetDateTime::now_utc());
    let later = now + time::Duration::minutes(10);
    let browser = hash(TokenKind::BrowserSession);
    store.insert_browser_session(&browser, session.id, now).await.unwrap();
    let (reset, token) = sample_one_time_token(&user, TokenPurpose::PasswordReset);
    store.insert_one_time_token(&reset, &token).await.unwrap();
    assert!(
        store
            .insert_totp_factor(&TotpFactor::new(user.id, "v1.sealed".to_owned(), now))
            .await
            .unwrap()
    );
    let codes = [hash(TokenKind::Refresh), hash(TokenKind::Refresh)];
    let user = store
        .confirm_totp_factor(user.id, "v1.sealed", 1, &codes, now)
        .await
        .unwrap()
        .expect("the factor confirmed");
    let challenge = hash(TokenKind::LoginChallenge);
    store
        .insert_login_challenge(
            &challenge,
            &LoginChallenge::new(user.id, now, later, user.token_version),
        )
        .await
        .unwrap();
    let provider = ProviderName::new("google").unwrap();
    let identity = LinkedIdentity::new(
        user.id,
        &ExternalIdentity::new(provider.clone(), format!("sub-{}", uuid::Uuid::new_v4().simple())),
        now,
    );
    store.insert_identity(&identity).await.unwrap();
    let login_state = hash(TokenKind::ExternalLoginState);
    let purpose = ExternalLoginPurpose::Link {
        user_id: user.id,
        session_id: session.id,
    };
    let link = ExternalLoginState::new(
        hash(TokenKind::ExternalLoginBinding),
        provider,
        purpose,
        ReturnPath::parse("/").unwrap(),
        now,
        later,
    );
    store.insert_login_state(&login_state, &link).await.unwrap();
    let login_code = hash(TokenKind::ExternalLoginCode);
    let code = ExternalLoginCode::new(
        user.id,
        identity.id,
        hash(TokenKind::ExternalLoginBinding),
        user.token_version,
        now,
        later,
    );
    store.insert_login_code(&login_code, &code).await.unwrap();
    let undo = hash(TokenKind::EmailChangeUndo);
    let change = EmailChange::new(&user, unique_email("moved"), Some(session.id), now, later, later);
    store
        .insert_email_change(&change, &hash(TokenKind::EmailChange), &undo)
        .await
        .unwrap();
    let passkey = PasskeyCredential::new(
        user.id,
        uuid::Uuid::new_v4().as_bytes().to_vec(),
        "{}".into(),
        0,
        "Key",
        now,
    );
    store.insert_passkey(&passkey).await.unwrap();
    let passkey_ceremony = hash(TokenKind::LoginChallenge);
    let registration = PasskeyCeremony::new(
        PasskeyCeremonyKind::Registration,
        Some(user.id),
        "{}".into(),
        now,
        later,
    );
    store
        .insert_passkey_ceremony(&passkey_ceremony, &registration)
        .await
        .unwrap();
    let client = ClientInfo::new(Some("Conformance/1.0"), Some("2001:db8::9".parse().unwrap()));
    let event = AuthEvent::new(
        now,
        Action::Login,
        Outcome::Success,
        Subject::User(user.id),
        Some(session.id),
        client,
    );
    store.insert_audit_records(&[AuditRecord::of(&event)]).await.unwrap();
    Everything {
        user,
        refresh,
        browser,
        reset,
        challenge,
        login_state,
        login_code,
        undo,
        passkey: passkey.credential_id,
        passkey_ceremony,
    }
}

conformance_cases! { $
    /// Runs the [`AccountDeletionStore`](crate::AccountDeletionStore) cases: an account
    /// deleted with its sessions, refresh tokens and one-time tokens, nobody else's, and
    /// its address free at once: one `#[tokio::test]` per case, each on a fresh store made
    /// by the expression given (it may `.await`). See the
    /// [conformance suite](crate::conformance). Each bundled backend also counts, in its
    /// own tests, the rows left in every table.
    macro account_deletion_store_conformance_tests for [UserStore + SessionStore + OneTimeTokenStore + AccountDeletionStore + Clone + 'static];

    /// Deleting takes the account's sessions, refresh tokens and one-time tokens with it,
    /// leaves another account's alone, and frees the address at once.
    pub async fn a_deleted_account_takes_what_is_its_own_and_frees_its_address(store: S) {
        let (gone, session, refresh) = user_with_session(&store, "deleted").await;
        let (kept, kept_session, kept_refresh) = user_with_session(&store, "kept").await;
        let (reset, token) = sample_one_time_token(&gone, TokenPurpose::PasswordReset);
        store.insert_one_time_token(&reset, &token).await.unwrap();
        let (kept_reset, kept_token) = sample_one_time_token(&kept, TokenPurpose::PasswordReset);
        store.insert_one_time_token(&kept_reset, &kept_token).await.unwrap();

        assert_eq!(store.delete_user(gone.id, &pseudonym(&gone)).await.unwrap(), Some(gone.clone()));
        assert_eq!(store.find_user_by_id(gone.id).await.unwrap(), None);
        assert_eq!(store.find_user_by_email(&gone.email).await.unwrap(), None);
        assert_eq!(store.list_sessions(gone.id).await.unwrap(), vec![]);
        assert_eq!(store.find_session(session.id).await.unwrap(), None);
        assert_eq!(store.find_refresh_token(&refresh).await.unwrap(), None);
        assert_eq!(
            store.find_one_time_token(&reset, TokenPurpose::PasswordReset).await.unwrap(),
            None
        );
        assert_eq!(store.delete_user(gone.id, &pseudonym(&gone)).await.unwrap(), None, "already gone");

        assert_eq!(store.find_user_by_id(kept.id).await.unwrap(), Some(kept.clone()));
        assert_eq!(store.find_session(kept_session.id).await.unwrap(), Some(kept_session));
        assert!(store.find_refresh_token(&kept_refresh).await.unwrap().is_some());
        assert!(
            store
                .find_one_time_token(&kept_reset, TokenPurpose::PasswordReset)
                .await
                .unwrap()
                .is_some()
        );

        let again = sample_user(gone.email.clone());
        store.insert_user(&again).await.unwrap();
        assert_eq!(store.find_user_by_email(&gone.email).await.unwrap().map(|u| u.id), Some(again.id));
    }

    /// Deletions of one account racing each other and a new session of it: exactly one
    /// deletion returns the account, and none fails.
    pub async fn racing_deletions_delete_once(store: S) {
        let (user, _, _) = user_with_session(&store, "racing-deletion").await;
        let store = Arc::new(store);
        let barrier = Arc::new(tokio::sync::Barrier::new(11));
        let mut deletions = Vec::new();
        for _ in 0..10 {
            let (store, barrier, digest) = (Arc::clone(&store), Arc::clone(&barrier), pseudonym(&user));
            let id = user.id;
            deletions.push(tokio::spawn(async move {
                barrier.wait().await;
                store.delete_user(id, &digest).await.unwrap().is_some()
            }));
        }
        let session = {
            let (store, barrier, user) = (Arc::clone(&store), Arc::clone(&barrier), user.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                // May fail, where sessions need their account; a session stored after the
                // deletion names an account that is gone, which every flow refuses.
                let _ = store.insert_session(&super::sample_session(&user), &super::refresh_hash()).await;
            })
        };
        let mut deleted = 0;
        for deletion in deletions {
            deleted += usize::from(deletion.await.unwrap());
        }
        session.await.unwrap();
        assert_eq!(deleted, 1);
        assert_eq!(store.find_user_by_id(user.id).await.unwrap(), None);
    }

}

conformance_cases! { $
    /// Runs the [`AccountDeletionStore`](crate::AccountDeletionStore) cases of a store that
    /// has every optional capability: nothing of a deleted account is found by any of
    /// them. See the [conformance suite](crate::conformance).
    macro full_account_deletion_conformance_tests for [UserStore + SessionStore + OneTimeTokenStore + AccountDeletionStore + BrowserSessionStore + SecondFactorStore + IdentityStore + EmailChangeStore + PasskeyStore + AuditLogStore + Clone + 'static];

    /// An account with a row of every kind is deleted whole: no capability finds anything
    /// of it after.
    pub async fn an_account_with_every_capability_is_deleted_whole(store: S) {
        let all = account_with_everything(&store, "deleted-whole").await;
        let id = all.user.id;
        assert!(store.delete_user(id, &pseudonym(&all.user)).await.unwrap().is_some());
        assert_eq!(store.find_refresh_token(&all.refresh).await.unwrap(), None);
        assert_eq!(store.find_browser_session(&all.browser).await.unwrap(), None);
        assert_eq!(
            store.find_one_time_token(&all.reset, TokenPurpose::PasswordReset).await.unwrap(),
            None
        );
        assert_eq!(store.find_totp_factor(id).await.unwrap(), None);
        assert_eq!(store.count_recovery_codes(id).await.unwrap(), 0);
        assert_eq!(store.find_login_challenge(&all.challenge).await.unwrap(), None);
        assert_eq!(store.list_identities(id).await.unwrap(), vec![]);
        assert_eq!(store.take_login_state(&all.login_state).await.unwrap(), None);
        assert_eq!(store.take_login_code(&all.login_code).await.unwrap(), None);
        let at = truncate_to_micros(OffsetDateTime::now_utc());
        assert_eq!(store.undo_email_change(&all.undo, at).await.unwrap(), None);
        assert_eq!(store.find_passkey(&all.passkey).await.unwrap(), None);
        assert_eq!(store.list_passkeys(id).await.unwrap(), vec![]);
        assert_eq!(store.take_passkey_ceremony(&all.passkey_ceremony).await.unwrap(), None);
        // Its audit records stay, naming it by the pseudonym only, without its clients.
        assert_eq!(store.list_audit_records(&AuditQuery::first(10).of_user(id)).await.unwrap(), vec![]);
        let kept = store.list_audit_records(&AuditQuery::first(MAX)).await.unwrap();
        let digest = pseudonym(&all.user).to_string();
        let mine: Vec<&AuditRecord> = kept.iter().filter(|r| r.email_digest.as_deref() == Some(&digest)).collect();
        assert_eq!(mine.len(), 1, "{kept:?}");
        assert_eq!((mine[0].user_id, mine[0].ip, mine[0].user_agent.as_deref()), (None, None, None));
    }
}
