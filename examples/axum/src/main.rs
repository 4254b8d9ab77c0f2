//! A complete email/password auth server on Axum: `cargo run -p example-axum`.
//!
//! Handlers extract, call [`AuthService`], and map the error: every auth rule lives in
//! `auth-core`. The reusable glue is in `glue.rs`.

#![forbid(unsafe_code)]

mod config;
mod glue;
mod mail;
mod pages;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use auth_core::{
    AuthService, AuthStore, Password, Role, Session, SessionId, SigningKey, TokenPair, Tokens, User, UserId,
};
use auth_store_postgres::PostgresStore;
use auth_store_sqlite::SqliteStore;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::trace::TraceLayer;

use config::{Config, Database};
use glue::{ApiError, Client, CurrentUser, JsonBody, invalid_request};
use mail::Mailer;

/// Largest request body accepted (413 beyond).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

type Auth = AuthService<Arc<dyn AuthStore>>;

/// What every handler can reach.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) auth: Arc<Auth>,
    pub(crate) mailer: Mailer,
    pub(crate) trusted_proxy: Option<IpAddr>,
    pub(crate) pages: pages::WebSessions,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let config = Config::from_env()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        [] | ["serve"] => {
            // Before touching the database: a missing key is a configuration error.
            let secret = config::secret_key(&config)?;
            let store = open_store(&config.database).await?;
            serve(config, store, &secret).await
        }
        ["grant-role", email, role] => {
            let store = open_store(&config.database).await?;
            grant_role(&config, store, email, role).await
        }
        _ => Err("usage: example-axum [serve] | grant-role <email> <role>".to_owned()),
    }
}

async fn open_store(database: &Database) -> Result<Arc<dyn AuthStore>, String> {
    Ok(match database {
        Database::Sqlite(path) => {
            let store = SqliteStore::open(path)
                .await
                .map_err(|error| format!("cannot open {}: {error}", path.display()))?;
            Arc::new(store)
        }
        Database::Postgres(url, schema) => {
            let store = PostgresStore::connect(url)
                .await
                .map_err(|error| format!("cannot connect to PostgreSQL: {error}"))?
                .with_schema(schema)
                .map_err(|error| format!("AUTH_DATABASE_SCHEMA: {error}"))?;
            store
                .migrate()
                .await
                .map_err(|error| format!("cannot migrate PostgreSQL: {error}"))?;
            Arc::new(store)
        }
    })
}

fn service(config: &Config, store: Arc<dyn AuthStore>, secret: &[u8]) -> Result<Auth, String> {
    let key = SigningKey::hs256(secret).map_err(|error| format!("SECRET_KEY: {error}"))?;
    let tokens = match &config.audience {
        Some(audience) => Tokens::new(key, config.public_url.clone(), audience.clone()),
        // Plain HS256 tokens that other stacks sharing the key (the seeds' python-jose)
        // verify as they are; set AUTH_JWT_AUDIENCE to bind tokens to this API.
        None => Tokens::new(key, config.public_url.clone(), "example-axum").without_audience_claim(),
    }
    .with_ttl(config.access_token_ttl);
    let mut auth = AuthService::new(store, tokens).with_rate_limits(config.rate_limits.clone());
    if config.hash_threads.is_some() || config.hash_queue.is_some() {
        let threads = config
            .hash_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let mut pool = auth_core::HashPool::new(threads);
        if let Some(queue) = config.hash_queue {
            pool = pool.with_max_queue(queue);
        }
        auth = auth.with_hash_pool(pool);
    }
    Ok(auth)
}

