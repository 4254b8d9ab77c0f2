//! The JSON shapes of the API, and the parsing of what clients send. Every framework
//! integration reads a request's raw body and query through these functions, so a
//! malformed request gets the same answer from any of them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use auth_core::{
    IdentityId, LinkedIdentity, RecoveryCodes, Role, SecondFactorChallenge, SecondFactorCode, SecondFactorStatus,
    Session, SessionId, TokenPair, User, UserId,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ErrorAnswer;

/// An account as the API shows it: never a hash.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct UserView {
    /// The account id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub id: UserId,
    /// The normalized email.
    pub email: String,
    /// Whether the account may log in.
    pub is_active: bool,
    /// Whether the address was confirmed.
    pub email_verified: bool,
    /// Role names.
    pub roles: BTreeSet<String>,
    /// The account's second factors (`GET /me` of a server with two-factor
    /// authentication; absent elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa: Option<MfaView>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.as_str().to_owned(),
            is_active: user.is_active,
            email_verified: user.email_verified_at.is_some(),
            roles: user.roles.iter().map(|role| role.as_str().to_owned()).collect(),
            mfa: None,
        }
    }
}

/// An account's second factors, in `GET /me`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct MfaView {
    /// Whether an authenticator app (TOTP) is confirmed: login asks for a code.
    pub totp: bool,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
}

impl From<SecondFactorStatus> for MfaView {
    fn from(status: SecondFactorStatus) -> Self {
        Self {
            totp: status.totp,
            recovery_codes_left: status.recovery_codes_left,
        }
    }
}

/// The answer of a login whose password was right when the account has a second factor:
/// no tokens, a challenge for `POST /login/mfa`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct MfaChallengeView {
    /// Always `true`.
    pub mfa_required: bool,
    /// The challenge, for `POST /login/mfa`; works once.
    pub mfa_token: String,
    /// What completes it: `totp`, `recovery_code`.
    pub methods: Vec<&'static str>,
    /// Seconds until the challenge expires.
    pub expires_in: u64,
}

impl MfaChallengeView {
    /// The view of a challenge just issued.
    pub fn new(challenge: &SecondFactorChallenge) -> Self {
        Self {
            mfa_required: true,
            mfa_token: challenge.token.expose_secret().to_owned(),
            methods: challenge.methods.iter().map(|method| method.as_str()).collect(),
            expires_in: challenge.expires_in.as_secs(),
        }
    }
}

/// The body of `POST /login/mfa`: the challenge and one code, `code` (TOTP) or
/// `recovery_code`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct MfaLoginBody {
    /// The `mfa_token` of the login's answer.
    pub mfa_token: String,
    /// A current code of the authenticator app.
    #[serde(default)]
    pub code: Option<String>,
    /// An unused recovery code.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// The body of `POST /mfa/totp/setup`, `/mfa/totp/disable` and `/mfa/recovery-codes`:
/// the password again and, where the action needs the second factor (disabling) or the
/// step-up rule asks for it, a `code` or a `recovery_code`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct ReauthenticationBody {
    /// The account's password.
    pub password: String,
    /// A current code of the authenticator app.
    #[serde(default)]
    pub code: Option<String>,
    /// An unused recovery code.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// The body of `POST /mfa/totp/confirm`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct CodeBody {
    /// A current code of the authenticator app being enrolled.
    pub code: String,
}

/// The answer of `POST /mfa/totp/setup`: shown once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct TotpSetupView {
    /// The secret in base32, to type into an app.
    pub secret: String,
    /// The `otpauth://totp/` URI, for a QR code.
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG image.
    pub qr_svg: String,
}

/// New recovery codes (`POST /mfa/totp/confirm`, `POST /mfa/recovery-codes`): shown once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct RecoveryCodesView {
    /// Ten codes; each works once in place of a TOTP code.
    pub recovery_codes: Vec<String>,
}

impl From<&RecoveryCodes> for RecoveryCodesView {
    fn from(codes: &RecoveryCodes) -> Self {
        Self {
            recovery_codes: codes.expose_secrets().map(str::to_owned).collect(),
        }
    }
}

