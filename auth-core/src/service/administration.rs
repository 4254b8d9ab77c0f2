//! Administration: [`Accounts`], what an administrator (or a command-line tool) does to
//! accounts, without any key: enable and disable them, change their roles, list them,
//! and check that the store answers.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use super::AuthService;
use super::audit::Audit;
use crate::audit::AuditLog;
use crate::clock::{Clock, SystemClock, now_micros};
use crate::error::AuthError;
use crate::event::{Action, EventKey, EventSink, NoEventSink, Subject};
use crate::id::UserId;
use crate::role::Role;
use crate::session::ClientInfo;
use crate::store::{RoleStore, SessionStore, UserDirectory, UserStore};
use crate::user::User;

/// The largest page [`Accounts::list_users`] returns.
pub const MAX_LIST_USERS: u32 = 1000;

/// The accounts of a store, with the clock and the security events every flow shares:
/// everything an administrator does, and nothing that needs a signing key or hashing.
///
/// [`AuthService`] holds one ([`AuthService::accounts`]) and offers its flows as its own
/// methods; a command-line tool builds one on its own:
///
/// ```
/// use auth_core::{Accounts, ClientInfo, Email, MemoryStore, Role, User, UserStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// # let now = time::OffsetDateTime::now_utc();
/// # store.insert_user(&User::new(Email::parse("ada@example.com")?, None, now)).await?;
/// let accounts = Accounts::new(store);
/// let email = Email::parse_existing("ada@example.com")?;
/// let user = accounts.store().find_user_by_email(&email).await?.ok_or("no such account")?;
/// let tool = ClientInfo::new(Some("admin-cli"), None);
/// let user = accounts.grant_role(user.id, Role::ADMIN, &tool).await?;
/// assert!(user.has_role("admin"));
/// # Ok(())
/// # }
/// ```
pub struct Accounts<S> {
    pub(super) store: S,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) events: Arc<dyn EventSink>,
    /// Keys the email digests of events and the per-account rate-limit keys.
    pub(super) event_key: EventKey,
    /// The store's audit log ([`with_audit_log`](Self::with_audit_log)).
    pub(super) audit_log: Option<AuditLog>,
    /// Busy refusals counted rather than recorded one by one (`busy.rs`).
    pub(super) busy: Arc<super::busy::BusyTally>,
}

impl<S> Accounts<S> {
    /// The accounts of `store`, with the [`SystemClock`], events to `tracing` only, and
    /// email digests under a random per-process key.
    pub fn new(store: S) -> Self {
        Self {
            store,
            clock: Arc::new(SystemClock),
            events: Arc::new(NoEventSink),
            event_key: EventKey::random(),
            audit_log: None,
            busy: Arc::default(),
        }
    }

    /// Uses `clock` for every timestamp.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Also sends every [`AuthEvent`](crate::AuthEvent) to `sink` (they always go to
    /// `tracing`).
    #[must_use]
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = sink;
        self
    }

    /// Keeps every event in `log`, the store's audit log: see [`AuditLog`] (the record of
    /// a change in the change's transaction, the rest queued). Give it a handle on this
    /// accounts' own store, or records of changes are only queued.
    #[must_use]
    pub fn with_audit_log(mut self, log: AuditLog) -> Self {
        self.audit_log = Some(log);
        self
    }

    /// Sets the secret under which events digest email addresses (random per process
    /// otherwise).
    #[must_use]
    pub fn with_event_key(mut self, key: EventKey) -> Self {
        self.event_key = key;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Now, to the microsecond every store keeps.
    pub(super) fn now(&self) -> OffsetDateTime {
        now_micros(&*self.clock)
    }
}

impl<S: UserStore + SessionStore> Accounts<S> {
    /// Enables or disables an account (an administrator's action). Disabling ends every
    /// session and revokes every access token issued before; a disabled account cannot
    /// log in.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn set_active(&self, user_id: UserId, active: bool, client: &ClientInfo) -> Result<User, AuthError> {
        let action = if active {
            Action::EnableAccount
        } else {
            Action::DisableAccount
        };
        self.audited(Audit::new(action, Subject::User(user_id)), client, async |audit| {
            let now = self.now();
            if !active {
                // Sessions first, as in a password change: nothing racing the disable survives it.
                self.store.revoke_all_sessions(user_id, now).await?;
            }
            self.record_change(audit, client, self.store.set_active(user_id, active, now))
                .await?
                .ok_or(AuthError::UserNotFound)
        })
        .await
    }
}

impl<S: UserStore> Accounts<S> {
    /// Whether the store answers, with one cheap read: for a health endpoint (503 when it
    /// does not).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn check_store(&self) -> Result<(), AuthError> {
        self.store.find_user_by_id(UserId::from_uuid(uuid::Uuid::nil())).await?;
        Ok(())
    }
}

impl<S: RoleStore> Accounts<S> {
    /// Replaces the account's roles (an administrator's action). Access tokens issued
    /// before carry the old roles and stop working; sessions continue, and their next
    /// refresh carries the new roles. An account holds at most
    /// [`Role::MAX_PER_ACCOUNT`] roles, so its tokens always fit the verifier's size limit.
    ///
    /// # Errors
    ///
    /// [`TooManyRoles`](AuthError::TooManyRoles) (nothing written),
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn set_roles(
        &self,
        user_id: UserId,
        roles: BTreeSet<Role>,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        self.audited(
            Audit::new(Action::SetRoles, Subject::User(user_id)),
            client,
            async |audit| {
                if roles.len() > Role::MAX_PER_ACCOUNT {
                    return Err(AuthError::TooManyRoles {
                        max: Role::MAX_PER_ACCOUNT,
                    });
                }
                self.record_change(audit, client, self.store.set_roles(user_id, &roles, self.now()))
                    .await?
                    .ok_or(AuthError::UserNotFound)
            },
        )
        .await
    }

