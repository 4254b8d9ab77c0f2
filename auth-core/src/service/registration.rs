//! Registration: a new account, with or without telling the client that the address was
//! taken.

use std::sync::Arc;

use super::AuthService;
use super::audit::Audit;
use crate::email::{Email, EmailError};
use crate::error::{AuthError, StoreError};
use crate::event::{Action, Outcome, Refusal, Subject};
use crate::id::UserId;
use crate::password::Password;
use crate::rate_limit::Bucket;
use crate::session::ClientInfo;
use crate::store::AuthStore;
use crate::user::User;

/// The result of [`AuthService::register_enumeration_safe`]. Answer the client the same
/// way for both variants.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Registration {
    /// A new account.
    Created(User),
    /// The email already has an account; nothing was created. Tell its owner (a mail to
    /// `notify`: "someone tried to sign up with your address; log in or reset your
    /// password"), not the client.
    AlreadyRegistered {
        /// The stored address of the existing account, to mail; `None` when the mail
        /// limits ([`Bucket::MailsPerAccount`], [`Bucket::MailsPerClient`]) are exhausted:
        /// send nothing, and still answer the client as for a new account.
        notify: Option<Email>,
        /// The existing account.
        user_id: UserId,
    },
}

impl<S: AuthStore> AuthService<S> {
    /// Creates an account; a duplicate email answers [`EmailTaken`](AuthError::EmailTaken)
    /// (HTTP 409), as in the seeds. See [`register_enumeration_safe`](Self::register_enumeration_safe)
    /// for the variant that does not reveal which emails have accounts.
    ///
    /// Registrations are limited per client ([`Bucket::RegistrationsPerClient`]) before any
    /// work. The email is normalized and the password checked against the policy (with the
    /// email) before any hashing; the new account is active, unverified and has no roles,
    /// and its login allowances start full: failed logins against the address before it
    /// was registered do not count against the new account.
    ///
    /// # Errors
    ///
    /// [`RateLimited`](AuthError::RateLimited), [`InvalidEmail`](AuthError::InvalidEmail),
    /// [`WeakPassword`](AuthError::WeakPassword), [`EmailTaken`](AuthError::EmailTaken)
    /// (decided by the store's unique constraint), [`Busy`](AuthError::Busy),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn register(&self, email: &str, password: Password, client: &ClientInfo) -> Result<User, AuthError> {
        let address = Email::parse_for_new_account(email);
        let subject = self.accounts.email_subject(address.identity.as_ref());
        self.audited(Audit::new(Action::Register, subject), client, async |audit| {
            self.create_account(&address.new_address, password, client, audit).await
        })
        .await
    }

    /// Creates an account without revealing whether the email already had one: an
    /// existing email returns [`Registration::AlreadyRegistered`] instead of an error,
    /// after the same work (the password is hashed either way), so the caller answers
    /// both identically (say, 202 "check your inbox") and mails the existing account's
    /// owner instead. Everything else is as in [`register`](Self::register).
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register), but never [`EmailTaken`](AuthError::EmailTaken).
    pub async fn register_enumeration_safe(
        &self,
        email: &str,
        password: Password,
        client: &ClientInfo,
    ) -> Result<Registration, AuthError> {
        let address = Email::parse_for_new_account(email);
        let subject = self.accounts.email_subject(address.identity.as_ref());
        self.audited(Audit::new(Action::Register, subject), client, async |audit| {
            let created = self.create_account(&address.new_address, password, client, audit).await;
            match (created, &address.new_address) {
                (Ok(user), _) => {
                    // The same work as the other answer, which must look the owner up and
                    // draw on the mail allowances: one lookup by email and one draw either
                    // way. Their results do not matter: the account exists, no mail is due,
                    // and the event says the account was created.
                    let _ = self.store().find_user_by_email(&user.email).await;
                    let mut unrecorded = Audit::new(Action::Register, Subject::Unknown);
                    let _ = self.mail_allowed(&user.email, client, &mut unrecorded).await;
                    Ok(Registration::Created(user))
                }
                (Err(AuthError::EmailTaken), Ok(email)) => {
                    let Some(existing) = self.store().find_user_by_email(email).await? else {
                        // Deleted in between: nothing to tell anyone.
                        return Err(AuthError::Conflict);
                    };
                    audit.subject = Subject::User(existing.id);
                    let allowed = self.mail_allowed(&existing.email, client, audit).await?;
                    // Refused, whether or not a notice may be mailed.
                    audit.outcome = Some(Outcome::Refused(Refusal::EmailTaken));
                    Ok(Registration::AlreadyRegistered {
                        notify: allowed.then_some(existing.email),
                        user_id: existing.id,
                    })
                }
                (Err(error), _) => Err(error),
            }
        })
        .await
    }

    /// Inserts a new account at `email` (as parsed for a new account) with `password`:
    /// the step both registrations share.
    async fn create_account(
        &self,
        email: &Result<Email, EmailError>,
        password: Password,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<User, AuthError> {
        self.take(Bucket::RegistrationsPerClient, client, None).await?;
        let email = email.clone()?;
        self.policy.check(&password, Some(&email))?;
        // The insert is the only store call, after the hash: in a known outage, spend none.
        if self.store().known_unavailable().await {
            return Err(StoreError::unavailable("the store knows its database is unreachable").into());
        }
        let hasher = Arc::clone(&self.hasher);
        let hash = self
            .pool
            .run(move || hasher.hash(&password))
            .await?
            .map_err(AuthError::internal)?;
        let user = User::new(email, Some(hash), self.now());
        let insert = self.store().insert_user(&user);
        self.record_change_of(audit, Subject::User(user.id), client, insert)
            .await?;
        audit.subject = Subject::User(user.id);
        // Failures counted against the address before it had an account were nobody's:
        // the owner starts with a clean allowance. Only a new account gets here, so trying
        // to register an existing address refills nothing.
        self.refill_login_allowance(&user.email).await;
        Ok(user)
    }
}