async fn serve(config: Config, store: Arc<dyn AuthStore>, secret: &[u8]) -> Result<(), String> {
    let auth = Arc::new(service(&config, store, secret)?);
    let state = AppState {
        auth,
        mailer: match &config.smtp_url {
            Some(url) => Mailer::smtp(url, config.mail_from.clone(), config.public_url.clone())?,
            None => Mailer::outbox(
                config.outbox.clone(),
                config.mail_from.clone(),
                config.public_url.clone(),
            ),
        },
        trusted_proxy: config.trusted_proxy,
        pages: pages::WebSessions::new(config.secure_cookies),
    };
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", config.bind))?;
    let bound = listener.local_addr().map_err(|error| error.to_string())?;
    // Tests and scripts wait for this line.
    tracing::info!(address = %bound, "listening");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|error| error.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn grant_role(config: &Config, store: Arc<dyn AuthStore>, email: &str, role: &str) -> Result<(), String> {
    // Issues no token: any key will do, and none is required.
    let mut throwaway = [0u8; 32];
    getrandom::fill(&mut throwaway).map_err(|error| error.to_string())?;
    let auth = service(config, store, &throwaway)?;
    let role = Role::new(role).map_err(|error| format!("{role}: {error}"))?;
    let address = auth_core::Email::parse(email).map_err(|error| format!("{email}: {error}"))?;
    let user = auth
        .store()
        .find_user_by_email(&address)
        .await
        .map_err(|error| error.to_string())?
        .ok_or_else(|| format!("no account for {}", address.as_str()))?;
    let mut roles = user.roles.clone();
    roles.insert(role.clone());
    auth.set_roles(user.id, roles, &auth_core::ClientInfo::new(Some("grant-role"), None))
        .await
        .map_err(|error| error.to_string())?;
    println!("{} now has the role {}", user.email.as_str(), role.as_str());
    Ok(())
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
        .fallback(|| async {
            ApiError::Request {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                detail: "no such route".to_owned(),
            }
        })
        .method_not_allowed_fallback(|| async {
            ApiError::Request {
                status: StatusCode::METHOD_NOT_ALLOWED,
                code: "method_not_allowed",
                detail: "this route does not take this method".to_owned(),
            }
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        // The path only: reset and verification links carry their token in the query.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<axum::body::Body>| {
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
        }))
        .with_state(state)
}

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.auth)
    }
}

// ---------------------------------------------------------------- views

/// An account as the API shows it: never a hash.
#[derive(Serialize)]
struct UserView {
    id: UserId,
    email: String,
    is_active: bool,
    email_verified: bool,
    roles: BTreeSet<String>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            email: user.email.as_str().to_owned(),
            is_active: user.is_active,
            email_verified: user.email_verified_at.is_some(),
            roles: user.roles.iter().map(|role| role.as_str().to_owned()).collect(),
        }
    }
}

#[derive(Serialize)]
struct TokenView {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: String,
}

/// A token answer, never cached.
fn tokens_response(pair: &TokenPair) -> Response {
    let body = TokenView {
        access_token: pair.access_token.expose_secret().to_owned(),
        token_type: "bearer",
        expires_in: pair.access_token.expires_in().as_secs(),
        refresh_token: pair.refresh_token.expose_secret().to_owned(),
    };
    (
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        Json(body),
    )
        .into_response()
}

#[derive(Serialize)]
struct SessionView {
    id: SessionId,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_used_at: time::OffsetDateTime,
    user_agent: Option<String>,
    ip: Option<IpAddr>,
    current: bool,
}

