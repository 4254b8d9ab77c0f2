//! One handler per route of the HTTP API, for an application that mounts only some of
//! them (or under paths of its own). Each extracts, calls its [`Endpoints`] method, and
//! answers; [`router`](crate::router) mounts them all.
//!
//! ```
//! use axum::routing::post;
//!
//! // Only registration and login, at paths of the application's choosing.
//! let routes: axum::Router<auth_axum::Endpoints> = axum::Router::new()
//!     .route("/signup", post(auth_axum::handlers::register))
//!     .route("/signin", post(auth_axum::handlers::login));
//! ```

use auth_http::{Endpoints, ErrorAnswer, api};
#[cfg(feature = "openapi")]
use axum::extract::OriginalUri;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::{ApiError, Client, Cookies, CurrentUser, IdPath, JsonBody, LinkBody, LoginBody, ProviderPath, Reply};

/// What every handler returns.
pub type Handled = Result<Reply, ApiError>;

/// `POST /register`.
pub async fn register(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::Credentials>,
) -> Handled {
    Ok(Reply(endpoints.register(&client, body).await?))
}

/// `POST /login`: the OAuth2 password form or JSON.
pub async fn login(State(endpoints): State<Endpoints>, Client(client): Client, LoginBody(body): LoginBody) -> Handled {
    Ok(Reply(endpoints.login(&client, body).await?))
}

/// `GET /me`.
pub async fn me(State(endpoints): State<Endpoints>, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.me(&me).await?))
}

/// `POST /token/refresh`.
pub async fn refresh(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::RefreshBody>,
) -> Handled {
    Ok(Reply(endpoints.refresh(&client, body).await?))
}

/// `POST /logout`.
pub async fn logout(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::RefreshBody>,
) -> Handled {
    Ok(Reply(endpoints.logout(&client, body).await?))
}

/// `POST /logout/all`.
pub async fn logout_all(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
) -> Handled {
    Ok(Reply(endpoints.logout_all(&client, &me).await?))
}

/// `GET /sessions`.
pub async fn sessions(State(endpoints): State<Endpoints>, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.sessions(&me).await?))
}

/// `DELETE /sessions/{id}`.
pub async fn revoke_session(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.revoke_session(&client, &me, &id).await?))
}

/// `POST /password/change`.
pub async fn change_password(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ChangePasswordBody>,
) -> Handled {
    Ok(Reply(endpoints.change_password(&client, &me, body).await?))
}

/// `POST /password/forgot`.
pub async fn forgot_password(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::ForgotBody>,
) -> Handled {
    Ok(Reply(endpoints.forgot_password(&client, body).await?))
}

/// `POST /password/reset`.
pub async fn reset_password(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::ResetBody>,
) -> Handled {
    Ok(Reply(endpoints.reset_password(&client, body).await?))
}

/// `POST /email/verification`.
pub async fn request_verification(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
) -> Handled {
    Ok(Reply(endpoints.request_verification(&client, &me).await?))
}

/// `GET /me/export`.
pub async fn export_me(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
) -> Handled {
    Ok(Reply(endpoints.export(&client, &me).await?))
}

/// `DELETE /me`.
pub async fn delete_me(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::DeleteAccountBody>,
) -> Handled {
    Ok(Reply(endpoints.delete_me(&client, &me, body).await?))
}

/// `DELETE /admin/users/{id}`.
pub async fn delete_user(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.delete_user(&client, &me, &id).await?))
}

/// `POST /email/change`.
pub async fn request_email_change(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::EmailChangeBody>,
) -> Handled {
    Ok(Reply(endpoints.request_email_change(&client, &me, body).await?))
}

/// `POST /email/change/confirm`.
pub async fn confirm_email_change(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::TokenBody>,
) -> Handled {
    Ok(Reply(endpoints.confirm_email_change(&client, body).await?))
}

/// `POST /email/change/undo`.
pub async fn undo_email_change(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::TokenBody>,
) -> Handled {
    Ok(Reply(endpoints.undo_email_change(&client, body).await?))
}

/// `POST /email/verify`.
pub async fn verify_email(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::TokenBody>,
) -> Handled {
    Ok(Reply(endpoints.verify_email(&client, body).await?))
}

