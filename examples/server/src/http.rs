//! Transport defenses both servers apply alike: how long a connection may stall, how many
//! may be open at once, and the headers every answer carries. Decided once here; each
//! server maps them onto its framework (`examples/axum/src/serve.rs`, Actix's settings).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use auth_http::ErrorAnswer;
use tokio::time::Instant;

/// How long a request answered 503 `busy` may not be asked again on its connection: the
/// `Retry-After` it was given (see [`RefusedRequest`]).
const BUSY_HOLD: Duration = auth_core::RETRY_AFTER;

/// The request a connection was last answered 503 `busy` for, and when it may be asked
/// again. Each server keeps one per connection and makes a repeat (the same method and
/// path) that comes before its `Retry-After` wait, unrouted, until it is due: a client
/// that ignores `Retry-After` and repeats at once, as a login flood does, would otherwise
/// keep every worker busy refusing it, and cheap requests on other connections would queue
/// behind the refusals. Any other request on the connection (a proxy's, for another
/// client) is served at once, and so is the `busy` answer itself.
///
/// ```
/// use example_server::http::RefusedRequest;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let refused = RefusedRequest::default();
/// // The server answered `POST /login` 503 `busy` on this connection.
/// refused.record_busy("POST", "/login");
/// // Another request is routed at once; a repeat waits for its `Retry-After` (1 s).
/// let start = tokio::time::Instant::now();
/// refused.wait_if_repeated("GET", "/me").await;
/// assert_eq!(start.elapsed().as_secs(), 0);
/// refused.wait_if_repeated("POST", "/login").await;
/// assert_eq!(start.elapsed().as_secs(), 1);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct RefusedRequest(Mutex<Option<Refused>>);

#[derive(Debug)]
struct Refused {
    method: String,
    path: String,
    due: Instant,
}

impl RefusedRequest {
    /// Waits, if a request with this method and path repeats the refused one before its
    /// `Retry-After` has passed, until it has; returns at once otherwise. Call it before
    /// the request is routed, and before its request timeout starts: the wait is the
    /// client's, not the server's.
    pub async fn wait_if_repeated(&self, method: &str, path: &str) {
        if let Some(due) = self.due(method, path) {
            tokio::time::sleep_until(due).await;
        }
    }

    /// Records that the request with this method and path was just answered 503 `busy`:
    /// a repeat on this connection waits for the `Retry-After` the answer gave.
    pub fn record_busy(&self, method: &str, path: &str) {
        let refused = Refused {
            method: method.to_owned(),
            path: path.to_owned(),
            due: Instant::now() + BUSY_HOLD,
        };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(refused);
    }

    /// When a request with this method and path may be routed, if that is still to come.
    fn due(&self, method: &str, path: &str) -> Option<Instant> {
        let refused = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let refused = refused.as_ref()?;
        (refused.method == method && refused.path == path && refused.due > Instant::now()).then_some(refused.due)
    }
}

/// File descriptors kept free beside the connections: database connections, the SQLite
/// file and its WAL, the runtime's own, the outbox, logs, and the 16 connections over the
/// cap that may be being refused at once.
pub const DESCRIPTOR_RESERVE: u64 = 64;

/// The fewest connections the cap allows, whatever the descriptor limit says.
pub const MIN_CONNECTIONS: usize = 16;

/// The cap when the descriptor limit is unknown or very high.
pub const MAX_CONNECTIONS: usize = 10_000;

/// Header fields the HTTP/1 parser takes; beyond, it answers 431 with no body and closes
/// the connection. Actix's parser has exactly this many (a constant of actix-http), and
/// the Axum server gives hyper the same. Requests under it and over the API's own limit
/// (`auth_http::MAX_HEADER_FIELDS`, 64) get the API's 431 `header_fields_too_large`.
pub const PARSER_MAX_HEADERS: usize = 96;

