//! Every endpoint of the HTTP contract, written once: a framework integration extracts a
//! request's parts, calls the endpoint, and writes its [`Answer`] or [`ErrorAnswer`].

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "passkeys")]
use auth_core::PasskeyStore;
use auth_core::{
    AccountDeletionStore, AccountExport, AuditLogStore, AuditQuery, AuditRecord, AuthError, AuthService, AuthStore,
    Authenticated, Caller, ClientInfo, Delivery, EmailChangeStore, EventId, ExchangeProof, ExternalCallback,
    ExternalLoginFailure, ExternalLoginFinish, ExternalLoginStart, IdentityId, IdentityStore, Invitation,
    LinkedIdentity, LoginOutcome, LoginSuccess, NewRecoveryCodes, Password, Role, RoleStore, SecondFactorCode,
    SecondFactorStatus, SecondFactorStore, SecurityNotice, Session, SessionId, TokenError, TokenPair, Tokens,
    TotpEnrolment, User, UserDirectory, UserId, bearer_token,
};
use serde::Serialize;

use crate::api::{
    self, AuthorizationView, IdentitiesView, IdentityView, MfaChallengeView, ProvidersView, RecoveryCodesView,
    SessionView, TokenView, TotpSetupView, UserView,
};
#[cfg(feature = "passkeys")]
use crate::api::{PasskeyOptionsView, PasskeyView, PasskeysView};
use crate::headers::{self, EXTERNAL_LOGIN_HEADERS, NO_REFERRER, TOKEN_HEADERS};
use crate::{ClientAddressing, ErrorAnswer};

/// A mail: a link carrying a single-use token (password reset, email verification), which
/// the routes send through [`Endpoints::with_mail`], or a security notice, which the
/// service hands to its [`NoticeSink`](auth_core::NoticeSink) as the change is made:
/// give it one that sends `Mail::Notice` the same way
/// (`service.with_security_notices(move |notice| mail.send_later(Mail::Notice(notice)))`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Mail {
    /// A link with a single-use token.
    Link(Delivery),
    /// A notice of a change to the account's security.
    Notice(SecurityNotice),
    /// An administrator's invitation: the new account's set-password link (a reset token
    /// that works for 7 days).
    Invitation(Delivery),
}

/// Where the mails of the flows go (links and security notices).
///
/// `send_later` is called on the request path and must not wait for the mail: the answer
/// to `POST /password/forgot` is the same, and as fast, whether or not an account got a
/// mail. Spawn the sending; log failures without the token. A closure is a `SendMail`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use auth_http::Mail;
///
/// let outbox: Arc<Mutex<Vec<Mail>>> = Arc::default();
/// let kept = Arc::clone(&outbox);
/// let mail = move |mail: Mail| kept.lock().unwrap().push(mail);
/// # fn takes(_: impl auth_http::SendMail) {}
/// takes(mail);
/// ```
pub trait SendMail: Send + Sync + 'static {
    /// Hands `mail` over for sending, without waiting for it.
    fn send_later(&self, mail: Mail);
}

impl<F: Fn(Mail) + Send + Sync + 'static> SendMail for F {
    fn send_later(&self, mail: Mail) {
        self(mail);
    }
}

/// A success answer: a status, headers, and a JSON body or none. A framework writes it
/// with `Content-Type: application/json` when [`json_body`](Self::json_body) is some.
/// Its `Debug` never shows the body (a token answer carries tokens).
#[derive(Clone, PartialEq, Eq)]
pub struct Answer {
    status: u16,
    headers: Vec<(&'static str, Cow<'static, str>)>,
    json: Option<Vec<u8>>,
}

impl Answer {
    /// `status` with `body` as JSON.
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        // The API's views serialize infallibly (strings, numbers, ids, times); a failure
        // would be a bug in a view, logged and answered as an empty object, never a panic.
        let json = serde_json::to_vec(body).unwrap_or_else(|error| {
            tracing::error!(%error, "an answer's body did not serialize");
            b"{}".to_vec()
        });
        Self {
            status,
            headers: Vec::new(),
            json: Some(json),
        }
    }

    /// `status` without a body.
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            json: None,
        }
    }

    /// The answer with a header added.
    pub fn with_header(mut self, (name, value): (&'static str, &'static str)) -> Self {
        self.headers.push((name, Cow::Borrowed(value)));
        self
    }

    /// The answer with a header whose value is made per answer (a `Location`, a
    /// `Set-Cookie`). Its value never shows in the answer's `Debug`: it may carry a
    /// secret.
    pub fn with_owned_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, Cow::Owned(value)));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Headers beside the content type, in the order added; a name may repeat (several
    /// `Set-Cookie`), so a framework appends each rather than replacing.
    pub fn headers(&self) -> &[(&'static str, Cow<'static, str>)] {
        &self.headers
    }

    /// The JSON body, if the answer has one.
    pub fn json_body(&self) -> Option<&[u8]> {
        self.json.as_deref()
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A per-answer value (a cookie, a URL with a state) is shown by its name only.
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| match value {
                Cow::Borrowed(value) => (*name, *value),
                Cow::Owned(_) => (*name, "[redacted]"),
            })
            .collect();
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("headers", &headers)
            .field("json_bytes", &self.json.as_ref().map(Vec::len))
            .finish()
    }
}

/// What every endpoint returns.
pub type EndpointResult = Result<Answer, ErrorAnswer>;

/// The HTTP API of one [`AuthService`], for any framework and any store: the endpoints of
/// the contract, how a request's client is told apart, how long a body may take, and
/// where mail goes. Cheap to clone (one `Arc` each); not generic, so an application's
/// state can hold it whatever its store.
///
/// The routes it serves depend on what it was given:
///
/// | routes | served when |
/// |---|---|
/// | register, login, me, token refresh, logout, sessions, password change, jwks, health | always |
/// | `POST /password/forgot`, `/password/reset`, `/email/verification`, `/email/verify` | [`with_mail`](Self::with_mail) |
/// | `/admin/users…` (list, enable, disable, roles; the `admin` role required) | built by [`with_administration`](Self::with_administration) or [`with_second_factor`](Self::with_second_factor), for stores that list users and change roles |
/// | `POST /login/mfa`, `/mfa/totp/setup`, `/mfa/totp/confirm`, `/mfa/totp/disable`, `/mfa/recovery-codes`; `mfa` in `GET /me` | built by [`with_second_factor`](Self::with_second_factor) or [`with_identity_providers`](Self::with_identity_providers), for stores that keep second factors, when the service has [`with_totp`](AuthService::with_totp) |
/// | `GET /oauth/providers`, `GET /oauth/{provider}/start`, `GET /oauth/{provider}/callback`, `POST /oauth/{provider}/link`, `POST /oauth/exchange`, `GET /me/identities`, `DELETE /me/identities/{id}` | built by [`with_identity_providers`](Self::with_identity_providers), for stores that keep external identities, when the service has an [`IdentityProvider`](auth_core::IdentityProvider) ([`with_identity_provider`](AuthService::with_identity_provider)) |
///
/// ```
/// use std::sync::Arc;
/// use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
/// use auth_http::Endpoints;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
/// let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api")));
/// let endpoints = Endpoints::with_administration(service)
///     .with_trusted_proxy("10.0.0.1".parse()?)
///     .with_mail(|_mail: auth_http::Mail| { /* hand it to the mail system */ });
/// assert!(endpoints.serves_mail() && endpoints.serves_administration());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Endpoints {
    // One `Arc` for all: the extractors clone the endpoints on every request, and
    // worker threads share one reference count more cheaply than ten.
    parts: Arc<Parts>,
}

/// What [`Endpoints`] serves, and how.
#[derive(Clone)]
struct Parts {
    flows: Arc<dyn Flows>,
    admin: Option<Arc<dyn AdminFlows>>,
    mfa: Option<Arc<dyn MfaFlows>>,
    external: Option<Arc<dyn ExternalFlows>>,
    email_change: Option<Arc<dyn EmailChangeFlows>>,
    deletion: Option<Arc<dyn DeletionFlows>>,
    audit: Option<Arc<dyn AuditFlows>>,
    #[cfg(feature = "passkeys")]
    passkeys: Option<Arc<dyn PasskeyFlows>>,
    mail: Option<Arc<dyn SendMail>>,
    addressing: ClientAddressing,
    body_timeout: Duration,
    secure_cookies: bool,
}

/// How long a request body may take to arrive after its head, unless set.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

impl Endpoints {
    /// The parts to change while the endpoints are built (a copy if they are shared already).
    fn parts_mut(&mut self) -> &mut Parts {
        Arc::make_mut(&mut self.parts)
    }

