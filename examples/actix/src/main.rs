//! The example auth server on Actix-web: `cargo run -p example-actix`.
//!
//! The same HTTP API, configuration and behaviour as `example-axum` (the browser pages are
//! Axum's only): handlers extract, call [`AuthService`](auth_core::AuthService), and
//! answer. Every auth rule lives in `auth-core`, every answer's shape in `example-server`,
//! and one contract suite (`examples/contract`) holds both servers to the same answers.
//! The Actix glue is in `glue.rs`.

#![forbid(unsafe_code)]

mod glue;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::dev::{Service, ServiceRequest};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, Route, guard, web};
use auth_core::{Password, Role};
use example_server::api::{self, SessionView, TokenView, UserView};
use example_server::{App, Auth, ErrorAnswer, Mailer};
use tracing::Instrument;

use glue::{ApiError, Client, CurrentUser, IdPath, JsonBody, LoginBody, json};

/// What every handler can reach.
pub(crate) struct AppState {
    pub(crate) auth: Arc<Auth>,
    pub(crate) mailer: Mailer,
    pub(crate) trusted_proxy: Option<IpAddr>,
    /// Bodies must arrive within this of their request's head.
    pub(crate) body_timeout: std::time::Duration,
}

type Answer = Result<HttpResponse, ApiError>;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    example_server::main("example-actix", serve).await
}

async fn serve(app: App, listener: std::net::TcpListener) -> std::io::Result<()> {
    let limits = app.limits;
    let https = app.https;
    let state = web::Data::new(AppState {
        auth: app.auth,
        mailer: app.mailer,
        trusted_proxy: app.trusted_proxy,
        body_timeout: limits.body_timeout,
    });
    let open = Arc::new(AtomicUsize::new(0));
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(example_server::MAX_BODY_BYTES))
            .configure(routes)
            .default_service(web::to(|| async { ApiError(ErrorAnswer::no_route()).error_response() }))
            .wrap_fn(move |request: ServiceRequest, service| {
                // Over the connection cap: answered at once and closed, as Axum does.
                let over = request
                    .conn_data::<ConnectionSlot>()
                    .is_some_and(|slot| slot.over_capacity);
                let uri_too_long =
                    request.uri().path_and_query().map_or(0, |uri| uri.as_str().len()) > example_server::MAX_URI_BYTES;
                let credentials = request.headers().contains_key(header::AUTHORIZATION)
                    || request.headers().contains_key(header::COOKIE);
                let refusal = if over {
                    Some(ErrorAnswer::too_many_connections())
                } else if uri_too_long {
                    Some(ErrorAnswer::uri_too_long())
                } else {
                    None
                };
                let response = match refusal {
                    Some(refusal) => Err(refusal),
                    None => Ok(service.call(request)),
                };
                async move {
                    let mut response = match response {
                        Ok(response) => response.await?,
                        Err(refusal) => return Err(ApiError(refusal).into()),
                    };
                    let headers = response.headers_mut();
                    let has_cache_control = headers.contains_key(header::CACHE_CONTROL);
                    for (name, value) in example_server::http::response_headers(credentials, has_cache_control, https) {
                        headers.insert(
                            header::HeaderName::from_static(name),
                            header::HeaderValue::from_static(value),
                        );
                    }
                    Ok(response)
                }
            })
            // The path only: reset and verification links carry their token in the query.
            .wrap_fn(|request: ServiceRequest, service| {
                let span = tracing::info_span!("request", method = %request.method(), path = %request.path());
                let response = service.call(request);
                async move {
                    let response = response.await?;
                    tracing::debug!(status = response.status().as_u16(), "finished processing request");
                    Ok(response)
                }
                .instrument(span)
            })
    })
    // A request's head within the header timeout, also after a kept-alive answer.
    .client_request_timeout(limits.header_timeout)
    .keep_alive(actix_web::http::KeepAlive::Timeout(limits.header_timeout))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    // Beyond the cap, connections are still accepted (and answered 503) up to a margin
    // that stays within the descriptor limit; beyond that, Actix stops accepting.
    .max_connections((limits.max_connections + REFUSAL_MARGIN).div_ceil(workers))
    .workers(workers)
    .on_connect(move |_, extensions| {
        let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
        extensions.insert(ConnectionSlot {
            open: Arc::clone(&open),
            over_capacity: now_open > limits.max_connections,
        });
    })
    .listen(listener)?
    // Signals are `example_server::shutdown_signal`'s, as for every example server.
    .disable_signals()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        example_server::shutdown_signal().await;
        handle.stop(true).await;
    });
    server.await
}

/// Connections accepted beyond the cap, to be answered 503 `busy` and closed.
const REFUSAL_MARGIN: usize = 16;

/// One open connection, counted while its connection data lives (it is dropped with the
/// connection).
struct ConnectionSlot {
    open: Arc<AtomicUsize>,
    over_capacity: bool,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A route's resource; other methods answer 405 in the API's format, with `Allow`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        let mut response = ApiError(ErrorAnswer::method_not_allowed()).error_response();
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
        response
    }))
}

/// GET, and HEAD with the same headers (as HTTP requires, and Axum does).
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

