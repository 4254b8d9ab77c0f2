//! Passwords: changing one with the current one, and resetting a forgotten one by mail.

use std::sync::Arc;

use super::AuthService;
use super::audit::Audit;
use super::login::{PasswordCheck, check_password};
use super::sessions::Caller;
use crate::email::Email;
use crate::error::AuthError;
use crate::event::{Action, Outcome, Subject};
use crate::hash::HashedPassword;
use crate::id::UserId;
use crate::notice::SecurityNoticeKind;
use crate::one_time::{Delivery, TokenPurpose};
use crate::password::Password;
use crate::rate_limit::Bucket;
use crate::session::ClientInfo;
use crate::store::AuthStore;
use crate::token::{OpaqueToken, TokenError, TokenKind};
use crate::user::User;

impl<S: AuthStore> AuthService<S> {
    /// Changes the password of the caller's account (a [`Caller`], or the [`UserId`] of
    /// an account the application acts for), which must prove it knows the current one.
    /// An account with a second factor also meets the step-up rule: a recent
    /// authentication, or the factor in `caller` ([`Caller::with_second_factor`]); a bare
    /// [`UserId`] has no recent authentication on record.
    ///
    /// The new password is checked against the policy first (no hashing if it fails);
    /// then the current password is verified and the new one hashed, in one job on the
    /// pool. The write is compare-and-set on the account's token version, so a concurrent
    /// password change or disable is never overwritten. On success every session and
    /// every access token issued before is revoked; the caller logs in again.
    ///
    /// Guesses of the current password draw on the account's login allowances, as
    /// [`login`](Self::login) does, so a stolen access token is no unlimited guessing
    /// oracle; success refills them.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`AccountDisabled`](AuthError::AccountDisabled),
    /// [`RateLimited`](AuthError::RateLimited),
    /// [`WeakPassword`](AuthError::WeakPassword), [`InvalidCredentials`](AuthError::InvalidCredentials)
    /// (wrong current password), [`Conflict`](AuthError::Conflict) (the account changed
    /// meanwhile: another password change, a revocation), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn change_password(
        &self,
        caller: impl Into<Caller>,
        current: Password,
        new: Password,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        let caller = caller.into();
        let user_id = caller.user_id();
        let audit = Audit::new(Action::ChangePassword, Subject::User(user_id));
        self.audited(audit, client, async |audit| {
            let user = self.active_account(user_id).await?;
            self.policy.check(&new, Some(&user.email))?;
            // A stolen access token must not become an unlimited password oracle: guesses
            // of the current password draw on the account's login allowances.
            self.take(Bucket::LoginFailuresPerAccount, client, Some(&user.email))
                .await?;
            self.take_consecutive_failure(client, Some(&user.email)).await?;
            let stored = user.password_hash.clone();
            let hasher = Arc::clone(&self.hasher);
            let new_hash = self
                .pool
                .run(
                    move || match check_password(&*hasher, &current, stored.as_ref(), false, Some(user_id)) {
                        PasswordCheck::Match { .. } => hasher.hash(&new).map(Ok),
                        PasswordCheck::Mismatch(refusal) => Ok(Err(refusal)),
                    },
                )
                .await?
                .map_err(AuthError::internal)?
                .map_err(|refusal| {
                    audit.refusal = Some(refusal);
                    AuthError::InvalidCredentials
                })?;
            self.step_up(&caller, &user, client, audit).await?;
            let updated = self.replace_password(&user, &new_hash, client, audit).await?;
            self.refill_login_allowance(&updated.email).await;
            self.notify(&updated, SecurityNoticeKind::PasswordChanged, client, None);
            Ok(updated)
        })
        .await
    }

    /// Starts a password reset (OWASP Forgot Password Cheat Sheet).
    ///
    /// Limited per client ([`Bucket::ResetRequestsPerClient`]: over it, the answer is
    /// [`RateLimited`](AuthError::RateLimited)) and per account
    /// ([`Bucket::ResetRequestsPerAccount`]). Over the account's limit the call still
    /// succeeds, returning `None` and sending nothing (its event says `rate_limited`):
    /// a refusal would let anyone block the owner's reset by requesting it for them,
    /// whereas the owner already holds the newest of the mails sent within the limit,
    /// which works. The account limit applies to unknown emails exactly as to known ones,
    /// and is separate from the login limits, so a throttled owner can always reset.
    /// The request then draws on the mail allowances every mail shares
    /// ([`Bucket::MailsPerClient`], [`Bucket::MailsPerAccount`]), answered the same way:
    /// `None`, nothing sent.
    ///
    /// Returns the message to deliver only when `email` belongs to an active account,
    /// addressed to the stored address, never to the string typed. Answer the client the
    /// same way whatever this returns: both paths do the same work, with no early return
    /// (one lookup, one token generated, hashed and stored; without an account the stored
    /// token is a decoy that nobody receives). Deliver the mail off the request path, so
    /// sending it does not show in the response time either.
    ///
    /// The token works once, for [`password_reset_ttl`](Self::with_password_reset_ttl)
    /// (1 hour by default), and dies when a newer reset is requested or the password
    /// changes by any route.
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal); never anything that depends on whether the
    /// account exists.
    pub async fn request_password_reset(
        &self,
        email: &str,
        client: &ClientInfo,
    ) -> Result<Option<Delivery>, AuthError> {
        // As for logins: an account older than the new-address rules is still found (and
        // if mail cannot reach it, the mailer logs the failed send).
        let email = Email::parse_existing(email).ok();
        let subject = self.accounts.email_subject(email.as_ref());
        self.audited(
            Audit::new(Action::RequestPasswordReset, subject),
            client,
            async |audit| {
                let email = email.as_ref();
                self.take(Bucket::ResetRequestsPerClient, client, email).await?;
                // Over the account's limit, the request is answered as usual but sends nothing:
                // refusing it would let anyone block the owner's reset, and the owner already
                // holds the newest of the mails sent within the limit, which still works.
                if let Err(AuthError::RateLimited { retry_after }) =
                    self.take(Bucket::ResetRequestsPerAccount, client, email).await
                {
                    audit.outcome = Some(Outcome::RateLimited { retry_after });
                    return Ok(None);
                }
                // Malformed addresses receive nothing anyway; the decoy path below does their work.
                if let Some(recipient) = email
                    && !self.mail_allowed(recipient, client, audit).await?
                {
                    return Ok(None);
                }
                let account = match email {
                    Some(email) => self.store().find_user_by_email(email).await?,
                    None => None,
                };
                let target = account.filter(|user| user.is_active);
                // Both answers do the same work: a token is generated, hashed and stored either
                // way. Without an account it is a decoy for the nil account, which cannot exist
                // (ids are UUIDv7), and its token is handed to nobody.
                let decoy = User::existing(UserId::from_uuid(uuid::Uuid::nil()), Email::decoy(), self.now());
                let owner = target.as_ref().unwrap_or(&decoy);
                let (token, hash) = OpaqueToken::generate(TokenKind::PasswordReset)?;
                let subject = target
                    .as_ref()
                    .map_or(audit.subject.clone(), |user| Subject::User(user.id));
                let issue = self.issue_one_time_token(
                    owner,
                    TokenPurpose::PasswordReset,
                    token,
                    &hash,
                    self.password_reset_ttl,
                );
                let delivery = self.record_change_of(audit, subject, client, issue).await?;
                Ok(target.map(|user| {
                    audit.subject = Subject::User(user.id);
                    delivery
                }))
            },
        )
        .await
    }

    /// Tells the owner of an account the consecutive-failure cap has just locked, with a
    /// reset link (the way to unlock it): once per lock
    /// ([`Bucket::LockNoticesPerAccount`]), and only through the notice sink. An address
    /// without an account (or a disabled one) does the same work, a decoy token stored
    /// as the reset request stores one, and nobody is told. A failure is logged: the
    /// answer is the lock either way.
    pub(super) async fn tell_of_lock(&self, email: Option<&Email>, client: &ClientInfo) {
        if self.notices.is_none() {
            return;
        }
        if self.take(Bucket::LockNoticesPerAccount, client, email).await.is_err() {
            return;
        }
        let told = async {
            let account = match email {
                Some(email) => self.store().find_user_by_email(email).await?,
                None => None,
            };
            let target = account.filter(|user| user.is_active);
            let decoy = User::existing(UserId::from_uuid(uuid::Uuid::nil()), Email::decoy(), self.now());
            let owner = target.as_ref().unwrap_or(&decoy);
            let (token, hash) = OpaqueToken::generate(TokenKind::PasswordReset)?;
            let delivery = self
                .issue_one_time_token(
                    owner,
                    TokenPurpose::PasswordReset,
                    token,
                    &hash,
                    self.password_reset_ttl,
                )
                .await?;
            if let Some(user) = target {
                self.notify(&user, SecurityNoticeKind::AccountLocked, client, Some(delivery));
            }
            Ok::<(), AuthError>(())
        };
        if let Err(error) = told.await {
            tracing::warn!(%error, "could not tell the owner of a locked account");
        }
    }

    /// Sets a new password with a password-reset token.
    ///
    /// Limited per client ([`Bucket::ConfirmationsPerClient`]). The token must be unused,
    /// unexpired, the newest one requested, and issued since the last password change.
    /// The new password is checked against the policy before the token is spent, so a
    /// weak choice can be corrected with the same link. On success the token is spent (of
    /// concurrent uses, exactly one succeeds), every session and access token is revoked,
    /// the email counts as verified (the owner just proved they read mail there), and the
    /// account's login allowance is refilled. The user is not logged in: they log in with
    /// the new password.
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`InvalidOneTimeToken`](AuthError::InvalidOneTimeToken),
    /// [`WeakPassword`](AuthError::WeakPassword), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn reset_password(&self, token: &str, new: Password, client: &ClientInfo) -> Result<(), AuthError> {
        const PURPOSE: TokenPurpose = TokenPurpose::PasswordReset;
        let invalid = AuthError::InvalidOneTimeToken;
        self.audited(
            Audit::new(Action::ResetPassword, Subject::Unknown),
            client,
            async |audit| {
                let hash = self.presented_one_time_token(token, PURPOSE, client).await?;
                let record = self
                    .store()
                    .find_one_time_token(&hash, PURPOSE)
                    .await?
                    .ok_or(invalid(TokenError::Unknown))?;
                audit.subject = Subject::User(record.user_id);
                if self.now() >= record.expires_at {
                    return Err(invalid(TokenError::Expired));
                }
                let user = self
                    .store()
                    .find_user_by_id(record.user_id)
                    .await?
                    .filter(|user| {
                        user.is_active && user.token_version == record.token_version && user.email == record.email
                    })
                    .ok_or(invalid(TokenError::Revoked))?;
                self.policy.check(&new, Some(&user.email))?;
                let hasher = Arc::clone(&self.hasher);
                let new_hash = self
                    .pool
                    .run(move || hasher.hash(&new))
                    .await?
                    .map_err(AuthError::internal)?;
                let now = self.now();
                self.store()
                    .consume_one_time_token(&hash, PURPOSE, now)
                    .await?
                    .ok_or(invalid(TokenError::Reused))?;
                let user =
                    self.replace_password(&user, &new_hash, client, audit)
                        .await
                        .map_err(|error| match error {
                            // The account changed since the token was issued.
                            AuthError::Conflict | AuthError::UserNotFound | AuthError::AccountDisabled => {
                                invalid(TokenError::Revoked)
                            }
                            other => other,
                        })?;
                self.store().mark_email_verified(user.id, &record.email, now).await?;
                self.refill_login_allowance(&user.email).await;
                self.notify(&user, SecurityNoticeKind::PasswordReset, client, None);
                Ok(())
            },
        )
        .await
    }

    /// Ends `user`'s sessions, then stores `hash` if `user` is unchanged since it was read
    /// (which also revokes earlier access tokens).
    ///
    /// Sessions end first: a refresh racing this change then fails, where in the other
    /// order it could mint an access token under the new token version that outlives the
    /// change. A failure between the two steps fails closed (sessions gone, password kept).
    /// The event's record goes with the new hash.
    async fn replace_password(
        &self,
        user: &User,
        hash: &HashedPassword,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<User, AuthError> {
        let now = self.now();
        self.store().revoke_all_sessions(user.id, now).await?;
        let write = self.store().set_password_hash(user.id, hash, user.token_version, now);
        let Some(updated) = self.record_change(audit, client, write).await? else {
            return Err(self.lost_race(user.id).await);
        };
        Ok(updated)
    }

    /// The caller proves who it is for a sensitive change: with its `password` (checked
    /// as [`check_current_password`](Self::check_current_password) does; a right one
    /// refills the login allowances), then the step-up rule for an account with a second
    /// factor; or, without a password, with a recent authentication (the only way for an
    /// account without one).
    pub(super) async fn reauthenticate_with_step_up(
        &self,
        caller: &Caller,
        user: &User,
        password: Option<Password>,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<(), AuthError> {
        let Some(password) = password else {
            return self.recent_authentication(caller, user, audit);
        };
        self.check_current_password(user, password, client, audit).await?;
        self.step_up(caller, user, client, audit).await?;
        self.refill_login_allowance(&user.email).await;
        Ok(())
    }

    /// Why a compare-and-set on `user_id` found the account changed.
    async fn lost_race(&self, user_id: UserId) -> AuthError {
        match self.store().find_user_by_id(user_id).await {
            Ok(None) => AuthError::UserNotFound,
            Ok(Some(user)) if !user.is_active => AuthError::AccountDisabled,
            Ok(Some(_)) => AuthError::Conflict,
            Err(error) => error.into(),
        }
    }
}