    /// The endpoints of `service` for accounts and sessions (no administration, no mail
    /// until [`with_mail`](Self::with_mail)); clients told apart by their peer address.
    pub fn new<S: AuthStore + 'static>(service: Arc<AuthService<S>>) -> Self {
        Self {
            parts: Arc::new(Parts {
                flows: service,
                admin: None,
                mfa: None,
                external: None,
                email_change: None,
                deletion: None,
                audit: None,
                #[cfg(feature = "passkeys")]
                passkeys: None,
                mail: None,
                addressing: ClientAddressing::peer_only(),
                body_timeout: DEFAULT_BODY_TIMEOUT,
                secure_cookies: true,
            }),
        }
    }

    /// As [`new`](Self::new), with the `/admin/users` routes too: `service`'s store lists
    /// accounts and changes roles.
    pub fn with_administration<S: AuthStore + UserDirectory + RoleStore + 'static>(
        service: Arc<AuthService<S>>,
    ) -> Self {
        let admin: Arc<dyn AdminFlows> = Arc::clone(&service) as _;
        let mut endpoints = Self::new(service);
        endpoints.parts_mut().admin = Some(admin);
        endpoints
    }

    /// As [`with_administration`](Self::with_administration), with the two-factor routes
    /// too when `service` has [`with_totp`](AuthService::with_totp): its store also keeps
    /// second factors.
    pub fn with_second_factor<S: AuthStore + UserDirectory + RoleStore + SecondFactorStore + 'static>(
        service: Arc<AuthService<S>>,
    ) -> Self {
        let mfa: Option<Arc<dyn MfaFlows>> = service.serves_totp().then(|| Arc::clone(&service) as _);
        let mut endpoints = Self::with_administration(service);
        endpoints.parts_mut().mfa = mfa;
        endpoints
    }

    /// As [`with_second_factor`](Self::with_second_factor), with the routes of sign-in
    /// through identity providers too (`/oauth/…`, `/me/identities`) when `service` has
    /// at least one [`IdentityProvider`](auth_core::IdentityProvider)
    /// ([`with_identity_provider`](AuthService::with_identity_provider)): its store also
    /// keeps external identities.
    ///
    /// The browser that begins a sign-in gets a cookie binding the flow to it (see
    /// [`with_secure_cookies`](Self::with_secure_cookies)); the provider's callback must
    /// bring it back.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
    /// use auth_http::Endpoints;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
    /// let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api")));
    /// // No provider given to the service: the routes are not served.
    /// assert!(!Endpoints::with_identity_providers(service).serves_external_login());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_identity_providers<
        S: AuthStore + UserDirectory + RoleStore + SecondFactorStore + IdentityStore + 'static,
    >(
        service: Arc<AuthService<S>>,
    ) -> Self {
        let external: Option<Arc<dyn ExternalFlows>> = service
            .identity_providers()
            .next()
            .is_some()
            .then(|| Arc::clone(&service) as _);
        let mut endpoints = Self::with_second_factor(service);
        endpoints.parts_mut().external = external;
        endpoints
    }

    /// Serves the email-change routes (`/email/change`, `/email/change/confirm`,
    /// `/email/change/undo`) of `service`, whose store keeps requested changes; they also
    /// need [`with_mail`](Self::with_mail).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
    /// use auth_http::Endpoints;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
    /// let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api")));
    /// let endpoints = Endpoints::new(Arc::clone(&service)).with_email_change(service);
    /// assert!(!endpoints.serves_email_change(), "no mail, no email change");
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_email_change<S: AuthStore + EmailChangeStore + 'static>(
        mut self,
        service: Arc<AuthService<S>>,
    ) -> Self {
        self.parts_mut().email_change = Some(service);
        self
    }

    /// Serves the deletion routes (`DELETE /me`, and `DELETE /admin/users/{id}` with
    /// [administration](Self::with_administration)) of `service`, whose store deletes
    /// accounts whole.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
    /// use auth_http::Endpoints;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
    /// let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api")));
    /// let endpoints = Endpoints::new(Arc::clone(&service)).with_account_deletion(service);
    /// assert!(endpoints.serves_account_deletion());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_account_deletion<S: AuthStore + AccountDeletionStore + 'static>(
        mut self,
        service: Arc<AuthService<S>>,
    ) -> Self {
        self.parts_mut().deletion = Some(service);
        self
    }

    /// Serves the audit log's routes (`GET /me/events`, and `GET /admin/events` with
    /// [administration](Self::with_administration)) from `service`'s store, and adds the
    /// account's records to `GET /me/export`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
    /// use auth_http::Endpoints;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
    /// let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api")));
    /// let endpoints = Endpoints::new(Arc::clone(&service)).with_audit_log(service);
    /// assert!(endpoints.serves_audit_log());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_audit_log<S: AuthStore + AuditLogStore + 'static>(mut self, service: Arc<AuthService<S>>) -> Self {
        self.parts_mut().audit = Some(service);
        self
    }

    /// Serves the passkey routes (`/passkeys/register/…`, `/passkeys/login/…`,
    /// `/login/mfa/passkey/…`, `/me/passkeys`) of `service` when it has
    /// [`with_passkeys`](AuthService::with_passkeys): its store keeps passkeys (and login
    /// challenges, which a passkey may complete).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use auth_core::{AuthService, MemoryStore, PasskeySettings, SigningKey, Tokens};
    /// use auth_http::Endpoints;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
    /// let settings = PasskeySettings::from_public_url("https://auth.example")?;
    /// let service = Arc::new(
    ///     AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api")).with_passkeys(settings),
    /// );
    /// let endpoints = Endpoints::new(Arc::clone(&service)).with_passkeys(service);
    /// assert!(endpoints.serves_passkeys());
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "passkeys")]
    pub fn with_passkeys<S: AuthStore + PasskeyStore + SecondFactorStore + 'static>(
        mut self,
        service: Arc<AuthService<S>>,
    ) -> Self {
        let passkeys: Arc<dyn PasskeyFlows> = Arc::clone(&service) as _;
        self.parts_mut().passkeys = service.serves_passkeys().then_some(passkeys);
        self
    }

    /// Whether the passkey routes are served.
    pub fn serves_passkeys(&self) -> bool {
        #[cfg(feature = "passkeys")]
        return self.parts.passkeys.is_some();
        #[cfg(not(feature = "passkeys"))]
        false
    }

    /// Whether the audit log's routes are served.
    pub fn serves_audit_log(&self) -> bool {
        self.parts.audit.is_some()
    }

    /// Whether the deletion routes are served.
    pub fn serves_account_deletion(&self) -> bool {
        self.parts.deletion.is_some()
    }

    /// Whether the email-change routes are served (with mail).
    pub fn serves_email_change(&self) -> bool {
        self.parts.email_change.is_some() && self.parts.mail.is_some()
    }

    /// Whether the site is served over HTTPS, as browsers reach it (default `true`): the
    /// cookie that binds a sign-in through a provider to its browser is then
    /// `__Host-auth_oauth` and `Secure` ([`headers::SECURE_BINDING_COOKIE`]); `false`
    /// (plain HTTP, local development only) names it `auth_oauth`, without `Secure`.
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.parts_mut().secure_cookies = secure;
        self
    }

    /// Serves the mail routes, sending their links through `mail`. Security notices are the
    /// service's to send ([`AuthService::with_security_notices`]).
    pub fn with_mail(mut self, mail: impl SendMail) -> Self {
        self.parts_mut().mail = Some(Arc::new(mail));
        self
    }

    /// Believes `X-Forwarded-For` from this one reverse proxy (see [`ClientAddressing`]).
    pub fn with_trusted_proxy(mut self, proxy: std::net::IpAddr) -> Self {
        self.parts_mut().addressing = ClientAddressing::behind_proxy(proxy);
        self
    }

    /// How long a body may take to arrive after the request's head (default
    /// [`DEFAULT_BODY_TIMEOUT`]); beyond, 408 and the connection is closed.
    pub fn with_body_timeout(mut self, timeout: Duration) -> Self {
        self.parts_mut().body_timeout = timeout;
        self
    }

    /// How clients are told apart.
    pub fn addressing(&self) -> ClientAddressing {
        self.parts.addressing
    }

    /// How long a body may take.
    pub fn body_timeout(&self) -> Duration {
        self.parts.body_timeout
    }

    /// Whether the mail routes are served.
    pub fn serves_mail(&self) -> bool {
        self.parts.mail.is_some()
    }

    /// Whether the `/admin/users` routes are served.
    pub fn serves_administration(&self) -> bool {
        self.parts.admin.is_some()
    }

    /// Whether the two-factor routes are served.
    pub fn serves_second_factor(&self) -> bool {
        self.parts.mfa.is_some()
    }

    /// Whether the routes of sign-in through identity providers are served (`/oauth/…`,
    /// `/me/identities`).
    pub fn serves_external_login(&self) -> bool {
        self.parts.external.is_some()
    }

    /// The name of the cookie binding a sign-in through a provider to its browser
    /// ([`headers::binding_cookie_name`]).
    pub fn binding_cookie_name(&self) -> &'static str {
        headers::binding_cookie_name(self.parts.secure_cookies)
    }

    /// The OpenAPI 3.1 document of the routes these endpoints serve (the mail routes with
    /// mail, the `/admin` routes with administration), at the root of the site.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
    /// use auth_http::Endpoints;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
    /// let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api")));
    /// let document = Endpoints::new(service).openapi();
    /// assert!(document.paths.paths.contains_key("/login"));
    /// assert!(!document.paths.paths.contains_key("/password/forgot"), "no mail, no mail routes");
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "openapi")]
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        self.openapi_at("")
    }

    /// As [`openapi`](Self::openapi), for routes mounted under `prefix` (`/auth`): the
    /// document's server URL.
    #[cfg(feature = "openapi")]
    pub fn openapi_at(&self, prefix: &str) -> utoipa::openapi::OpenApi {
        crate::openapi::document(
            |served| match served {
                crate::openapi::Served::Always => true,
                crate::openapi::Served::WithMail => self.serves_mail(),
                crate::openapi::Served::WithAdministration => self.serves_administration(),
                crate::openapi::Served::WithAdministrationAndMail => self.serves_administration() && self.serves_mail(),
                crate::openapi::Served::WithEmailChange => self.serves_email_change(),
                crate::openapi::Served::WithAccountDeletion => self.serves_account_deletion(),
                crate::openapi::Served::WithAuditLog => self.serves_audit_log(),
                crate::openapi::Served::WithAdministrationAndAuditLog => {
                    self.serves_administration() && self.serves_audit_log()
                }
                crate::openapi::Served::WithAdministrationAndDeletion => {
                    self.serves_administration() && self.serves_account_deletion()
                }
                crate::openapi::Served::WithSecondFactor => self.serves_second_factor(),
                crate::openapi::Served::WithExternalLogin => self.serves_external_login(),
                crate::openapi::Served::WithPasskeys => self.serves_passkeys(),
            },
            prefix.trim_end_matches('/'),
        )
    }

    /// `GET /openapi.json`: 200 with the document, as served at `request_path` (the path
    /// of the request, ending in `/openapi.json`): a router mounted under a prefix serves a
    /// document whose server URL is that prefix, so the routes it lists resolve.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
    /// # let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api")));
    /// let endpoints = auth_http::Endpoints::new(service);
    /// let answer = endpoints.openapi_json("/auth/openapi.json");
    /// let document: serde_json::Value = serde_json::from_slice(answer.json_body().unwrap_or_default())?;
    /// assert_eq!(document["servers"][0]["url"], "/auth");
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "openapi")]
    pub fn openapi_json(&self, request_path: &str) -> Answer {
        let prefix = request_path.strip_suffix("/openapi.json").unwrap_or_default();
        Answer::json(200, &self.openapi_at(prefix))
    }

    /// The account behind an `Authorization: Bearer` header value.
    ///
    /// # Errors
    ///
    /// 401 `invalid_token` without a bearer token, and as
    /// [`AuthService::authenticate`].
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Authenticated, AuthError> {
        let token = authorization
            .and_then(bearer_token)
            .ok_or(AuthError::InvalidToken(TokenError::Malformed))?;
        self.parts.flows.authenticate(token).await
    }

    /// `POST /register`: 201 with the new account.
    ///
    /// # Errors
    ///
    /// As [`AuthService::register`].
    pub async fn register(&self, client: &ClientInfo, body: api::Credentials) -> EndpointResult {
        let user = self
            .parts
            .flows
            .register(&body.email, Password::new(body.password), client)
            .await?;
        Ok(Answer::json(201, &UserView::from(&user)))
    }

    /// `POST /login`: 200 with a token response, never cached. For an account with a
    /// second factor: 200 with a challenge for `POST /login/mfa` instead (no tokens), or
    /// 403 `mfa_required` where the two-factor routes are not served.
    ///
    /// # Errors
    ///
    /// As [`AuthService::login`].
    pub async fn login(&self, client: &ClientInfo, body: api::Credentials) -> EndpointResult {
        let outcome = self
            .parts
            .flows
            .login(&body.email, Password::new(body.password), client)
            .await?;
        self.login_answer(outcome)
    }

    /// The answer to a login's outcome (`POST /login`, `POST /oauth/exchange`): the token
    /// response, or the second-factor challenge where the two-factor routes are served.
    fn login_answer(&self, outcome: LoginOutcome) -> EndpointResult {
        match outcome {
            LoginOutcome::SecondFactorRequired(challenge) if self.parts.mfa.is_some() => {
                let view = MfaChallengeView::new(&challenge);
                Ok(not_cached(Answer::json(200, &view)))
            }
            outcome => Ok(token_answer(&outcome.signed_in()?.tokens)),
        }
    }

    /// `POST /login/mfa`: 200 with a token response, the login's challenge completed with
    /// a TOTP code or a recovery code.
    ///
    /// # Errors
    ///
    /// 404 without the two-factor routes; 400 for a body with both codes or neither; as
    /// [`AuthService::complete_login`].
    pub async fn login_mfa(&self, client: &ClientInfo, body: api::MfaLoginBody) -> EndpointResult {
        let mfa = self.parts.mfa.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let code = api::second_factor(body.code, body.recovery_code)?
            .ok_or_else(|| ErrorAnswer::invalid_request("give a code or a recovery_code"))?;
        let success = mfa.complete_login(&body.mfa_token, code, client).await?;
        Ok(token_answer(&success.tokens))
    }

    /// `POST /mfa/totp/setup`: 200 with a new TOTP secret, its `otpauth://` URI and its QR
    /// code, never cached.
    ///
    /// # Errors
    ///
    /// 404 without the two-factor routes; as [`AuthService::begin_totp_enrolment`].
    pub async fn totp_setup(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        body: api::ReauthenticationBody,
    ) -> EndpointResult {
        let mfa = self.parts.mfa.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let enrolment = mfa
            .begin_totp_enrolment(&Caller::from(me), Password::new(body.password), client)
            .await?;
        let uri = enrolment.expose_otpauth_uri();
        let view = TotpSetupView {
            secret: enrolment.expose_secret().to_owned(),
            otpauth_uri: uri.to_owned(),
            qr_svg: crate::qr::svg(uri).map_err(|error| ErrorAnswer::from(AuthError::Internal(error.into())))?,
        };
        Ok(not_cached(Answer::json(200, &view)))
    }

    /// `POST /mfa/totp/confirm`: 200 with ten recovery codes, never cached; login now asks
    /// for a code, the account's other sessions ended, a notice mailed.
    ///
    /// # Errors
    ///
    /// 404 without the two-factor routes; as [`AuthService::confirm_totp`].
    pub async fn totp_confirm(&self, client: &ClientInfo, me: &Authenticated, body: api::CodeBody) -> EndpointResult {
        let mfa = self.parts.mfa.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let confirmed = mfa.confirm_totp(&Caller::from(me), &body.code, client).await?;
        Ok(not_cached(Answer::json(
            200,
            &RecoveryCodesView::from(&confirmed.recovery_codes),
        )))
    }

    /// `POST /mfa/totp/disable`: 204, two-factor authentication off, the account's other
    /// sessions ended, a notice mailed.
    ///
    /// # Errors
    ///
    /// 404 without the two-factor routes; 400 without a code or with both; as
    /// [`AuthService::disable_totp`].
    pub async fn totp_disable(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        body: api::ReauthenticationBody,
    ) -> EndpointResult {
        let mfa = self.parts.mfa.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let code = api::second_factor(body.code, body.recovery_code)?
            .ok_or_else(|| ErrorAnswer::from(AuthError::InvalidCode))?;
        mfa.disable_totp(&Caller::from(me), Password::new(body.password), code, client)
            .await?;
        Ok(Answer::empty(204))
    }

    /// `POST /mfa/recovery-codes`: 200 with ten new recovery codes (the old ones stop
    /// working), never cached; a notice mailed.
    ///
    /// # Errors
    ///
    /// 404 without the two-factor routes; as [`AuthService::regenerate_recovery_codes`].
    pub async fn regenerate_recovery_codes(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        body: api::ReauthenticationBody,
    ) -> EndpointResult {
        let mfa = self.parts.mfa.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let caller = with_step_up(Caller::from(me), body.code, body.recovery_code)?;
        let codes = mfa
            .regenerate_recovery_codes(&caller, Password::new(body.password), client)
            .await?;
        Ok(not_cached(Answer::json(
            200,
            &RecoveryCodesView::from(&codes.recovery_codes),
        )))
    }

    /// `GET /me`: 200 with the account (and its second factors, where served).
    ///
    /// # Errors
    ///
    /// As [`AuthService::second_factor_status`].
    pub async fn me(&self, me: &Authenticated) -> EndpointResult {
        let mut view = UserView::from(&me.user);
        if let Some(mfa) = &self.parts.mfa {
            view.mfa = Some(mfa.second_factor_status(&me.user).await?.into());
        }
        Ok(Answer::json(200, &view))
    }

    /// `GET /me/export`: 200 with everything stored about the account (its profile,
    /// sessions with their clients, linked providers, second factor's state, never a
    /// secret), as a download (`Content-Disposition: attachment`), not cached.
    ///
    /// # Errors
    ///
    /// As [`AuthService::export_account`] (429 over 5 an hour).
    pub async fn export(&self, client: &ClientInfo, me: &Authenticated) -> EndpointResult {
        self.export_of(client, me.user.id, me.claims.session_id()).await
    }

    /// [`export`](Self::export) of the account `user_id`, whose session `current` is
    /// marked as such: for pages, whose sessions are cookies.
    ///
    /// # Errors
    ///
    /// As [`AuthService::export_account`].
    pub async fn export_of(&self, client: &ClientInfo, user_id: UserId, current: Option<SessionId>) -> EndpointResult {
        let export = self.parts.flows.export_account(user_id, client).await?;
        let mut account = UserView::from(&export.user);
        if let Some(mfa) = &self.parts.mfa {
            account.mfa = Some(mfa.second_factor_status(&export.user).await?.into());
        }
        let identities = match &self.parts.external {
            Some(external) => Some(
                external
                    .list_identities(user_id)
                    .await?
                    .iter()
                    .map(IdentityView::from)
                    .collect(),
            ),
            None => None,
        };
        #[cfg(feature = "passkeys")]
        let passkeys = match &self.parts.passkeys {
            Some(passkeys) => Some(passkeys.list_passkeys(user_id).await?)
                .filter(|listed| !listed.is_empty())
                .map(|listed| listed.iter().map(PasskeyView::from).collect()),
            None => None,
        };
        #[cfg(not(feature = "passkeys"))]
        let passkeys = None;
        let events = match &self.parts.audit {
            Some(audit) => Some(
                audit
                    .events_of(user_id, None, auth_core::MAX_AUDIT_PAGE)
                    .await?
                    .iter()
                    .map(api::EventView::own)
                    .collect(),
            ),
            None => None,
        };
        let view = api::ExportView {
            exported_at: time::OffsetDateTime::now_utc(),
            events,
            created_at: export.user.created_at,
            email_verified_at: export.user.email_verified_at,
            has_password: export.user.password_hash.is_some(),
            account,
            sessions: export.sessions.iter().map(|s| SessionView::new(s, current)).collect(),
            identities,
            passkeys,
        };
        Ok(Answer::json(200, &view)
            .with_header(("cache-control", "no-store"))
            .with_header(("content-disposition", "attachment; filename=\"account.json\"")))
    }

    /// `POST /token/refresh`: 200 with a rotated token response.
    ///
    /// # Errors
    ///
    /// As [`AuthService::refresh`].
    pub async fn refresh(&self, client: &ClientInfo, body: api::RefreshBody) -> EndpointResult {
        let pair = self.parts.flows.refresh(&body.refresh_token, client).await?;
        Ok(token_answer(&pair))
    }

    /// `POST /logout`: 204, the refresh token's session ended.
    ///
    /// # Errors
    ///
    /// As [`AuthService::logout`].
    pub async fn logout(&self, client: &ClientInfo, body: api::RefreshBody) -> EndpointResult {
        self.parts.flows.logout(&body.refresh_token, client).await?;
        Ok(Answer::empty(204))
    }

    /// `POST /logout/all`: 204, every session of the account ended.
    ///
    /// # Errors
    ///
    /// As [`AuthService::logout_all`].
    pub async fn logout_all(&self, client: &ClientInfo, me: &Authenticated) -> EndpointResult {
        self.parts.flows.logout_all(me.user.id, client).await?;
        Ok(Answer::empty(204))
    }

    /// `GET /sessions`: 200 with the account's live sessions, the request's own marked.
    ///
    /// # Errors
    ///
    /// As [`AuthService::list_sessions`].
    pub async fn sessions(&self, me: &Authenticated) -> EndpointResult {
        let sessions = self.parts.flows.list_sessions(me.user.id).await?;
        let current = me.claims.session_id();
        let views: Vec<SessionView> = sessions.iter().map(|s| SessionView::new(s, current)).collect();
        Ok(Answer::json(200, &views))
    }

    /// `DELETE /sessions/{id}`: 204; an id that does not parse is 404, as an unknown one.
    ///
    /// # Errors
    ///
    /// As [`AuthService::revoke_session`].
    pub async fn revoke_session(&self, client: &ClientInfo, me: &Authenticated, id: &str) -> EndpointResult {
        self.parts
            .flows
            .revoke_session(me.user.id, api::session_id(id)?, client)
            .await?;
        Ok(Answer::empty(204))
    }

    /// `POST /password/change`: 204, every session ended.
    ///
    /// # Errors
    ///
    /// As [`AuthService::change_password`].
    pub async fn change_password(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        body: api::ChangePasswordBody,
    ) -> EndpointResult {
        let caller = with_step_up(Caller::from(me), body.code, body.recovery_code)?;
        self.parts
            .flows
            .change_password(
                caller,
                Password::new(body.current_password),
                Password::new(body.new_password),
                client,
            )
            .await?;
        Ok(Answer::empty(204))
    }

    /// `POST /password/forgot`: 202 whether or not the account exists; the mail leaves
    /// off the request path.
    ///
    /// # Errors
    ///
    /// 404 without mail; as [`AuthService::request_password_reset`].
    pub async fn forgot_password(&self, client: &ClientInfo, body: api::ForgotBody) -> EndpointResult {
        let mail = self.parts.mail.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        if let Some(delivery) = self.parts.flows.request_password_reset(&body.email, client).await? {
            mail.send_later(Mail::Link(delivery));
        }
        Ok(Answer::json(202, &api::ForgotAnswer::default()))
    }

    /// `POST /password/reset`: 204, with `Referrer-Policy: no-referrer` (the link carried
    /// the token).
    ///
    /// # Errors
    ///
    /// 404 without mail; as [`AuthService::reset_password`].
    pub async fn reset_password(&self, client: &ClientInfo, body: api::ResetBody) -> EndpointResult {
        self.parts.mail.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.parts
            .flows
            .reset_password(&body.token, Password::new(body.new_password), client)
            .await?;
        Ok(Answer::empty(204).with_header(NO_REFERRER))
    }

    /// `POST /email/verification`: 202; a link is mailed unless the address is verified.
    ///
    /// # Errors
    ///
    /// 404 without mail; as [`AuthService::request_email_verification`].
    pub async fn request_verification(&self, client: &ClientInfo, me: &Authenticated) -> EndpointResult {
        let mail = self.parts.mail.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        if let Some(delivery) = self.parts.flows.request_email_verification(me.user.id, client).await? {
            mail.send_later(Mail::Link(delivery));
        }
        Ok(Answer::empty(202))
    }

    /// `POST /email/verify`: 204, the address confirmed.
    ///
    /// # Errors
    ///
    /// 404 without mail; as [`AuthService::verify_email`].
    pub async fn verify_email(&self, client: &ClientInfo, body: api::TokenBody) -> EndpointResult {
        self.parts.mail.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.parts.flows.verify_email(&body.token, client).await?;
        Ok(Answer::empty(204))
    }

    /// `GET /admin/users?after=<id>&limit=<n>`: 200 with a page of accounts, for an
    /// `admin`; with `email=<prefix>`, only the accounts whose address starts with it
    /// (case-insensitive).
    ///
    /// # Errors
    ///
    /// 404 without administration; 403 without the role; 400 for a bad query.
    pub async fn list_users(&self, client: &ClientInfo, me: &Authenticated, query: Option<&str>) -> EndpointResult {
        let admin = self.parts.admin.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.require_admin(client, me)?;
        let page = api::UsersPage::parse(query)?;
        let users = match &page.email {
            Some(prefix) => admin.search_users(prefix, page.after, page.limit).await?,
            None => admin.list_users(page.after, page.limit).await?,
        };
        let views: Vec<UserView> = users.iter().map(UserView::from).collect();
        Ok(Answer::json(200, &views))
    }

    /// `POST /email/change` `{"new_email", "password"?, "code"?, "recovery_code"?}`: 202;
    /// the confirmation link goes to the new address, a notice with an undo link to the
    /// old one. The answer is the same whether the new address is free or not.
    ///
    /// # Errors
    ///
    /// 404 without email change or mail; as [`AuthService::request_email_change`].
    pub async fn request_email_change(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        body: api::EmailChangeBody,
    ) -> EndpointResult {
        let (flows, mail) = self.email_change_flows()?;
        let caller = with_step_up(Caller::from(me), body.code, body.recovery_code)?;
        let password = body.password.map(Password::new);
        if let Some(delivery) = flows
            .request_email_change(caller, &body.new_email, password, client)
            .await?
        {
            mail.send_later(Mail::Link(delivery));
        }
        Ok(Answer::empty(202))
    }

    /// `POST /email/change/confirm` `{"token"}`: 204, the account has its new address;
    /// its other sessions ended, every access token revoked (the session that asked
    /// refreshes). `Referrer-Policy: no-referrer`.
    ///
    /// # Errors
    ///
    /// 404 without email change or mail; as [`AuthService::confirm_email_change`].
    pub async fn confirm_email_change(&self, client: &ClientInfo, body: api::TokenBody) -> EndpointResult {
        let (flows, _) = self.email_change_flows()?;
        flows.confirm_email_change(&body.token, client).await?;
        Ok(Answer::empty(204).with_header(NO_REFERRER))
    }

    /// `POST /email/change/undo` `{"token"}`: 204, the old address is back and every
    /// session ended. `Referrer-Policy: no-referrer`.
    ///
    /// # Errors
    ///
    /// 404 without email change or mail; as [`AuthService::undo_email_change`].
    pub async fn undo_email_change(&self, client: &ClientInfo, body: api::TokenBody) -> EndpointResult {
        let (flows, _) = self.email_change_flows()?;
        flows.undo_email_change(&body.token, client).await?;
        Ok(Answer::empty(204).with_header(NO_REFERRER))
    }

    /// The administrator's check: the `admin` role, a refusal recorded as an event
    /// ([`AuthService::authorize`]).
    fn require_admin(&self, client: &ClientInfo, me: &Authenticated) -> Result<(), AuthError> {
        self.parts.flows.authorize(me, &Role::ADMIN, client)
    }

    /// The email-change flows and the mail they send by, when both are served.
    fn email_change_flows(&self) -> Result<(&dyn EmailChangeFlows, &dyn SendMail), ErrorAnswer> {
        match (&self.parts.email_change, &self.parts.mail) {
            (Some(flows), Some(mail)) => Ok((flows.as_ref(), mail.as_ref())),
            _ => Err(ErrorAnswer::no_route()),
        }
    }

    /// `POST /admin/users/{id}/enable` (`active`) or `/disable`: 204, for an `admin`.
    ///
    /// # Errors
    ///
    /// 404 without administration or for an unknown id; 403 without the role.
    pub async fn set_active(&self, client: &ClientInfo, me: &Authenticated, id: &str, active: bool) -> EndpointResult {
        self.parts.admin.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.require_admin(client, me)?;
        self.parts
            .flows
            .set_active(api::account_id(id)?, active, client)
            .await?;
        Ok(Answer::empty(204))
    }

    /// `POST /admin/users` `{"email": ..., "roles": [...]}`: 201 with the new account,
    /// which has no password; its set-password link is mailed ([`Mail::Invitation`]).
    /// For an `admin`; served with mail.
    ///
    /// # Errors
    ///
    /// 404 without administration or mail; 403 without the role; 400 for a role that is
    /// not a valid name; as [`AuthService::invite`] (422 `invalid_email`, 409
    /// `email_taken`, 422 `too_many_roles`).
    pub async fn invite_user(&self, client: &ClientInfo, me: &Authenticated, body: api::InviteBody) -> EndpointResult {
        let admin = self.parts.admin.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let mail = self.parts.mail.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.require_admin(client, me)?;
        let roles = body.roles()?;
        let invitation = admin.invite(&body.email, roles, client).await?;
        let view = UserView::from(&invitation.user);
        mail.send_later(Mail::Invitation(invitation.delivery));
        Ok(Answer::json(201, &view))
    }

    /// `GET /me/events?after=<id>&limit=<n>`: 200 with the account's own records of the
    /// audit log (its sign-ins, refusals, changes), oldest first, without the operator's
    /// detail.
    ///
    /// # Errors
    ///
    /// 404 without the audit log; 400 for a bad query.
    pub async fn my_events(&self, me: &Authenticated, query: Option<&str>) -> EndpointResult {
        let audit = self.parts.audit.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let page = api::EventsPage::parse(query)?;
        let records = audit.events_of(me.user.id, page.after, page.limit).await?;
        let views: Vec<api::EventView> = records.iter().map(api::EventView::own).collect();
        Ok(Answer::json(200, &views))
    }

    /// `GET /admin/events?user=<id>&kind=<kind>&after=<id>&limit=<n>`: 200 with records of
    /// the audit log, oldest first, with the account and the operator's detail, for an
    /// `admin`.
    ///
    /// # Errors
    ///
    /// 404 without administration or the audit log; 403 without the role; 400 for a bad
    /// query.
    pub async fn list_events(&self, client: &ClientInfo, me: &Authenticated, query: Option<&str>) -> EndpointResult {
        self.parts.admin.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let audit = self.parts.audit.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.require_admin(client, me)?;
        let page = api::EventsPage::parse(query)?;
        let mut query = AuditQuery::first(page.limit).after(page.after);
        if let Some(user) = page.user {
            query = query.of_user(user);
        }
        if let Some(kind) = page.kind {
            query = query.of_kind(kind);
        }
        let records = audit.list_events(query).await?;
        let views: Vec<api::EventView> = records.iter().map(api::EventView::full).collect();
        Ok(Answer::json(200, &views))
    }

    /// `DELETE /me` `{"password"?, "code"?, "recovery_code"?}`: 204, the account and
    /// everything that is its own deleted; a notice goes to its address.
    ///
    /// # Errors
    ///
    /// 404 without deletion; as [`AuthService::delete_account`].
    pub async fn delete_me(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        body: api::DeleteAccountBody,
    ) -> EndpointResult {
        let deletion = self.parts.deletion.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let caller = with_step_up(Caller::from(me), body.code, body.recovery_code)?;
        deletion
            .delete_account(caller, body.password.map(Password::new), client)
            .await?;
        Ok(Answer::empty(204))
    }

    /// `DELETE /admin/users/{id}`: 204, the account deleted as by its owner, for an
    /// `admin`.
    ///
    /// # Errors
    ///
    /// 404 without administration or deletion, or for an unknown id; 403 without the role.
    pub async fn delete_user(&self, client: &ClientInfo, me: &Authenticated, id: &str) -> EndpointResult {
        self.parts.admin.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let deletion = self.parts.deletion.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.require_admin(client, me)?;
        deletion.delete_user(api::account_id(id)?, client).await?;
        Ok(Answer::empty(204))
    }

    /// `GET /admin/users/{id}/sessions`: 200 with the account's live sessions (as
    /// `GET /sessions` lists one's own, none marked current), for an `admin`.
    ///
    /// # Errors
    ///
    /// 404 without administration or for an unknown id; 403 without the role.
    pub async fn user_sessions(&self, client: &ClientInfo, me: &Authenticated, id: &str) -> EndpointResult {
        self.parts.admin.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.require_admin(client, me)?;
        let sessions = self.parts.flows.sessions_of_account(api::account_id(id)?).await?;
        let views: Vec<SessionView> = sessions.iter().map(|s| SessionView::new(s, None)).collect();
        Ok(Answer::json(200, &views))
    }

    /// `DELETE /admin/users/{id}/sessions`: 204, every session of the account ended and
    /// every access token issued to it revoked, for an `admin` (OWASP ASVS 7.4.5).
    ///
    /// # Errors
    ///
    /// 404 without administration or for an unknown id; 403 without the role.
    pub async fn end_user_sessions(&self, client: &ClientInfo, me: &Authenticated, id: &str) -> EndpointResult {
        self.parts.admin.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.require_admin(client, me)?;
        self.parts.flows.logout_all(api::account_id(id)?, client).await?;
        Ok(Answer::empty(204))
    }

    /// `PUT /admin/users/{id}/roles`: 204, the account's roles replaced, for an `admin`.
    ///
    /// # Errors
    ///
    /// 404 without administration or for an unknown id; 403 without the role; 400 for
    /// a role that is not a valid name.
    pub async fn set_roles(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        id: &str,
        body: api::RolesBody,
    ) -> EndpointResult {
        let admin = self.parts.admin.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        self.require_admin(client, me)?;
        let roles = body.roles()?;
        admin.set_roles(api::account_id(id)?, roles, client).await?;
        Ok(Answer::empty(204))
    }

    /// `GET /oauth/providers`: 200 `{"providers": [...]}`, the names of the providers one
    /// can sign in with.
    ///
    /// # Errors
    ///
    /// 404 without the routes of sign-in through providers.
    pub fn oauth_providers(&self) -> EndpointResult {
        let external = self.parts.external.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let providers = external.identity_providers();
        Ok(Answer::json(200, &ProvidersView { providers }))
    }

    /// `GET /oauth/{provider}/start?next=<path>`: 303 to the provider's authorization
    /// URL, setting the cookie that binds the flow to this browser (10 minutes). `next`
    /// (default `/`) is where the callback leads afterwards. A native app adds
    /// `code_challenge=<BASE64URL(SHA-256(verifier))>&code_challenge_method=S256` and
    /// trades the code with its `code_verifier` instead of the cookie
    /// ([`AuthService::begin_external_login_for_app`]). Every answer says
    /// `Cache-Control: no-store` and `Referrer-Policy: no-referrer`.
    ///
    /// # Errors
    ///
    /// 404 without the routes; 400 `invalid_request` for a query that does not parse;
    /// 400 `invalid_code_challenge` for a challenge that is not `S256`; as
    /// [`AuthService::begin_external_login`] (404 `unknown_provider`, 400
    /// `invalid_redirect`, 503 `provider_unavailable`, 429).
    pub async fn oauth_start(&self, client: &ClientInfo, provider: &str, query: Option<&str>) -> EndpointResult {
        let external = self.parts.external.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let result = async {
            let query = api::StartQuery::parse(query)?;
            let start = external
                .begin_external_login(provider, &query.next, query.code_challenge.as_deref(), client)
                .await?;
            let cookie = self.binding_cookie(&start);
            Ok(Answer::empty(303)
                .with_owned_header("location", start.authorization_url)
                .with_owned_header("set-cookie", cookie))
        }
        .await;
        with_external_login_headers(result, None)
    }

    /// `POST /oauth/{provider}/link` (the caller's bearer token; body `{"next": "/path"}`,
    /// optional): 200 `{"authorization_url": ...}`, setting the binding cookie. The
    /// caller's browser goes to that URL; the provider's callback links the identity to
    /// this account and leads to `next?linked=<provider>`.
    ///
    /// # Errors
    ///
    /// 404 without the routes; as [`AuthService::begin_identity_link`] (401
    /// `insufficient_user_authentication` without a recent sign-in).
    pub async fn oauth_link(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        provider: &str,
        body: api::LinkBody,
    ) -> EndpointResult {
        let external = self.parts.external.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let next = body.next.as_deref().unwrap_or(api::DEFAULT_NEXT);
        let start = external
            .begin_identity_link(&Caller::from(me), provider, next, client)
            .await?;
        let cookie = self.binding_cookie(&start);
        let view = AuthorizationView {
            authorization_url: start.authorization_url,
        };
        Ok(Answer::json(200, &view)
            .with_owned_header("set-cookie", cookie)
            .with_header(("cache-control", "no-store")))
    }

    /// `GET /oauth/{provider}/callback?state=…&code=…` (or `&error=…`), with the binding
    /// cookie: the provider's redirect back. 303 to the flow's `next` with `code=` (a
    /// sign-in: the application trades it at `POST /oauth/exchange`) or `linked=` (a
    /// link); a refusal once the flow is known is a 303 to `next?error=<code>`. Every
    /// answer deletes the binding cookie and says `Cache-Control: no-store` and
    /// `Referrer-Policy: no-referrer`.
    ///
    /// `cookies` is the request's `Cookie` header (several joined with `; `).
    ///
    /// # Errors
    ///
    /// 404 without the routes; without a known flow, the error itself: 400
    /// `external_login_failed` (no state, or one unknown, spent or expired), 404
    /// `unknown_provider`, 503; 400 `invalid_request` for a query that does not parse.
    pub async fn oauth_callback(
        &self,
        client: &ClientInfo,
        provider: &str,
        query: Option<&str>,
        cookies: Option<&str>,
    ) -> EndpointResult {
        let external = self.parts.external.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let mut keep_cookie = false;
        let result = async {
            let query = api::CallbackQuery::parse(query)?;
            let binding = cookies.and_then(|cookies| headers::cookie(cookies, self.binding_cookie_name()));
            let callback = ExternalCallback::new(query.state.as_deref(), query.code.as_deref(), query.error.as_deref());
            match external
                .finish_external_login(provider, callback, binding, client)
                .await
            {
                // A sign-in's code is traded with the same cookie: it stays until then.
                Ok(finish @ ExternalLoginFinish::SignedIn { .. }) => {
                    keep_cookie = true;
                    Ok(redirect(finish.redirect_to()))
                }
                Ok(finish) => Ok(redirect(finish.redirect_to())),
                Err(failure) => {
                    let ExternalLoginFailure { error, redirect_to, .. } = failure;
                    // Made whatever the answer: a server-side failure is logged with its cause.
                    let answer = ErrorAnswer::from(error);
                    match redirect_to {
                        Some(redirect_to) => Ok(redirect(&redirect_to)),
                        None => Err(answer),
                    }
                }
            }
        }
        .await;
        let clear = (!keep_cookie).then(|| headers::clear_binding_cookie(self.parts.secure_cookies));
        with_external_login_headers(result, clear)
    }

    /// `POST /oauth/exchange` `{"code": "xc_…"}`: trades the one-time code of a finished
    /// sign-in through a provider, once, within 60 seconds, with the binding cookie of the
    /// browser that began it (then cleared), or, for a flow a native app began with a
    /// `code_challenge`, with `"code_verifier"` in the body; answered as `POST /login`
    /// answers (the token response, or the second-factor challenge).
    ///
    /// # Errors
    ///
    /// 404 without the routes; as [`AuthService::exchange_external_login`] (400
    /// `external_login_failed` for an unknown, spent or expired code, or one without the
    /// cookie of the browser that began the flow).
    pub async fn oauth_exchange(
        &self,
        client: &ClientInfo,
        body: api::ExchangeBody,
        cookies: Option<&str>,
    ) -> EndpointResult {
        let external = self.parts.external.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let binding = cookies.and_then(|cookies| headers::cookie(cookies, self.binding_cookie_name()));
        let result = async {
            let proof = match body.code_verifier.as_deref() {
                Some(verifier) => ExchangeProof::CodeVerifier(verifier),
                None => ExchangeProof::BindingCookie(binding),
            };
            let outcome = external.exchange_external_login(&body.code, proof, client).await?;
            self.login_answer(outcome)
        }
        .await;
        with_external_login_headers(result, Some(headers::clear_binding_cookie(self.parts.secure_cookies)))
    }

    /// `GET /me/identities`: 200 `{"identities": [...]}`, the account's linked
    /// identities, oldest first.
    ///
    /// # Errors
    ///
    /// 404 without the routes; as [`AuthService::list_identities`].
    pub async fn identities(&self, me: &Authenticated) -> EndpointResult {
        let external = self.parts.external.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let identities = external.list_identities(me.user.id).await?;
        let identities = identities.iter().map(IdentityView::from).collect();
        Ok(Answer::json(200, &IdentitiesView { identities }))
    }

    /// `DELETE /me/identities/{id}`: 204, the identity unlinked; an id that does not parse
    /// is 404, as an unknown one.
    ///
    /// # Errors
    ///
    /// 404 without the routes; as [`AuthService::unlink_identity`] (409
    /// `last_sign_in_method`, 401 `insufficient_user_authentication`).
    pub async fn unlink_identity(&self, client: &ClientInfo, me: &Authenticated, id: &str) -> EndpointResult {
        let external = self.parts.external.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        external
            .unlink_identity(&Caller::from(me), api::identity_id(id)?, client)
            .await?;
        Ok(Answer::empty(204))
    }

    /// `POST /passkeys/register/start`: 200 with creation options for
    /// `navigator.credentials.create()` and the ceremony's token, never cached.
    ///
    /// # Errors
    ///
    /// 404 without the passkey routes; as [`AuthService::begin_passkey_registration`] (401
    /// `insufficient_user_authentication` without a recent sign-in).
    #[cfg(feature = "passkeys")]
    pub async fn passkey_register_start(&self, client: &ClientInfo, me: &Authenticated) -> EndpointResult {
        let passkeys = self.parts.passkeys.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let begun = passkeys.begin_passkey_registration(&Caller::from(me), client).await?;
        Ok(not_cached(Answer::json(200, &PasskeyOptionsView::from(begun))))
    }

    /// `POST /passkeys/register/finish`: 201 with the passkey registered (a notice
    /// mailed).
    ///
    /// # Errors
    ///
    /// 404 without the passkey routes; as [`AuthService::finish_passkey_registration`] (400
    /// `invalid_passkey`, 422 `invalid_passkey_name`, 409 `conflict`).
    #[cfg(feature = "passkeys")]
    pub async fn passkey_register_finish(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        body: api::PasskeyRegisterBody,
    ) -> EndpointResult {
        let passkeys = self.parts.passkeys.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let passkey = passkeys
            .finish_passkey_registration(
                &Caller::from(me),
                &body.ceremony,
                &body.credential,
                body.name.as_deref(),
                client,
            )
            .await?;
        Ok(Answer::json(201, &PasskeyView::from(&passkey)))
    }

    /// `POST /passkeys/login/start`: 200 with request options for
    /// `navigator.credentials.get()` (no account named) and the ceremony's token, never
    /// cached.
    ///
    /// # Errors
    ///
    /// 404 without the passkey routes; as [`AuthService::begin_passkey_login`].
    #[cfg(feature = "passkeys")]
    pub async fn passkey_login_start(&self, client: &ClientInfo) -> EndpointResult {
        let passkeys = self.parts.passkeys.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let begun = passkeys.begin_passkey_login(client).await?;
        Ok(not_cached(Answer::json(200, &PasskeyOptionsView::from(begun))))
    }

    /// `POST /passkeys/login/finish`: 200 with a token response, the session's `amr`
    /// saying `hwk` or `swk`, and `mfa`.
    ///
    /// # Errors
    ///
    /// 404 without the passkey routes; as [`AuthService::finish_passkey_login`] (401
    /// `passkey_refused`).
    #[cfg(feature = "passkeys")]
    pub async fn passkey_login_finish(&self, client: &ClientInfo, body: api::PasskeyLoginBody) -> EndpointResult {
        let passkeys = self.parts.passkeys.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let success = passkeys
            .finish_passkey_login(&body.ceremony, &body.credential, client)
            .await?;
        Ok(token_answer(&success.tokens))
    }

    /// `POST /login/mfa/passkey/start`: 200 with request options naming the challenge's
    /// account's passkeys, never cached.
    ///
    /// # Errors
    ///
    /// 404 without the passkey routes; as [`AuthService::begin_passkey_second_factor`] (401
    /// `invalid_code` for a challenge that does not work or an account without passkeys).
    #[cfg(feature = "passkeys")]
    pub async fn passkey_mfa_start(&self, client: &ClientInfo, body: api::PasskeyChallengeBody) -> EndpointResult {
        let passkeys = self.parts.passkeys.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let begun = passkeys.begin_passkey_second_factor(&body.mfa_token, client).await?;
        Ok(not_cached(Answer::json(200, &PasskeyOptionsView::from(begun))))
    }

    /// `POST /login/mfa/passkey/finish`: 200 with a token response, the login's
    /// challenge completed with a passkey.
    ///
    /// # Errors
    ///
    /// 404 without the passkey routes; as [`AuthService::complete_login_with_passkey`]
    /// (401 `invalid_code`).
    #[cfg(feature = "passkeys")]
    pub async fn passkey_mfa_finish(&self, client: &ClientInfo, body: api::PasskeyMfaBody) -> EndpointResult {
        let passkeys = self.parts.passkeys.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let success = passkeys
            .complete_login_with_passkey(&body.mfa_token, &body.ceremony, &body.credential, client)
            .await?;
        Ok(token_answer(&success.tokens))
    }

    /// `GET /me/passkeys`: 200 `{"passkeys": [...]}`, the account's passkeys, oldest
    /// first.
    ///
    /// # Errors
    ///
    /// 404 without the passkey routes; as [`AuthService::list_passkeys`].
    #[cfg(feature = "passkeys")]
    pub async fn passkeys(&self, me: &Authenticated) -> EndpointResult {
        let passkeys = self.parts.passkeys.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        let listed = passkeys.list_passkeys(me.user.id).await?;
        let passkeys = listed.iter().map(PasskeyView::from).collect();
        Ok(Answer::json(200, &PasskeysView { passkeys }))
    }

    /// `PATCH /me/passkeys/{id}` `{"name": ..}`: 204, the passkey renamed; an id that does
    /// not parse is 404, as an unknown one.
    ///
    /// # Errors
    ///
    /// 404 without the passkey routes; as [`AuthService::rename_passkey`] (422
    /// `invalid_passkey_name`, 404 `not_found`).
    #[cfg(feature = "passkeys")]
    pub async fn rename_passkey(
        &self,
        client: &ClientInfo,
        me: &Authenticated,
        id: &str,
        body: api::PasskeyRenameBody,
    ) -> EndpointResult {
        let passkeys = self.parts.passkeys.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        passkeys
            .rename_passkey(&Caller::from(me), api::passkey_id(id)?, &body.name, client)
            .await?;
        Ok(Answer::empty(204))
    }

    /// `DELETE /me/passkeys/{id}`: 204, the passkey removed (a notice mailed); an id that
    /// does not parse is 404, as an unknown one.
    ///
    /// # Errors
    ///
    /// 404 without the passkey routes; as [`AuthService::delete_passkey`] (401
    /// `insufficient_user_authentication`, 409 `last_sign_in_method`, 404 `not_found`).
    #[cfg(feature = "passkeys")]
    pub async fn delete_passkey(&self, client: &ClientInfo, me: &Authenticated, id: &str) -> EndpointResult {
        let passkeys = self.parts.passkeys.as_ref().ok_or_else(ErrorAnswer::no_route)?;
        passkeys
            .delete_passkey(&Caller::from(me), api::passkey_id(id)?, client)
            .await?;
        Ok(Answer::empty(204))
    }

    /// `GET /.well-known/jwks.json`: 200 with the public keys that verify access tokens.
    pub fn jwks(&self) -> Answer {
        Answer::json(200, &self.parts.flows.tokens().jwks())
    }

    /// `GET /health`: 200 `{"status": "ok"}` when the store answers.
    ///
    /// # Errors
    ///
    /// 503 `unavailable` when it does not.
    pub async fn health(&self) -> EndpointResult {
        self.parts.flows.check_store().await?;
        Ok(Answer::json(200, &api::Health::default()))
    }
}

