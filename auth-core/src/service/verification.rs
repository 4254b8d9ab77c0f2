//! Email verification: proving the owner receives mail at the account's address.

use super::AuthService;
use super::audit::Audit;
use crate::error::AuthError;
use crate::event::{Action, Subject};
use crate::id::UserId;
use crate::one_time::{Delivery, TokenPurpose};
use crate::session::ClientInfo;
use crate::store::AuthStore;
use crate::token::{OpaqueToken, TokenError, TokenKind};
use crate::user::User;

impl<S: AuthStore> AuthService<S> {
    /// Starts an email verification for the account: the message to deliver to its stored
    /// address, or `None` when the address is already verified. The token works once, for
    /// [`email_verification_ttl`](Self::with_email_verification_ttl) (24 hours by default),
    /// and only while the account keeps this address; a newer request replaces it.
    ///
    /// Each mail draws on [`Bucket::MailsPerClient`](crate::Bucket::MailsPerClient) and [`Bucket::MailsPerAccount`](crate::Bucket::MailsPerAccount): over
    /// either, this returns `None` and sends nothing (its event says `rate_limited`), so
    /// repeated requests cannot flood the address; answer the client as usual.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn request_email_verification(
        &self,
        user_id: UserId,
        client: &ClientInfo,
    ) -> Result<Option<Delivery>, AuthError> {
        let audit = Audit::new(Action::RequestEmailVerification, Subject::User(user_id));
        self.audited(audit, client, async |audit| {
            let user = self
                .store()
                .find_user_by_id(user_id)
                .await?
                .ok_or(AuthError::UserNotFound)?;
            if user.email_verified() {
                return Ok(None);
            }
            if !self.mail_allowed(&user.email, client, audit).await? {
                return Ok(None);
            }
            let (token, hash) = OpaqueToken::generate(TokenKind::EmailVerification)?;
            let purpose = TokenPurpose::EmailVerification;
            let ttl = self.email_verification_ttl;
            let issue = self.issue_one_time_token(&user, purpose, token, &hash, ttl);
            self.record_change(audit, client, issue).await.map(Some)
        })
        .await
    }

    /// Marks the email verified with an email-verification token (spent by this call; of
    /// concurrent uses, exactly one succeeds). Limited per client
    /// ([`Bucket::ConfirmationsPerClient`](crate::Bucket::ConfirmationsPerClient)). Returns the updated account.
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`InvalidOneTimeToken`](AuthError::InvalidOneTimeToken)
    /// (malformed, unknown, used, expired, or the account's email changed),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> Result<User, AuthError> {
        const PURPOSE: TokenPurpose = TokenPurpose::EmailVerification;
        let invalid = AuthError::InvalidOneTimeToken;
        self.audited(
            Audit::new(Action::VerifyEmail, Subject::Unknown),
            client,
            async |audit| {
                let hash = self.presented_one_time_token(token, PURPOSE, client).await?;
                let now = self.now();
                let record = self
                    .store()
                    .consume_one_time_token(&hash, PURPOSE, now)
                    .await?
                    .ok_or(invalid(TokenError::Unknown))?;
                audit.subject = Subject::User(record.user_id);
                if now >= record.expires_at {
                    return Err(invalid(TokenError::Expired));
                }
                let verify = self.store().mark_email_verified(record.user_id, &record.email, now);
                self.record_change(audit, client, verify)
                    .await?
                    .ok_or(invalid(TokenError::Revoked))
            },
        )
        .await
    }
}
