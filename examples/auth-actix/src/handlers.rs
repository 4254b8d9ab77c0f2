//! One handler per route of the HTTP API, for an application that mounts only some of
//! them (or under paths of its own). Each extracts, calls its [`Endpoints`] method, and
//! answers; [`configure`](crate::configure) mounts them all.
//!
//! The handlers read the [`Endpoints`] from the app data: register them with
//! `App::app_data(web::Data::new(endpoints))`.
//!
//! ```
//! use actix_web::web;
//!
//! // Only registration and login, at paths of the application's choosing.
//! fn routes(config: &mut web::ServiceConfig) {
//!     config
//!         .route("/signup", web::post().to(auth_actix::handlers::register))
//!         .route("/signin", web::post().to(auth_actix::handlers::login));
//! }
//! # let _ = actix_web::App::new().configure(routes);
//! ```

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use auth_http::{Endpoints, ErrorAnswer, api};

use crate::{ApiError, Client, Cookies, CurrentUser, IdPath, JsonBody, LinkBody, LoginBody, ProviderPath, Reply};

/// What every handler returns.
pub type Handled = Result<Reply, ApiError>;

/// `POST /register`.
pub async fn register(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::Credentials>,
) -> Handled {
    Ok(Reply(endpoints.register(&client, body).await?))
}

/// `POST /login`: the OAuth2 password form or JSON.
pub async fn login(endpoints: Data<Endpoints>, Client(client): Client, LoginBody(body): LoginBody) -> Handled {
    Ok(Reply(endpoints.login(&client, body).await?))
}

/// `GET /me`.
pub async fn me(endpoints: Data<Endpoints>, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.me(&me).await?))
}

/// `POST /token/refresh`.
pub async fn refresh(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::RefreshBody>,
) -> Handled {
    Ok(Reply(endpoints.refresh(&client, body).await?))
}

/// `POST /logout`.
pub async fn logout(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::RefreshBody>,
) -> Handled {
    Ok(Reply(endpoints.logout(&client, body).await?))
}

/// `POST /logout/all`.
pub async fn logout_all(endpoints: Data<Endpoints>, Client(client): Client, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.logout_all(&client, &me).await?))
}

/// `GET /sessions`.
pub async fn sessions(endpoints: Data<Endpoints>, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.sessions(&me).await?))
}

/// `DELETE /sessions/{id}`.
pub async fn revoke_session(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.revoke_session(&client, &me, &id).await?))
}

/// `POST /password/change`.
pub async fn change_password(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ChangePasswordBody>,
) -> Handled {
    Ok(Reply(endpoints.change_password(&client, &me, body).await?))
}

/// `POST /password/forgot`.
pub async fn forgot_password(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::ForgotBody>,
) -> Handled {
    Ok(Reply(endpoints.forgot_password(&client, body).await?))
}

/// `POST /password/reset`.
pub async fn reset_password(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::ResetBody>,
) -> Handled {
    Ok(Reply(endpoints.reset_password(&client, body).await?))
}

/// `POST /email/verification`.
pub async fn request_verification(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
) -> Handled {
    Ok(Reply(endpoints.request_verification(&client, &me).await?))
}

/// `GET /me/export`.
pub async fn export_me(endpoints: Data<Endpoints>, Client(client): Client, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.export(&client, &me).await?))
}

/// `DELETE /me`.
pub async fn delete_me(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::DeleteAccountBody>,
) -> Handled {
    Ok(Reply(endpoints.delete_me(&client, &me, body).await?))
}

/// `DELETE /admin/users/{id}`.
pub async fn delete_user(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.delete_user(&client, &me, &id).await?))
}

/// `POST /email/change`.
pub async fn request_email_change(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::EmailChangeBody>,
) -> Handled {
    Ok(Reply(endpoints.request_email_change(&client, &me, body).await?))
}

/// `POST /email/change/confirm`.
pub async fn confirm_email_change(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::TokenBody>,
) -> Handled {
    Ok(Reply(endpoints.confirm_email_change(&client, body).await?))
}