/// The read buffer of a request head that is not complete yet: once it is full, the
/// parser answers 431 with no body and closes the connection. Actix-http's constant,
/// given to hyper by the Axum server. Complete heads over the API's own limit
/// (`auth_http::MAX_HEADER_BYTES`, 32 KiB) get the API's 431 `header_fields_too_large`.
pub const PARSER_MAX_HEAD_BYTES: usize = 128 * 1024;

/// How long a connection may stall, and how many may be open.
///
/// | variable | default | what it bounds |
/// |---|---|---|
/// | `AUTH_HEADER_TIMEOUT_SECS` | 10 | from a connection's opening, or its previous answer, to the end of the next request's head: idle keep-alive and slow headers alike |
/// | `AUTH_BODY_TIMEOUT_SECS` | 10 | from the head to the end of the body; over it, 408 and the connection is closed |
/// | `AUTH_REQUEST_TIMEOUT_SECS` | 30 | from the head to the answer; over it, 503 `unavailable` with `Retry-After`. Beyond every bound inside (the body timeout, the stores' lock and connection timeouts, the hash pool's wait), so it only ends a request something else failed to bound; the request's work may still finish after its answer |
/// | `AUTH_MAX_CONNECTIONS` | the open-file limit minus 64, at least 16, at most 10,000 | connections open at once; beyond, 503 `busy` at once and closed |
///
/// ```
/// use std::time::Duration;
/// use example_server::http::HttpLimits;
///
/// let limits = HttpLimits::new(Some(256));
/// assert_eq!(limits.max_connections, 192);
/// assert_eq!(limits.header_timeout, Duration::from_secs(10));
/// assert_eq!(HttpLimits::new(None).max_connections, 10_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's head must be complete within this of the connection opening or
    /// going idle.
    pub header_timeout: Duration,
    /// A request's body must be complete within this of its head.
    pub body_timeout: Duration,
    /// A request must be answered within this of its head.
    pub request_timeout: Duration,
    /// Connections served at once; beyond, each is answered 503 and closed.
    pub max_connections: usize,
}

impl HttpLimits {
    /// The defaults for a process allowed `open_files` descriptors (`None`: unknown).
    pub fn new(open_files: Option<u64>) -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: connection_cap(open_files),
        }
    }

    /// The defaults for this process ([`open_file_limit`]), with any of
    /// `AUTH_HEADER_TIMEOUT_SECS`, `AUTH_BODY_TIMEOUT_SECS` and `AUTH_MAX_CONNECTIONS` that
    /// are set. A cap above what the descriptor limit allows is lowered to it (and
    /// logged): beyond it, accepting fails and every client waits.
    ///
    /// # Errors
    ///
    /// A message naming the variable that is not a positive whole number.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let open_files = open_file_limit();
        let mut limits = Self::new(open_files);
        let positive = |name: &str| -> Result<Option<u64>, String> {
            var(name)
                .map(|value| match value.parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!("{name}: a positive whole number")),
                })
                .transpose()
        };
        if let Some(secs) = positive("AUTH_HEADER_TIMEOUT_SECS")? {
            limits.header_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = positive("AUTH_BODY_TIMEOUT_SECS")? {
            limits.body_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = positive("AUTH_REQUEST_TIMEOUT_SECS")? {
            limits.request_timeout = Duration::from_secs(secs);
        }
        if let Some(wanted) = positive("AUTH_MAX_CONNECTIONS")? {
            let wanted = usize::try_from(wanted).unwrap_or(usize::MAX);
            let allowed = connection_cap(open_files);
            if wanted > allowed {
                tracing::warn!(
                    wanted,
                    allowed,
                    open_files,
                    "AUTH_MAX_CONNECTIONS is above what the open-file limit allows; lowered"
                );
            }
            limits.max_connections = wanted.min(allowed);
        }
        Ok(limits)
    }
}

/// The open-file limit of this process (the soft `RLIMIT_NOFILE`), if it has one.
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

