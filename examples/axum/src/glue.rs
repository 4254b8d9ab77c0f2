//! The framework glue, short enough to copy: the error-to-response mapping and the
//! extractors. Nothing here knows an auth rule; `AuthService` does.

use std::net::{IpAddr, SocketAddr};

use auth_core::{AuthError, Authenticated, ClientInfo, TokenError, bearer_token};
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::AppState;

/// Every error answer: `{"error": "<code>", "detail": "<human message>"}`.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// From the core: its code, status and message.
    Auth(AuthError),
    /// The request itself is unusable (bad JSON, wrong content type, too large).
    Request {
        /// HTTP status.
        status: StatusCode,
        /// Stable code.
        code: &'static str,
        /// What to fix.
        detail: String,
    },
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self::Auth(error)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => unsupported("expected Content-Type: application/json"),
            JsonRejection::BytesRejection(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                too_large()
            }
            other => invalid_request(other.body_text()),
        }
    }
}

impl From<FormRejection> for ApiError {
    fn from(rejection: FormRejection) -> Self {
        match rejection {
            FormRejection::InvalidFormContentType(_) => {
                unsupported("expected Content-Type: application/x-www-form-urlencoded")
            }
            FormRejection::BytesRejection(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                too_large()
            }
            other => invalid_request(other.body_text()),
        }
    }
}

pub(crate) fn invalid_request(detail: impl Into<String>) -> ApiError {
    ApiError::Request {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_request",
        detail: detail.into(),
    }
}

fn unsupported(detail: &str) -> ApiError {
    ApiError::Request {
        status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
        code: "unsupported_media_type",
        detail: detail.to_owned(),
    }
}

fn too_large() -> ApiError {
    ApiError::Request {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "payload_too_large",
        detail: format!("the body is over {} bytes", crate::MAX_BODY_BYTES),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, detail, error) = match self {
            Self::Auth(error) => {
                let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                (status, error.code(), error.to_string(), Some(error))
            }
            Self::Request { status, code, detail } => (status, code, detail, None),
        };
        let mut headers = HeaderMap::new();
        if let Some(error) = &error {
            if error.is_server_error() {
                // The cause (a store error, say) goes to the log, never to the client.
                tracing::error!(code, error = ?std::error::Error::source(error), "request failed on the server side");
            }
            if let Some(wait) = error.retry_after() {
                // Whole seconds, rounded up: a client that waits this long is served.
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        let body = serde_json::json!({ "error": code, "detail": detail });
        (status, headers, axum::Json(body)).into_response()
    }
}

/// A JSON body whose rejections answer in our error format.
pub(crate) struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(Self(value))
    }
}

/// The caller as the core sees it: user agent and IP. The IP is the TCP peer's, or the
/// last `X-Forwarded-For` hop when the peer is the configured trusted proxy.
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
        let ip = match (peer, app.trusted_proxy) {
            // Behind the proxy, unreadable forwarding is an unknown client, not the proxy
            // itself (which would put every client in one bucket).
            (Some(peer), Some(proxy)) if peer == proxy => forwarded_client(&parts.headers),
            (peer, _) => peer,
        };
        let agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok());
        Ok(Self(ClientInfo::new(agent, ip)))
    }
}

/// The client address the trusted proxy saw: the last entry of the last
/// `X-Forwarded-For` line (the one the proxy appended; anything before it came from the
/// client). Accepts `ip`, `ip:port` and `[ipv6]:port`.
fn forwarded_client(headers: &HeaderMap) -> Option<IpAddr> {
    let line = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
    let entry = line.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
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
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let token = header
            .and_then(bearer_token)
            .ok_or(AuthError::InvalidToken(TokenError::Malformed))?;
        Ok(Self(app.auth.authenticate(token).await?))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_the_proxys_own_x_forwarded_for_entry_is_believed() {
        let mut headers = HeaderMap::new();
        assert_eq!(forwarded_client(&headers), None);
        headers.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        headers.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1, 203.0.113.9"));
        assert_eq!(forwarded_client(&headers), Some("203.0.113.9".parse().unwrap()));
        let mut ported = HeaderMap::new();
        ported.insert("x-forwarded-for", HeaderValue::from_static("[2001:db8::1]:4711"));
        assert_eq!(forwarded_client(&ported), Some("2001:db8::1".parse().unwrap()));
        ported.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9:80"));
        assert_eq!(forwarded_client(&ported), Some("203.0.113.9".parse().unwrap()));
        ported.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(forwarded_client(&ported), None);
    }

    async fn answer(error: AuthError) -> (StatusCode, HeaderMap, serde_json::Value) {
        let response = ApiError::from(error).into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_saturated_hash_pool_is_503_busy_with_retry_after() {
        let (status, headers, body) = answer(AuthError::Busy {
            retry_after: Duration::from_secs(1),
        })
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers[header::RETRY_AFTER], "1");
        assert_eq!(body["error"], "busy");
    }

    #[tokio::test]
    async fn retry_after_is_rounded_up_and_401s_ask_for_bearer() {
        let (status, headers, body) = answer(AuthError::RateLimited {
            retry_after: Duration::from_millis(11_200),
        })
        .await;
        assert_eq!(
            (status, &headers[header::RETRY_AFTER]),
            (StatusCode::TOO_MANY_REQUESTS, &HeaderValue::from(12u64))
        );
        assert_eq!(body["error"], "rate_limited");
        let (status, headers, body) = answer(AuthError::InvalidCredentials).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(
            body,
            serde_json::json!({"error": "invalid_credentials", "detail": "invalid credentials"})
        );
    }
}
