//! Exporting what is stored about an account, for its owner.

use super::AuthService;
use super::audit::Audit;
use crate::error::AuthError;
use crate::event::{Action, Subject};
use crate::id::UserId;
use crate::rate_limit::Bucket;
use crate::session::{ClientInfo, Session};
use crate::store::AuthStore;
use crate::user::User;

/// What [`AuthService::export_account`] read: the account and its live sessions. An
/// application adds what its optional capabilities keep (linked identities, the second
/// factor's state), as the example servers' `GET /me/export` does.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AccountExport {
    /// The account as stored (its password hash is the application's to leave out).
    pub user: User,
    /// Its live sessions, with the clients that opened them.
    pub sessions: Vec<Session>,
}

impl<S: AuthStore> AuthService<S> {
    /// Reads what is stored about the account for its owner (the right of access): the
    /// account and its sessions. Limited per account ([`Bucket::ExportsPerAccount`], 5 an
    /// hour by default); the event says who exported.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`RateLimited`](AuthError::RateLimited),
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn export_account(&self, user_id: UserId, client: &ClientInfo) -> Result<AccountExport, AuthError> {
        let audit = Audit::new(Action::ExportAccount, Subject::User(user_id));
        self.audited(audit, client, async |_| {
            let user = self
                .store()
                .find_user_by_id(user_id)
                .await?
                .ok_or(AuthError::UserNotFound)?;
            self.take(Bucket::ExportsPerAccount, client, Some(&user.email)).await?;
            let sessions = self.store().list_sessions(user_id).await?;
            Ok(AccountExport { user, sessions })
        })
        .await
    }
}
