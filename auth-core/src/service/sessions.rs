//! Sessions: starting one, checking an access token against it, rotating its refresh
//! token, and ending it (or all of an account's).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::AuthService;
use super::audit::Audit;
use crate::auth_method::AuthMethods;
use crate::clock::later_by;
use crate::error::AuthError;
use crate::event::{Action, Subject};
use crate::id::{SessionId, UserId};
use crate::role::Role;
use crate::second_factor::SecondFactorCode;
use crate::session::{ClientInfo, Session, TokenPair};
use crate::store::AuthStore;
use crate::token::{AccessClaims, AccessToken, OpaqueToken, TokenError, TokenKind};
use crate::user::User;

/// The account behind a valid access token, and what the token says.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authenticated {
    /// The account as stored now.
    pub user: User,
    /// The token's claims (its session, for instance).
    pub claims: AccessClaims,
    /// The token's session as stored now (`None` for a token without `sid`).
    pub session: Option<Session>,
    /// The roles whose routes need a second factor ([`AuthService::with_second_factor_required_for`]).
    pub(crate) second_factor_roles: Arc<BTreeSet<Role>>,
}

/// Who asks for a sensitive action: an authenticated account, its session, and when and
/// how it last proved who it is (for the step-up rule), with a second factor typed again
/// if the client gave one. Made from what authenticated the request ([`Authenticated`],
/// [`BrowserSession`](crate::BrowserSession)); from a bare [`UserId`] (an application
/// acting for an account) it has no recent authentication on record.
///
/// ```
/// use auth_core::{Caller, SecondFactorCode, UserId};
///
/// let caller = Caller::from(UserId::new_at(time::OffsetDateTime::UNIX_EPOCH))
///     .with_second_factor(SecondFactorCode::totp("123456"));
/// assert!(caller.second_factor().is_some());
/// ```
#[derive(Debug, Clone)]
pub struct Caller {
    user_id: UserId,
    session_id: Option<SessionId>,
    auth_time: Option<OffsetDateTime>,
    auth_methods: Option<AuthMethods>,
    second_factor: Option<SecondFactorCode>,
}

impl Caller {
    /// The account.
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The caller's session, if any: flows that end the account's other sessions keep it.
    pub fn session_id(&self) -> Option<SessionId> {
        self.session_id
    }

    /// Adds a second factor the client typed again (the step-up rule's alternative to a
    /// recent authentication).
    #[must_use]
    pub fn with_second_factor(mut self, code: SecondFactorCode) -> Self {
        self.second_factor = Some(code);
        self
    }

    /// The second factor typed again, if any.
    pub fn second_factor(&self) -> Option<&SecondFactorCode> {
        self.second_factor.as_ref()
    }

    /// Whether the caller proved who it is within `window` before `now`, by whatever
    /// method.
    pub(crate) fn authenticated_within(&self, window: Duration, now: OffsetDateTime) -> bool {
        self.auth_time
            .is_some_and(|at| at <= now && (now - at).unsigned_abs() <= window)
    }

    /// Whether the caller proved who it is, with a second factor, within `window` before
    /// `now`.
    pub(crate) fn proved_second_factor_within(&self, window: Duration, now: OffsetDateTime) -> bool {
        let recent = self
            .auth_time
            .is_some_and(|at| at <= now && (now - at).unsigned_abs() <= window);
        let second_factor = self
            .auth_methods
            .as_ref()
            .is_some_and(|methods| methods.contains(&crate::AuthMethod::MULTI_FACTOR));
        recent && second_factor
    }
}

impl From<UserId> for Caller {
    fn from(user_id: UserId) -> Self {
        Self {
            user_id,
            session_id: None,
            auth_time: None,
            auth_methods: None,
            second_factor: None,
        }
    }
}

impl From<&Authenticated> for Caller {
    fn from(me: &Authenticated) -> Self {
        Self {
            user_id: me.user.id,
            session_id: me.claims.session_id(),
            auth_time: me
                .session
                .as_ref()
                .map(|session| session.auth_time)
                .or_else(|| me.claims.auth_time()),
            auth_methods: me
                .session
                .as_ref()
                .map(|session| session.auth_methods.clone())
                .or_else(|| me.claims.auth_methods().cloned()),
            second_factor: None,
        }
    }
}