    /// Gives the account `role`, atomically: of concurrent grants and revokes on one
    /// account none is lost, and the limit of [`Role::MAX_PER_ACCOUNT`] holds (what a
    /// read, an edited copy and a [`set_roles`](Self::set_roles) cannot promise). Granting
    /// a role the account holds changes nothing; a grant that applies stops the access
    /// tokens issued before, as every role change does.
    ///
    /// # Errors
    ///
    /// [`TooManyRoles`](AuthError::TooManyRoles) (nothing written),
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn grant_role(&self, user_id: UserId, role: Role, client: &ClientInfo) -> Result<User, AuthError> {
        self.audited(
            Audit::new(Action::GrantRole, Subject::User(user_id)),
            client,
            async |audit| {
                let grant = self.store.grant_role(user_id, &role, Role::MAX_PER_ACCOUNT, self.now());
                let user = self
                    .record_change(audit, client, grant)
                    .await?
                    .ok_or(AuthError::UserNotFound)?;
                if user.roles.contains(&role) {
                    Ok(user)
                } else {
                    Err(AuthError::TooManyRoles {
                        max: Role::MAX_PER_ACCOUNT,
                    })
                }
            },
        )
        .await
    }

    /// Takes `role` from the account, atomically (see [`grant_role`](Self::grant_role)).
    /// Revoking a role the account does not hold changes nothing; a revocation that applies
    /// stops the access tokens issued before, so none still carries the role.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn revoke_role(&self, user_id: UserId, role: Role, client: &ClientInfo) -> Result<User, AuthError> {
        self.audited(
            Audit::new(Action::RevokeRole, Subject::User(user_id)),
            client,
            async |audit| {
                self.record_change(audit, client, self.store.revoke_role(user_id, &role, self.now()))
                    .await?
                    .ok_or(AuthError::UserNotFound)
            },
        )
        .await
    }
}

impl<S: UserDirectory> Accounts<S> {
    /// Accounts in registration order, `limit` at a time (at most
    /// [`MAX_LIST_USERS`]), after the account `after` (the last id of the previous page).
    /// An administrator's listing: check the caller's role first
    /// ([`AccessClaims::require_role`](crate::AccessClaims::require_role)). Records no
    /// event (a read).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, AuthError> {
        Ok(self.store.list_users(after, limit.min(MAX_LIST_USERS)).await?)
    }

    /// As [`list_users`](Self::list_users), only the accounts whose email starts with
    /// `email_prefix`, lowercased as stored addresses are (an administrator finding an
    /// account by its address). Records no event (a read).
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn search_users(
        &self,
        email_prefix: &str,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, AuthError> {
        let prefix = email_prefix.trim().to_lowercase();
        Ok(self
            .store
            .search_users(&prefix, after, limit.min(MAX_LIST_USERS))
            .await?)
    }
}

impl<S> fmt::Debug for Accounts<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts")
            .field("clock", &self.clock)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl<S: UserStore + SessionStore> AuthService<S> {
    /// Enables or disables an account; see [`Accounts::set_active`].
    ///
    /// # Errors
    ///
    /// As [`Accounts::set_active`].
    pub async fn set_active(&self, user_id: UserId, active: bool, client: &ClientInfo) -> Result<User, AuthError> {
        self.accounts.set_active(user_id, active, client).await
    }
}

impl<S: UserStore> AuthService<S> {
    /// Whether the store answers; see [`Accounts::check_store`].
    ///
    /// # Errors
    ///
    /// As [`Accounts::check_store`].
    pub async fn check_store(&self) -> Result<(), AuthError> {
        self.accounts.check_store().await
    }
}

impl<S: RoleStore> AuthService<S> {
    /// Replaces the account's roles; see [`Accounts::set_roles`].
    ///
    /// # Errors
    ///
    /// As [`Accounts::set_roles`].
    pub async fn set_roles(
        &self,
        user_id: UserId,
        roles: BTreeSet<Role>,
        client: &ClientInfo,
    ) -> Result<User, AuthError> {
        self.accounts.set_roles(user_id, roles, client).await
    }

    /// Gives the account a role, atomically; see [`Accounts::grant_role`].
    ///
    /// # Errors
    ///
    /// As [`Accounts::grant_role`].
    pub async fn grant_role(&self, user_id: UserId, role: Role, client: &ClientInfo) -> Result<User, AuthError> {
        self.accounts.grant_role(user_id, role, client).await
    }

    /// Takes a role from the account, atomically; see [`Accounts::revoke_role`].
    ///
    /// # Errors
    ///
    /// As [`Accounts::revoke_role`].
    pub async fn revoke_role(&self, user_id: UserId, role: Role, client: &ClientInfo) -> Result<User, AuthError> {
        self.accounts.revoke_role(user_id, role, client).await
    }
}

impl<S: UserDirectory> AuthService<S> {
    /// Accounts in registration order; see [`Accounts::list_users`].
    ///
    /// # Errors
    ///
    /// As [`Accounts::list_users`].
    pub async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, AuthError> {
        self.accounts.list_users(after, limit).await
    }

    /// Accounts whose email starts with a prefix; see [`Accounts::search_users`].
    ///
    /// # Errors
    ///
    /// As [`Accounts::search_users`].
    pub async fn search_users(
        &self,
        email_prefix: &str,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, AuthError> {
        self.accounts.search_users(email_prefix, after, limit).await
    }
}