/// The second factor of a body with `code` and `recovery_code` fields: at most one.
///
/// # Errors
///
/// `invalid_request` when both are given.
///
/// ```
/// use auth_http::api::second_factor;
///
/// assert!(second_factor(Some("123456".into()), None).unwrap().is_some());
/// assert!(second_factor(None, None).unwrap().is_none());
/// assert_eq!(second_factor(Some("1".into()), Some("2".into())).unwrap_err().status(), 400);
/// ```
pub fn second_factor(
    code: Option<String>,
    recovery_code: Option<String>,
) -> Result<Option<SecondFactorCode>, ErrorAnswer> {
    match (code, recovery_code) {
        (Some(_), Some(_)) => Err(ErrorAnswer::invalid_request("give a code or a recovery_code, not both")),
        (Some(code), None) => Ok(Some(SecondFactorCode::totp(code))),
        (None, Some(code)) => Ok(Some(SecondFactorCode::recovery_code(code))),
        (None, None) => Ok(None),
    }
}

/// The answer of a login or refresh (OAuth2's token response).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct TokenView {
    /// The JWT access token.
    pub access_token: String,
    /// Always `bearer`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "bearer"))]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The opaque refresh token.
    pub refresh_token: String,
}

impl From<&TokenPair> for TokenView {
    fn from(pair: &TokenPair) -> Self {
        Self {
            access_token: pair.access_token.expose_secret().to_owned(),
            token_type: "bearer",
            expires_in: pair.access_token.expires_in().as_secs(),
            refresh_token: pair.refresh_token.expose_secret().to_owned(),
        }
    }
}

/// A session as `GET /sessions` lists it: never its token.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct SessionView {
    /// The session id (for `DELETE /sessions/{id}`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub id: SessionId,
    /// When it began (a login).
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    /// Its last refresh.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_used_at: time::OffsetDateTime,
    /// The client's `User-Agent` at login.
    pub user_agent: Option<String>,
    /// The client's IP at login.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub ip: Option<IpAddr>,
    /// Whether the request's access token belongs to it.
    pub current: bool,
}

impl SessionView {
    /// The view of `session`; `current` is the session of the request's token.
    pub fn new(session: &Session, current: Option<SessionId>) -> Self {
        Self {
            id: session.id,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            user_agent: session.user_agent.clone(),
            ip: session.ip,
            current: current == Some(session.id),
        }
    }
}

/// The body of `POST /register`, and of `POST /login` as JSON.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct Credentials {
    /// The email as typed.
    pub email: String,
    /// The password as typed.
    pub password: String,
}

/// The body of `POST /login` as a form: OAuth2's password flow, as the seeds' curl sends it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub(crate) struct OAuthForm {
    /// The email as typed.
    username: String,
    /// The password as typed.
    password: String,
}

/// The body of `POST /token/refresh` and `POST /logout`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct RefreshBody {
    /// The refresh token.
    pub refresh_token: String,
}

/// The body of `POST /password/change`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct ChangePasswordBody {
    /// The password now.
    pub current_password: String,
    /// The password wanted.
    pub new_password: String,
    /// For an account with two-factor authentication whose sign-in is not recent: a
    /// current code of the authenticator app.
    #[serde(default)]
    pub code: Option<String>,
    /// Or an unused recovery code.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// The body of `POST /email/change`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct EmailChangeBody {
    /// The address wanted; the confirmation link goes there.
    pub new_email: String,
    /// The password now: needed unless the sign-in is recent (the step-up window).
    #[serde(default)]
    pub password: Option<String>,
    /// For an account with two-factor authentication whose sign-in is not recent: a
    /// current code of the authenticator app.
    #[serde(default)]
    pub code: Option<String>,
    /// Or an unused recovery code.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// The body of `DELETE /me`: the account's deletion, confirmed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct DeleteAccountBody {
    /// The password now: needed unless the sign-in is recent (the step-up window).
    #[serde(default)]
    pub password: Option<String>,
    /// For an account with two-factor authentication whose sign-in is not recent: a
    /// current code of the authenticator app.
    #[serde(default)]
    pub code: Option<String>,
    /// Or an unused recovery code.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

/// The body of `POST /password/forgot`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct ForgotBody {
    /// Where the reset link should go, if an account has it.
    pub email: String,
}

/// The answer to `POST /password/forgot`, the same whether or not the account exists.
pub const FORGOT_ANSWER: &str = "If an account exists for this address, a reset link is on its way.";

/// The body of the 202 to `POST /password/forgot`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct ForgotAnswer {
    /// [`FORGOT_ANSWER`].
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub detail: &'static str,
}