impl From<&crate::BrowserSession> for Caller {
    fn from(signed_in: &crate::BrowserSession) -> Self {
        Self {
            user_id: signed_in.user.id,
            session_id: Some(signed_in.session.id),
            auth_time: Some(signed_in.session.auth_time),
            auth_methods: Some(signed_in.session.auth_methods.clone()),
            second_factor: None,
        }
    }
}

/// What [`AuthService::resume_session`] found for a session whose tokens a server keeps.
#[derive(Debug)]
#[non_exhaustive]
pub struct ResumedSession {
    /// The session's new tokens, when its access token had expired and was refreshed:
    /// keep them in place of the old ones, whatever [`check`](Self::check) says (the old
    /// refresh token is spent; presenting it again would read as reuse and end the
    /// session).
    pub refreshed: Option<TokenPair>,
    /// Whether the session is live.
    pub check: SessionCheck,
}

/// Whether a kept session is live: see [`AuthService::resume_session`]. Every failure is
/// one of the two last kinds, so matching all three handles every case.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "returned once per request and matched at once; boxing would only add an allocation"
)]
pub enum SessionCheck {
    /// Live: the caller.
    Live(Authenticated),
    /// Not checked now, and not ended: a transient refusal (the store unreachable, the
    /// hash pool saturated, a rate limit) or a fault of the server's. Keep the session, and
    /// treat this request as anonymous.
    Unchecked(AuthError),
    /// Ended (a logout, a revocation, its lifetime, a disabled account, a refused token):
    /// forget it.
    Ended(AuthError),
}

