//! The Axum glue, short enough to copy: the error-to-response mapping and the extractors.
//! Nothing here knows an auth rule (`AuthService` does), and nothing here decides an
//! answer (`example_server` does, for both servers): it only moves bytes.

use std::net::SocketAddr;

use auth_core::{AuthError, Authenticated, ClientInfo, TokenError, bearer_token};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use example_server::{ErrorAnswer, api};
use serde::de::DeserializeOwned;

use crate::AppState;

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.0.headers() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        (status, headers, self.0.body()).into_response()
    }
}

/// A JSON success answer with `headers`.
pub(crate) fn json(
    status: StatusCode,
    headers: &[(&'static str, &'static str)],
    body: &impl serde::Serialize,
) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    response
}

/// The whole body (at most `MAX_BODY_BYTES`, by the router's limit) and its content type.
/// A body that does not arrive within the body timeout is a 408 and ends the connection,
/// however slowly it trickles.
pub(crate) async fn raw_body<S>(request: Request, state: &S) -> Result<(Option<String>, Bytes), ApiError>
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let timeout = AppState::from_ref(state).body_timeout;
    let body = tokio::time::timeout(timeout, Bytes::from_request(request, state))
        .await
        .map_err(|_| ErrorAnswer::body_timeout())?
        .map_err(|rejection| match rejection {
            BytesRejection::FailedToBufferBody(failure) if failure.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ErrorAnswer::payload_too_large()
            }
            other => ErrorAnswer::invalid_request(other.body_text()),
        })?;
    Ok((content_type, body))
}

/// A JSON body, parsed by the shared parser.
pub(crate) struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (content_type, body) = raw_body(request, state).await?;
        Ok(Self(api::json_body(content_type.as_deref(), &body)?))
    }
}

/// The body of `POST /login`: the OAuth2 form or JSON.
pub(crate) struct LoginBody(pub api::Credentials);

impl<S> FromRequest<S> for LoginBody
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (content_type, body) = raw_body(request, state).await?;
        Ok(Self(api::login_body(content_type.as_deref(), &body)?))
    }
}

/// The caller as the core sees it: user agent and IP (the TCP peer's, or the trusted
/// proxy's `X-Forwarded-For` entry).
pub(crate) struct Client(pub ClientInfo);

impl<S> FromRequestParts<S> for Client
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok());
        let ip = api::client_ip(peer, app.trusted_proxy, forwarded);
        let agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok());
        Ok(Self(ClientInfo::new(agent, ip)))
    }
}

/// The account behind the request's bearer token; 401 `invalid_token` without one.
pub(crate) struct CurrentUser(pub Authenticated);

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token)
            .ok_or(AuthError::InvalidToken(TokenError::Malformed))?;
        Ok(Self(app.auth.authenticate(token).await?))
    }
}

/// The `{id}` of a route as text; parsed by `api::account_id` or `api::session_id`.
pub(crate) struct IdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A segment that does not decode names nothing: the handler's own 404 answers.
        let id = axum::extract::Path::<String>::from_request_parts(parts, state).await;
        Ok(Self(id.map(|axum::extract::Path(id)| id).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn error_answers_keep_their_status_headers_and_body() {
        let response = ApiError::from(AuthError::RateLimited {
            retry_after: Duration::from_millis(11_200),
        })
        .into_response();
        let (parts, body) = response.into_parts();
        assert_eq!(parts.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(parts.headers[header::RETRY_AFTER], "12");
        assert_eq!(parts.headers[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"], "rate_limited");
    }
}
