//! A backend's own test that a refused audit record rolls its change back.

use super::unique_email;
use crate::audit::AuditQuery;
use crate::session::ClientInfo;
use crate::store::{AuditLogStore, OneTimeTokenStore, SessionStore, UserStore};

/// For a backend's own test that the record of a change goes into the change's
/// transaction: with `refuse` making the database refuse every audit record (a trigger),
/// a password change and a sign-in through a service over `store` fail with the store's
/// error and change nothing; after `accept` (the trigger dropped) both work and the
/// change's record is stored. The transaction's behaviour is the database's own, so each
/// bundled backend runs this with its own way to refuse a row.
pub async fn a_change_whose_record_is_refused_is_rolled_back<S>(
    store: S,
    refuse: impl AsyncFnOnce(),
    accept: impl AsyncFnOnce(),
) where
    S: UserStore + SessionStore + OneTimeTokenStore + AuditLogStore + Clone + 'static,
{
    use crate::{AuthError, AuthService, Password, SigningKey, Tokens};

    const PASSWORD: &str = "correct horse battery staple";
    const NEW_PASSWORD: &str = "a different horse entirely";
    let (log, _writer) = crate::AuditLog::new(std::sync::Arc::new(store.clone()));
    let tokens = Tokens::new(
        SigningKey::hs256(b"a test secret of at least thirty-two bytes").unwrap(),
        "https://auth.test",
        "api",
    );
    let auth = AuthService::new(store.clone(), tokens).with_audit_log(log);
    let client = ClientInfo::new(Some("Audited/1.0"), None);
    let email = unique_email("refused-record");
    let user = auth
        .register(email.as_str(), Password::new(PASSWORD), &client)
        .await
        .unwrap();

    refuse().await;
    let refused = auth
        .change_password(user.id, Password::new(PASSWORD), Password::new(NEW_PASSWORD), &client)
        .await
        .unwrap_err();
    assert!(matches!(refused, AuthError::Internal(_)), "{refused:?}");
    let kept = store.find_user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(kept.password_hash, user.password_hash, "the password did not change");
    assert_eq!(kept.token_version, user.token_version);
    let signed_in = auth.login(email.as_str(), Password::new(PASSWORD), &client).await;
    assert!(matches!(signed_in, Err(AuthError::Internal(_))), "{signed_in:?}");
    assert!(
        store.list_sessions(user.id).await.unwrap().is_empty(),
        "no session without its record"
    );

    accept().await;
    auth.change_password(user.id, Password::new(PASSWORD), Password::new(NEW_PASSWORD), &client)
        .await
        .unwrap();
    let kinds: Vec<String> = store
        .list_audit_records(&AuditQuery::first(10).of_user(user.id))
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.kind)
        .collect();
    assert_eq!(kinds, ["registered", "password_changed"]);
}
