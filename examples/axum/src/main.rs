//! A complete email/password auth server on Axum: `cargo run -p example-axum`.
//!
//! The API is `auth-axum`'s router, mounted whole; this server adds what a deployment
//! needs around it (configuration, the store, mail, the hardened accept loop in
//! `serve.rs`, security headers) and the browser pages (`pages.rs`). Every auth rule
//! lives in `auth-core`, every answer in `auth-http` (shared with `example-actix`).

#![forbid(unsafe_code)]

mod pages;
mod serve;

use std::sync::Arc;

use auth_axum::{ApiError, Endpoints};
use auth_http::ErrorAnswer;
use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use example_server::{App, Auth, Mailer};
use tower_http::cors::{AllowCredentials, AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The API's endpoints, which `auth-axum`'s extractors read.
    pub(crate) endpoints: Endpoints,
    /// The same service, typed, for the pages' session flows.
    pub(crate) auth: Arc<Auth>,
    pub(crate) mailer: Mailer,
    pub(crate) pages: pages::PageCookies,
    /// The pages' templates, stylesheet and icon.
    pub(crate) views: pages::Views,
    /// The site is HTTPS: every answer carries HSTS.
    pub(crate) https: bool,
    /// `AUTH_CORS_ORIGINS`: the origins allowed to call the API from their scripts.
    pub(crate) cors: Option<example_server::CorsPolicy>,
}

impl FromRef<AppState> for Endpoints {
    fn from_ref(state: &AppState) -> Self {
        state.endpoints.clone()
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The page templates are checked before the server says it listens.
    let views = |app: &App| pages::Views::load(app.ui_templates.as_deref(), &app.ui_site_name);
    example_server::main("example-axum", views, serve).await
}

async fn serve(app: App, views: pages::Views, listener: std::net::TcpListener) -> std::io::Result<()> {
    let state = AppState {
        pages: pages::PageCookies::new(app.secure_cookies, &app.public_url, &app.page_key)?,
        views,
        endpoints: app.endpoints(),
        auth: app.auth,
        mailer: app.mailer,
        https: app.https,
        cors: app.cors,
    };
    serve::serve(
        tokio::net::TcpListener::from_std(listener)?,
        router(state),
        app.limits,
        example_server::shutdown_signal(),
    )
    .await
}

pub(crate) fn router(state: AppState) -> Router {
    let cors = state.cors.as_ref().map(cors_layer);
    let routes = auth_axum::router(&state.endpoints)
        .merge(
            Router::new()
                .route("/", get(pages::home))
                .route("/ui/register", get(pages::register_page).post(pages::register_submit))
                .route("/ui/login", get(pages::login_page).post(pages::login_submit))
                .route("/ui/login/code", post(pages::login_code_submit))
                .route("/ui/mfa", get(pages::mfa_page))
                .route("/ui/mfa/setup", post(pages::setup_submit))
                .route("/ui/mfa/confirm", post(pages::confirm_submit))
                .route("/ui/mfa/recovery-codes", post(pages::recovery_codes_submit))
                .route("/ui/mfa/disable", post(pages::disable_submit))
                .route("/ui/logout", get(pages::logout_page).post(pages::logout_submit))
                .route("/ui/logout/all", post(pages::logout_all_submit))
                .route("/ui/sessions/revoke", post(pages::revoke_session_submit))
                .route(
                    "/ui/password/change",
                    get(pages::password_change_page).post(pages::password_change_submit),
                )
                .route(
                    "/ui/password/forgot",
                    get(pages::forgot_page).post(pages::forgot_submit),
                )
                .route("/ui/password/reset", get(pages::reset_page).post(pages::reset_submit))
                .route("/ui/email/verify", get(pages::verify_page).post(pages::verify_submit))
                .route("/ui/email/verify/request", post(pages::verify_request_submit))
                .route("/ui/account/export", get(pages::account_export))
                .route(
                    "/ui/account/delete",
                    get(pages::account_delete_page).post(pages::account_delete_submit),
                )
                .route(
                    "/ui/email/change",
                    get(pages::email_change_page).post(pages::email_change_submit),
                )
                .route(
                    "/ui/email/change/confirm",
                    get(pages::email_change_confirm_page).post(pages::email_change_confirm_submit),
                )
                .route(
                    "/ui/email/change/undo",
                    get(pages::email_change_undo_page).post(pages::email_change_undo_submit),
                )
                .route(
                    "/ui/oauth/finish",
                    get(pages::oauth_finish).head(pages::oauth_finish_head),
                )
                .route("/ui/oauth/{provider}/start", get(pages::oauth_start))
                .route("/ui/oauth/{provider}/link", post(pages::link_submit))
                .route("/ui/identities/unlink", post(pages::unlink_submit))
                .route("/ui/passkeys/login/start", post(pages::passkey_login_start))
                .route("/ui/passkeys/login", post(pages::passkey_login_submit))
                .route("/ui/passkeys/register/start", post(pages::passkey_register_start))
                .route("/ui/passkeys/register", post(pages::passkey_register_submit))
                .route("/ui/passkeys/remove", post(pages::passkey_remove_submit))
                .layer(axum::middleware::map_response(pages::page_headers)),
        )
        // Cacheable (their URLs change with their content), so outside the pages' no-store.
        .route("/ui/style.css", get(pages::stylesheet))
        .route("/ui/icon.svg", get(pages::icon))
        .route("/ui/passkeys.js", get(pages::passkey_script))
        .fallback(auth_axum::handlers::no_route)
        .method_not_allowed_fallback(auth_axum::handlers::method_not_allowed);
    // Without AUTH_CORS_ORIGINS no layer at all: the answers stay exactly as before.
    let routes = match cors {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    routes
        .layer(axum::middleware::from_fn_with_state(state.https, security_headers))
        // The path only: reset and verification links carry their token in the query.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                    // At `debug`, like the request and response lines: at the default
                    // `info` a span per request would cost more than the request's own
                    // store read (benches/BENCHMARKS.md), and would say nothing.
                    tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
                })
                // Server errors are logged once, with their cause, where they are answered
                // (auth_http::ErrorAnswer); a 503 `busy` is load shedding, not an error.
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .with_state(state)
}

