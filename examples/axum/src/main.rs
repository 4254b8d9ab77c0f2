//! A complete email/password auth server on Axum: `cargo run -p example-axum`.
//!
//! Handlers extract, call [`AuthService`](auth_core::AuthService), and answer: every auth
//! rule lives in `auth-core`, every answer's shape in `example-server` (shared with
//! `example-actix`). The Axum glue is in `glue.rs`.

#![forbid(unsafe_code)]

mod glue;
mod pages;
mod serve;

use std::net::IpAddr;
use std::sync::Arc;

use auth_core::{Password, Role};
use axum::extract::{FromRef, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use example_server::api::{self, SessionView, TokenView, UserView};
use example_server::{App, Auth, ErrorAnswer, Mailer};
use tower_http::trace::TraceLayer;

use glue::{ApiError, Client, CurrentUser, IdPath, JsonBody, LoginBody, json};

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) auth: Arc<Auth>,
    pub(crate) mailer: Mailer,
    pub(crate) trusted_proxy: Option<IpAddr>,
    pub(crate) pages: pages::WebSessions,
    /// Bodies must arrive within this of their request's head.
    pub(crate) body_timeout: std::time::Duration,
    /// The site is HTTPS: every answer carries HSTS.
    pub(crate) https: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    example_server::main("example-axum", serve).await
}

async fn serve(app: App, listener: std::net::TcpListener) -> std::io::Result<()> {
    let state = AppState {
        pages: pages::WebSessions::new(app.secure_cookies, &app.public_url)?,
        auth: app.auth,
        mailer: app.mailer,
        trusted_proxy: app.trusted_proxy,
        body_timeout: app.limits.body_timeout,
        https: app.https,
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
    Router::new()
        .route("/register", post(register))
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/token/refresh", post(refresh))
        .route("/logout", post(logout))
        .route("/logout/all", post(logout_all))
        .route("/sessions", get(sessions))
        .route("/sessions/{id}", axum::routing::delete(revoke_session))
        .route("/password/change", post(change_password))
        .route("/password/forgot", post(forgot_password))
        .route("/password/reset", post(reset_password))
        .route("/email/verification", post(request_verification))
        .route("/email/verify", post(verify_email))
        .route("/admin/users", get(list_users))
        .route("/admin/users/{id}/disable", post(disable_user))
        .route("/admin/users/{id}/enable", post(enable_user))
        .route("/admin/users/{id}/roles", put(set_roles))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/health", get(health))
        .merge(
            Router::new()
                .route("/", get(pages::home))
                .route("/ui/register", get(pages::register_page).post(pages::register_submit))
                .route("/ui/login", get(pages::login_page).post(pages::login_submit))
                .route("/ui/logout", get(pages::logout_page).post(pages::logout_submit))
                .route("/ui/password/forgot", get(pages::forgot_page).post(pages::forgot_submit))
                .route("/ui/password/reset", get(pages::reset_page).post(pages::reset_submit))
                .route("/ui/email/verify", get(pages::verify_page).post(pages::verify_submit))
                .layer(axum::middleware::map_response(pages::page_headers)),
        )
        .fallback(|| async { ApiError(ErrorAnswer::no_route()) })
        .method_not_allowed_fallback(|| async { ApiError(ErrorAnswer::method_not_allowed()) })
        .layer(axum::extract::DefaultBodyLimit::max(example_server::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.https, security_headers))
        // The path only: reset and verification links carry their token in the query.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<axum::body::Body>| {
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
                })
                // Server errors are logged once, with their cause, where they are answered
                // (example_server::ErrorAnswer); a 503 `busy` is load shedding, not an error.
                .on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .with_state(state)
}

/// Requests no route may see (HTTP/1.1 without `Host`, an overlong URI) answered as on
/// Actix; `Cache-Control: no-store` on answers to requests with credentials, HSTS on HTTPS
/// sites, decided by `example_server::http::response_headers`.
async fn security_headers(
    State(https): State<bool>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let credentials =
        headers.contains_key(axum::http::header::AUTHORIZATION) || headers.contains_key(axum::http::header::COOKIE);
    let mut response =
        if request.version() == axum::http::Version::HTTP_11 && !headers.contains_key(axum::http::header::HOST) {
            // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400; answered as Actix's
            // parser answers it (no body, connection closed), so both servers agree.
            (StatusCode::BAD_REQUEST, [(axum::http::header::CONNECTION, "close")]).into_response()
        } else if request.uri().path_and_query().map_or(0, |uri| uri.as_str().len()) > example_server::MAX_URI_BYTES {
            ApiError(ErrorAnswer::uri_too_long()).into_response()
        } else {
            next.run(request).await
        };
    let has_cache_control = response.headers().contains_key(axum::http::header::CACHE_CONTROL);
    for (name, value) in example_server::http::response_headers(credentials, has_cache_control, https) {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(name),
            axum::http::HeaderValue::from_static(value),
        );
    }
    response
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.auth)
    }
}