impl Default for ForgotAnswer {
    fn default() -> Self {
        Self { detail: FORGOT_ANSWER }
    }
}

/// The body of `GET /health` when the store answers: `{"status": "ok"}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct Health {
    /// Always `ok` (a failing store is an error answer).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: &'static str,
}

impl Default for Health {
    fn default() -> Self {
        Self { status: "ok" }
    }
}

/// The body of `POST /password/reset`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct ResetBody {
    /// The token of the mailed link.
    pub token: String,
    /// The new password.
    pub new_password: String,
}

/// The body of `POST /email/verify`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct TokenBody {
    /// The token of the mailed link.
    pub token: String,
}

/// The body of `PUT /admin/users/{id}/roles`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct RolesBody {
    /// Every role the account should have.
    pub roles: Vec<String>,
}

impl RolesBody {
    /// The roles, each checked.
    ///
    /// # Errors
    ///
    /// `invalid_request` naming the first role that is not a valid name.
    pub fn roles(&self) -> Result<BTreeSet<Role>, ErrorAnswer> {
        Self::checked(&self.roles)
    }

    fn checked(roles: &[String]) -> Result<BTreeSet<Role>, ErrorAnswer> {
        roles
            .iter()
            .map(|name| {
                Role::new(name.as_str())
                    .map_err(|error| ErrorAnswer::invalid_request(format!("role {name:?}: {error}")))
            })
            .collect()
    }
}

/// The body of `POST /admin/users`: an invitation.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct InviteBody {
    /// The address of the account to create; its set-password link goes there.
    pub email: String,
    /// The account's roles (none by default).
    #[serde(default)]
    pub roles: Vec<String>,
}

impl InviteBody {
    /// The roles, each checked.
    ///
    /// # Errors
    ///
    /// `invalid_request` naming the first role that is not a valid name.
    pub fn roles(&self) -> Result<BTreeSet<Role>, ErrorAnswer> {
        RolesBody::checked(&self.roles)
    }
}

/// The query of `GET /admin/users`: `after=<id>&limit=<n>`, and `email=<prefix>` to find
/// accounts by their address.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UsersPage {
    /// List accounts after this one (registration order).
    pub after: Option<UserId>,
    /// At most this many (the service caps it).
    pub limit: u32,
    /// Only accounts whose email starts with this (1 to 320 bytes).
    pub email: Option<String>,
}

impl UsersPage {
    /// Parses the raw query string (without `?`; empty or absent is the first page of 100).
    ///
    /// # Errors
    ///
    /// `invalid_request` saying which parameter is wrong (an empty `email` prefix, or one
    /// over 320 bytes, among them).
    ///
    /// ```
    /// use auth_http::api::UsersPage;
    ///
    /// assert_eq!(UsersPage::parse(Some("email=ada%40ex")).unwrap().email.as_deref(), Some("ada@ex"));
    /// assert_eq!(UsersPage::parse(Some("email=")).unwrap_err().status(), 400);
    /// ```
    pub fn parse(query: Option<&str>) -> Result<Self, ErrorAnswer> {
        #[derive(Deserialize)]
        struct Raw {
            after: Option<String>,
            limit: Option<u32>,
            email: Option<String>,
        }
        let raw: Raw = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|error| ErrorAnswer::invalid_request(format!("query: {error}")))?;
        let after = raw
            .after
            .map(|id| {
                id.parse::<UserId>()
                    .map_err(|_| ErrorAnswer::invalid_request("after: not an account id"))
            })
            .transpose()?;
        if let Some(email) = &raw.email
            && (email.trim().is_empty() || email.len() > 320)
        {
            return Err(ErrorAnswer::invalid_request("email: a prefix of 1 to 320 bytes"));
        }
        Ok(Self {
            after,
            limit: raw.limit.unwrap_or(100),
            email: raw.email,
        })
    }
}

/// The query of `GET /me/events` and `GET /admin/events`: `after=<event id>&limit=<n>`,
/// and for an administrator `user=<account id>&kind=<kind>`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EventsPage {
    /// Records after this one (the last of the previous page).
    pub after: Option<auth_core::EventId>,
    /// At most this many (default 100, at most 1000).
    pub limit: u32,
    /// Only this account's records.
    pub user: Option<UserId>,
    /// Only records of this kind (`login_failed`, ...).
    pub kind: Option<String>,
}