fn routes(config: &mut web::ServiceConfig) {
    config
        .service(resource("/register", "POST").route(web::post().to(register)))
        .service(resource("/login", "POST").route(web::post().to(login)))
        .service(resource("/me", "GET,HEAD").route(get().to(me)))
        .service(resource("/token/refresh", "POST").route(web::post().to(refresh)))
        .service(resource("/logout", "POST").route(web::post().to(logout)))
        .service(resource("/logout/all", "POST").route(web::post().to(logout_all)))
        .service(resource("/sessions", "GET,HEAD").route(get().to(sessions)))
        .service(resource("/sessions/{id}", "DELETE").route(web::delete().to(revoke_session)))
        .service(resource("/password/change", "POST").route(web::post().to(change_password)))
        .service(resource("/password/forgot", "POST").route(web::post().to(forgot_password)))
        .service(resource("/password/reset", "POST").route(web::post().to(reset_password)))
        .service(resource("/email/verification", "POST").route(web::post().to(request_verification)))
        .service(resource("/email/verify", "POST").route(web::post().to(verify_email)))
        .service(resource("/admin/users", "GET,HEAD").route(get().to(list_users)))
        .service(resource("/admin/users/{id}/disable", "POST").route(web::post().to(disable_user)))
        .service(resource("/admin/users/{id}/enable", "POST").route(web::post().to(enable_user)))
        .service(resource("/admin/users/{id}/roles", "PUT").route(web::put().to(set_roles)))
        .service(resource("/.well-known/jwks.json", "GET,HEAD").route(get().to(jwks)))
        .service(resource("/health", "GET,HEAD").route(get().to(health)));
}

// ---------------------------------------------------------------- handlers

async fn register(
    state: web::Data<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::Credentials>,
) -> Answer {
    let user = state
        .auth
        .register(&body.email, Password::new(body.password), &client)
        .await?;
    Ok(json(StatusCode::CREATED, &[], &UserView::from(&user)))
}

async fn login(state: web::Data<AppState>, Client(client): Client, LoginBody(body): LoginBody) -> Answer {
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

async fn me(CurrentUser(me): CurrentUser) -> Answer {
    Ok(json(StatusCode::OK, &[], &UserView::from(&me.user)))
}

async fn refresh(
    state: web::Data<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::RefreshBody>,
) -> Answer {
    let pair = state.auth.refresh(&body.refresh_token, &client).await?;
    Ok(json(StatusCode::OK, &api::TOKEN_HEADERS, &TokenView::from(&pair)))
}

async fn logout(
    state: web::Data<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::RefreshBody>,
) -> Answer {
    state.auth.logout(&body.refresh_token, &client).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn logout_all(state: web::Data<AppState>, Client(client): Client, CurrentUser(me): CurrentUser) -> Answer {
    state.auth.logout_all(me.user.id, &client).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn sessions(state: web::Data<AppState>, CurrentUser(me): CurrentUser) -> Answer {
    let sessions = state.auth.list_sessions(me.user.id).await?;
    let current = me.claims.session_id();
    let views: Vec<SessionView> = sessions.iter().map(|s| SessionView::new(s, current)).collect();
    Ok(json(StatusCode::OK, &[], &views))
}

async fn revoke_session(
    state: web::Data<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Answer {
    state
        .auth
        .revoke_session(me.user.id, api::session_id(&id)?, &client)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn change_password(
    state: web::Data<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ChangePasswordBody>,
) -> Answer {
    state
        .auth
        .change_password(
            me.user.id,
            Password::new(body.current_password),
            Password::new(body.new_password),
            &client,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The same answer whether or not the account exists; the mail leaves off the request path.
async fn forgot_password(
    state: web::Data<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::ForgotBody>,
) -> Answer {
    if let Some(delivery) = state.auth.request_password_reset(&body.email, &client).await? {
        state.mailer.send_later(delivery);
    }
    Ok(json(StatusCode::ACCEPTED, &[], &api::ForgotAnswer::default()))
}

async fn reset_password(
    state: web::Data<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::ResetBody>,
) -> Answer {
    state
        .auth
        .reset_password(&body.token, Password::new(body.new_password), &client)
        .await?;
    Ok(HttpResponse::NoContent().insert_header(api::NO_REFERRER).finish())
}

async fn request_verification(
    state: web::Data<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
) -> Answer {
    if let Some(delivery) = state.auth.request_email_verification(me.user.id, &client).await? {
        state.mailer.send_later(delivery);
    }
    Ok(HttpResponse::Accepted().finish())
}

async fn verify_email(
    state: web::Data<AppState>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::TokenBody>,
) -> Answer {
    state.auth.verify_email(&body.token, &client).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------- administration

async fn list_users(state: web::Data<AppState>, CurrentUser(me): CurrentUser, request: HttpRequest) -> Answer {
    me.require_role(&Role::ADMIN)?;
    let query = request.uri().query();
    let page = api::UsersPage::parse(query)?;
    let users = state.auth.list_users(page.after, page.limit).await?;
    let views: Vec<UserView> = users.iter().map(UserView::from).collect();
    Ok(json(StatusCode::OK, &[], &views))
}

async fn disable_user(state: web::Data<AppState>, client: Client, me: CurrentUser, id: IdPath) -> Answer {
    set_active(&state, client, me, id, false).await
}

async fn enable_user(state: web::Data<AppState>, client: Client, me: CurrentUser, id: IdPath) -> Answer {
    set_active(&state, client, me, id, true).await
}

async fn set_active(
    state: &AppState,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
    active: bool,
) -> Answer {
    me.require_role(&Role::ADMIN)?;
    state.auth.set_active(api::account_id(&id)?, active, &client).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn set_roles(
    state: web::Data<AppState>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<api::RolesBody>,
) -> Answer {
    me.require_role(&Role::ADMIN)?;
    let roles = body.roles()?;
    state.auth.set_roles(api::account_id(&id)?, roles, &client).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------------------- keys and health

async fn jwks(state: web::Data<AppState>) -> Answer {
    Ok(json(StatusCode::OK, &[], &state.auth.tokens().jwks()))
}

async fn health(state: web::Data<AppState>) -> Answer {
    state.auth.check_store().await?;
    Ok(json(StatusCode::OK, &[], &api::Health::default()))
}