/// `GET /admin/users`.
pub async fn list_users(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    RawQuery(query): RawQuery,
) -> Handled {
    Ok(Reply(endpoints.list_users(&client, &me, query.as_deref()).await?))
}

/// `GET /me/events`.
pub async fn my_events(
    State(endpoints): State<Endpoints>,
    CurrentUser(me): CurrentUser,
    RawQuery(query): RawQuery,
) -> Handled {
    Ok(Reply(endpoints.my_events(&me, query.as_deref()).await?))
}

/// `GET /admin/events`.
pub async fn list_events(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    RawQuery(query): RawQuery,
) -> Handled {
    Ok(Reply(endpoints.list_events(&client, &me, query.as_deref()).await?))
}

/// `POST /admin/users/{id}/disable`.
pub async fn disable_user(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.set_active(&client, &me, &id, false).await?))
}

/// `POST /admin/users/{id}/enable`.
pub async fn enable_user(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.set_active(&client, &me, &id, true).await?))
}

/// `POST /admin/users`.
pub async fn invite_user(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::InviteBody>,
) -> Handled {
    Ok(Reply(endpoints.invite_user(&client, &me, body).await?))
}

/// `GET /admin/users/{id}/sessions`.
pub async fn user_sessions(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.user_sessions(&client, &me, &id).await?))
}

/// `DELETE /admin/users/{id}/sessions`.
pub async fn end_user_sessions(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.end_user_sessions(&client, &me, &id).await?))
}

/// `PUT /admin/users/{id}/roles`.
pub async fn set_roles(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<api::RolesBody>,
) -> Handled {
    Ok(Reply(endpoints.set_roles(&client, &me, &id, body).await?))
}

/// `POST /login/mfa`.
pub async fn login_mfa(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::MfaLoginBody>,
) -> Handled {
    Ok(Reply(endpoints.login_mfa(&client, body).await?))
}

/// `POST /mfa/totp/setup`.
pub async fn totp_setup(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ReauthenticationBody>,
) -> Handled {
    Ok(Reply(endpoints.totp_setup(&client, &me, body).await?))
}

/// `POST /mfa/totp/confirm`.
pub async fn totp_confirm(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::CodeBody>,
) -> Handled {
    Ok(Reply(endpoints.totp_confirm(&client, &me, body).await?))
}

/// `POST /mfa/totp/disable`.
pub async fn totp_disable(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ReauthenticationBody>,
) -> Handled {
    Ok(Reply(endpoints.totp_disable(&client, &me, body).await?))
}

/// `POST /mfa/recovery-codes`.
pub async fn regenerate_recovery_codes(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ReauthenticationBody>,
) -> Handled {
    Ok(Reply(endpoints.regenerate_recovery_codes(&client, &me, body).await?))
}

/// `GET /oauth/providers`.
pub async fn oauth_providers(State(endpoints): State<Endpoints>) -> Handled {
    Ok(Reply(endpoints.oauth_providers()?))
}

/// `GET /oauth/{provider}/start?next=<path>`.
pub async fn oauth_start(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    ProviderPath(provider): ProviderPath,
    RawQuery(query): RawQuery,
) -> Handled {
    Ok(Reply(
        endpoints.oauth_start(&client, &provider, query.as_deref()).await?,
    ))
}

/// `GET /oauth/{provider}/callback`, with the binding cookie.
pub async fn oauth_callback(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    ProviderPath(provider): ProviderPath,
    RawQuery(query): RawQuery,
    Cookies(cookies): Cookies,
) -> Handled {
    Ok(Reply(
        endpoints
            .oauth_callback(&client, &provider, query.as_deref(), cookies.as_deref())
            .await?,
    ))
}

/// `HEAD /oauth/{provider}/callback`: refused with 405 and `Allow: GET`. Axum would
/// otherwise answer a HEAD with the GET handler, and a link preview or a prefetch of the
/// callback would spend the flow's single-use state.
pub async fn oauth_callback_head() -> Response {
    let mut answer = ApiError(ErrorAnswer::method_not_allowed()).into_response();
    answer
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    answer
}

