//! Deleting an account: by its owner (who proves who they are again), or by an
//! administrator.

use super::AuthService;
use super::audit::Audit;
use super::sessions::Caller;
use crate::error::AuthError;
use crate::event::{Action, Subject};
use crate::id::UserId;
use crate::notice::SecurityNoticeKind;
use crate::password::Password;
use crate::session::ClientInfo;
use crate::store::{AccountDeletionStore, AuthStore};
use crate::user::User;

impl<S: AuthStore + AccountDeletionStore> AuthService<S> {
    /// Deletes the caller's account and everything that is its own (sessions, tokens,
    /// second factors, linked identities, address changes), in one transaction of the
    /// store; every access token dies with its session. The address is free to register
    /// again at once. The owner is told at the address
    /// ([`AccountDeleted`](SecurityNoticeKind::AccountDeleted)), and the event names the
    /// account by the keyed digest of its address only, without the client, so the log
    /// keeps no personal data; the account's earlier records are rewritten the same way
    /// by stores that keep an audit log.
    ///
    /// The caller proves who it is with its `password` (guesses draw on the login
    /// allowances), or, without one, with a recent authentication (the only way for an
    /// account without a password); an account with a second factor also meets the
    /// step-up rule.
    ///
    /// ```
    /// use auth_core::{AuthService, ClientInfo, MemoryStore, Password, SigningKey, Tokens};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
    /// let auth = AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api"));
    /// let client = ClientInfo::unknown();
    /// let user = auth.register("ada@example.com", Password::new("correct horse battery"), &client).await?;
    /// auth.delete_account(user.id, Some(Password::new("correct horse battery")), &client).await?;
    /// // The address is free again at once.
    /// auth.register("ada@example.com", Password::new("another long passphrase"), &client).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`InvalidCredentials`](AuthError::InvalidCredentials),
    /// [`StepUpRequired`](AuthError::StepUpRequired), [`InvalidCode`](AuthError::InvalidCode),
    /// [`RateLimited`](AuthError::RateLimited), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn delete_account(
        &self,
        caller: impl Into<Caller>,
        password: Option<Password>,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let caller = caller.into();
        let user_id = caller.user_id();
        let audit = Audit::new(Action::DeleteAccount, Subject::User(user_id));
        // The event keeps no client: the owner's address and device are theirs, and the
        // account is gone.
        let anonymous = ClientInfo::unknown();
        self.audited(audit, &anonymous, async |audit| {
            let user = self
                .store()
                .find_user_by_id(user_id)
                .await?
                .ok_or(AuthError::UserNotFound)?;
            self.reauthenticate_with_step_up(&caller, &user, password, client, audit)
                .await?;
            self.remove_account(&user, client, &anonymous, audit).await
        })
        .await
    }

    /// Deletes an account as [`delete_account`](Self::delete_account) does, for an
    /// administrator: no re-authentication of the account. Check the caller's role first,
    /// as for every administration call.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn delete_user(&self, user_id: UserId, client: &ClientInfo) -> Result<(), AuthError> {
        let audit = Audit::new(Action::DeleteUser, Subject::User(user_id));
        self.audited(audit, client, async |audit| {
            let user = self
                .store()
                .find_user_by_id(user_id)
                .await?
                .ok_or(AuthError::UserNotFound)?;
            self.remove_account(&user, client, client, audit).await
        })
        .await
    }

    /// Deletes `user`, read by the caller; the pseudonym is its address as read. The
    /// notice names `client`; the event, `recorded_client`.
    async fn remove_account(
        &self,
        user: &User,
        client: &ClientInfo,
        recorded_client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<(), AuthError> {
        let pseudonym = crate::event::EmailDigest::of(&self.accounts.event_key, &user.email);
        // The account is gone once this is written: its events name it by the digest of
        // its address only, this one included.
        let deletion = self.store().delete_user(user.id, &pseudonym);
        let deleted = self
            .record_change_of(audit, Subject::Email(pseudonym), recorded_client, deletion)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        audit.subject = Subject::Email(pseudonym);
        self.notify(&deleted, SecurityNoticeKind::AccountDeleted, client, None);
        Ok(())
    }
}