impl Endpoints {
    /// The `Set-Cookie` value of a begun flow's binding cookie.
    fn binding_cookie(&self, start: &ExternalLoginStart) -> String {
        headers::set_binding_cookie(
            self.parts.secure_cookies,
            start.binding.expose_secret(),
            start.expires_in.as_secs(),
        )
    }
}

/// `caller`, with the second factor a body gave for the step-up rule.
fn with_step_up(caller: Caller, code: Option<String>, recovery_code: Option<String>) -> Result<Caller, ErrorAnswer> {
    Ok(match api::second_factor(code, recovery_code)? {
        Some(code) => caller.with_second_factor(code),
        None => caller,
    })
}

fn not_cached(answer: Answer) -> Answer {
    TOKEN_HEADERS.into_iter().fold(answer, Answer::with_header)
}

/// 303 to `location` (a path on this site).
fn redirect(location: &str) -> Answer {
    Answer::empty(303).with_owned_header("location", location.to_owned())
}

/// `result`, success or error, with [`EXTERNAL_LOGIN_HEADERS`] and `cookie` as a
/// `Set-Cookie`.
fn with_external_login_headers(result: EndpointResult, cookie: Option<String>) -> EndpointResult {
    match result {
        Ok(answer) => {
            let answer = match cookie {
                Some(cookie) => answer.with_owned_header("set-cookie", cookie),
                None => answer,
            };
            Ok(EXTERNAL_LOGIN_HEADERS.into_iter().fold(answer, Answer::with_header))
        }
        Err(error) => {
            let error = match cookie {
                Some(cookie) => error.with_header("set-cookie", cookie),
                None => error,
            };
            Err(EXTERNAL_LOGIN_HEADERS
                .into_iter()
                .fold(error, |error, (name, value)| error.with_header(name, value)))
        }
    }
}

