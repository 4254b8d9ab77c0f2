//! [`auth_core`] on [Axum](axum): extractors for the current user ([`CurrentUser`]), a
//! role guard ([`Authorized`]), the client ([`Client`]) and request bodies ([`JsonBody`],
//! [`FormBody`]), error answers in the API's format ([`ApiError`]), and a [`router`] with
//! every route of the HTTP API, to mount whole, under a prefix, or route by route
//! ([`handlers`]).
//!
//! Everything reads one [`Endpoints`] (re-exported from [`auth_http`]) from the router's
//! state: use it as the state, or hold it in yours and derive `FromRef`.
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use std::sync::Arc;
//!
//! use auth_axum::{ApiError, Authorized, CurrentUser, Endpoints};
//! use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
//! use auth_http::Admin;
//! use axum::{Router, routing::get};
//!
//! async fn hello(CurrentUser(me): CurrentUser) -> String {
//!     format!("hello {}", me.user.email.as_str())
//! }
//!
//! async fn report(Authorized(me, ..): Authorized<Admin>) -> Result<String, ApiError> {
//!     Ok(format!("the report, for {}", me.user.id))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
//! let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://app.example", "app")));
//! let endpoints = Endpoints::with_administration(service);
//! let app = Router::new()
//!     .route("/hello", get(hello))
//!     .route("/report", get(report))
//!     .nest("/auth", auth_axum::router(&endpoints))
//!     .with_state(endpoints);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! // The peer address is what rate limits count per client: without it, every request is
//! // refused (500, logged with this fix), never served in one shared bucket.
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod extract;
pub mod handlers;

use auth_http::{Answer, ErrorAnswer};
use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

pub use auth_http::Endpoints;
pub use extract::{
    Authorized, Client, Cookies, CurrentUser, FormBody, IdPath, JsonBody, LinkBody, LoginBody, ProviderPath, body_bytes,
};

/// An error answer in the API's format: `{"error", "detail"}`, its status, and its headers
/// (`WWW-Authenticate` on a 401, `Retry-After` on a 429 or 503). `?` turns an
/// [`AuthError`](auth_core::AuthError) or an [`ErrorAnswer`] into one.
#[derive(Debug)]
pub struct ApiError(pub ErrorAnswer);

impl From<ErrorAnswer> for ApiError {
    fn from(answer: ErrorAnswer) -> Self {
        Self(answer)
    }
}

impl From<auth_core::AuthError> for ApiError {
    fn from(error: auth_core::AuthError) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.0.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        let busy = self.0.is_busy();
        let mut response = (status, headers, self.0.body()).into_response();
        if busy {
            response.extensions_mut().insert(Busy);
        }
        response
    }
}

/// Marks a response that is a 503 `busy` (the hash pool saturated): an extension on the
/// [`ApiError`]'s response, invisible to the client, for a server that wants to act on
/// its own overload, such as making a repeat of the refused request on the same
/// connection wait until the answer's `Retry-After` has passed (the example server does).
///
/// ```
/// use auth_axum::{ApiError, Busy};
/// use axum::response::IntoResponse;
///
/// let busy = auth_core::AuthError::Busy { retry_after: auth_core::RETRY_AFTER };
/// let busy = ApiError(busy.into()).into_response();
/// assert_eq!(busy.status(), 503);
/// assert!(busy.extensions().get::<Busy>().is_some());
/// let refused = ApiError(auth_core::AuthError::InvalidCredentials.into()).into_response();
/// assert!(refused.extensions().get::<Busy>().is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// An endpoint's success answer as a response: its status, its headers (a token answer's
/// `Cache-Control: no-store`, a redirect's `Location`, a `Set-Cookie`), and its JSON body.
#[derive(Debug)]
pub struct Reply(pub Answer);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        for (name, value) in self.0.headers() {
            let value = match value {
                std::borrow::Cow::Borrowed(value) => HeaderValue::from_static(value),
                std::borrow::Cow::Owned(value) => match HeaderValue::from_str(value) {
                    Ok(value) => value,
                    Err(_) => {
                        // The endpoints make their values from URLs and tokens, never
                        // with control characters: a bug, answered as one.
                        return ApiError(ErrorAnswer::misconfigured(
                            "auth-axum: an answer's header value is not valid",
                        ))
                        .into_response();
                    }
                },
            };
            // Appended: a name may repeat (several `Set-Cookie`).
            headers.append(HeaderName::from_static(name), value);
        }
        match self.0.json_body() {
            Some(json) => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                (status, headers, json.to_vec()).into_response()
            }
            None => (status, headers).into_response(),
        }
    }
}