impl EventsPage {
    /// Parses the raw query string (without `?`; empty or absent is the first page of 100).
    ///
    /// # Errors
    ///
    /// `invalid_request` saying which parameter is wrong.
    ///
    /// ```
    /// use auth_http::api::EventsPage;
    ///
    /// assert_eq!(EventsPage::parse(Some("kind=login_failed")).unwrap().kind.as_deref(), Some("login_failed"));
    /// assert_eq!(EventsPage::parse(Some("after=nope")).unwrap_err().status(), 400);
    /// ```
    pub fn parse(query: Option<&str>) -> Result<Self, ErrorAnswer> {
        #[derive(Deserialize)]
        struct Raw {
            after: Option<String>,
            limit: Option<u32>,
            user: Option<String>,
            kind: Option<String>,
        }
        let raw: Raw = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|error| ErrorAnswer::invalid_request(format!("query: {error}")))?;
        let after = raw
            .after
            .map(|id| {
                id.parse()
                    .map_err(|_| ErrorAnswer::invalid_request("after: not an event id"))
            })
            .transpose()?;
        let user = raw
            .user
            .map(|id| {
                id.parse()
                    .map_err(|_| ErrorAnswer::invalid_request("user: not an account id"))
            })
            .transpose()?;
        if let Some(kind) = &raw.kind
            && (kind.is_empty() || kind.len() > 64 || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        {
            return Err(ErrorAnswer::invalid_request(
                "kind: an event kind (`login_failed`, ...)",
            ));
        }
        Ok(Self {
            after,
            limit: raw.limit.unwrap_or(100).clamp(1, auth_core::MAX_AUDIT_PAGE),
            user,
            kind: raw.kind,
        })
    }
}

/// One record of the audit log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct EventView {
    /// The record's id (the `after` of the next page).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub id: auth_core::EventId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: time::OffsetDateTime,
    /// What happened (`login_succeeded`, `login_failed`, `password_changed`, ...).
    pub kind: String,
    /// How it ended (`success`, `refused`, `rate_limited`, ...).
    pub outcome: String,
    /// The session concerned, if any.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = "uuid"))]
    pub session_id: Option<SessionId>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// For an administrator: the account, if the record names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = "uuid"))]
    pub user_id: Option<UserId>,
    /// For an administrator: the keyed digest of the address, when the record names no
    /// account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_digest: Option<String>,
    /// For an administrator: the action and why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl EventView {
    /// The record as its account sees it: no operator detail.
    pub fn own(record: &auth_core::AuditRecord) -> Self {
        Self {
            id: record.id,
            at: record.at,
            kind: record.kind.clone(),
            outcome: record.outcome.clone(),
            session_id: record.session_id,
            user_agent: record.user_agent.clone(),
            ip: record.ip.map(|ip| ip.to_string()),
            user_id: None,
            email_digest: None,
            detail: None,
        }
    }

    /// The record as an administrator sees it: with the account and the refusal's reason.
    pub fn full(record: &auth_core::AuditRecord) -> Self {
        Self {
            user_id: record.user_id,
            email_digest: record.email_digest.clone(),
            detail: Some(match &record.reason {
                Some(reason) => format!("{}: {reason}", record.action),
                None => record.action.clone(),
            }),
            ..Self::own(record)
        }
    }
}

/// An account id from a path; one that does not parse names no account (404).
///
/// # Errors
///
/// `not_found`, as for an account that does not exist.
pub fn account_id(id: &str) -> Result<UserId, ErrorAnswer> {
    id.parse()
        .map_err(|_| ErrorAnswer::from(auth_core::AuthError::UserNotFound))
}

/// A session id from a path; one that does not parse names no session (404).
///
/// # Errors
///
/// `not_found`, as for a session that does not exist.
pub fn session_id(id: &str) -> Result<SessionId, ErrorAnswer> {
    id.parse()
        .map_err(|_| ErrorAnswer::from(auth_core::AuthError::SessionNotFound))
}

/// An identity id from a path; one that does not parse names no identity (404).
///
/// # Errors
///
/// `not_found`, as for an identity the account does not have.
pub fn identity_id(id: &str) -> Result<IdentityId, ErrorAnswer> {
    id.parse()
        .map_err(|_| ErrorAnswer::from(auth_core::AuthError::IdentityNotFound))
}

