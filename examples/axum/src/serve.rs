//! The accept loop: `axum::serve` has no timeouts and no connection cap, so a few hundred
//! stalled connections used to exhaust the process's file descriptors. This loop serves
//! HTTP/1.1 with hyper directly and applies [`HttpLimits`]:
//!
//! - a request's head must arrive within `header_timeout` of the connection opening or
//!   going idle (hyper's header-read timer, which also runs while a kept-alive connection
//!   waits for its next request), or the connection is closed;
//! - bodies are bounded by `body_timeout` in the body extractors (`glue.rs`);
//! - at most `max_connections` are served at once; beyond, each is answered a canned 503
//!   and closed at once, so the process never reaches its descriptor limit;
//! - a connection is closed gracefully: the write side first, then what the client still
//!   sends is read and dropped (bounded), so a client that was answered before it finished
//!   sending (a 413, an early 401) reads its answer instead of a reset.
//! - a request answered 503 `busy` (the hash pool saturated) and asked again on the same
//!   connection before its `Retry-After` has passed waits, before it is routed, until it
//!   has ([`RefusedRequest`]): a client that ignores `Retry-After` and repeats at once, as
//!   a login flood does, would otherwise keep every worker busy refusing it, and cheap
//!   requests on other connections would queue behind the refusals. Other requests on
//!   that connection (a proxy's, from other clients) are served at once, and so is the
//!   answer itself.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::HttpBody;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use example_server::http::{HttpLimits, RefusedRequest, too_many_connections_response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// What a closing connection may still read from its client before it is dropped.
const LINGER_BYTES: usize = 4 * 1024 * 1024;
/// How long a closing connection waits for its client to finish sending and close.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// Refusals being written at once (counted in [`example_server::http::DESCRIPTOR_RESERVE`]).
const MAX_REFUSALS: usize = 16;
/// How long a refusal waits for its client to finish sending its request and close: the
/// refusal is written before the request is read, and closing on unread bytes would reset
/// the connection before the client reads it.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);
/// The pause after the accept queue fails (out of descriptors, say), before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown` resolves, then lets the connections in
/// flight finish their requests (idle ones close at once).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accept_failures = AcceptFailures::default();
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failures.record(&error);
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        // Over the cap, the connection is refused as soon as a refusal slot is free, or
        // served if a connection slot frees first. While both are taken, accepting
        // waits: the kernel's backlog holds the next clients, at no descriptor's cost.
        let slot = match Arc::clone(&connections).try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => tokio::select! {
                permit = Arc::clone(&connections).acquire_owned() => permit.map_err(|_| None),
                permit = Arc::clone(&refusals).acquire_owned() => Err(permit.ok()),
            },
        };
        match slot {
            Ok(permit) => {
                let (router, stopping) = (router.clone(), stopping.clone());
                tokio::spawn(async move {
                    serve_connection(stream, peer, router, limits, stopping).await;
                    drop(permit);
                });
            }
            Err(Some(permit)) => {
                tokio::spawn(async move {
                    refuse(stream).await;
                    drop(permit);
                });
            }
            Err(None) => drop(stream),
        }
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it is done: once all are back, all are.
    let drained = connections.acquire_many(u32::try_from(limits.max_connections).unwrap_or(u32::MAX));
    let bound = limits.header_timeout + limits.body_timeout + LINGER_TIME;
    if tokio::time::timeout(bound, drained).await.is_err() {
        tracing::warn!("connections still open at shutdown were dropped");
    }
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: HttpLimits,
    mut stopping: watch::Receiver<bool>,
) {
    let refused = Arc::new(RefusedRequest::default());
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let refused = Arc::clone(&refused);
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(peer));
        let read = Arc::new(AtomicBool::new(body.is_end_stream()));
        let body = axum::body::Body::new(WatchedBody {
            inner: body,
            read: Arc::clone(&read),
        });
        let router = router.clone();
        let request_timeout = limits.request_timeout;
        // Boxed: the connection is polled in place (`poll_without_shutdown`), which needs
        // every future it drives to be `Unpin`.
        Box::pin(async move {
            refused.wait_if_repeated(parts.method.as_str(), parts.uri.path()).await;
            let (method, uri) = (parts.method.clone(), parts.uri.clone());
            let answer = tokio::time::timeout(request_timeout, router.oneshot(hyper::Request::from_parts(parts, body)));
            let mut response = match answer.await {
                Ok(response) => response?,
                Err(_) => {
                    tracing::warn!(
                        timeout_secs = request_timeout.as_secs(),
                        "a request was not answered in time"
                    );
                    auth_axum::ApiError(auth_http::ErrorAnswer::request_took_too_long(request_timeout)).into_response()
                }
            };
            // Answered before its body was read (a 413, a 401): hyper will close the
            // connection rather than read the rest, so the client must not reuse it.
            if !read.load(Ordering::Acquire) {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            if is_busy(&response) {
                refused.record_busy(method.as_str(), uri.path());
            }
            Ok::<_, std::convert::Infallible>(response)
        })
    });
    let mut connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(example_server::http::PARSER_MAX_HEADERS)
        .max_buf_size(example_server::http::PARSER_MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    let mut stop_requested = *stopping.borrow();
    if stop_requested {
        Pin::new(&mut connection).graceful_shutdown();
    }
    let finished = loop {
        tokio::select! {
            finished = std::future::poll_fn(|cx| connection.poll_without_shutdown(cx)) => break finished,
            changed = stopping.changed(), if !stop_requested => {
                stop_requested = true;
                if changed.is_ok() {
                    Pin::new(&mut connection).graceful_shutdown();
                }
            }
        }
    };
    match finished {
        Ok(()) => linger(connection.into_parts().io.into_inner(), LINGER_TIME).await,
        // A stalled head, a broken client: nothing more to say to it.
        Err(error) => tracing::debug!(%error, %peer, "connection closed"),
    }
}