/// `POST /email/change/undo`.
pub async fn undo_email_change(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::TokenBody>,
) -> Handled {
    Ok(Reply(endpoints.undo_email_change(&client, body).await?))
}

/// `POST /email/verify`.
pub async fn verify_email(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::TokenBody>,
) -> Handled {
    Ok(Reply(endpoints.verify_email(&client, body).await?))
}

/// `GET /admin/users`.
pub async fn list_users(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    request: HttpRequest,
) -> Handled {
    Ok(Reply(endpoints.list_users(&client, &me, request.uri().query()).await?))
}

/// `GET /me/events`.
pub async fn my_events(endpoints: Data<Endpoints>, CurrentUser(me): CurrentUser, request: HttpRequest) -> Handled {
    Ok(Reply(endpoints.my_events(&me, request.uri().query()).await?))
}

/// `GET /admin/events`.
pub async fn list_events(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    request: HttpRequest,
) -> Handled {
    Ok(Reply(endpoints.list_events(&client, &me, request.uri().query()).await?))
}

/// `POST /admin/users/{id}/disable`.
pub async fn disable_user(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.set_active(&client, &me, &id, false).await?))
}

/// `POST /admin/users/{id}/enable`.
pub async fn enable_user(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.set_active(&client, &me, &id, true).await?))
}

/// `POST /admin/users`.
pub async fn invite_user(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::InviteBody>,
) -> Handled {
    Ok(Reply(endpoints.invite_user(&client, &me, body).await?))
}

/// `GET /admin/users/{id}/sessions`.
pub async fn user_sessions(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.user_sessions(&client, &me, &id).await?))
}

/// `DELETE /admin/users/{id}/sessions`.
pub async fn end_user_sessions(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.end_user_sessions(&client, &me, &id).await?))
}

/// `PUT /admin/users/{id}/roles`.
pub async fn set_roles(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<api::RolesBody>,
) -> Handled {
    Ok(Reply(endpoints.set_roles(&client, &me, &id, body).await?))
}

/// `POST /login/mfa`.
pub async fn login_mfa(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::MfaLoginBody>,
) -> Handled {
    Ok(Reply(endpoints.login_mfa(&client, body).await?))
}

/// `POST /mfa/totp/setup`.
pub async fn totp_setup(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ReauthenticationBody>,
) -> Handled {
    Ok(Reply(endpoints.totp_setup(&client, &me, body).await?))
}

/// `POST /mfa/totp/confirm`.
pub async fn totp_confirm(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::CodeBody>,
) -> Handled {
    Ok(Reply(endpoints.totp_confirm(&client, &me, body).await?))
}

/// `POST /mfa/totp/disable`.
pub async fn totp_disable(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ReauthenticationBody>,
) -> Handled {
    Ok(Reply(endpoints.totp_disable(&client, &me, body).await?))
}

/// `POST /mfa/recovery-codes`.
pub async fn regenerate_recovery_codes(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::ReauthenticationBody>,
) -> Handled {
    Ok(Reply(endpoints.regenerate_recovery_codes(&client, &me, body).await?))
}

/// `GET /oauth/providers`.
pub async fn oauth_providers(endpoints: Data<Endpoints>) -> Handled {
    Ok(Reply(endpoints.oauth_providers()?))
}

/// `GET /oauth/{provider}/start?next=<path>`.
pub async fn oauth_start(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    ProviderPath(provider): ProviderPath,
    request: HttpRequest,
) -> Handled {
    Ok(Reply(
        endpoints.oauth_start(&client, &provider, request.uri().query()).await?,
    ))
}

/// `GET /oauth/{provider}/callback`, with the binding cookie.
pub async fn oauth_callback(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    ProviderPath(provider): ProviderPath,
    Cookies(cookies): Cookies,
    request: HttpRequest,
) -> Handled {
    Ok(Reply(
        endpoints
            .oauth_callback(&client, &provider, request.uri().query(), cookies.as_deref())
            .await?,
    ))
}

