//! The Actix-web glue, short enough to copy: the error-to-response mapping and the
//! extractors. Nothing here knows an auth rule (`AuthService` does), and nothing here
//! decides an answer (`example_server` does, for both servers): it only moves bytes.

use std::fmt;
use std::future::{Ready, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use auth_core::{AuthError, Authenticated, ClientInfo, TokenError, bearer_token};
use example_server::{ErrorAnswer, api};
use serde::de::DeserializeOwned;

use crate::AppState;

type LocalFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

/// Every error answer, in the API's format.
#[derive(Debug)]
pub(crate) struct ApiError(pub ErrorAnswer);

impl From<ErrorAnswer> for ApiError {
    fn from(answer: ErrorAnswer) -> Self {
        Self(answer)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
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

/// The application state every extractor reads.
fn state(request: &HttpRequest) -> Result<&AppState, ApiError> {
    request
        .app_data::<web::Data<AppState>>()
        .map(|data| data.get_ref())
        .ok_or_else(|| ApiError(ErrorAnswer::from(AuthError::Internal("no application state".into()))))
}

/// The whole body (at most `MAX_BODY_BYTES`, by the app's `PayloadConfig`) and its
/// content type, handed to `parse`.
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
    let body = web::Bytes::from_request(request, payload);
    let timeout = state(request).map(|app| app.body_timeout);
    Box::pin(async move {
        // However slowly a body trickles, it must be complete within the body timeout.
        let bytes = actix_web::rt::time::timeout(timeout?, body)
            .await
            .map_err(|_| ErrorAnswer::body_timeout())?;
        let bytes = bytes.map_err(|error| {
            if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                ErrorAnswer::payload_too_large()
            } else {
                ErrorAnswer::invalid_request(format!("the body could not be read: {error}"))
            }
        })?;
        Ok(parse(content_type.as_deref(), &bytes)?)
    })
}

/// A JSON body, parsed by the shared parser.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = parsed_body(request, payload, api::json_body::<T>);
        Box::pin(async move { Ok(Self(body.await?)) })
    }
}

/// The body of `POST /login`: the OAuth2 form or JSON.
pub(crate) struct LoginBody(pub api::Credentials);

impl FromRequest for LoginBody {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = parsed_body(request, payload, api::login_body);
        Box::pin(async move { Ok(Self(body.await?)) })
    }
}

/// The caller as the core sees it: user agent and IP (the TCP peer's, or the trusted
/// proxy's `X-Forwarded-For` entry).
pub(crate) struct Client(pub ClientInfo);

impl FromRequest for Client {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state(request).map(|app| {
            let headers = request.headers();
            let forwarded = headers
                .get_all("x-forwarded-for")
                .last()
                .and_then(|value| value.to_str().ok());
            let peer = request.peer_addr().map(|addr| addr.ip());
            let ip = api::client_ip(peer, app.trusted_proxy, forwarded);
            let agent = headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok());
            Self(ClientInfo::new(agent, ip))
        }))
    }
}

/// The account behind the request's bearer token; 401 `invalid_token` without one.
pub(crate) struct CurrentUser(pub Authenticated);

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = LocalFuture<Self>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token)
            .map(str::to_owned);
        let auth = state(request).map(|app| app.auth.clone());
        Box::pin(async move {
            let token = token.ok_or(AuthError::InvalidToken(TokenError::Malformed))?;
            Ok(Self(auth?.authenticate(&token).await?))
        })
    }
}

/// The `{id}` of a route as text; parsed by `api::account_id` or `api::session_id`.
pub(crate) struct IdPath(pub String);

impl FromRequest for IdPath {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        // A missing segment names nothing: the handler's own 404 answers.
        ready(Ok(Self(request.match_info().get("id").unwrap_or_default().to_owned())))
    }
}

/// A JSON success answer with `headers`.
pub(crate) fn json(
    status: StatusCode,
    headers: &[(&'static str, &'static str)],
    body: &impl serde::Serialize,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    for (name, value) in headers {
        response.insert_header((HeaderName::from_static(name), HeaderValue::from_static(value)));
    }
    response.json(body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use actix_web::body::MessageBody;

    use super::*;

    #[test]
    fn error_answers_keep_their_status_headers_and_body() {
        let response = ApiError::from(AuthError::RateLimited {
            retry_after: Duration::from_millis(11_200),
        })
        .error_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "12");
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let bytes = response.into_body().try_into_bytes().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"], "rate_limited");
    }
}
