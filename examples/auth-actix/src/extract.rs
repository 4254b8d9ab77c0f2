//! Extractors: the client, the current user, a role guard and request bodies, each
//! rejecting in the API's error format.

use std::future::{Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use auth_core::{Authenticated, ClientInfo};
use auth_http::{Endpoints, ErrorAnswer, MAX_BODY_BYTES, RoleRequirement, api};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::ApiError;

type LocalFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// The [`Endpoints`] of the app, registered by [`configure`](crate::configure); a server
/// without them answers 500 and logs what to add, on every request that needs them.
fn endpoints(request: &HttpRequest) -> Result<Endpoints, ApiError> {
    request
        .app_data::<web::Data<Endpoints>>()
        .map(|data| data.get_ref().clone())
        .ok_or_else(|| {
            ApiError(ErrorAnswer::misconfigured(
                "auth-actix: no Endpoints in the app data; add `.configure(auth_actix::configure(&endpoints))` \
                 or `.app_data(web::Data::new(endpoints))` to the App",
            ))
        })
}

/// The caller as the core sees it: its user agent and address (the TCP peer's, or the
/// trusted proxy's `X-Forwarded-For` entry; see [`auth_http::ClientAddressing`]). A
/// request without a peer address (a test request built without one) is answered 500 and
/// logged, never served with every client in one rate-limit bucket.
#[derive(Debug, Clone)]
pub struct Client(pub ClientInfo);

impl FromRequest for Client {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(endpoints(request).and_then(|endpoints| {
            let peer = request.peer_addr().map(|addr| addr.ip()).ok_or_else(|| {
                ApiError(ErrorAnswer::misconfigured(
                    "auth-actix: the request has no peer address, so every client would share one \
                     rate-limit bucket; in tests, build requests with `TestRequest::peer_addr`",
                ))
            })?;
            let headers = request.headers();
            let forwarded = headers
                .get_all("x-forwarded-for")
                .last()
                .and_then(|value| value.to_str().ok());
            let agent = headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok());
            Ok(Self(endpoints.addressing().client(peer, forwarded, agent)))
        }))
    }
}

/// The account behind the request's bearer token (checked against its live session);
/// 401 `invalid_token` with `WWW-Authenticate: Bearer` without one.
#[derive(Debug)]
pub struct CurrentUser(pub Authenticated);

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authorization = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let endpoints = endpoints(request);
        Box::pin(async move { Ok(Self(endpoints?.authenticate(authorization.as_deref()).await?)) })
    }
}

/// The current user, who holds the role `R` requires; 403 `forbidden` naming the role
/// otherwise (401 without a valid token, as [`CurrentUser`]).
///
/// ```
/// use auth_actix::{ApiError, Authorized};
/// use auth_http::Admin;
///
/// async fn report(Authorized(me, ..): Authorized<Admin>) -> Result<String, ApiError> {
///     Ok(format!("for {}", me.user.email.as_str()))
/// }
/// # let _ = actix_web::web::get().to(report);
/// ```
#[derive(Debug)]
pub struct Authorized<R: RoleRequirement>(pub Authenticated, pub PhantomData<R>);

impl<R: RoleRequirement> FromRequest for Authorized<R> {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let me = CurrentUser::from_request(request, payload);
        Box::pin(async move {
            let CurrentUser(me) = me.await?;
            R::check(&me)?;
            Ok(Self(me, PhantomData))
        })
    }
}

/// The whole body (at most [`MAX_BODY_BYTES`], 413 beyond, whatever the app's
/// `PayloadConfig`) and its content type, handed to `parse`. However slowly a body
/// trickles, it must be complete within the endpoints' body timeout (408 beyond).
fn parsed_body<T: 'static>(
    request: &HttpRequest,
    payload: &mut Payload,
    parse: fn(Option<&str>, &[u8]) -> Result<T, ErrorAnswer>,
) -> LocalFuture<T> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let timeout = endpoints(request).map(|endpoints| endpoints.body_timeout());
    let payload = payload.take();
    Box::pin(async move {
        let timeout = timeout?;
        if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
            return Err(ErrorAnswer::payload_too_large().into());
        }
        let body = actix_web::rt::time::timeout(timeout, read_within_limit(payload))
            .await
            .map_err(|_| ErrorAnswer::body_timeout())??;
        Ok(parse(content_type.as_deref(), &body)?)
    })
}

async fn read_within_limit(mut payload: Payload) -> Result<Bytes, ErrorAnswer> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|error| ErrorAnswer::invalid_request(format!("the body could not be read: {error}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ErrorAnswer::payload_too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A JSON body (`application/json` or `application/*+json`): 415 for another type, 400
/// `invalid_request` saying what does not parse, never Actix's own answers.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = parsed_body(request, payload, api::json_body::<T>);
        Box::pin(async move { Ok(Self(body.await?)) })
    }
}

/// A form body (`application/x-www-form-urlencoded`): 415 for another type, 400
/// `invalid_request` saying what does not parse.
#[derive(Debug, Clone)]
pub struct FormBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for FormBody<T> {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = parsed_body(request, payload, api::form_body::<T>);
        Box::pin(async move { Ok(Self(body.await?)) })
    }
}

/// The body of `POST /login`: OAuth2's password form (`username`, `password`) or JSON
/// (`email`, `password`).
pub struct LoginBody(pub api::Credentials);

impl FromRequest for LoginBody {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = parsed_body(request, payload, api::login_body);
        Box::pin(async move { Ok(Self(body.await?)) })
    }
}

/// The `{id}` of a route as text, for the endpoint to parse: a missing segment names
/// nothing, and the endpoint's own 404 answers.
#[derive(Debug, Clone)]
pub struct IdPath(pub String);

impl FromRequest for IdPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self(request.match_info().get("id").unwrap_or_default().to_owned())))
    }
}

/// The `{provider}` of an `/oauth/{provider}/…` route as text, for the endpoint to look
/// up: a missing segment names no provider, and the endpoint's own 404
/// `unknown_provider` answers.
#[derive(Debug, Clone)]
pub struct ProviderPath(pub String);

impl FromRequest for ProviderPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self(
            request.match_info().get("provider").unwrap_or_default().to_owned(),
        )))
    }
}

/// The request's `Cookie` header (several joined with `; `), if any: what the callback
/// of a sign-in through a provider reads its binding cookie from
/// ([`auth_http::headers::cookie`]). A header that is not text is left out.
#[derive(Debug, Clone, Default)]
pub struct Cookies(pub Option<String>);

impl FromRequest for Cookies {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let values: Vec<&str> = request
            .headers()
            .get_all(header::COOKIE)
            .filter_map(|value| value.to_str().ok())
            .collect();
        ready(Ok(Self((!values.is_empty()).then(|| values.join("; ")))))
    }
}

/// The body of `POST /oauth/{provider}/link`: JSON (`{"next": "/path"}`), or no body at
/// all for the defaults.
pub struct LinkBody(pub api::LinkBody);

impl FromRequest for LinkBody {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = parsed_body(request, payload, api::link_body);
        Box::pin(async move { Ok(Self(body.await?)) })
    }
}