// ---------------------------------------------------------------- handlers

async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::Credentials>,
) -> Result<Response, ApiError> {
    let user = state
        .auth
        .register(&body.email, Password::new(body.password), &client)
        .await?;
    Ok(json(StatusCode::CREATED, &[], &UserView::from(&user)))
}

async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    LoginBody(body): LoginBody,
) -> Result<Response, ApiError> {
    let success = state
        .auth
        .login(&body.email, Password::new(body.password), &client)
        .await?
        // These servers offer no second-factor step: such a login is refused.
        .signed_in()?;
    Ok(json(
        StatusCode::OK,
        &api::TOKEN_HEADERS,
        &TokenView::from(&success.tokens),
    ))
}

async fn me(CurrentUser(me): CurrentUser) -> Json<UserView> {
    Json(UserView::from(&me.user))
}

async fn refresh(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::RefreshBody>,
) -> Result<Response, ApiError> {
    let pair = state.auth.refresh(&body.refresh_token, &client).await?;
    Ok(json(StatusCode::OK, &api::TOKEN_HEADERS, &TokenView::from(&pair)))
}

async fn logout(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::RefreshBody>,
) -> Result<StatusCode, ApiError> {
    state.auth.logout(&body.refresh_token, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn logout_all(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.auth.logout_all(me.user.id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sessions(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let sessions = state.auth.list_sessions(me.user.id).await?;
    let current = me.claims.session_id();
    Ok(Json(sessions.iter().map(|s| SessionView::new(s, current)).collect()))
}

async fn revoke_session(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .revoke_session(me.user.id, api::session_id(&id)?, &client)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn change_password(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ChangePasswordBody>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .change_password(
            me.user.id,
            Password::new(body.current_password),
            Password::new(body.new_password),
            &client,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The same answer whether or not the account exists; the mail leaves off the request path.
async fn forgot_password(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::ForgotBody>,
) -> Result<Response, ApiError> {
    if let Some(delivery) = state.auth.request_password_reset(&body.email, &client).await? {
        state.mailer.send_later(delivery);
    }
    Ok(json(StatusCode::ACCEPTED, &[], &api::ForgotAnswer::default()))
}

async fn reset_password(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::ResetBody>,
) -> Result<Response, ApiError> {
    state
        .auth
        .reset_password(&body.token, Password::new(body.new_password), &client)
        .await?;
    Ok((StatusCode::NO_CONTENT, [api::NO_REFERRER]).into_response())
}

async fn request_verification(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
) -> Result<StatusCode, ApiError> {
    if let Some(delivery) = state.auth.request_email_verification(me.user.id, &client).await? {
        state.mailer.send_later(delivery);
    }
    Ok(StatusCode::ACCEPTED)
}

async fn verify_email(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::TokenBody>,
) -> Result<StatusCode, ApiError> {
    state.auth.verify_email(&body.token, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- administration

async fn list_users(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<UserView>>, ApiError> {
    me.require_role(&Role::ADMIN)?;
    let page = api::UsersPage::parse(query.as_deref())?;
    let users = state.auth.list_users(page.after, page.limit).await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

async fn disable_user(
    state: State<AppState>,
    client: Client,
    me: CurrentUser,
    id: IdPath,
) -> Result<StatusCode, ApiError> {
    set_active(state, client, me, id, false).await
}

async fn enable_user(
    state: State<AppState>,
    client: Client,
    me: CurrentUser,
    id: IdPath,
) -> Result<StatusCode, ApiError> {
    set_active(state, client, me, id, true).await
}

async fn set_active(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
    active: bool,
) -> Result<StatusCode, ApiError> {
    me.require_role(&Role::ADMIN)?;
    state.auth.set_active(api::account_id(&id)?, active, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_roles(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<api::RolesBody>,
) -> Result<StatusCode, ApiError> {
    me.require_role(&Role::ADMIN)?;
    let roles = body.roles()?;
    state.auth.set_roles(api::account_id(&id)?, roles, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- keys and health

async fn jwks(State(state): State<AppState>) -> Response {
    Json(state.auth.tokens().jwks()).into_response()
}

async fn health(State(state): State<AppState>) -> Result<Json<api::Health>, ApiError> {
    state.auth.check_store().await?;
    Ok(Json(api::Health::default()))
}
