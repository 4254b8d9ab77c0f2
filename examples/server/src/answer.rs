//! Error answers: `{"error": "<code>", "detail": "<human message>"}` with their status and
//! headers, decided once here so that every server answers byte for byte alike.

use std::time::Duration;

use auth_core::AuthError;

/// An error answer of the API. A server turns it into its framework's response with
/// [`status`](Self::status), [`headers`](Self::headers) and [`body`](Self::body).
///
/// ```
/// use example_server::ErrorAnswer;
///
/// let answer = ErrorAnswer::from(auth_core::AuthError::InvalidCredentials);
/// assert_eq!(answer.status(), 401);
/// assert_eq!(answer.headers(), vec![("www-authenticate", "Bearer".to_owned())]);
/// assert_eq!(answer.body(), r#"{"error":"invalid_credentials","detail":"invalid credentials"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorAnswer {
    status: u16,
    code: &'static str,
    detail: String,
    retry_after: Option<Duration>,
    /// `Connection: close`: the connection cannot carry another request.
    close: bool,
}

impl ErrorAnswer {
    fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            close: false,
        }
    }

    /// 503 `busy` with `Retry-After: 1` and `Connection: close`: the server has as many
    /// connections open as it serves at once (`AUTH_MAX_CONNECTIONS`).
    pub fn too_many_connections() -> Self {
        Self {
            retry_after: Some(Duration::from_secs(1)),
            close: true,
            ..Self::new(503, "busy", "the server has too many open connections; retry later")
        }
    }

    /// 408 `request_timeout` with `Connection: close`: the body did not arrive within
    /// `AUTH_BODY_TIMEOUT_SECS`.
    pub fn body_timeout() -> Self {
        Self {
            close: true,
            ..Self::new(408, "request_timeout", "the request body did not arrive in time")
        }
    }

    /// 400 `invalid_request`: the body or query does not parse, or a field is missing.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", detail)
    }

    /// 415 `unsupported_media_type`, naming the expected type.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            415,
            "unsupported_media_type",
            format!("expected Content-Type: {expected}"),
        )
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large() -> Self {
        Self::new(
            413,
            "payload_too_large",
            format!("the body is over {} bytes", crate::MAX_BODY_BYTES),
        )
    }

    /// 414 `uri_too_long`: the request's path and query are over [`crate::MAX_URI_BYTES`].
    pub fn uri_too_long() -> Self {
        Self::new(
            414,
            "uri_too_long",
            format!("the URI is over {} bytes", crate::MAX_URI_BYTES),
        )
    }

    /// 404 `not_found`: no such route.
    pub fn no_route() -> Self {
        Self::new(404, "not_found", "no such route")
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(405, "method_not_allowed", "this route does not take this method")
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Headers beside the JSON content type: `Retry-After` in whole seconds rounded up
    /// (a client that waits this long is served), `WWW-Authenticate: Bearer` on a 401.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(wait) = self.retry_after {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.push(("retry-after", seconds.max(1).to_string()));
        }
        if self.status == 401 {
            headers.push(("www-authenticate", "Bearer".to_owned()));
        }
        if self.close {
            headers.push(("connection", "close".to_owned()));
        }
        headers
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: &'a str,
            detail: &'a str,
        }
        serde_json::to_string(&Body {
            error: self.code,
            detail: &self.detail,
        })
        .unwrap_or_default()
    }
}

impl From<AuthError> for ErrorAnswer {
    fn from(error: AuthError) -> Self {
        if error.is_server_error() {
            // The cause (a store error, say) goes to the log, never to the client.
            tracing::error!(code = error.code(), error = ?std::error::Error::source(&error), "request failed on the server side");
        }
        Self {
            status: error.http_status(),
            code: error.code(),
            detail: error.to_string(),
            retry_after: error.retry_after(),
            close: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saturated_hash_pool_is_503_busy_with_retry_after() {
        let answer = ErrorAnswer::from(AuthError::Busy {
            retry_after: Duration::from_secs(1),
        });
        assert_eq!(answer.status(), 503);
        assert_eq!(answer.code(), "busy");
        assert_eq!(answer.headers(), vec![("retry-after", "1".to_owned())]);
    }

    #[test]
    fn retry_after_is_rounded_up_in_whole_seconds() {
        let answer = ErrorAnswer::from(AuthError::RateLimited {
            retry_after: Duration::from_millis(11_200),
        });
        assert_eq!((answer.status(), answer.code()), (429, "rate_limited"));
        assert_eq!(answer.headers(), vec![("retry-after", "12".to_owned())]);
        let tiny = ErrorAnswer::from(AuthError::RateLimited {
            retry_after: Duration::from_millis(1),
        });
        assert_eq!(tiny.headers(), vec![("retry-after", "1".to_owned())]);
    }

    #[test]
    fn request_errors_carry_no_extra_headers() {
        let answer = ErrorAnswer::invalid_request("bad");
        assert_eq!(answer.status(), 400);
        assert!(answer.headers().is_empty());
        assert_eq!(answer.body(), r#"{"error":"invalid_request","detail":"bad"}"#);
    }
}