/// A request body that records when it has been read to its end.
struct WatchedBody {
    inner: Incoming,
    read: Arc<AtomicBool>,
}

impl HttpBody for WatchedBody {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() {
            self.read.store(true, Ordering::Release);
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `response` is a 503 `busy`, which asks the client to come back later (see
/// [`RefusedRequest`]).
fn is_busy(response: &axum::response::Response) -> bool {
    response.extensions().get::<auth_axum::Busy>().is_some()
}

/// Answers a connection over the cap without reading its request, and closes it.
async fn refuse(mut stream: TcpStream) {
    let refusal = too_many_connections_response();
    if tokio::time::timeout(REFUSAL_LINGER, stream.write_all(&refusal))
        .await
        .is_ok()
    {
        linger(stream, REFUSAL_LINGER).await;
    }
}

/// Closes the write side (the client sees the end of the answer), then reads and drops
/// what the client still sends, until it closes or a bound is reached. Closing with
/// unread bytes instead would send a reset, which can destroy the answer before the
/// client reads it.
async fn linger(mut stream: TcpStream, time: Duration) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut buffer = vec![0_u8; 64 * 1024];
        let mut read = 0;
        while read < LINGER_BYTES {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
    };
    let _ = tokio::time::timeout(time, drain).await;
}

/// Accept failures, logged at most once per 10 seconds: out of descriptors, every accept
/// fails, and a line for each would flood the log.
#[derive(Default)]
struct AcceptFailures {
    last_logged: Option<tokio::time::Instant>,
    since: u64,
}

impl AcceptFailures {
    fn record(&mut self, error: &std::io::Error) {
        self.since += 1;
        let now = tokio::time::Instant::now();
        if self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(10))
        {
            tracing::warn!(%error, failures = self.since, "cannot accept connections");
            self.last_logged = Some(now);
            self.since = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_busy_answer_is_busy() {
        let busy = auth_core::AuthError::Busy {
            retry_after: auth_core::RETRY_AFTER,
        };
        assert!(is_busy(&auth_axum::ApiError(busy.into()).into_response()));
        for other in [
            auth_core::AuthError::InvalidCredentials,
            auth_core::AuthError::Unavailable(auth_core::StoreError::unavailable("down")),
        ] {
            let answer = auth_axum::ApiError(other.into()).into_response();
            assert!(!is_busy(&answer), "{answer:?}");
        }
        assert!(!is_busy(&axum::http::StatusCode::OK.into_response()));
    }
}