impl fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoints")
            .field("administration", &self.parts.admin.is_some())
            .field("second_factor", &self.parts.mfa.is_some())
            .field("external_login", &self.parts.external.is_some())
            .field("secure_cookies", &self.parts.secure_cookies)
            .field("mail", &self.parts.mail.is_some())
            .field("addressing", &self.parts.addressing)
            .field("body_timeout", &self.parts.body_timeout)
            .finish_non_exhaustive()
    }
}

fn token_answer(pair: &TokenPair) -> Answer {
    not_cached(Answer::json(200, &TokenView::from(pair)))
}

type Flow<'a, T> = Pin<Box<dyn Future<Output = Result<T, AuthError>> + Send + 'a>>;

/// The flows of an [`AuthService`] the endpoints call, with its store type erased, so that
/// [`Endpoints`] (and every framework's state holding it) is one type for every store.
trait Flows: Send + Sync {
    fn tokens(&self) -> &Tokens;
    fn authenticate<'a>(&'a self, token: &'a str) -> Flow<'a, Authenticated>;
    fn register<'a>(&'a self, email: &'a str, password: Password, client: &'a ClientInfo) -> Flow<'a, User>;
    fn login<'a>(&'a self, email: &'a str, password: Password, client: &'a ClientInfo) -> Flow<'a, LoginOutcome>;
    fn refresh<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, TokenPair>;
    fn logout<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, ()>;
    fn logout_all<'a>(&'a self, user: UserId, client: &'a ClientInfo) -> Flow<'a, ()>;
    fn list_sessions(&self, user: UserId) -> Flow<'_, Vec<Session>>;
    fn export_account<'a>(&'a self, user: UserId, client: &'a ClientInfo) -> Flow<'a, AccountExport>;
    fn authorize(&self, me: &Authenticated, role: &Role, client: &ClientInfo) -> Result<(), AuthError>;
    fn sessions_of_account(&self, user: UserId) -> Flow<'_, Vec<Session>>;
    fn revoke_session<'a>(&'a self, user: UserId, session: SessionId, client: &'a ClientInfo) -> Flow<'a, ()>;
    fn change_password<'a>(
        &'a self,
        caller: Caller,
        current: Password,
        new: Password,
        client: &'a ClientInfo,
    ) -> Flow<'a, User>;
    fn request_password_reset<'a>(&'a self, email: &'a str, client: &'a ClientInfo) -> Flow<'a, Option<Delivery>>;
    fn reset_password<'a>(&'a self, token: &'a str, new: Password, client: &'a ClientInfo) -> Flow<'a, ()>;
    fn request_email_verification<'a>(&'a self, user: UserId, client: &'a ClientInfo) -> Flow<'a, Option<Delivery>>;
    fn verify_email<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, User>;
    fn set_active<'a>(&'a self, user: UserId, active: bool, client: &'a ClientInfo) -> Flow<'a, User>;
    fn check_store(&self) -> Flow<'_, ()>;
}

