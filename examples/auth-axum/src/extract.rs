//! Extractors: the client, the current user, a role guard and request bodies, each
//! rejecting in the API's error format.

use std::marker::PhantomData;
use std::net::SocketAddr;

use auth_core::{Authenticated, ClientInfo};
use auth_http::{Endpoints, ErrorAnswer, MAX_BODY_BYTES, RoleRequirement, api};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// What to add when a request arrives without its peer address.
const NO_PEER_ADDRESS: &str = "auth-axum: the request has no client address, so every client would share one \
     rate-limit bucket; serve the app with `app.into_make_service_with_connect_info::<std::net::SocketAddr>()` \
     or, in tests, add `axum::extract::connect_info::MockConnectInfo`";

/// The caller as the core sees it: its user agent and address (the TCP peer's, or the
/// trusted proxy's `X-Forwarded-For` entry; see [`auth_http::ClientAddressing`]).
///
/// The peer address comes from Axum's [`ConnectInfo`]: serve the app with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
/// Without it, every request is answered 500 and logged as an error naming the fix, never
/// served with every client in one rate-limit bucket.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl<S> FromRequestParts<S> for Client
where
    S: Send + Sync,
    Endpoints: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Axum's own extractor, which also takes `MockConnectInfo` in tests.
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .map_err(|_| ErrorAnswer::misconfigured(NO_PEER_ADDRESS))?;
        let peer = peer.ip();
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok());
        let agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok());
        Ok(Self(
            Endpoints::from_ref(state).addressing().client(peer, forwarded, agent),
        ))
    }
}

/// The account behind the request's bearer token (checked against its live session);
/// 401 `invalid_token` with `WWW-Authenticate: Bearer` without one.
#[derive(Debug)]
pub struct CurrentUser(pub Authenticated);

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    Endpoints: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        Ok(Self(Endpoints::from_ref(state).authenticate(authorization).await?))
    }
}

/// The current user, who holds the role `R` requires; 403 `forbidden` naming the role
/// otherwise (401 without a valid token, as [`CurrentUser`]).
///
/// ```
/// use auth_axum::{ApiError, Authorized};
/// use auth_http::Admin;
///
/// async fn report(Authorized(me, ..): Authorized<Admin>) -> Result<String, ApiError> {
///     Ok(format!("for {}", me.user.email.as_str()))
/// }
/// # let _: axum::Router<auth_http::Endpoints> = axum::Router::new().route("/report", axum::routing::get(report));
/// ```
#[derive(Debug)]
pub struct Authorized<R: RoleRequirement>(pub Authenticated, pub PhantomData<R>);

impl<S, R> FromRequestParts<S> for Authorized<R>
where
    S: Send + Sync,
    Endpoints: FromRef<S>,
    R: RoleRequirement,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(me) = CurrentUser::from_request_parts(parts, state).await?;
        R::check(&me)?;
        Ok(Self(me, PhantomData))
    }
}

/// The whole body (at most [`MAX_BODY_BYTES`], 413 beyond) and its content type. A body
/// that does not arrive within the endpoints' body timeout is a 408 that ends the
/// connection, however slowly it trickles.
///
/// # Errors
///
/// 413 `payload_too_large`, 408 `request_timeout`, 400 `invalid_request` for a body that
/// failed to arrive.
pub async fn body_bytes<S>(request: Request, state: &S) -> Result<(Option<String>, Bytes), ApiError>
where
    S: Send + Sync,
    Endpoints: FromRef<S>,
{
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let timeout = Endpoints::from_ref(state).body_timeout();
    let body = tokio::time::timeout(timeout, axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES))
        .await
        .map_err(|_| ErrorAnswer::body_timeout())?
        .map_err(|error| {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&error);
            while let Some(error) = cause {
                if error.is::<http_body_util::LengthLimitError>() {
                    return ErrorAnswer::payload_too_large();
                }
                cause = error.source();
            }
            ErrorAnswer::invalid_request(format!("the body could not be read: {error}"))
        })?;
    Ok((content_type, body))
}

/// A JSON body (`application/json` or `application/*+json`): 415 for another type, 400
/// `invalid_request` saying what does not parse, never Axum's own text answers.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    Endpoints: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (content_type, body) = body_bytes(request, state).await?;
        Ok(Self(api::json_body(content_type.as_deref(), &body)?))
    }
}

/// A form body (`application/x-www-form-urlencoded`): 415 for another type, 400
/// `invalid_request` saying what does not parse.
#[derive(Debug, Clone)]
pub struct FormBody<T>(pub T);

impl<S, T> FromRequest<S> for FormBody<T>
where
    S: Send + Sync,
    Endpoints: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (content_type, body) = body_bytes(request, state).await?;
        Ok(Self(api::form_body(content_type.as_deref(), &body)?))
    }
}

/// The body of `POST /login`: OAuth2's password form (`username`, `password`) or JSON
/// (`email`, `password`).
pub struct LoginBody(pub api::Credentials);

impl<S> FromRequest<S> for LoginBody
where
    S: Send + Sync,
    Endpoints: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (content_type, body) = body_bytes(request, state).await?;
        Ok(Self(api::login_body(content_type.as_deref(), &body)?))
    }
}

/// The `{id}` of a route as text, for the endpoint to parse: a segment that does not
/// decode names nothing, and the endpoint's own 404 answers.
pub struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let id = axum::extract::Path::<String>::from_request_parts(parts, state).await;
        Ok(Self(id.map(|axum::extract::Path(id)| id).unwrap_or_default()))
    }
}

/// The `{provider}` of an `/oauth/{provider}/…` route as text, for the endpoint to look
/// up: a segment that does not decode names no provider, and the endpoint's own 404
/// `unknown_provider` answers.
pub struct ProviderPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ProviderPath {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let provider = axum::extract::Path::<String>::from_request_parts(parts, state).await;
        Ok(Self(provider.map(|axum::extract::Path(name)| name).unwrap_or_default()))
    }
}

/// The request's `Cookie` header (several joined with `; `), if any: what the callback
/// of a sign-in through a provider reads its binding cookie from
/// ([`auth_http::headers::cookie`]). A header that is not text is left out.
#[derive(Debug, Clone, Default)]
pub struct Cookies(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Cookies {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let values: Vec<&str> = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        Ok(Self((!values.is_empty()).then(|| values.join("; "))))
    }
}

/// The body of `POST /oauth/{provider}/link`: JSON (`{"next": "/path"}`), or no body at
/// all for the defaults.
pub struct LinkBody(pub api::LinkBody);

impl<S> FromRequest<S> for LinkBody
where
    S: Send + Sync,
    Endpoints: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (content_type, body) = body_bytes(request, state).await?;
        Ok(Self(api::link_body(content_type.as_deref(), &body)?))
    }
}
