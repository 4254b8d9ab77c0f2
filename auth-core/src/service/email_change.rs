//! Changing an account's address: asked for by the signed-in owner, confirmed from the
//! new address, undoable from the old one for 7 days.

use std::time::Duration;

use super::AuthService;
use super::audit::Audit;
use super::sessions::Caller;
use crate::clock::later_by;
use crate::email::Email;
use crate::error::{AuthError, StoreError};
use crate::event::{Action, Subject};
use crate::notice::SecurityNoticeKind;
use crate::one_time::{Delivery, TokenPurpose};
use crate::password::Password;
use crate::session::ClientInfo;
use crate::store::{AuthStore, EmailChange, EmailChangeStore, EmailConfirmation};
use crate::token::{OpaqueToken, TokenError, TokenKind};
use crate::user::User;

/// How long the old address can undo a change of the account's address.
pub const EMAIL_CHANGE_UNDO_WINDOW: Duration = Duration::from_secs(7 * 24 * 60 * 60);

impl<S: AuthStore + EmailChangeStore> AuthService<S> {
    /// Asks to change the caller's address to `new_email`. Returns the confirmation link
    /// to mail to the **new** address (working for
    /// [`email_verification_ttl`](Self::with_email_verification_ttl), 24 hours by
    /// default), or `None` when the mail allowances are spent (nothing sent or stored,
    /// as for other mails; answer as usual). The **old** address is told at once through
    /// the [notice sink](Self::with_security_notices)
    /// ([`EmailChangeRequested`](SecurityNoticeKind::EmailChangeRequested)), with a link
    /// that undoes the change for [`EMAIL_CHANGE_UNDO_WINDOW`] (7 days) and ends every
    /// session.
    ///
    /// The caller proves who it is with its `password` (guesses draw on the login
    /// allowances, as [`change_password`](Self::change_password)'s do), or, without one,
    /// with a recent authentication (the step-up rule; the only way for an account without
    /// a password). An account with a second factor meets the step-up rule either way.
    ///
    /// Whether another account has the new address is not checked here, so the answer
    /// never tells: the database's uniqueness decides when the change is confirmed.
    /// Several requests may be pending; the first confirmed wins and voids the others.
    ///
    /// # Errors
    ///
    /// [`InvalidEmail`](AuthError::InvalidEmail), [`EmailTaken`](AuthError::EmailTaken)
    /// (the account's own address), [`InvalidCredentials`](AuthError::InvalidCredentials),
    /// [`StepUpRequired`](AuthError::StepUpRequired), [`InvalidCode`](AuthError::InvalidCode),
    /// [`RateLimited`](AuthError::RateLimited), [`UserNotFound`](AuthError::UserNotFound),
    /// [`AccountDisabled`](AuthError::AccountDisabled), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn request_email_change(
        &self,
        caller: impl Into<Caller>,
        new_email: &str,
        password: Option<Password>,
        client: &ClientInfo,
    ) -> Result<Option<Delivery>, AuthError> {
        let caller = caller.into();
        let user_id = caller.user_id();
        let audit = Audit::new(Action::RequestEmailChange, Subject::User(user_id));
        self.audited(audit, client, async |audit| {
            let new_email = Email::parse_for_new_account(new_email).new_address?;
            let user = self.active_account(user_id).await?;
            if new_email == user.email {
                return Err(AuthError::EmailTaken);
            }
            self.reauthenticate_with_step_up(&caller, &user, password, client, audit)
                .await?;
            if !self.mail_allowed(&new_email, client, audit).await? {
                return Ok(None);
            }
            let now = self.now();
            let (confirm, confirm_hash) = OpaqueToken::generate(TokenKind::EmailChange)?;
            let (undo, undo_hash) = OpaqueToken::generate(TokenKind::EmailChangeUndo)?;
            let change = EmailChange::new(
                &user,
                new_email.clone(),
                caller.session_id(),
                now,
                later_by(now, self.email_verification_ttl),
                later_by(now, EMAIL_CHANGE_UNDO_WINDOW),
            );
            let request = self.store().insert_email_change(&change, &confirm_hash, &undo_hash);
            self.record_change(audit, client, request).await?;
            let undo = Delivery {
                to: user.email.clone(),
                user_id: user.id,
                purpose: TokenPurpose::EmailChangeUndo,
                token: undo,
                expires_at: change.undo_expires_at,
            };
            self.notify(
                &user,
                SecurityNoticeKind::EmailChangeRequested(new_email.clone()),
                client,
                Some(undo),
            );
            Ok(Some(Delivery {
                to: new_email,
                user_id: user.id,
                purpose: TokenPurpose::EmailChange,
                token: confirm,
                expires_at: change.confirm_expires_at,
            }))
        })
        .await
    }

    /// Confirms a change of address with the link mailed to the new address: atomically,
    /// the account takes the new address (verified), its token version moves (so no
    /// access token carries the old address, and every other pending change, reset link
    /// and verification link dies), and every session but the one that asked for the
    /// change ends. The old address gets a notice with a fresh undo link (7 days); the new
    /// one a confirmation. Limited per client
    /// ([`Bucket::ConfirmationsPerClient`](crate::Bucket::ConfirmationsPerClient)).
    ///
    /// # Errors
    ///
    /// [`InvalidOneTimeToken`](AuthError::InvalidOneTimeToken) (malformed, unknown, used,
    /// expired, or the account changed since the request: its password, its tokens, its
    /// address), [`EmailTaken`](AuthError::EmailTaken) (another account has the address:
    /// nothing changed), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`RateLimited`](AuthError::RateLimited), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn confirm_email_change(&self, token: &str, client: &ClientInfo) -> Result<User, AuthError> {
        let invalid = AuthError::InvalidOneTimeToken;
        let audit = Audit::new(Action::ConfirmEmailChange, Subject::Unknown);
        self.audited(audit, client, async |audit| {
            let hash = self
                .presented_one_time_token(token, TokenPurpose::EmailChange, client)
                .await?;
            let now = self.now();
            // The store names the account in the record: only it knows whose link this is.
            let confirmation = self
                .record_change(audit, client, self.store().confirm_email_change(&hash, now))
                .await
                .map_err(|error| match error {
                    StoreError::DuplicateEmail => AuthError::EmailTaken,
                    other => other.into(),
                })?
                .ok_or(invalid(TokenError::Unknown))?;
            let (change, user) = match confirmation {
                EmailConfirmation::Switched { change, user } => (change, user),
                EmailConfirmation::Expired(change) => {
                    audit.subject = Subject::User(change.user_id);
                    return Err(invalid(TokenError::Expired));
                }
                EmailConfirmation::Stale(change) => {
                    audit.subject = Subject::User(change.user_id);
                    return Err(invalid(TokenError::Revoked));
                }
            };
            audit.subject = Subject::User(user.id);
            if !user.is_active {
                // Switched all the same (the owner proved both addresses); a disabled
                // account has no session to keep.
                self.store().revoke_all_sessions(user.id, now).await?;
                return Err(AuthError::AccountDisabled);
            }
            for session in self.store().list_sessions(user.id).await? {
                if Some(session.id) != change.session_id {
                    self.store().revoke_session(user.id, session.id, now).await?;
                }
            }
            let (undo, undo_hash) = OpaqueToken::generate(TokenKind::EmailChangeUndo)?;
            let (_, unused_confirm) = OpaqueToken::generate(TokenKind::EmailChange)?;
            let mut record = change.clone();
            record.requested_at = now;
            record.confirm_expires_at = now;
            record.undo_expires_at = later_by(now, EMAIL_CHANGE_UNDO_WINDOW);
            // The fresh undo link is a change record of its own (old → new), already past
            // its confirmation: undoing it restores the old address like the first link.
            // A failure here leaves the first link, mailed at the request, working.
            let fresh_undo = match self
                .store()
                .insert_email_change(&record, &unused_confirm, &undo_hash)
                .await
            {
                Ok(()) => Some(Delivery {
                    to: change.old_email.clone(),
                    user_id: user.id,
                    purpose: TokenPurpose::EmailChangeUndo,
                    token: undo,
                    expires_at: record.undo_expires_at,
                }),
                Err(error) => {
                    tracing::warn!(user = %user.id, %error, "could not store a fresh undo link");
                    None
                }
            };
            let mut old = user.clone();
            old.email = change.old_email.clone();
            self.notify(
                &old,
                SecurityNoticeKind::EmailChanged(user.email.clone()),
                client,
                fresh_undo,
            );
            self.notify(&user, SecurityNoticeKind::EmailChangeConfirmed, client, None);
            Ok(user)
        })
        .await
    }

    /// Undoes a change of address with a link mailed to the old address, within 7 days of
    /// the change: the account gets its old address back (verified), every session ends,
    /// its token version moves (every access token, pending change and link mailed to the
    /// other address dies), and every change asked for after this one is void. The
    /// restored address is told. Works before the change was confirmed too (it then
    /// cancels it). The owner should then reset the password: whoever changed the address
    /// may have changed it too.
    ///
    /// # Errors
    ///
    /// [`InvalidOneTimeToken`](AuthError::InvalidOneTimeToken) (malformed, unknown, used,
    /// or past the 7 days), [`EmailTaken`](AuthError::EmailTaken) (another account has
    /// taken the old address since: nothing changed),
    /// [`RateLimited`](AuthError::RateLimited), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn undo_email_change(&self, token: &str, client: &ClientInfo) -> Result<User, AuthError> {
        let audit = Audit::new(Action::UndoEmailChange, Subject::Unknown);
        self.audited(audit, client, async |audit| {
            let hash = self
                .presented_one_time_token(token, TokenPurpose::EmailChangeUndo, client)
                .await?;
            let now = self.now();
            // As for a confirmation, the store names the account in the record.
            let (_, user) = self
                .record_change(audit, client, self.store().undo_email_change(&hash, now))
                .await
                .map_err(|error| match error {
                    StoreError::DuplicateEmail => AuthError::EmailTaken,
                    other => other.into(),
                })?
                .ok_or(AuthError::InvalidOneTimeToken(TokenError::Unknown))?;
            audit.subject = Subject::User(user.id);
            self.store().revoke_all_sessions(user.id, now).await?;
            self.notify(&user, SecurityNoticeKind::EmailChangeUndone, client, None);
            Ok(user)
        })
        .await
    }
}