impl<S: AuthStore + 'static> Flows for AuthService<S> {
    fn tokens(&self) -> &Tokens {
        AuthService::tokens(self)
    }

    fn authenticate<'a>(&'a self, token: &'a str) -> Flow<'a, Authenticated> {
        Box::pin(AuthService::authenticate(self, token))
    }

    fn register<'a>(&'a self, email: &'a str, password: Password, client: &'a ClientInfo) -> Flow<'a, User> {
        Box::pin(AuthService::register(self, email, password, client))
    }

    fn login<'a>(&'a self, email: &'a str, password: Password, client: &'a ClientInfo) -> Flow<'a, LoginOutcome> {
        Box::pin(AuthService::login(self, email, password, client))
    }

    fn refresh<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, TokenPair> {
        Box::pin(AuthService::refresh(self, token, client))
    }

    fn logout<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, ()> {
        Box::pin(AuthService::logout(self, token, client))
    }

    fn logout_all<'a>(&'a self, user: UserId, client: &'a ClientInfo) -> Flow<'a, ()> {
        Box::pin(AuthService::logout_all(self, user, client))
    }

    fn list_sessions(&self, user: UserId) -> Flow<'_, Vec<Session>> {
        Box::pin(AuthService::list_sessions(self, user))
    }

    fn export_account<'a>(&'a self, user: UserId, client: &'a ClientInfo) -> Flow<'a, AccountExport> {
        Box::pin(AuthService::export_account(self, user, client))
    }

    fn authorize(&self, me: &Authenticated, role: &Role, client: &ClientInfo) -> Result<(), AuthError> {
        AuthService::authorize(self, me, role, client)
    }

    fn sessions_of_account(&self, user: UserId) -> Flow<'_, Vec<Session>> {
        Box::pin(AuthService::sessions_of_account(self, user))
    }

    fn revoke_session<'a>(&'a self, user: UserId, session: SessionId, client: &'a ClientInfo) -> Flow<'a, ()> {
        Box::pin(AuthService::revoke_session(self, user, session, client))
    }

    fn change_password<'a>(
        &'a self,
        caller: Caller,
        current: Password,
        new: Password,
        client: &'a ClientInfo,
    ) -> Flow<'a, User> {
        Box::pin(AuthService::change_password(self, caller, current, new, client))
    }

    fn request_password_reset<'a>(&'a self, email: &'a str, client: &'a ClientInfo) -> Flow<'a, Option<Delivery>> {
        Box::pin(AuthService::request_password_reset(self, email, client))
    }

    fn reset_password<'a>(&'a self, token: &'a str, new: Password, client: &'a ClientInfo) -> Flow<'a, ()> {
        Box::pin(AuthService::reset_password(self, token, new, client))
    }

    fn request_email_verification<'a>(&'a self, user: UserId, client: &'a ClientInfo) -> Flow<'a, Option<Delivery>> {
        Box::pin(AuthService::request_email_verification(self, user, client))
    }

    fn verify_email<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, User> {
        Box::pin(AuthService::verify_email(self, token, client))
    }

    fn set_active<'a>(&'a self, user: UserId, active: bool, client: &'a ClientInfo) -> Flow<'a, User> {
        Box::pin(AuthService::set_active(self, user, active, client))
    }

    fn check_store(&self) -> Flow<'_, ()> {
        Box::pin(AuthService::check_store(self))
    }
}