/// How long an invitation's set-password link works.
pub const INVITATION_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 60 * 60);

/// An account an administrator created ([`AuthService::invite`]): the account, and the mail
/// with its set-password link for the application to send.
#[derive(Debug)]
#[non_exhaustive]
pub struct Invitation {
    /// The account, without a password yet.
    pub user: User,
    /// A password-reset link for the account's address, working for [`INVITATION_TTL`]:
    /// following it sets the first password (and proves the address).
    pub delivery: crate::one_time::Delivery,
}

impl<S: AuthStore> AuthService<S> {
    /// Creates an account for `email` with `roles` and no password (an administrator's
    /// invitation), and a single-use link to set its password, working for
    /// [`INVITATION_TTL`] (7 days): the reset flow's token, so the usual reset page and
    /// `reset_password` complete it. Until then the account cannot sign in with a
    /// password (the generic failure), and a newer reset request replaces the link.
    /// Check the caller's role first, as for every administration call.
    ///
    /// # Errors
    ///
    /// [`InvalidEmail`](AuthError::InvalidEmail), [`EmailTaken`](AuthError::EmailTaken)
    /// (decided by the store's uniqueness), [`TooManyRoles`](AuthError::TooManyRoles)
    /// (nothing written), [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn invite(
        &self,
        email: &str,
        roles: std::collections::BTreeSet<crate::role::Role>,
        client: &ClientInfo,
    ) -> Result<Invitation, AuthError> {
        let address = Email::parse_for_new_account(email);
        let subject = self.accounts.email_subject(address.identity.as_ref());
        self.audited(Audit::new(Action::InviteAccount, subject), client, async |audit| {
            let email = address.new_address.clone()?;
            if roles.len() > crate::role::Role::MAX_PER_ACCOUNT {
                return Err(AuthError::TooManyRoles {
                    max: crate::role::Role::MAX_PER_ACCOUNT,
                });
            }
            let mut user = User::new(email, None, self.now());
            user.roles = roles;
            let insert = self.store().insert_user(&user);
            self.record_change_of(audit, Subject::User(user.id), client, insert)
                .await?;
            audit.subject = Subject::User(user.id);
            let (token, hash) = crate::token::OpaqueToken::generate(crate::token::TokenKind::PasswordReset)?;
            let delivery = self
                .issue_one_time_token(
                    &user,
                    crate::one_time::TokenPurpose::PasswordReset,
                    token,
                    &hash,
                    INVITATION_TTL,
                )
                .await?;
            Ok(Invitation { user, delivery })
        })
        .await
    }
}