impl SessionView {
    fn new(session: &Session, current: Option<SessionId>) -> Self {
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

// ---------------------------------------------------------------- handlers

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

async fn register(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<impl IntoResponse, ApiError> {
    let user = state
        .auth
        .register(&body.email, Password::new(body.password), &client)
        .await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// `username`/`password` as a form (the OAuth2 password flow of the seeds' curl), or
/// `{email, password}` as JSON.
struct LoginBody(Credentials);

#[derive(Deserialize)]
struct OAuthForm {
    username: String,
    password: String,
}

impl<S: Send + Sync> FromRequest<S> for LoginBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        if form {
            let axum::Form(OAuthForm { username, password }) = axum::Form::from_request(request, state).await?;
            Ok(Self(Credentials {
                email: username,
                password,
            }))
        } else {
            let JsonBody(credentials) = JsonBody::from_request(request, state).await?;
            Ok(Self(credentials))
        }
    }
}

async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    LoginBody(body): LoginBody,
) -> Result<Response, ApiError> {
    let success = state
        .auth
        .login(&body.email, Password::new(body.password), &client)
        .await?;
    Ok(tokens_response(&success.tokens))
}

async fn me(CurrentUser(me): CurrentUser) -> Json<UserView> {
    Json(UserView::from(&me.user))
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<RefreshBody>,
) -> Result<Response, ApiError> {
    let pair = state.auth.refresh(&body.refresh_token, &client).await?;
    Ok(tokens_response(&pair))
}

async fn logout(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<RefreshBody>,
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
    let id: SessionId = id.parse().map_err(|_| auth_core::AuthError::SessionNotFound)?;
    state.auth.revoke_session(me.user.id, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ChangePasswordBody {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<ChangePasswordBody>,
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

#[derive(Deserialize)]
struct ForgotBody {
    email: String,
}

/// The same answer whether or not the account exists; the mail leaves off the request path.
pub(crate) const FORGOT_ANSWER: &str = "If an account exists for this address, a reset link is on its way.";

async fn forgot_password(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<ForgotBody>,
) -> Result<Response, ApiError> {
    if let Some(delivery) = state.auth.request_password_reset(&body.email, &client).await? {
        state.mailer.send_later(delivery);
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "detail": FORGOT_ANSWER })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct ResetBody {
    token: String,
    new_password: String,
}

async fn reset_password(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<ResetBody>,
) -> Result<Response, ApiError> {
    state
        .auth
        .reset_password(&body.token, Password::new(body.new_password), &client)
        .await?;
    // The reset page's token must not leak through a Referer.
    Ok((
        StatusCode::NO_CONTENT,
        [(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"))],
    )
        .into_response())
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

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn verify_email(
    State(state): State<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<TokenBody>,
) -> Result<StatusCode, ApiError> {
    state.auth.verify_email(&body.token, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- administration

#[derive(Deserialize)]
struct Page {
    after: Option<String>,
    limit: Option<u32>,
}

async fn list_users(
    State(state): State<AppState>,
    CurrentUser(me): CurrentUser,
    page: Result<Query<Page>, QueryRejection>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    me.claims.require_role("admin")?;
    let Query(page) = page.map_err(|rejection| invalid_request(rejection.body_text()))?;
    let after = page
        .after
        .map(|id| {
            id.parse::<UserId>()
                .map_err(|_| invalid_request("after: not an account id"))
        })
        .transpose()?;
    let users = state.auth.list_users(after, page.limit.unwrap_or(100)).await?;
    Ok(Json(users.iter().map(UserView::from).collect()))
}

/// The `{id}` of a route; a path that does not decode is "not found", in our format.
struct IdPath(String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Self(id)),
            Err(_) => Err(ApiError::Request {
                status: StatusCode::NOT_FOUND,
                code: "not_found",
                detail: "no such resource".to_owned(),
            }),
        }
    }
}

fn account_id(id: &str) -> Result<UserId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::Auth(auth_core::AuthError::UserNotFound))
}

async fn set_active(
    state: &AppState,
    me: &auth_core::Authenticated,
    id: &str,
    active: bool,
    client: &auth_core::ClientInfo,
) -> Result<StatusCode, ApiError> {
    me.claims.require_role("admin")?;
    state.auth.set_active(account_id(id)?, active, client).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn disable_user(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    set_active(&state, &me, &id, false, &client).await
}

async fn enable_user(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    set_active(&state, &me, &id, true, &client).await
}

#[derive(Deserialize)]
struct RolesBody {
    roles: Vec<String>,
}

async fn set_roles(
    State(state): State<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<RolesBody>,
) -> Result<StatusCode, ApiError> {
    me.claims.require_role("admin")?;
    let roles = body
        .roles
        .iter()
        .map(|name| Role::new(name.as_str()).map_err(|error| invalid_request(format!("role {name:?}: {error}"))))
        .collect::<Result<BTreeSet<_>, _>>()?;
    state.auth.set_roles(account_id(&id)?, roles, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- keys and health

async fn jwks(State(state): State<AppState>) -> Response {
    Json(state.auth.tokens().jwks()).into_response()
}

async fn health(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state.auth.check_store().await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}