/// Where a sign-in through a provider leads when the request names no `next`.
pub const DEFAULT_NEXT: &str = "/";

/// The query of `GET /oauth/{provider}/start`: `next=<path>`, where the provider's
/// callback leads (a path on this site; default `/`), and for a native app
/// `code_challenge=<challenge>&code_challenge_method=S256`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartQuery {
    /// The path, unchecked (the service checks it: 400 `invalid_redirect`).
    pub next: String,
    /// A native app's PKCE challenge, its method checked to be `S256` (the challenge
    /// itself is the service's to check: 400 `invalid_code_challenge`).
    pub code_challenge: Option<String>,
}

impl StartQuery {
    /// Parses the raw query string (without `?`).
    ///
    /// # Errors
    ///
    /// `invalid_request` for a query that does not parse (`next` given twice);
    /// `invalid_code_challenge` for a challenge without `code_challenge_method=S256` (the
    /// default method, `plain`, is refused) or a method without a challenge.
    ///
    /// ```
    /// use auth_http::api::StartQuery;
    ///
    /// assert_eq!(StartQuery::parse(None).unwrap().next, "/");
    /// assert_eq!(StartQuery::parse(Some("next=%2Fapp%3Ftab%3D1")).unwrap().next, "/app?tab=1");
    /// assert_eq!(StartQuery::parse(Some("next=/a&next=/b")).unwrap_err().status(), 400);
    /// let app = StartQuery::parse(Some("code_challenge=abc&code_challenge_method=S256")).unwrap();
    /// assert_eq!(app.code_challenge.as_deref(), Some("abc"));
    /// assert_eq!(StartQuery::parse(Some("code_challenge=abc")).unwrap_err().code(), "invalid_code_challenge");
    /// ```
    pub fn parse(query: Option<&str>) -> Result<Self, ErrorAnswer> {
        #[derive(Deserialize)]
        struct Raw {
            next: Option<String>,
            code_challenge: Option<String>,
            code_challenge_method: Option<String>,
        }
        let raw: Raw = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|error| ErrorAnswer::invalid_request(format!("query: {error}")))?;
        let code_challenge = match (raw.code_challenge, raw.code_challenge_method.as_deref()) {
            (None, None) => None,
            (Some(challenge), Some("S256")) => Some(challenge),
            _ => {
                return Err(ErrorAnswer::from(auth_core::AuthError::InvalidCodeChallenge(
                    auth_core::CodeChallengeError,
                )));
            }
        };
        Ok(Self {
            next: raw.next.unwrap_or_else(|| DEFAULT_NEXT.to_owned()),
            code_challenge,
        })
    }
}

/// The query a provider calls `GET /oauth/{provider}/callback` with: `state`, and `code`
/// or `error` (other parameters are ignored).
#[derive(Default, PartialEq, Eq)]
pub struct CallbackQuery {
    /// `state`: the flow.
    pub state: Option<String>,
    /// `code`: the authorization code.
    pub code: Option<String>,
    /// `error`: the provider's refusal (`access_denied`, say).
    pub error: Option<String>,
}

impl std::fmt::Debug for CallbackQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackQuery")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl CallbackQuery {
    /// Parses the raw query string (without `?`).
    ///
    /// # Errors
    ///
    /// `invalid_request` for a query that does not parse (a parameter given twice).
    ///
    /// ```
    /// use auth_http::api::CallbackQuery;
    ///
    /// let query = CallbackQuery::parse(Some("state=st_1&code=c&iss=https%3A%2F%2Fidp")).unwrap();
    /// assert_eq!((query.state.as_deref(), query.code.as_deref(), query.error), (Some("st_1"), Some("c"), None));
    /// assert_eq!(CallbackQuery::parse(None).unwrap(), CallbackQuery::default());
    /// ```
    pub fn parse(query: Option<&str>) -> Result<Self, ErrorAnswer> {
        #[derive(Deserialize)]
        struct Raw {
            state: Option<String>,
            code: Option<String>,
            error: Option<String>,
        }
        let raw: Raw = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|error| ErrorAnswer::invalid_request(format!("query: {error}")))?;
        Ok(Self {
            state: raw.state,
            code: raw.code,
            error: raw.error,
        })
    }
}

/// The body of `POST /oauth/{provider}/link`: where the provider's callback leads once
/// the identity is linked (a path on this site; default `/`). The body may be left out.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Default, Deserialize)]
pub struct LinkBody {
    /// A path on this site, such as `/settings`; default `/`.
    #[serde(default)]
    pub next: Option<String>,
}

