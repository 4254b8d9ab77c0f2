//! Error answers: `{"error": "<code>", "detail": "<human message>"}` with their status and
//! headers, decided once (by `auth_core::http` for the auth errors, here for the
//! transport's) so that every framework answers byte for byte alike.

use std::time::Duration;

use auth_core::AuthError;
use auth_core::http::ErrorResponse;

/// An error answer of the API: the core's [`ErrorResponse`] (which decides every
/// [`AuthError`]'s status, headers and body) and the answers of the transport itself. A
/// server turns it into its framework's response with [`status`](Self::status),
/// [`headers`](Self::headers) and [`body`](Self::body).
///
/// ```
/// use auth_http::ErrorAnswer;
///
/// let answer = ErrorAnswer::from(auth_core::AuthError::InvalidCredentials);
/// assert_eq!(answer.status(), 401);
/// assert_eq!(answer.headers(), vec![("www-authenticate", "Bearer".to_owned())]);
/// assert_eq!(answer.body(), r#"{"error":"invalid_credentials","detail":"invalid credentials"}"#);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ErrorAnswer(ErrorResponse, Vec<(&'static str, String)>);

impl std::fmt::Debug for ErrorAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The added headers (a cookie being cleared) by name only.
        let added: Vec<&str> = self.1.iter().map(|(name, _)| *name).collect();
        f.debug_tuple("ErrorAnswer").field(&self.0).field(&added).finish()
    }
}

impl ErrorAnswer {
    /// 503 `busy` with `Retry-After: 1` and `Connection: close`: the server has as many
    /// connections open as it serves at once.
    pub fn too_many_connections() -> Self {
        Self::of(
            ErrorResponse::new(503, "busy", "the server has too many open connections; retry later")
                .with_retry_after(Duration::from_secs(1))
                .with_connection_close(),
        )
    }

    /// 408 `request_timeout` with `Connection: close`: the body did not arrive within
    /// the body timeout ([`Endpoints::with_body_timeout`](crate::Endpoints::with_body_timeout)).
    pub fn body_timeout() -> Self {
        Self::of(
            ErrorResponse::new(408, "request_timeout", "the request body did not arrive in time")
                .with_connection_close(),
        )
    }

    /// 400 `invalid_request`: the body or query does not parse, or a field is missing.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::of(ErrorResponse::new(400, "invalid_request", detail))
    }

    /// 415 `unsupported_media_type`, naming the expected type.
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::of(ErrorResponse::new(
            415,
            "unsupported_media_type",
            format!("expected Content-Type: {expected}"),
        ))
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large() -> Self {
        Self::of(ErrorResponse::new(
            413,
            "payload_too_large",
            format!("the body is over {} bytes", crate::MAX_BODY_BYTES),
        ))
    }

    /// 414 `uri_too_long`: the request's path and query are over [`crate::MAX_URI_BYTES`].
    pub fn uri_too_long() -> Self {
        Self::of(ErrorResponse::new(
            414,
            "uri_too_long",
            format!("the URI is over {} bytes", crate::MAX_URI_BYTES),
        ))
    }

    /// 431 `header_fields_too_large`: over [`crate::MAX_HEADER_FIELDS`] header fields or
    /// [`crate::MAX_HEADER_BYTES`] of them.
    pub fn header_fields_too_large() -> Self {
        Self::of(ErrorResponse::new(
            431,
            "header_fields_too_large",
            format!(
                "over {} header fields or {} bytes of them",
                crate::MAX_HEADER_FIELDS,
                crate::MAX_HEADER_BYTES
            ),
        ))
    }

    /// 503 `unavailable` with `Retry-After: 1`: the request was not answered within
    /// `limit` (a server's request timeout).
    pub fn request_took_too_long(limit: std::time::Duration) -> Self {
        Self::of(
            ErrorResponse::new(
                503,
                "unavailable",
                format!("the request was not answered within {} s", limit.as_secs()),
            )
            .with_retry_after(std::time::Duration::from_secs(1)),
        )
    }

    /// 404 `not_found`: no such route.
    pub fn no_route() -> Self {
        Self::of(ErrorResponse::new(404, "not_found", "no such route"))
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::of(ErrorResponse::new(
            405,
            "method_not_allowed",
            "this route does not take this method",
        ))
    }

    /// 500 `internal` for a server that is not set up as this crate needs (`what` says
    /// what to add), logged as an error each time it is answered: a mistake in the
    /// application, never the client's, and never silent.
    pub fn misconfigured(what: &str) -> Self {
        tracing::error!("{what}");
        Self::of(ErrorResponse::from(&AuthError::Internal(what.into())))
    }

    fn of(response: ErrorResponse) -> Self {
        Self(response, Vec::new())
    }

    /// The answer with a header added after the error's own (a `Set-Cookie` that clears
    /// a cookie, a `Cache-Control`): for an endpoint whose every answer carries it. Its
    /// value never shows in the answer's `Debug`.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.1.push((name, value.into()));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.0.status()
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Whether this is a 503 `busy`: the server is saturated (its hash pool, or its
    /// connections) and the client is asked to come back after `Retry-After`.
    ///
    /// ```
    /// use auth_http::ErrorAnswer;
    ///
    /// let busy = auth_core::AuthError::Busy { retry_after: auth_core::RETRY_AFTER };
    /// assert!(ErrorAnswer::from(busy).is_busy());
    /// assert!(!ErrorAnswer::from(auth_core::AuthError::InvalidCredentials).is_busy());
    /// ```
    pub fn is_busy(&self) -> bool {
        self.code() == "busy"
    }

    /// Headers beside the JSON content type: the error's own (see
    /// [`ErrorResponse::headers`]), then those [added](Self::with_header).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = self.0.headers();
        headers.extend(self.1.iter().cloned());
        headers
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        self.0.body()
    }
}

impl std::fmt::Display for ErrorAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.0.status(), self.0.code(), self.0.detail())
    }
}

impl std::error::Error for ErrorAnswer {}

impl From<AuthError> for ErrorAnswer {
    fn from(error: AuthError) -> Self {
        if error.is_server_error() {
            // The cause (a store error, say) goes to the log, never to the client.
            tracing::error!(code = error.code(), error = ?std::error::Error::source(&error), "request failed on the server side");
        }
        Self::of(ErrorResponse::from(&error))
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
}