impl<S: AuthStore> AuthService<S> {
    /// Resolves an access token to the current account. (No event: this runs on every
    /// request; refusals are the API's 401s.)
    ///
    /// Beyond [`Tokens::verify`](crate::Tokens::verify), this checks that the account
    /// still exists, is active, and has not revoked the token since it was issued: a
    /// password change or reset, a disable, a role change or a logout everywhere
    /// increments the account's token version, and a token issued before does not match
    /// it, even within the same second.
    ///
    /// It also checks the token's session (`sid`): a logout, a revoked session, a detected
    /// refresh-token reuse or a session past its idle timeout or absolute lifetime ends the
    /// session's access tokens on the next request, not when they expire. The account and
    /// the session are read in one round trip by a store that can
    /// ([`SessionStore::find_user_and_session`](crate::SessionStore::find_user_and_session):
    /// SQLite and PostgreSQL do), concurrently by two reads otherwise.
    /// A token without `sid` (issued by [`Tokens::issue`](crate::Tokens::issue) without a
    /// session, for a service account say) is checked against its account only.
    ///
    /// [`TokenVerifier`](crate::TokenVerifier), for services that verify tokens without
    /// the store, checks none of this: a revoked token passes it until it expires.
    ///
    /// # Errors
    ///
    /// [`InvalidToken`](AuthError::InvalidToken) (with the reason as its source),
    /// [`AccountDisabled`](AuthError::AccountDisabled), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn authenticate(&self, access_token: &str) -> Result<Authenticated, AuthError> {
        let claims = self.tokens.verify(access_token).map_err(AuthError::InvalidToken)?;
        let (user, session) = self
            .read_user_and_session(claims.user_id(), claims.session_id())
            .await?;
        let user = user
            .filter(|user| user.token_version == claims.token_version())
            .ok_or(AuthError::InvalidToken(TokenError::Revoked))?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        let session = if claims.session_id().is_some() {
            let now = self.now();
            Some(
                session
                    .filter(|session| session.user_id == user.id && session.is_live(now, self.session_idle_timeout))
                    .ok_or(AuthError::InvalidToken(TokenError::Revoked))?,
            )
        } else {
            None
        };
        Ok(Authenticated {
            user,
            claims,
            session,
            second_factor_roles: Arc::clone(&self.second_factor_roles),
        })
    }

    /// The account and, for a token with a session, the session: one store call when the
    /// store reads both together, two concurrent ones otherwise.
    async fn read_user_and_session(
        &self,
        user: UserId,
        session: Option<SessionId>,
    ) -> Result<(Option<User>, Option<Session>), AuthError> {
        let Some(session) = session else {
            return Ok((self.store().find_user_by_id(user).await?, None));
        };
        if let Some(both) = self.store().find_user_and_session(user, session).await? {
            return Ok(both);
        }
        let (user, session) = tokio::join!(self.store().find_user_by_id(user), self.store().find_session(session));
        Ok((user?, session?))
    }

    /// Checks a session whose tokens a server keeps for its client (a browser's cookie
    /// session): [`authenticate`](Self::authenticate)s its access token and, when that has
    /// expired, [`refresh`](Self::refresh)es once and authenticates the new one. What ends
    /// the session and what only fails this request is decided here: a transient refusal
    /// or a fault of the server's leaves the session as it is
    /// ([`SessionCheck::Unchecked`]); any other refusal ends it ([`SessionCheck::Ended`]).
    /// Records what `refresh` records; the checks themselves record nothing.
    ///
    /// Concurrent requests of one client must not resume its session at once: their
    /// refreshes would present one refresh token twice, which reads as reuse and ends the
    /// session. Hold a lock per session around the call.
    ///
    /// ```
    /// use auth_core::{AuthService, ClientInfo, MemoryStore, Password, SessionCheck, SigningKey, Tokens};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), auth_core::AuthError> {
    /// # let tokens = Tokens::new(SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap(), "https://a.example", "api");
    /// # let auth = AuthService::new(MemoryStore::new(), tokens);
    /// # let client = ClientInfo::unknown();
    /// # auth.register("ada@example.com", Password::new("analytical-engine"), &client).await?;
    /// // What a page session keeps, server-side, for a browser's cookie.
    /// let login = auth.login("ada@example.com", Password::new("analytical-engine"), &client).await?.signed_in()?;
    /// let (mut access, mut refresh) = (
    ///     login.tokens.access_token.expose_secret().to_owned(),
    ///     login.tokens.refresh_token.expose_secret().to_owned(),
    /// );
    ///
    /// // On each page request:
    /// let resumed = auth.resume_session(&access, &refresh, &client).await;
    /// if let Some(pair) = resumed.refreshed {
    ///     access = pair.access_token.expose_secret().to_owned();
    ///     refresh = pair.refresh_token.expose_secret().to_owned();
    /// }
    /// match resumed.check {
    ///     SessionCheck::Live(me) => assert_eq!(me.user.email.as_str(), "ada@example.com"),
    ///     SessionCheck::Unchecked(_) => { /* show the page as anonymous, keep the session */ }
    ///     SessionCheck::Ended(_) => { /* forget the session */ }
    /// }
    /// # let _ = (access, refresh);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn resume_session(&self, access_token: &str, refresh_token: &str, client: &ClientInfo) -> ResumedSession {
        let mut refreshed = None;
        let outcome = match self.authenticate(access_token).await {
            Err(AuthError::InvalidToken(TokenError::Expired)) => match self.refresh(refresh_token, client).await {
                Ok(pair) => {
                    let outcome = self.authenticate(pair.access_token.expose_secret()).await;
                    refreshed = Some(pair);
                    outcome
                }
                Err(error) => Err(error),
            },
            other => other,
        };
        let check = match outcome {
            Ok(me) => SessionCheck::Live(me),
            Err(error) if error.is_transient() || error.is_server_error() => SessionCheck::Unchecked(error),
            Err(error) => SessionCheck::Ended(error),
        };
        ResumedSession { refreshed, check }
    }

    /// Trades a refresh token for a new access token and a new refresh token of the same
    /// session (rotation, RFC 9700 §4.14). Each refresh token works once.
    ///
    /// Presenting a refresh token that was already rotated is reuse: someone holds a copy.
    /// The whole session is revoked (and stays revoked, although this call fails), and the
    /// event records [`TokenError::Reused`]; the thief's and the owner's tokens both stop
    /// working and the owner logs in again. There is no grace window: two concurrent
    /// refreshes with one token are reuse too, so at most one of them succeeds and the
    /// session then ends; clients must serialize their refreshes.
    ///
    /// The session must also be within its idle timeout and absolute lifetime, and its
    /// account must exist and be active. The new access token carries the account's
    /// current roles.
    ///
    /// # Errors
    ///
    /// [`InvalidToken`](AuthError::InvalidToken) (malformed, unknown, expired, revoked or
    /// reused), [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> Result<TokenPair, AuthError> {
        self.audited(Audit::new(Action::Refresh, Subject::Unknown), client, async |audit| {
            let hash = OpaqueToken::hash_presented(TokenKind::Refresh, refresh_token)
                .ok_or(AuthError::InvalidToken(TokenError::Malformed))?;
            let record = self
                .store()
                .find_refresh_token(&hash)
                .await?
                .ok_or(AuthError::InvalidToken(TokenError::Unknown))?;
            let session = record.session;
            audit.subject = Subject::User(session.user_id);
            audit.session_id = Some(session.id);
            let now = self.now();
            if record.used_at.is_some() {
                return Err(self.end_reused_session(&session, now).await);
            }
            if session.revoked_at.is_some() {
                return Err(AuthError::InvalidToken(TokenError::Revoked));
            }
            if !session.is_live(now, self.session_idle_timeout) {
                return Err(AuthError::InvalidToken(TokenError::Expired));
            }
            let user = self
                .store()
                .find_user_by_id(session.user_id)
                .await?
                .filter(|user| user.is_active)
                .ok_or(AuthError::InvalidToken(TokenError::Revoked))?;
            let (refresh_token, replacement) = OpaqueToken::generate(TokenKind::Refresh)?;
            let rotation = self.store().rotate_refresh_token(session.id, &hash, &replacement, now);
            if !self.record_change(audit, client, rotation).await? {
                // Another use of this token won the race: that is reuse as well.
                return Err(self.end_reused_session(&session, now).await);
            }
            let access_token = self.access_token(&user, &session)?;
            Ok(TokenPair {
                access_token,
                refresh_token,
                session: Session {
                    last_used_at: now,
                    ..session
                },
            })
        })
        .await
    }

    /// Ends the session of `refresh_token`. Idempotent: an unknown, malformed or already
    /// revoked token is not an error, so the caller can always answer "logged out".
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn logout(&self, refresh_token: &str, client: &ClientInfo) -> Result<(), AuthError> {
        self.audited(Audit::new(Action::Logout, Subject::Unknown), client, async |audit| {
            let Some(hash) = OpaqueToken::hash_presented(TokenKind::Refresh, refresh_token) else {
                return Ok(());
            };
            if let Some(record) = self.store().find_refresh_token(&hash).await? {
                let session = record.session;
                audit.subject = Subject::User(session.user_id);
                audit.session_id = Some(session.id);
                let revocation = self.store().revoke_session(session.user_id, session.id, self.now());
                self.record_change(audit, client, revocation).await?;
            }
            Ok(())
        })
        .await
    }

    /// Ends every session of the account and revokes every access token issued so far.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn logout_all(&self, user_id: UserId, client: &ClientInfo) -> Result<(), AuthError> {
        self.audited(
            Audit::new(Action::LogoutAll, Subject::User(user_id)),
            client,
            async |audit| {
                let now = self.now();
                // Sessions first, then the version: a refresh racing this cannot outlive it.
                self.store().revoke_all_sessions(user_id, now).await?;
                self.record_change(audit, client, self.store().revoke_access_tokens(user_id, now))
                    .await?
                    .ok_or(AuthError::UserNotFound)?;
                Ok(())
            },
        )
        .await
    }

    /// An account's live sessions, for an administrator: as
    /// [`list_sessions`](Self::list_sessions), but an account that does not exist is
    /// [`UserNotFound`](AuthError::UserNotFound) rather than no sessions.
    ///
    /// # Errors
    ///
    /// [`UserNotFound`](AuthError::UserNotFound), [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn sessions_of_account(&self, user_id: UserId) -> Result<Vec<Session>, AuthError> {
        self.store()
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        self.list_sessions(user_id).await
    }

    /// The account's live sessions (not revoked, not expired), oldest first.
    ///
    /// # Errors
    ///
    /// [`Unavailable`](AuthError::Unavailable), [`Internal`](AuthError::Internal).
    pub async fn list_sessions(&self, user_id: UserId) -> Result<Vec<Session>, AuthError> {
        let now = self.now();
        let mut sessions = self.store().list_sessions(user_id).await?;
        sessions.retain(|session| session.is_live(now, self.session_idle_timeout));
        Ok(sessions)
    }

    /// Ends one of the account's sessions (signing out a device). Access tokens already
    /// issued to it stop working too: [`authenticate`](Self::authenticate) checks the
    /// session.
    ///
    /// # Errors
    ///
    /// [`SessionNotFound`](AuthError::SessionNotFound) when the session does not exist,
    /// belongs to another account or has already ended; [`Unavailable`](AuthError::Unavailable),
    /// [`Internal`](AuthError::Internal).
    pub async fn revoke_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let mut audit = Audit::new(Action::RevokeSession, Subject::User(user_id));
        audit.session_id = Some(session_id);
        self.audited(audit, client, async |audit| {
            let revocation = self.store().revoke_session(user_id, session_id, self.now());
            if self.record_change(audit, client, revocation).await? {
                Ok(())
            } else {
                Err(AuthError::SessionNotFound)
            }
        })
        .await
    }

    /// A new session for `user`, who has just proven who they are by `methods`, with its
    /// first access and refresh tokens.
    pub(super) async fn session_with_tokens(
        &self,
        user: &User,
        methods: AuthMethods,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<TokenPair, AuthError> {
        self.session_with_tokens_since(user, methods, None, client, audit).await
    }

    /// [`session_with_tokens`](Self::session_with_tokens), proven at `auth_time` (now
    /// when `None`).
    pub(super) async fn session_with_tokens_since(
        &self,
        user: &User,
        methods: AuthMethods,
        auth_time: Option<OffsetDateTime>,
        client: &ClientInfo,
        audit: &mut Audit,
    ) -> Result<TokenPair, AuthError> {
        let now = self.now();
        let (refresh_token, hash) = OpaqueToken::generate(TokenKind::Refresh)?;
        let session = Session {
            id: SessionId::new_at(now),
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            expires_at: later_by(now, self.session_lifetime),
            user_agent: client.user_agent().map(str::to_owned),
            ip: client.ip(),
            revoked_at: None,
            auth_methods: methods,
            auth_time: auth_time.unwrap_or(now),
        };
        // A new sign-in (not a session carried on) from a device the account has no live
        // session from: read before this session is stored, which would match itself.
        let new_device = auth_time.is_none()
            && self.new_device_notices
            && self.notices.is_some()
            && !self
                .store()
                .list_sessions(user.id)
                .await?
                .iter()
                .any(|other| other.user_agent == session.user_agent);
        // The call's record (a sign-in) goes with the session it creates.
        audit.session_id = Some(session.id);
        self.record_change(audit, client, self.store().insert_session(&session, &hash))
            .await?;
        if new_device {
            self.notify(user, crate::notice::SecurityNoticeKind::NewSignIn, client, None);
        }
        let access_token = self.access_token(user, &session)?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            session,
        })
    }

    /// Checks that the caller holds `role` ([`Authenticated::require_role`]), recording a
    /// refusal as an event ([`EventKind::AccessDenied`](crate::EventKind::AccessDenied)),
    /// so denied accesses reach the audit log; a check that passes records nothing.
    ///
    /// # Errors
    ///
    /// As [`Authenticated::require_role`]: [`Forbidden`](AuthError::Forbidden),
    /// [`SecondFactorRequired`](AuthError::SecondFactorRequired).
    pub fn authorize(
        &self,
        me: &Authenticated,
        role: &crate::role::Role,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let checked = me.require_role(role);
        if let Err(error) = &checked {
            let refusal = match error {
                AuthError::SecondFactorRequired => crate::event::Refusal::SecondFactorRequired,
                _ => crate::event::Refusal::Forbidden,
            };
            let event = crate::event::AuthEvent::new(
                self.now(),
                crate::event::Action::Authorize,
                crate::event::Outcome::Refused(refusal),
                crate::event::Subject::User(me.user.id),
                me.claims.session_id(),
                client.clone(),
            );
            self.accounts.record_event(&event, false);
        }
        checked
    }

    /// The account `user_id`, which must exist and be active: the first step of a flow
    /// for an account the caller already names.
    pub(super) async fn active_account(&self, user_id: UserId) -> Result<User, AuthError> {
        let user = self
            .store()
            .find_user_by_id(user_id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        if !user.is_active {
            return Err(AuthError::AccountDisabled);
        }
        Ok(user)
    }

    /// An access token of `session` for `user`. A password session's tokens keep the
    /// claims they had before sessions recorded how they began (no `amr`, no
    /// `auth_time`), so services verifying them see no change; every other session's
    /// tokens say how and when.
    fn access_token(&self, user: &User, session: &Session) -> Result<AccessToken, AuthError> {
        let token = if session.auth_methods.is_password_only() {
            self.tokens.issue(user, Some(session.id))?
        } else {
            self.tokens
                .issue_with_authentication(user, Some(session.id), &session.auth_methods, session.auth_time)?
        };
        Ok(token)
    }

    /// Revokes the session of a refresh token presented again (someone holds a copy), and
    /// says so.
    async fn end_reused_session(&self, session: &Session, now: OffsetDateTime) -> AuthError {
        match self.store().revoke_session(session.user_id, session.id, now).await {
            Ok(_) => AuthError::InvalidToken(TokenError::Reused),
            Err(error) => error.into(),
        }
    }
}