/// The administration flows, for stores that have them.
/// The audit log's reads, for a store that keeps it.
trait AuditFlows: Send + Sync {
    fn events_of(&self, user: UserId, after: Option<EventId>, limit: u32) -> Flow<'_, Vec<AuditRecord>>;
    fn list_events(&self, query: AuditQuery) -> Flow<'_, Vec<AuditRecord>>;
}

impl<S: AuthStore + AuditLogStore + 'static> AuditFlows for AuthService<S> {
    fn events_of(&self, user: UserId, after: Option<EventId>, limit: u32) -> Flow<'_, Vec<AuditRecord>> {
        Box::pin(AuthService::events_of(self, user, after, limit))
    }

    fn list_events(&self, query: AuditQuery) -> Flow<'_, Vec<AuditRecord>> {
        Box::pin(async move { AuthService::list_events(self, &query).await })
    }
}

/// The passkey flows, for a store that keeps passkeys.
#[cfg(feature = "passkeys")]
trait PasskeyFlows: Send + Sync {
    fn begin_passkey_registration<'a>(
        &'a self,
        caller: &'a Caller,
        client: &'a ClientInfo,
    ) -> Flow<'a, auth_core::PasskeyChallenge>;
    fn finish_passkey_registration<'a>(
        &'a self,
        caller: &'a Caller,
        ceremony: &'a str,
        credential: &'a serde_json::Value,
        name: Option<&'a str>,
        client: &'a ClientInfo,
    ) -> Flow<'a, auth_core::PasskeyCredential>;
    fn begin_passkey_login<'a>(&'a self, client: &'a ClientInfo) -> Flow<'a, auth_core::PasskeyChallenge>;
    fn finish_passkey_login<'a>(
        &'a self,
        ceremony: &'a str,
        credential: &'a serde_json::Value,
        client: &'a ClientInfo,
    ) -> Flow<'a, LoginSuccess>;
    fn begin_passkey_second_factor<'a>(
        &'a self,
        challenge: &'a str,
        client: &'a ClientInfo,
    ) -> Flow<'a, auth_core::PasskeyChallenge>;
    fn complete_login_with_passkey<'a>(
        &'a self,
        challenge: &'a str,
        ceremony: &'a str,
        credential: &'a serde_json::Value,
        client: &'a ClientInfo,
    ) -> Flow<'a, LoginSuccess>;
    fn list_passkeys(&self, user: UserId) -> Flow<'_, Vec<auth_core::PasskeyCredential>>;
    fn rename_passkey<'a>(
        &'a self,
        caller: &'a Caller,
        id: auth_core::PasskeyId,
        name: &'a str,
        client: &'a ClientInfo,
    ) -> Flow<'a, ()>;
    fn delete_passkey<'a>(
        &'a self,
        caller: &'a Caller,
        id: auth_core::PasskeyId,
        client: &'a ClientInfo,
    ) -> Flow<'a, ()>;
}