/// The body of `POST /oauth/{provider}/link`: JSON, or nothing at all (an empty body,
/// whatever its content type) for the defaults.
///
/// # Errors
///
/// As [`json_body`] for a body that is not empty.
///
/// ```
/// use auth_http::api::link_body;
///
/// assert_eq!(link_body(None, b"").unwrap().next, None);
/// assert_eq!(link_body(Some("application/json"), br#"{"next":"/settings"}"#).unwrap().next.as_deref(), Some("/settings"));
/// assert_eq!(link_body(Some("text/plain"), b"next").unwrap_err().status(), 415);
/// ```
pub fn link_body(content_type: Option<&str>, body: &[u8]) -> Result<LinkBody, ErrorAnswer> {
    if body.is_empty() {
        return Ok(LinkBody::default());
    }
    json_body(content_type, body)
}

/// The answer of `POST /oauth/{provider}/link`: where to send the browser.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct AuthorizationView {
    /// The provider's authorization URL; the browser goes there with the binding cookie
    /// this answer set.
    pub authorization_url: String,
}

/// The body of `POST /oauth/exchange`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct ExchangeBody {
    /// The one-time code (`xc_…`) the callback's redirect carried in `code=`.
    pub code: String,
    /// For a flow a native app began with a `code_challenge`: its PKCE `code_verifier`
    /// (43 to 128 characters), in place of the binding cookie.
    #[serde(default)]
    pub code_verifier: Option<String>,
}

/// An identity linked to the account, as `GET /me/identities` lists it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct IdentityView {
    /// The identity's id (for `DELETE /me/identities/{id}`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub id: IdentityId,
    /// The provider's name.
    pub provider: String,
    /// The email the provider gave when it was linked, if any.
    pub email: Option<String>,
    /// When it was linked.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    /// When it last signed in, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<time::OffsetDateTime>,
}

impl From<&LinkedIdentity> for IdentityView {
    fn from(identity: &LinkedIdentity) -> Self {
        Self {
            id: identity.id,
            provider: identity.provider.as_str().to_owned(),
            email: identity.email.clone(),
            created_at: identity.created_at,
            last_used_at: identity.last_used_at,
        }
    }
}

/// The answer of `GET /me/identities`: the account's linked identities, oldest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct IdentitiesView {
    /// The identities.
    pub identities: Vec<IdentityView>,
}

/// The answer of `GET /me/export`: everything stored about the account, for its owner.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct ExportView {
    /// When the export was made.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub exported_at: time::OffsetDateTime,
    /// The account (never its password hash), with its second factor's state where the
    /// server has two-factor authentication.
    pub account: UserView,
    /// When the account was created.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    /// When its address was proven, if it was.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub email_verified_at: Option<time::OffsetDateTime>,
    /// Whether it has a password (its hash is never exported).
    pub has_password: bool,
    /// Its live sessions, with the clients that opened them.
    pub sessions: Vec<SessionView>,
    /// Its linked sign-in providers, where the server has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identities: Option<Vec<IdentityView>>,
    /// Its passkeys, when it has any (their public keys are the authenticators' public
    /// data, not exported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passkeys: Option<Vec<PasskeyView>>,
    /// Its records of the audit log (the first 1000, oldest first), where
    /// the server keeps one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventView>>,
}

/// The answer of `GET /oauth/providers`: the names of the providers one can sign in with.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct ProvidersView {
    /// The names, in order (each the `{provider}` of `/oauth/{provider}/start`).
    pub providers: Vec<String>,
}

/// Whether a `Content-Type` is JSON: `application/json` or `application/<x>+json`, any
/// parameters, any case.
fn is_json(content_type: Option<&str>) -> bool {
    media_type(content_type).is_some_and(|media| {
        media
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"))
    })
}

fn is_form(content_type: Option<&str>) -> bool {
    media_type(content_type).is_some_and(|media| media == "application/x-www-form-urlencoded")
}

fn media_type(content_type: Option<&str>) -> Option<String> {
    let essence = content_type?.split(';').next()?.trim();
    Some(essence.to_ascii_lowercase())
}