/// Cross-origin access for the listed origins only, as `example_server::CorsPolicy`
/// decides it: their `Origin` echoed with `Access-Control-Allow-Credentials: true`, the
/// API's methods and headers, `Max-Age` for preflights, `Vary: origin` on every answer.
/// Any other origin gets no CORS header, so its scripts cannot read the answer.
fn cors_layer(policy: &example_server::CorsPolicy) -> CorsLayer {
    use axum::http::{HeaderName, HeaderValue, Method};
    // The policy's origins and the constants are valid header values; one that were not
    // would only never match.
    let origins: Vec<HeaderValue> = policy
        .origins()
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    let listed = origins.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        // Only beside an allowed origin, not on every answer.
        .allow_credentials(AllowCredentials::predicate(move |origin, _| listed.contains(origin)))
        .allow_methods(
            example_server::CORS_METHODS
                .iter()
                .filter_map(|method| Method::from_bytes(method.as_bytes()).ok())
                .collect::<Vec<_>>(),
        )
        .allow_headers(example_server::CORS_REQUEST_HEADERS.map(HeaderName::from_static))
        .expose_headers(example_server::CORS_EXPOSED_HEADERS.map(HeaderName::from_static))
        .max_age(example_server::CORS_MAX_AGE)
}

/// Requests no route may see (HTTP/1.1 without `Host`, an overlong URI) answered as on
/// Actix; `Cache-Control: no-store` on answers to requests with credentials, HSTS on HTTPS
/// sites, decided by `auth_http::headers::response_headers`.
async fn security_headers(
    State(https): State<bool>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let credentials =
        headers.contains_key(axum::http::header::AUTHORIZATION) || headers.contains_key(axum::http::header::COOKIE);
    let mut response = if request.version() == axum::http::Version::HTTP_11
        && !headers.contains_key(axum::http::header::HOST)
    {
        // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400; answered as Actix's
        // parser answers it (no body, connection closed), so both servers agree.
        (StatusCode::BAD_REQUEST, [(axum::http::header::CONNECTION, "close")]).into_response()
    } else if request.uri().path_and_query().map_or(0, |uri| uri.as_str().len()) > auth_http::MAX_URI_BYTES {
        ApiError(ErrorAnswer::uri_too_long()).into_response()
    } else if auth_http::headers_over_limits(headers.iter().map(|(name, value)| (name.as_str().len(), value.len()))) {
        ApiError(ErrorAnswer::header_fields_too_large()).into_response()
    } else {
        next.run(request).await
    };
    // tower-http's CorsLayer exposes headers on every answer; like every other CORS
    // header, they go only beside an allowed origin.
    if !response
        .headers()
        .contains_key(axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN)
    {
        response
            .headers_mut()
            .remove(axum::http::header::ACCESS_CONTROL_EXPOSE_HEADERS);
    }
    let has_cache_control = response.headers().contains_key(axum::http::header::CACHE_CONTROL);
    for (name, value) in auth_http::headers::response_headers(credentials, has_cache_control, https) {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        );
    }
    response
}