/// `POST /oauth/{provider}/link`.
pub async fn oauth_link(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    ProviderPath(provider): ProviderPath,
    LinkBody(body): LinkBody,
) -> Handled {
    Ok(Reply(endpoints.oauth_link(&client, &me, &provider, body).await?))
}

/// `POST /oauth/exchange`.
pub async fn oauth_exchange(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    Cookies(cookies): Cookies,
    JsonBody(body): JsonBody<api::ExchangeBody>,
) -> Handled {
    Ok(Reply(
        endpoints.oauth_exchange(&client, body, cookies.as_deref()).await?,
    ))
}

/// `GET /me/identities`.
pub async fn identities(endpoints: Data<Endpoints>, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.identities(&me).await?))
}

/// `DELETE /me/identities/{id}`.
pub async fn unlink_identity(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.unlink_identity(&client, &me, &id).await?))
}

/// `POST /passkeys/register/start`.
#[cfg(feature = "passkeys")]
pub async fn passkey_register_start(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
) -> Handled {
    Ok(Reply(endpoints.passkey_register_start(&client, &me).await?))
}

/// `POST /passkeys/register/finish`.
#[cfg(feature = "passkeys")]
pub async fn passkey_register_finish(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    JsonBody(body): JsonBody<api::PasskeyRegisterBody>,
) -> Handled {
    Ok(Reply(endpoints.passkey_register_finish(&client, &me, body).await?))
}

/// `POST /passkeys/login/start`.
#[cfg(feature = "passkeys")]
pub async fn passkey_login_start(endpoints: Data<Endpoints>, Client(client): Client) -> Handled {
    Ok(Reply(endpoints.passkey_login_start(&client).await?))
}

/// `POST /passkeys/login/finish`.
#[cfg(feature = "passkeys")]
pub async fn passkey_login_finish(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::PasskeyLoginBody>,
) -> Handled {
    Ok(Reply(endpoints.passkey_login_finish(&client, body).await?))
}

/// `POST /login/mfa/passkey/start`.
#[cfg(feature = "passkeys")]
pub async fn passkey_mfa_start(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::PasskeyChallengeBody>,
) -> Handled {
    Ok(Reply(endpoints.passkey_mfa_start(&client, body).await?))
}

/// `POST /login/mfa/passkey/finish`.
#[cfg(feature = "passkeys")]
pub async fn passkey_mfa_finish(
    endpoints: Data<Endpoints>,
    Client(client): Client,
    JsonBody(body): JsonBody<api::PasskeyMfaBody>,
) -> Handled {
    Ok(Reply(endpoints.passkey_mfa_finish(&client, body).await?))
}

/// `GET /me/passkeys`.
#[cfg(feature = "passkeys")]
pub async fn passkeys(endpoints: Data<Endpoints>, CurrentUser(me): CurrentUser) -> Handled {
    Ok(Reply(endpoints.passkeys(&me).await?))
}

/// `PATCH /me/passkeys/{id}`.
#[cfg(feature = "passkeys")]
pub async fn rename_passkey(
    endpoints: Data<Endpoints>,
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
    endpoints: Data<Endpoints>,
    Client(client): Client,
    CurrentUser(me): CurrentUser,
    IdPath(id): IdPath,
) -> Handled {
    Ok(Reply(endpoints.delete_passkey(&client, &me, &id).await?))
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(endpoints: Data<Endpoints>) -> Reply {
    Reply(endpoints.jwks())
}

/// `GET /health`.
pub async fn health(endpoints: Data<Endpoints>) -> Handled {
    Ok(Reply(endpoints.health().await?))
}

/// `GET /openapi.json`: the OpenAPI 3.1 document of the routes `endpoints` serve, its
/// server URL the scope they are mounted in.
#[cfg(feature = "openapi")]
pub async fn openapi(endpoints: Data<Endpoints>, request: HttpRequest) -> Reply {
    Reply(endpoints.openapi_json(request.path()))
}

/// 404 `not_found` in the API's format: an app's `default_service`.
pub async fn no_route() -> HttpResponse {
    ApiError(ErrorAnswer::no_route()).error_response()
}