/// A JSON request body, read whole (at most [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES)).
///
/// # Errors
///
/// 415 when the content type is not JSON, 400 when the body does not parse into `T`.
///
/// ```
/// use auth_http::api::{Credentials, json_body};
///
/// let body = br#"{"email": "ada@example.com", "password": "analytical-engine"}"#;
/// let credentials: Credentials = json_body(Some("application/json"), body).unwrap();
/// assert_eq!(credentials.email, "ada@example.com");
/// // Credentials are not `Debug` (a password): look at the error alone.
/// let status = |answer: Result<Credentials, auth_http::ErrorAnswer>| answer.err().map(|error| error.status());
/// assert_eq!(status(json_body(Some("text/plain"), body)), Some(415));
/// assert_eq!(status(json_body(Some("application/json"), b"{")), Some(400));
/// ```
pub fn json_body<T: DeserializeOwned>(content_type: Option<&str>, body: &[u8]) -> Result<T, ErrorAnswer> {
    if !is_json(content_type) {
        return Err(ErrorAnswer::unsupported_media_type("application/json"));
    }
    serde_json::from_slice(body).map_err(|error| ErrorAnswer::invalid_request(format!("JSON body: {error}")))
}

/// A form body (`application/x-www-form-urlencoded`), read whole (at most
/// [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES)).
///
/// # Errors
///
/// 415 when the content type is not a form, 400 when the body does not parse into `T`.
///
/// ```
/// use auth_http::api::{ForgotBody, form_body};
///
/// let body: ForgotBody = form_body(Some("application/x-www-form-urlencoded"), b"email=ada%40example.com").unwrap();
/// assert_eq!(body.email, "ada@example.com");
/// let status = |answer: Result<ForgotBody, auth_http::ErrorAnswer>| answer.err().map(|error| error.status());
/// assert_eq!(status(form_body(Some("application/json"), b"{}")), Some(415));
/// assert_eq!(status(form_body(Some("application/x-www-form-urlencoded"), b"name=ada")), Some(400));
/// ```
pub fn form_body<T: DeserializeOwned>(content_type: Option<&str>, body: &[u8]) -> Result<T, ErrorAnswer> {
    if !is_form(content_type) {
        return Err(ErrorAnswer::unsupported_media_type("application/x-www-form-urlencoded"));
    }
    serde_urlencoded::from_bytes(body).map_err(|error| ErrorAnswer::invalid_request(format!("form body: {error}")))
}