/// Every route of the HTTP API that `endpoints` serves (the mail routes with mail, the
/// `/admin` routes with administration, the two-factor routes with a second factor, the
/// `/oauth` routes with identity providers; see [`Endpoints`]), with the API's 405 answer for
/// a method a route does not take. Mount it whole (`merge`), under a prefix (`nest`), or
/// take single [`handlers`] instead.
///
/// With the default feature `openapi`, it serves `GET /openapi.json` too: the OpenAPI 3.1
/// document of exactly these routes, whose server URL is the prefix the router is nested
/// under. An application that does not publish its API's description builds without the
/// feature (`default-features = false`), and neither the route nor `utoipa` is there.
///
/// ```no_run
/// # fn endpoints() -> auth_axum::Endpoints { unimplemented!() }
/// let endpoints = endpoints();
/// let app: axum::Router = axum::Router::new().nest("/auth", auth_axum::router(&endpoints));
/// ```
pub fn router<S: Clone + Send + Sync + 'static>(endpoints: &Endpoints) -> Router<S> {
    let mut routes = Router::new()
        .route("/register", post(handlers::register))
        .route("/login", post(handlers::login))
        .route(
            "/me",
            if endpoints.serves_account_deletion() {
                get(handlers::me).delete(handlers::delete_me)
            } else {
                get(handlers::me)
            },
        )
        .route("/me/export", get(handlers::export_me))
        .route("/token/refresh", post(handlers::refresh))
        .route("/logout", post(handlers::logout))
        .route("/logout/all", post(handlers::logout_all))
        .route("/sessions", get(handlers::sessions))
        .route("/sessions/{id}", delete(handlers::revoke_session))
        .route("/password/change", post(handlers::change_password))
        .route("/.well-known/jwks.json", get(handlers::jwks))
        .route("/health", get(handlers::health));
    #[cfg(feature = "openapi")]
    {
        routes = routes.route("/openapi.json", get(handlers::openapi));
    }
    if endpoints.serves_mail() {
        routes = routes
            .route("/password/forgot", post(handlers::forgot_password))
            .route("/password/reset", post(handlers::reset_password))
            .route("/email/verification", post(handlers::request_verification))
            .route("/email/verify", post(handlers::verify_email));
    }
    if endpoints.serves_email_change() {
        routes = routes
            .route("/email/change", post(handlers::request_email_change))
            .route("/email/change/confirm", post(handlers::confirm_email_change))
            .route("/email/change/undo", post(handlers::undo_email_change));
    }
    if endpoints.serves_administration() {
        routes = routes
            .route("/admin/users", get(handlers::list_users).post(handlers::invite_user))
            .route("/admin/users/{id}/disable", post(handlers::disable_user))
            .route("/admin/users/{id}/enable", post(handlers::enable_user))
            .route("/admin/users/{id}/roles", put(handlers::set_roles))
            .route(
                "/admin/users/{id}/sessions",
                get(handlers::user_sessions).delete(handlers::end_user_sessions),
            );
        if endpoints.serves_account_deletion() {
            routes = routes.route("/admin/users/{id}", delete(handlers::delete_user));
        }
        if endpoints.serves_audit_log() {
            routes = routes.route("/admin/events", get(handlers::list_events));
        }
    }
    if endpoints.serves_audit_log() {
        routes = routes.route("/me/events", get(handlers::my_events));
    }
    if endpoints.serves_second_factor() {
        routes = routes
            .route("/login/mfa", post(handlers::login_mfa))
            .route("/mfa/totp/setup", post(handlers::totp_setup))
            .route("/mfa/totp/confirm", post(handlers::totp_confirm))
            .route("/mfa/totp/disable", post(handlers::totp_disable))
            .route("/mfa/recovery-codes", post(handlers::regenerate_recovery_codes));
    }
    if endpoints.serves_external_login() {
        routes = routes
            .route("/oauth/providers", get(handlers::oauth_providers))
            .route("/oauth/{provider}/start", get(handlers::oauth_start))
            // GET only: a HEAD (a link preview, a prefetch) would spend the flow's state.
            .route(
                "/oauth/{provider}/callback",
                get(handlers::oauth_callback).head(handlers::oauth_callback_head),
            )
            .route("/oauth/{provider}/link", post(handlers::oauth_link))
            .route("/oauth/exchange", post(handlers::oauth_exchange))
            .route("/me/identities", get(handlers::identities))
            .route("/me/identities/{id}", delete(handlers::unlink_identity));
    }
    #[cfg(feature = "passkeys")]
    if endpoints.serves_passkeys() {
        routes = routes
            .route("/passkeys/register/start", post(handlers::passkey_register_start))
            .route("/passkeys/register/finish", post(handlers::passkey_register_finish))
            .route("/passkeys/login/start", post(handlers::passkey_login_start))
            .route("/passkeys/login/finish", post(handlers::passkey_login_finish))
            .route("/login/mfa/passkey/start", post(handlers::passkey_mfa_start))
            .route("/login/mfa/passkey/finish", post(handlers::passkey_mfa_finish))
            .route("/me/passkeys", get(handlers::passkeys))
            .route(
                "/me/passkeys/{id}",
                axum::routing::patch(handlers::rename_passkey).delete(handlers::delete_passkey),
            );
    }
    routes
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .with_state(endpoints.clone())
}
