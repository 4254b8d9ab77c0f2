//! [`auth_core`] on [Actix-web](actix_web): extractors for the current user
//! ([`CurrentUser`]), a role guard ([`Authorized`]), the client ([`Client`]) and request
//! bodies ([`JsonBody`], [`FormBody`]), error answers in the API's format ([`ApiError`]),
//! and every route of the HTTP API ([`configure`]), to mount whole, in a scope, or route by
//! route ([`handlers`]).
//!
//! Everything reads one [`Endpoints`] (re-exported from [`auth_http`]) from the app data,
//! which [`configure`] registers.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use actix_web::{App, HttpServer, web};
//! use auth_actix::{ApiError, Authorized, CurrentUser, Endpoints};
//! use auth_core::{AuthService, MemoryStore, SigningKey, Tokens};
//! use auth_http::Admin;
//!
//! async fn hello(CurrentUser(me): CurrentUser) -> String {
//!     format!("hello {}", me.user.email.as_str())
//! }
//!
//! async fn report(Authorized(me, ..): Authorized<Admin>) -> Result<String, ApiError> {
//!     Ok(format!("the report, for {}", me.user.id))
//! }
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
//!     let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://app.example", "app")));
//!     let endpoints = Endpoints::with_administration(service);
//!     HttpServer::new(move || {
//!         App::new()
//!             .app_data(web::Data::new(endpoints.clone()))
//!             .route("/hello", web::get().to(hello))
//!             .route("/report", web::get().to(report))
//!             .service(web::scope("/auth").configure(auth_actix::configure(&endpoints)))
//!     })
//!     .bind("127.0.0.1:8000")?
//!     .run()
//!     .await?;
//!     Ok(())
//! }
//! ```

#![forbid(unsafe_code)]

mod extract;
pub mod handlers;

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, ResponseError, Route, guard, web};
use auth_http::{Answer, ErrorAnswer};

pub use auth_http::Endpoints;
pub use extract::{
    Authorized, Client, Cookies, CurrentUser, FormBody, IdPath, JsonBody, LinkBody, LoginBody, ProviderPath,
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

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.code())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/json");
        for (name, value) in self.0.headers() {
            if (name, value.as_str()) == ("connection", "close") {
                // Actix decides the Connection header itself; this is how to ask for close.
                response.force_close();
            } else {
                response.insert_header((name, value));
            }
        }
        response.body(self.0.body())
    }
}

/// An endpoint's success answer as a response: its status, its headers (a token answer's
/// `Cache-Control: no-store`, a redirect's `Location`, a `Set-Cookie`), and its JSON body.
#[derive(Debug)]
pub struct Reply(pub Answer);

impl Responder for Reply {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        for (name, value) in self.0.headers() {
            let value = match value {
                std::borrow::Cow::Borrowed(value) => HeaderValue::from_static(value),
                std::borrow::Cow::Owned(value) => match HeaderValue::from_str(value) {
                    Ok(value) => value,
                    Err(_) => {
                        // The endpoints make their values from URLs and tokens, never
                        // with control characters: a bug, answered as one.
                        return ApiError(ErrorAnswer::misconfigured(
                            "auth-actix: an answer's header value is not valid",
                        ))
                        .error_response();
                    }
                },
            };
            // Appended: a name may repeat (several `Set-Cookie`).
            response.append_header((HeaderName::from_static(name), value));
        }
        match self.0.json_body() {
            Some(json) => response.content_type("application/json").body(json.to_vec()),
            None => response.finish(),
        }
    }
}