/// `POST /oauth/{provider}/link`.
pub async fn oauth_link(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    ProviderPath(provider): ProviderPath,
    LinkBody(body): LinkBody,
) -> Handled {
    Ok(Reply(endpoints.oauth_link(&client, &me, &provider, body).await?))
}

/// `POST /oauth/exchange`.
pub async fn oauth_exchange(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    Cookies(cookies): Cookies,
    JsonBody(body): JsonBody<api::ExchangeBody>,
) -> Handled {
    Ok(Reply(
        endpoints.oauth_exchange(&client, body, cookies.as_deref()).await?,
    ))
}

/// `GET /me/identities`.
pub async fn identities(State(endpoints): State<Endpoints>, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.identities(&me).await?))
}

/// `DELETE /me/identities/{id}`.
pub async fn unlink_identity(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.unlink_identity(&client, &me, &id).await?))
}

/// `POST /passkeys/register/start`.
#[cfg(feature = "passkeys")]
pub async fn passkey_register_start(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
) -> Handled {
    Ok(Reply(endpoints.passkey_register_start(&client, &me).await?))
}

/// `POST /passkeys/register/finish`.
#[cfg(feature = "passkeys")]
pub async fn passkey_register_finish(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::PasskeyRegisterBody>,
) -> Handled {
    Ok(Reply(endpoints.passkey_register_finish(&client, &me, body).await?))
}

/// `POST /passkeys/login/start`.
#[cfg(feature = "passkeys")]
pub async fn passkey_login_start(State(endpoints): State<Endpoints>, Client(client): Client) -> Handled {
    Ok(Reply(endpoints.passkey_login_start(&client).await?))
}

/// `POST /passkeys/login/finish`.
#[cfg(feature = "passkeys")]
pub async fn passkey_login_finish(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::PasskeyLoginBody>,
) -> Handled {
    Ok(Reply(endpoints.passkey_login_finish(&client, body).await?))
}

/// `POST /login/mfa/passkey/start`.
#[cfg(feature = "passkeys")]
pub async fn passkey_mfa_start(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::PasskeyChallengeBody>,
) -> Handled {
    Ok(Reply(endpoints.passkey_mfa_start(&client, body).await?))
}

/// `POST /login/mfa/passkey/finish`.
#[cfg(feature = "passkeys")]
pub async fn passkey_mfa_finish(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::PasskeyMfaBody>,
) -> Handled {
    Ok(Reply(endpoints.passkey_mfa_finish(&client, body).await?))
}

/// `GET /me/passkeys`.
#[cfg(feature = "passkeys")]
pub async fn passkeys(State(endpoints): State<Endpoints>, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.passkeys(&me).await?))
}

/// `PATCH /me/passkeys/{id}`.
#[cfg(feature = "passkeys")]
pub async fn rename_passkey(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<api::PasskeyRenameBody>,
) -> Handled {
    Ok(Reply(endpoints.rename_passkey(&client, &me, &id, body).await?))
}

/// `DELETE /me/passkeys/{id}`.
#[cfg(feature = "passkeys")]
pub async fn delete_passkey(
    State(endpoints): State<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.delete_passkey(&client, &me, &id).await?))
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(endpoints): State<Endpoints>) -> Reply {
    Reply(endpoints.jwks())
}

/// `GET /health`.
pub async fn health(State(endpoints): State<Endpoints>) -> Handled {
    Ok(Reply(endpoints.health().await?))
}

/// `GET /openapi.json`: the OpenAPI 3.1 document of the routes `endpoints` serve, its
/// server URL the prefix the router is nested under.
#[cfg(feature = "openapi")]
pub async fn openapi(State(endpoints): State<Endpoints>, OriginalUri(uri): OriginalUri) -> Reply {
    Reply(endpoints.openapi_json(uri.path()))
}

/// 404 `not_found` in the API's format: a fallback for an application's router.
pub async fn no_route() -> ApiError {
    ApiError(ErrorAnswer::no_route())
}

/// 405 `method_not_allowed` in the API's format.
pub async fn method_not_allowed() -> ApiError {
    ApiError(ErrorAnswer::method_not_allowed())
}