#[cfg(feature = "passkeys")]
impl<S: AuthStore + PasskeyStore + SecondFactorStore + 'static> PasskeyFlows for AuthService<S> {
    fn begin_passkey_registration<'a>(
        &'a self,
        caller: &'a Caller,
        client: &'a ClientInfo,
    ) -> Flow<'a, auth_core::PasskeyChallenge> {
        Box::pin(AuthService::begin_passkey_registration(self, caller, client))
    }

    fn finish_passkey_registration<'a>(
        &'a self,
        caller: &'a Caller,
        ceremony: &'a str,
        credential: &'a serde_json::Value,
        name: Option<&'a str>,
        client: &'a ClientInfo,
    ) -> Flow<'a, auth_core::PasskeyCredential> {
        Box::pin(AuthService::finish_passkey_registration(
            self, caller, ceremony, credential, name, client,
        ))
    }

    fn begin_passkey_login<'a>(&'a self, client: &'a ClientInfo) -> Flow<'a, auth_core::PasskeyChallenge> {
        Box::pin(AuthService::begin_passkey_login(self, client))
    }

    fn finish_passkey_login<'a>(
        &'a self,
        ceremony: &'a str,
        credential: &'a serde_json::Value,
        client: &'a ClientInfo,
    ) -> Flow<'a, LoginSuccess> {
        Box::pin(AuthService::finish_passkey_login(self, ceremony, credential, client))
    }

    fn begin_passkey_second_factor<'a>(
        &'a self,
        challenge: &'a str,
        client: &'a ClientInfo,
    ) -> Flow<'a, auth_core::PasskeyChallenge> {
        Box::pin(AuthService::begin_passkey_second_factor(self, challenge, client))
    }

    fn complete_login_with_passkey<'a>(
        &'a self,
        challenge: &'a str,
        ceremony: &'a str,
        credential: &'a serde_json::Value,
        client: &'a ClientInfo,
    ) -> Flow<'a, LoginSuccess> {
        Box::pin(AuthService::complete_login_with_passkey(
            self, challenge, ceremony, credential, client,
        ))
    }

    fn list_passkeys(&self, user: UserId) -> Flow<'_, Vec<auth_core::PasskeyCredential>> {
        Box::pin(AuthService::list_passkeys(self, user))
    }

    fn rename_passkey<'a>(
        &'a self,
        caller: &'a Caller,
        id: auth_core::PasskeyId,
        name: &'a str,
        client: &'a ClientInfo,
    ) -> Flow<'a, ()> {
        Box::pin(AuthService::rename_passkey(self, caller, id, name, client))
    }

    fn delete_passkey<'a>(
        &'a self,
        caller: &'a Caller,
        id: auth_core::PasskeyId,
        client: &'a ClientInfo,
    ) -> Flow<'a, ()> {
        Box::pin(AuthService::delete_passkey(self, caller, id, client))
    }
}