/// The body of `POST /login`: the form `username=..&password=..` (OAuth2's password flow,
/// as the seeds send it), or JSON `{email, password}`.
///
/// # Errors
///
/// As [`json_body`]; a form missing a field is 400.
pub fn login_body(content_type: Option<&str>, body: &[u8]) -> Result<Credentials, ErrorAnswer> {
    if is_form(content_type) {
        let OAuthForm { username, password } = form_body(content_type, body)?;
        return Ok(Credentials {
            email: username,
            password,
        });
    }
    json_body(content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_matched_on_their_essence() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(is_json(Some("application/merge-patch+json")));
        assert!(!is_json(Some("text/json")));
        assert!(!is_json(Some("application/jsonx")));
        assert!(!is_json(None));
        assert!(is_form(Some("application/x-www-form-urlencoded; charset=UTF-8")));
        assert!(is_form(Some("APPLICATION/X-WWW-FORM-URLENCODED")));
        assert!(!is_form(Some("multipart/form-data")));
    }

    #[test]
    fn login_takes_the_oauth_form_or_json() {
        let form = login_body(
            Some("application/x-www-form-urlencoded"),
            b"username=ada%40example.com&password=a+b",
        )
        .unwrap();
        assert_eq!(
            (form.email.as_str(), form.password.as_str()),
            ("ada@example.com", "a b")
        );
        let refused =
            |answer: Result<Credentials, ErrorAnswer>| answer.err().map(|error| (error.status(), error.code()));
        let missing = login_body(Some("application/x-www-form-urlencoded"), b"username=ada");
        assert_eq!(refused(missing), Some((400, "invalid_request")));
        let json = login_body(Some("application/json"), br#"{"email":"a@b.c","password":"p"}"#).unwrap();
        assert_eq!(json.email, "a@b.c");
        assert_eq!(refused(login_body(None, b"")), Some((415, "unsupported_media_type")));
    }

    #[test]
    fn the_users_page_query_is_checked() {
        assert_eq!(
            UsersPage::parse(None).unwrap(),
            UsersPage {
                after: None,
                limit: 100,
                email: None,
            }
        );
        assert_eq!(UsersPage::parse(Some("limit=5")).unwrap().limit, 5);
        assert_eq!(
            UsersPage::parse(Some("limit=-1")).unwrap_err().code(),
            "invalid_request"
        );
        assert_eq!(
            UsersPage::parse(Some("after=nope")).unwrap_err().code(),
            "invalid_request"
        );
    }
}

/// A passkey ceremony begun (`POST /passkeys/register/start`, `/passkeys/login/start`,
/// `/login/mfa/passkey/start`): the options to give the browser, and the ceremony's token
/// to send back with its answer.
// No `Debug`: it carries the ceremony's token.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Serialize)]
pub struct PasskeyOptionsView {
    /// The ceremony (`pkc_…`), for the matching `finish`; works once.
    pub ceremony: String,
    /// Seconds until the ceremony expires.
    pub expires_in: u64,
    /// WebAuthn's `PublicKeyCredentialCreationOptions` (registration) or
    /// `PublicKeyCredentialRequestOptions` (sign-in) in their JSON form, binary fields
    /// base64url: for `PublicKeyCredential.parseCreationOptionsFromJSON` or
    /// `parseRequestOptionsFromJSON`, then `navigator.credentials.create` or `.get`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub options: serde_json::Value,
}

#[cfg(feature = "passkeys")]
impl From<auth_core::PasskeyChallenge> for PasskeyOptionsView {
    fn from(begun: auth_core::PasskeyChallenge) -> Self {
        Self {
            ceremony: begun.ceremony.expose_secret().to_owned(),
            expires_in: begun.expires_in.as_secs(),
            options: begun.options,
        }
    }
}

/// The body of `POST /passkeys/register/finish`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct PasskeyRegisterBody {
    /// The `ceremony` of `POST /passkeys/register/start`.
    pub ceremony: String,
    /// The browser's new `PublicKeyCredential`, as its `toJSON()` gives it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
    /// A name for it ("Laptop"), 1 to 64 characters; default `Passkey`.
    #[serde(default)]
    pub name: Option<String>,
}

/// The body of `POST /passkeys/login/finish`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct PasskeyLoginBody {
    /// The `ceremony` of `POST /passkeys/login/start`.
    pub ceremony: String,
    /// The browser's assertion (`PublicKeyCredential`), as its `toJSON()` gives it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
}

/// The body of `POST /login/mfa/passkey/start`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct PasskeyChallengeBody {
    /// The `mfa_token` of the login's answer.
    pub mfa_token: String,
}

/// The body of `POST /login/mfa/passkey/finish`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct PasskeyMfaBody {
    /// The `mfa_token` of the login's answer.
    pub mfa_token: String,
    /// The `ceremony` of `POST /login/mfa/passkey/start`.
    pub ceremony: String,
    /// The browser's assertion (`PublicKeyCredential`), as its `toJSON()` gives it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
}

/// The body of `PATCH /me/passkeys/{id}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Deserialize)]
pub struct PasskeyRenameBody {
    /// The new name, 1 to 64 characters.
    pub name: String,
}

/// A passkey registered to the account, as `GET /me/passkeys` lists it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct PasskeyView {
    /// The passkey's id (for `PATCH` and `DELETE /me/passkeys/{id}`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub id: auth_core::PasskeyId,
    /// Its name.
    pub name: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: time::OffsetDateTime,
    /// When it last signed in, if ever.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<time::OffsetDateTime>,
}

impl From<&auth_core::PasskeyCredential> for PasskeyView {
    fn from(passkey: &auth_core::PasskeyCredential) -> Self {
        Self {
            id: passkey.id,
            name: passkey.name.clone(),
            created_at: passkey.created_at,
            last_used_at: passkey.last_used_at,
        }
    }
}

/// The answer of `GET /me/passkeys`: the account's passkeys, oldest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Serialize)]
pub struct PasskeysView {
    /// The passkeys.
    pub passkeys: Vec<PasskeyView>,
}

/// A passkey id from a path: one that does not parse is 404, as an unknown one.
///
/// # Errors
///
/// 404 `not_found`.
pub fn passkey_id(id: &str) -> Result<auth_core::PasskeyId, ErrorAnswer> {
    id.parse()
        .map_err(|_| ErrorAnswer::from(auth_core::AuthError::PasskeyNotFound))
}