fn connection_cap(open_files: Option<u64>) -> usize {
    let cap = open_files.map_or(MAX_CONNECTIONS as u64, |n| n.saturating_sub(DESCRIPTOR_RESERVE));
    usize::try_from(cap)
        .unwrap_or(MAX_CONNECTIONS)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The whole answer to a connection beyond [`HttpLimits::max_connections`], as bytes on
/// the wire: written before reading anything, then the connection is closed. The same
/// status, headers and body as [`ErrorAnswer::too_many_connections`].
pub fn too_many_connections_response() -> Vec<u8> {
    let answer = ErrorAnswer::too_many_connections();
    let body = answer.body();
    let mut head = format!(
        "HTTP/1.1 {} Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        answer.status(),
        body.len()
    );
    for (name, value) in answer.headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn only_a_repeat_of_the_refused_request_waits_and_only_until_it_is_due() {
        let refused = RefusedRequest::default();
        assert_eq!(refused.due("POST", "/login"), None, "nothing refused yet");

        refused.record_busy("POST", "/login");
        let due = Instant::now() + BUSY_HOLD;
        assert_eq!(refused.due("POST", "/login"), Some(due), "the repeat waits");
        assert_eq!(refused.due("GET", "/me"), None, "another request does not");
        assert_eq!(refused.due("GET", "/login"), None, "nor another method");
        assert_eq!(refused.due("POST", "/register"), None, "nor another path");

        let start = Instant::now();
        refused.wait_if_repeated("GET", "/me").await;
        assert_eq!(Instant::now(), start, "another request is routed at once");

        tokio::time::advance(BUSY_HOLD - Duration::from_millis(1)).await;
        assert_eq!(refused.due("POST", "/login"), Some(due));
        refused.wait_if_repeated("POST", "/login").await;
        assert_eq!(Instant::now(), due, "the repeat waited until it was due, and no longer");
        assert_eq!(refused.due("POST", "/login"), None, "due: routed at once");

        // A later refusal replaces the earlier one.
        refused.record_busy("POST", "/register");
        assert_eq!(refused.due("POST", "/register"), Some(Instant::now() + BUSY_HOLD));
        assert_eq!(refused.due("POST", "/login"), None);
    }

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        assert_eq!(HttpLimits::new(Some(256)).max_connections, 192);
        assert_eq!(HttpLimits::new(Some(1024)).max_connections, 960);
        assert_eq!(HttpLimits::new(Some(50)).max_connections, MIN_CONNECTIONS);
        assert_eq!(HttpLimits::new(Some(1 << 20)).max_connections, MAX_CONNECTIONS);
        assert_eq!(HttpLimits::new(None).max_connections, MAX_CONNECTIONS);
    }

    #[test]
    fn settings_come_from_the_environment_and_the_cap_is_bounded() {
        let limits = HttpLimits::from_env(|name| match name {
            "AUTH_HEADER_TIMEOUT_SECS" => Some("2".to_owned()),
            "AUTH_BODY_TIMEOUT_SECS" => Some("3".to_owned()),
            "AUTH_MAX_CONNECTIONS" => Some("50".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(limits.header_timeout, Duration::from_secs(2));
        assert_eq!(limits.body_timeout, Duration::from_secs(3));
        assert_eq!(limits.max_connections, 50);
        let huge =
            HttpLimits::from_env(|name| (name == "AUTH_MAX_CONNECTIONS").then(|| "99999999".to_owned())).unwrap();
        assert!(huge.max_connections <= connection_cap(open_file_limit()));
        for bad in ["0", "-1", "ten"] {
            let error = HttpLimits::from_env(|name| (name == "AUTH_BODY_TIMEOUT_SECS").then(|| bad.to_owned()));
            assert!(error.unwrap_err().contains("AUTH_BODY_TIMEOUT_SECS"));
        }
    }

    #[test]
    fn the_refusal_is_a_complete_http_answer() {
        let bytes = String::from_utf8(too_many_connections_response()).unwrap();
        let (head, body) = bytes.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        assert!(head.contains("\r\nconnection: close"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        assert_eq!(body, ErrorAnswer::too_many_connections().body());
    }
}