/// The deletion flows, for a store that deletes accounts whole.
trait DeletionFlows: Send + Sync {
    fn delete_account<'a>(&'a self, caller: Caller, password: Option<Password>, client: &'a ClientInfo)
    -> Flow<'a, ()>;
    fn delete_user<'a>(&'a self, user: UserId, client: &'a ClientInfo) -> Flow<'a, ()>;
}

impl<S: AuthStore + AccountDeletionStore + 'static> DeletionFlows for AuthService<S> {
    fn delete_account<'a>(
        &'a self,
        caller: Caller,
        password: Option<Password>,
        client: &'a ClientInfo,
    ) -> Flow<'a, ()> {
        Box::pin(AuthService::delete_account(self, caller, password, client))
    }

    fn delete_user<'a>(&'a self, user: UserId, client: &'a ClientInfo) -> Flow<'a, ()> {
        Box::pin(AuthService::delete_user(self, user, client))
    }
}

/// The email-change flows, for a store that keeps requested changes.
trait EmailChangeFlows: Send + Sync {
    fn request_email_change<'a>(
        &'a self,
        caller: Caller,
        new_email: &'a str,
        password: Option<Password>,
        client: &'a ClientInfo,
    ) -> Flow<'a, Option<Delivery>>;
    fn confirm_email_change<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, User>;
    fn undo_email_change<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, User>;
}

impl<S: AuthStore + EmailChangeStore + 'static> EmailChangeFlows for AuthService<S> {
    fn request_email_change<'a>(
        &'a self,
        caller: Caller,
        new_email: &'a str,
        password: Option<Password>,
        client: &'a ClientInfo,
    ) -> Flow<'a, Option<Delivery>> {
        Box::pin(AuthService::request_email_change(
            self, caller, new_email, password, client,
        ))
    }

    fn confirm_email_change<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, User> {
        Box::pin(AuthService::confirm_email_change(self, token, client))
    }

    fn undo_email_change<'a>(&'a self, token: &'a str, client: &'a ClientInfo) -> Flow<'a, User> {
        Box::pin(AuthService::undo_email_change(self, token, client))
    }
}

trait AdminFlows: Send + Sync {
    fn list_users(&self, after: Option<UserId>, limit: u32) -> Flow<'_, Vec<User>>;
    fn search_users<'a>(&'a self, prefix: &'a str, after: Option<UserId>, limit: u32) -> Flow<'a, Vec<User>>;
    fn invite<'a>(&'a self, email: &'a str, roles: BTreeSet<Role>, client: &'a ClientInfo) -> Flow<'a, Invitation>;
    fn set_roles<'a>(&'a self, user: UserId, roles: BTreeSet<Role>, client: &'a ClientInfo) -> Flow<'a, User>;
}

impl<S: AuthStore + UserDirectory + RoleStore + 'static> AdminFlows for AuthService<S> {
    fn list_users(&self, after: Option<UserId>, limit: u32) -> Flow<'_, Vec<User>> {
        Box::pin(AuthService::list_users(self, after, limit))
    }

    fn search_users<'a>(&'a self, prefix: &'a str, after: Option<UserId>, limit: u32) -> Flow<'a, Vec<User>> {
        Box::pin(AuthService::search_users(self, prefix, after, limit))
    }

    fn invite<'a>(&'a self, email: &'a str, roles: BTreeSet<Role>, client: &'a ClientInfo) -> Flow<'a, Invitation> {
        Box::pin(AuthService::invite(self, email, roles, client))
    }

    fn set_roles<'a>(&'a self, user: UserId, roles: BTreeSet<Role>, client: &'a ClientInfo) -> Flow<'a, User> {
        Box::pin(AuthService::set_roles(self, user, roles, client))
    }
}

/// The two-factor flows, for stores that keep second factors.
trait MfaFlows: Send + Sync {
    fn complete_login<'a>(
        &'a self,
        challenge: &'a str,
        code: SecondFactorCode,
        client: &'a ClientInfo,
    ) -> Flow<'a, LoginSuccess>;
    fn begin_totp_enrolment<'a>(
        &'a self,
        caller: &'a Caller,
        password: Password,
        client: &'a ClientInfo,
    ) -> Flow<'a, TotpEnrolment>;
    fn confirm_totp<'a>(
        &'a self,
        caller: &'a Caller,
        code: &'a str,
        client: &'a ClientInfo,
    ) -> Flow<'a, NewRecoveryCodes>;
    fn disable_totp<'a>(
        &'a self,
        caller: &'a Caller,
        password: Password,
        code: SecondFactorCode,
        client: &'a ClientInfo,
    ) -> Flow<'a, ()>;
    fn regenerate_recovery_codes<'a>(
        &'a self,
        caller: &'a Caller,
        password: Password,
        client: &'a ClientInfo,
    ) -> Flow<'a, NewRecoveryCodes>;
    fn second_factor_status<'a>(&'a self, user: &'a User) -> Flow<'a, SecondFactorStatus>;
}

impl<S: AuthStore + SecondFactorStore + 'static> MfaFlows for AuthService<S> {
    fn complete_login<'a>(
        &'a self,
        challenge: &'a str,
        code: SecondFactorCode,
        client: &'a ClientInfo,
    ) -> Flow<'a, LoginSuccess> {
        Box::pin(AuthService::complete_login(self, challenge, code, client))
    }

    fn begin_totp_enrolment<'a>(
        &'a self,
        caller: &'a Caller,
        password: Password,
        client: &'a ClientInfo,
    ) -> Flow<'a, TotpEnrolment> {
        Box::pin(AuthService::begin_totp_enrolment(self, caller, password, client))
    }

    fn confirm_totp<'a>(
        &'a self,
        caller: &'a Caller,
        code: &'a str,
        client: &'a ClientInfo,
    ) -> Flow<'a, NewRecoveryCodes> {
        Box::pin(AuthService::confirm_totp(self, caller, code, client))
    }

    fn disable_totp<'a>(
        &'a self,
        caller: &'a Caller,
        password: Password,
        code: SecondFactorCode,
        client: &'a ClientInfo,
    ) -> Flow<'a, ()> {
        Box::pin(AuthService::disable_totp(self, caller, password, code, client))
    }

    fn regenerate_recovery_codes<'a>(
        &'a self,
        caller: &'a Caller,
        password: Password,
        client: &'a ClientInfo,
    ) -> Flow<'a, NewRecoveryCodes> {
        Box::pin(AuthService::regenerate_recovery_codes(self, caller, password, client))
    }

    fn second_factor_status<'a>(&'a self, user: &'a User) -> Flow<'a, SecondFactorStatus> {
        Box::pin(AuthService::second_factor_status(self, user))
    }
}

/// The flows of sign-in through identity providers, for stores that keep external
/// identities.
trait ExternalFlows: Send + Sync {
    fn identity_providers(&self) -> Vec<String>;
    fn begin_external_login<'a>(
        &'a self,
        provider: &'a str,
        next: &'a str,
        code_challenge: Option<&'a str>,
        client: &'a ClientInfo,
    ) -> Flow<'a, ExternalLoginStart>;
    fn begin_identity_link<'a>(
        &'a self,
        caller: &'a Caller,
        provider: &'a str,
        next: &'a str,
        client: &'a ClientInfo,
    ) -> Flow<'a, ExternalLoginStart>;
    fn finish_external_login<'a>(
        &'a self,
        provider: &'a str,
        callback: ExternalCallback<'a>,
        binding: Option<&'a str>,
        client: &'a ClientInfo,
    ) -> Pin<Box<dyn Future<Output = Result<ExternalLoginFinish, ExternalLoginFailure>> + Send + 'a>>;
    fn exchange_external_login<'a>(
        &'a self,
        code: &'a str,
        proof: ExchangeProof<'a>,
        client: &'a ClientInfo,
    ) -> Flow<'a, LoginOutcome>;
    fn list_identities(&self, user: UserId) -> Flow<'_, Vec<LinkedIdentity>>;
    fn unlink_identity<'a>(&'a self, caller: &'a Caller, id: IdentityId, client: &'a ClientInfo) -> Flow<'a, ()>;
}

impl<S: AuthStore + IdentityStore + 'static> ExternalFlows for AuthService<S> {
    fn identity_providers(&self) -> Vec<String> {
        AuthService::identity_providers(self)
            .map(|name| name.as_str().to_owned())
            .collect()
    }

    fn begin_external_login<'a>(
        &'a self,
        provider: &'a str,
        next: &'a str,
        code_challenge: Option<&'a str>,
        client: &'a ClientInfo,
    ) -> Flow<'a, ExternalLoginStart> {
        match code_challenge {
            Some(challenge) => Box::pin(AuthService::begin_external_login_for_app(
                self, provider, next, challenge, client,
            )),
            None => Box::pin(AuthService::begin_external_login(self, provider, next, client)),
        }
    }

    fn begin_identity_link<'a>(
        &'a self,
        caller: &'a Caller,
        provider: &'a str,
        next: &'a str,
        client: &'a ClientInfo,
    ) -> Flow<'a, ExternalLoginStart> {
        Box::pin(AuthService::begin_identity_link(self, caller, provider, next, client))
    }

    fn finish_external_login<'a>(
        &'a self,
        provider: &'a str,
        callback: ExternalCallback<'a>,
        binding: Option<&'a str>,
        client: &'a ClientInfo,
    ) -> Pin<Box<dyn Future<Output = Result<ExternalLoginFinish, ExternalLoginFailure>> + Send + 'a>> {
        Box::pin(AuthService::finish_external_login(
            self, provider, callback, binding, client,
        ))
    }

    fn exchange_external_login<'a>(
        &'a self,
        code: &'a str,
        proof: ExchangeProof<'a>,
        client: &'a ClientInfo,
    ) -> Flow<'a, LoginOutcome> {
        Box::pin(AuthService::exchange_external_login(self, code, proof, client))
    }

    fn list_identities(&self, user: UserId) -> Flow<'_, Vec<LinkedIdentity>> {
        Box::pin(AuthService::list_identities(self, user))
    }

    fn unlink_identity<'a>(&'a self, caller: &'a Caller, id: IdentityId, client: &'a ClientInfo) -> Flow<'a, ()> {
        Box::pin(AuthService::unlink_identity(self, caller, id, client))
    }
}
