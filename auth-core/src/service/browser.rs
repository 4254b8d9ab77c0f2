//! Browser sessions: a cookie naming a session, for servers with pages.

use std::time::Duration;

use super::AuthService;
use super::audit::Audit;
use crate::error::AuthError;
use crate::event::{Action, Subject};
use crate::session::{ClientInfo, Session};
use crate::store::{AuthStore, BrowserSessionStore};
use crate::token::{OpaqueToken, TokenError, TokenHash, TokenKind};
use crate::user::User;

/// A session in use through a browser is marked used at most this often: often enough
/// for any idle timeout measured in hours or days, rarely enough that a page load is a
/// read.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A live browser session: who is signed in, and the session they are signed in with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BrowserSession {
    /// The account as stored now.
    pub user: User,
    /// The session the browser's cookie names (its id tells "this device" in a list of
    /// [`list_sessions`](AuthService::list_sessions)).
    pub session: Session,
}

/// What [`AuthService::check_browser_session`] found for a browser's cookie; as
/// [`SessionCheck`](crate::SessionCheck), a refusal that ends the session is told apart
/// from one that only fails this request.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per request and matched at once; boxing would only add an allocation"
)]
pub enum BrowserCheck {
    /// Live: the caller.
    Live(BrowserSession),
    /// Not checked now, and not ended (the store unreachable, a fault of the server's):
    /// keep the cookie, and treat this request as anonymous.
    Unchecked(AuthError),
    /// Ended (a logout, a revocation, its lifetime, a disabled account, an unknown
    /// cookie): forget the cookie.
    Ended(AuthError),
}

impl<S: AuthStore + BrowserSessionStore> AuthService<S> {
    /// Opens a browser session on `session`, a session a login (or
    /// [`start_session`](Self::start_session)) has just begun: returns the cookie's value,
    /// a [`TokenKind::BrowserSession`] token stored only hashed. The browser then holds
    /// no access or refresh token at all, and any instance of the server over the same
    /// store serves it; it ends with its session (a logout, `logout_all`, a password
    /// change, its lifetime).
    ///
    /// ```
    /// use auth_core::{AuthService, BrowserCheck, ClientInfo, MemoryStore, Password, SigningKey, Tokens};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), auth_core::AuthError> {
    /// # let tokens = Tokens::new(SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap(), "https://a.example", "api");
    /// # let auth = AuthService::new(MemoryStore::new(), tokens);
    /// # let client = ClientInfo::unknown();
    /// auth.register("ada@example.com", Password::new("analytical-engine"), &client).await?;
    /// let login = auth.login("ada@example.com", Password::new("analytical-engine"), &client).await?.signed_in()?;
    /// let cookie = auth.open_browser_session(&login.tokens.session).await?;
    ///
    /// let BrowserCheck::Live(signed_in) = auth.check_browser_session(cookie.expose_secret()).await else {
    ///     panic!("a new browser session is live");
    /// };
    /// assert_eq!(signed_in.user.email.as_str(), "ada@example.com");
    ///
    /// auth.close_browser_session(cookie.expose_secret(), &client).await?;
    /// assert!(matches!(auth.check_browser_session(cookie.expose_secret()).await, BrowserCheck::Ended(_)));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal) (no
    /// randomness, or `session` is not stored).
    pub async fn open_browser_session(&self, session: &Session) -> Result<OpaqueToken, AuthError> {
        let (token, hash) = OpaqueToken::generate(TokenKind::BrowserSession).map_err(AuthError::internal)?;
        self.store()
            .insert_browser_session(&hash, session.id, self.now())
            .await?;
        Ok(token)
    }

    /// The browser session of the cookie `token`: live when its session is neither
    /// revoked nor past its lifetime or idle timeout and its account is active. Marks the
    /// session used (at most once a minute), so a session in use does not idle out. An
    /// ended browser session's record is deleted. Records nothing: it runs on every page.
    pub async fn check_browser_session(&self, token: &str) -> BrowserCheck {
        let Some(hash) = OpaqueToken::hash_presented(TokenKind::BrowserSession, token) else {
            return BrowserCheck::Ended(AuthError::InvalidToken(TokenError::Malformed));
        };
        let session = match self.store().find_browser_session(&hash).await {
            Ok(Some(session)) => session,
            Ok(None) => return BrowserCheck::Ended(AuthError::InvalidToken(TokenError::Unknown)),
            Err(error) => return BrowserCheck::Unchecked(error.into()),
        };
        let now = self.now();
        let ended = if session.revoked_at.is_some() {
            Some(TokenError::Revoked)
        } else if !session.is_live(now, self.session_idle_timeout) {
            Some(TokenError::Expired)
        } else {
            None
        };
        if let Some(reason) = ended {
            self.forget_browser_session(&hash).await;
            return BrowserCheck::Ended(AuthError::InvalidToken(reason));
        }
        let user = match self.store().find_user_by_id(session.user_id).await {
            Ok(Some(user)) if user.is_active => user,
            Ok(Some(_)) => return BrowserCheck::Ended(AuthError::AccountDisabled),
            Ok(None) => {
                self.forget_browser_session(&hash).await;
                return BrowserCheck::Ended(AuthError::InvalidToken(TokenError::Revoked));
            }
            Err(error) => return BrowserCheck::Unchecked(error.into()),
        };
        let since_use = (now - session.last_used_at).unsigned_abs();
        if since_use >= TOUCH_EVERY {
            // A failed mark only shortens how long the session may next stay unused.
            if let Err(error) = self.store().touch_session(session.id, now).await {
                tracing::warn!(%error, "could not mark a browser session used");
            }
        }
        BrowserCheck::Live(BrowserSession { user, session })
    }

    /// Ends the browser session of the cookie `token` and its session (a logout):
    /// idempotent, as [`logout`](Self::logout) is.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn close_browser_session(&self, token: &str, client: &ClientInfo) -> Result<(), AuthError> {
        self.audited(Audit::new(Action::Logout, Subject::Unknown), client, async |audit| {
            let Some(hash) = OpaqueToken::hash_presented(TokenKind::BrowserSession, token) else {
                return Ok(());
            };
            if let Some(session) = self.store().find_browser_session(&hash).await? {
                audit.subject = Subject::User(session.user_id);
                audit.session_id = Some(session.id);
                self.store()
                    .revoke_session(session.user_id, session.id, self.now())
                    .await?;
            }
            self.store().delete_browser_session(&hash).await?;
            Ok(())
        })
        .await
    }

    /// Deletes an ended browser session's record; a failure leaves it for the purge.
    async fn forget_browser_session(&self, hash: &TokenHash) {
        if let Err(error) = self.store().delete_browser_session(hash).await {
            tracing::warn!(%error, "could not delete an ended browser session");
        }
    }
}