/// Registers `endpoints` as app data and every route of the HTTP API they serve (the mail
/// routes with mail, the `/admin` routes with administration, the two-factor routes with
/// a second factor, the `/oauth` routes with identity providers; see [`Endpoints`]), each
/// answering a method it does not take with the API's 405 and `Allow`. For
/// `App::configure`, or a scope's for a prefix.
///
/// With the default feature `openapi`, it serves `GET /openapi.json` too: the OpenAPI 3.1
/// document of exactly these routes, whose server URL is the scope they are mounted in. An
/// application that does not publish its API's description builds without the feature
/// (`default-features = false`), and neither the route nor `utoipa` is there.
///
/// ```
/// # fn endpoints() -> auth_actix::Endpoints { unimplemented!() }
/// # fn app() {
/// let endpoints = endpoints();
/// let app = actix_web::App::new().service(actix_web::web::scope("/auth").configure(auth_actix::configure(&endpoints)));
/// # }
/// ```
pub fn configure(endpoints: &Endpoints) -> impl FnOnce(&mut web::ServiceConfig) + use<> {
    let endpoints = endpoints.clone();
    move |config| {
        let (mail, email_change, deletion, audit, admin, second_factor, external_login) = (
            endpoints.serves_mail(),
            endpoints.serves_email_change(),
            endpoints.serves_account_deletion(),
            endpoints.serves_audit_log(),
            endpoints.serves_administration(),
            endpoints.serves_second_factor(),
            endpoints.serves_external_login(),
        );
        #[cfg(feature = "passkeys")]
        let passkeys = endpoints.serves_passkeys();
        config
            .app_data(web::Data::new(endpoints))
            .service(resource("/register", "POST").route(web::post().to(handlers::register)))
            .service(resource("/login", "POST").route(web::post().to(handlers::login)))
            .service(if deletion {
                resource("/me", "GET,HEAD,DELETE")
                    .route(get().to(handlers::me))
                    .route(web::delete().to(handlers::delete_me))
            } else {
                resource("/me", "GET,HEAD").route(get().to(handlers::me))
            })
            .service(resource("/me/export", "GET,HEAD").route(get().to(handlers::export_me)))
            .service(resource("/token/refresh", "POST").route(web::post().to(handlers::refresh)))
            .service(resource("/logout", "POST").route(web::post().to(handlers::logout)))
            .service(resource("/logout/all", "POST").route(web::post().to(handlers::logout_all)))
            .service(resource("/sessions", "GET,HEAD").route(get().to(handlers::sessions)))
            .service(resource("/sessions/{id}", "DELETE").route(web::delete().to(handlers::revoke_session)))
            .service(resource("/password/change", "POST").route(web::post().to(handlers::change_password)))
            .service(resource("/.well-known/jwks.json", "GET,HEAD").route(get().to(handlers::jwks)))
            .service(resource("/health", "GET,HEAD").route(get().to(handlers::health)));
        #[cfg(feature = "openapi")]
        config.service(resource("/openapi.json", "GET,HEAD").route(get().to(handlers::openapi)));
        if mail {
            config
                .service(resource("/password/forgot", "POST").route(web::post().to(handlers::forgot_password)))
                .service(resource("/password/reset", "POST").route(web::post().to(handlers::reset_password)))
                .service(resource("/email/verification", "POST").route(web::post().to(handlers::request_verification)))
                .service(resource("/email/verify", "POST").route(web::post().to(handlers::verify_email)));
        }
        if email_change {
            config
                .service(resource("/email/change", "POST").route(web::post().to(handlers::request_email_change)))
                .service(
                    resource("/email/change/confirm", "POST").route(web::post().to(handlers::confirm_email_change)),
                )
                .service(resource("/email/change/undo", "POST").route(web::post().to(handlers::undo_email_change)));
        }
        if admin {
            config
                .service(
                    resource("/admin/users", "GET,HEAD,POST")
                        .route(get().to(handlers::list_users))
                        .route(web::post().to(handlers::invite_user)),
                )
                .service(resource("/admin/users/{id}/disable", "POST").route(web::post().to(handlers::disable_user)))
                .service(resource("/admin/users/{id}/enable", "POST").route(web::post().to(handlers::enable_user)))
                .service(resource("/admin/users/{id}/roles", "PUT").route(web::put().to(handlers::set_roles)))
                .service(
                    resource("/admin/users/{id}/sessions", "GET,HEAD,DELETE")
                        .route(get().to(handlers::user_sessions))
                        .route(web::delete().to(handlers::end_user_sessions)),
                );
            if deletion {
                config.service(resource("/admin/users/{id}", "DELETE").route(web::delete().to(handlers::delete_user)));
            }
            if audit {
                config.service(resource("/admin/events", "GET,HEAD").route(get().to(handlers::list_events)));
            }
        }
        if audit {
            config.service(resource("/me/events", "GET,HEAD").route(get().to(handlers::my_events)));
        }
        if second_factor {
            config
                .service(resource("/login/mfa", "POST").route(web::post().to(handlers::login_mfa)))
                .service(resource("/mfa/totp/setup", "POST").route(web::post().to(handlers::totp_setup)))
                .service(resource("/mfa/totp/confirm", "POST").route(web::post().to(handlers::totp_confirm)))
                .service(resource("/mfa/totp/disable", "POST").route(web::post().to(handlers::totp_disable)))
                .service(
                    resource("/mfa/recovery-codes", "POST").route(web::post().to(handlers::regenerate_recovery_codes)),
                );
        }
        if external_login {
            config
                .service(resource("/oauth/providers", "GET,HEAD").route(get().to(handlers::oauth_providers)))
                .service(resource("/oauth/exchange", "POST").route(web::post().to(handlers::oauth_exchange)))
                .service(resource("/oauth/{provider}/start", "GET,HEAD").route(get().to(handlers::oauth_start)))
                // GET only: a HEAD (a link preview, a prefetch) would spend the flow's state.
                .service(resource("/oauth/{provider}/callback", "GET").route(web::get().to(handlers::oauth_callback)))
                .service(resource("/oauth/{provider}/link", "POST").route(web::post().to(handlers::oauth_link)))
                .service(resource("/me/identities", "GET,HEAD").route(get().to(handlers::identities)))
                .service(resource("/me/identities/{id}", "DELETE").route(web::delete().to(handlers::unlink_identity)));
        }
        #[cfg(feature = "passkeys")]
        if passkeys {
            config
                .service(
                    resource("/passkeys/register/start", "POST")
                        .route(web::post().to(handlers::passkey_register_start)),
                )
                .service(
                    resource("/passkeys/register/finish", "POST")
                        .route(web::post().to(handlers::passkey_register_finish)),
                )
                .service(resource("/passkeys/login/start", "POST").route(web::post().to(handlers::passkey_login_start)))
                .service(
                    resource("/passkeys/login/finish", "POST").route(web::post().to(handlers::passkey_login_finish)),
                )
                .service(
                    resource("/login/mfa/passkey/start", "POST").route(web::post().to(handlers::passkey_mfa_start)),
                )
                .service(
                    resource("/login/mfa/passkey/finish", "POST").route(web::post().to(handlers::passkey_mfa_finish)),
                )
                .service(resource("/me/passkeys", "GET,HEAD").route(get().to(handlers::passkeys)))
                .service(
                    resource("/me/passkeys/{id}", "PATCH,DELETE")
                        .route(web::patch().to(handlers::rename_passkey))
                        .route(web::delete().to(handlers::delete_passkey)),
                );
        }
    }
}

/// A route's resource; other methods answer 405 in the API's format, with `Allow`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        let mut response = ApiError(ErrorAnswer::method_not_allowed()).error_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        response
    }))
}

/// GET, and HEAD with the same headers (as HTTP requires, and Axum does).
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}
