//! The example auth server on Actix-web: `cargo run -p example-actix`.
//!
//! The same HTTP API, configuration and behaviour as `example-axum` (the browser pages are
//! Axum's only): `auth-actix`'s routes, mounted whole, with what a deployment needs around
//! them (configuration, the store, mail, connection limits, security headers). Every auth
//! rule lives in `auth-core`, every answer in `auth-http`, and one contract suite
//! (`examples/contract`) holds both servers to the same answers.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Condition, Next, from_fn};
use actix_web::web;
use auth_actix::ApiError;
use auth_http::ErrorAnswer;
use example_server::App;
use example_server::http::RefusedRequest;
use tracing::Instrument;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    // No pages here: nothing to check before listening.
    example_server::main("example-actix", |_| Ok(()), serve).await
}

async fn serve(app: App, (): (), listener: std::net::TcpListener) -> std::io::Result<()> {
    let limits = app.limits;
    let https = app.https;
    let endpoints = app.endpoints();
    let cors_policy = app.cors.clone();
    let open = Arc::new(AtomicUsize::new(0));
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .configure(auth_actix::configure(&endpoints))
            .default_service(web::to(auth_actix::handlers::no_route))
            // Without AUTH_CORS_ORIGINS the middleware is not in the way at all: the
            // answers stay exactly as before.
            .wrap(Condition::new(cors_policy.is_some(), cors(cors_policy.as_ref())))
            .wrap_fn(move |request: ServiceRequest, service| {
                let request_timeout = limits.request_timeout;
                // Over the connection cap: answered at once and closed, as Axum does.
                let over = request
                    .conn_data::<ConnectionSlot>()
                    .is_some_and(|slot| slot.over_capacity);
                let uri_too_long =
                    request.uri().path_and_query().map_or(0, |uri| uri.as_str().len()) > auth_http::MAX_URI_BYTES;
                let headers_too_large = auth_http::headers_over_limits(
                    request
                        .headers()
                        .iter()
                        .map(|(name, value)| (name.as_str().len(), value.len())),
                );
                let credentials = request.headers().contains_key(header::AUTHORIZATION)
                    || request.headers().contains_key(header::COOKIE);
                let refusal = if over {
                    Some(ErrorAnswer::too_many_connections())
                } else if uri_too_long {
                    Some(ErrorAnswer::uri_too_long())
                } else if headers_too_large {
                    Some(ErrorAnswer::header_fields_too_large())
                } else {
                    None
                };
                let response = match refusal {
                    Some(refusal) => Err(refusal),
                    None => Ok(service.call(request)),
                };
                async move {
                    let mut response = match response {
                        Ok(response) => match actix_web::rt::time::timeout(request_timeout, response).await {
                            Ok(response) => response?,
                            Err(_) => {
                                tracing::warn!(
                                    timeout_secs = request_timeout.as_secs(),
                                    "a request was not answered in time"
                                );
                                return Err(ApiError(ErrorAnswer::request_took_too_long(request_timeout)).into());
                            }
                        },
                        Err(refusal) => return Err(ApiError(refusal).into()),
                    };
                    // actix-cors answers a preflight it refuses (an origin, method or
                    // header not allowed) 400 in plain text; the API's error shape instead.
                    let cors_refusal = response
                        .response()
                        .error()
                        .and_then(|error| error.as_error::<actix_cors::CorsError>())
                        .map(ToString::to_string);
                    if let Some(refusal) = cors_refusal {
                        let detail = format!("cross-origin request refused: {refusal}");
                        return Err(ApiError(ErrorAnswer::invalid_request(detail)).into());
                    }
                    let headers = response.headers_mut();
                    // actix-cors adds these to every answer; like Axum's, they go only
                    // beside an allowed origin.
                    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
                        headers.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
                        headers.remove(header::ACCESS_CONTROL_EXPOSE_HEADERS);
                    }
                    let has_cache_control = headers.contains_key(header::CACHE_CONTROL);
                    for (name, value) in auth_http::headers::response_headers(credentials, has_cache_control, https) {
                        headers.insert(
                            header::HeaderName::from_static(name),
                            header::HeaderValue::from_static(value),
                        );
                    }
                    Ok(response)
                }
            })
            // Outside the request timeout: the wait is the client's, not the server's.
            .wrap(from_fn(hold_busy_repeats))
            // The path only: reset and verification links carry their token in the query.
            .wrap_fn(|request: ServiceRequest, service| {
                // At `debug`, like the request and response lines: at the default `info`
                // a span per request would cost more than the request's own store read
                // (benches/BENCHMARKS.md), and would say nothing.
                let span = tracing::debug_span!("request", method = %request.method(), path = %request.path());
                let response = service.call(request);
                async move {
                    let response = response.await?;
                    tracing::debug!(status = response.status().as_u16(), "finished processing request");
                    Ok(response)
                }
                .instrument(span)
            })
    })
    // A request's head within the header timeout, also after a kept-alive answer.
    .client_request_timeout(limits.header_timeout)
    .keep_alive(actix_web::http::KeepAlive::Timeout(limits.header_timeout))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    // Beyond the cap, connections are still accepted (and answered 503) up to a margin
    // that stays within the descriptor limit; beyond that, Actix stops accepting.
    .max_connections((limits.max_connections + REFUSAL_MARGIN).div_ceil(workers))
    .workers(workers)
    .on_connect(move |io, extensions| {
        let now_open = open.fetch_add(1, Ordering::SeqCst) + 1;
        let over_capacity = now_open > limits.max_connections;
        if over_capacity {
            refuse_at_once(io);
        }
        extensions.insert(ConnectionSlot {
            open: Arc::clone(&open),
            over_capacity,
        });
        extensions.insert(Arc::new(RefusedRequest::default()));
    })
    .listen(listener)?
    // Signals are `example_server::shutdown_signal`'s, as for every example server.
    .disable_signals()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        example_server::shutdown_signal().await;
        handle.stop(true).await;
    });
    server.await
}

/// A request answered 503 `busy` and repeated on its connection before its `Retry-After`
/// waits, unrouted, until it is due (`example_server::http::RefusedRequest`, as on Axum).
async fn hold_busy_repeats(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let refused = request.conn_data::<Arc<RefusedRequest>>().cloned();
    if let Some(refused) = &refused {
        refused
            .wait_if_repeated(request.method().as_str(), request.path())
            .await;
    }
    let response = next.call(request).await?;
    let busy = response
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>())
        .is_some_and(|error| error.0.is_busy());
    if let Some(refused) = refused.filter(|_| busy) {
        let request = response.request();
        refused.record_busy(request.method().as_str(), request.path());
    }
    Ok(response)
}

/// Cross-origin access for the listed origins only, as `example_server::CorsPolicy`
/// decides it: their `Origin` echoed with credentials allowed, the API's methods and
/// headers, `Max-Age` for preflights, `Vary: Origin`. A request from another origin is
/// served without CORS headers (not refused: a browser keeps the answer from the script,
/// and other clients are none of CORS's business); a preflight from one is refused by
/// actix-cors, answered 400 `invalid_request` by `serve`. `None` (unused, the middleware
/// is off) allows nothing.
fn cors(policy: Option<&example_server::CorsPolicy>) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .block_on_origin_mismatch(false)
        .supports_credentials()
        .allowed_methods(example_server::CORS_METHODS)
        .allowed_headers(example_server::CORS_REQUEST_HEADERS)
        .expose_headers(example_server::CORS_EXPOSED_HEADERS)
        .max_age(usize::try_from(example_server::CORS_MAX_AGE.as_secs()).ok());
    for origin in policy.map(example_server::CorsPolicy::origins).unwrap_or_default() {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Connections accepted beyond the cap, to be answered 503 `busy` and closed.
const REFUSAL_MARGIN: usize = 16;

/// Answers a connection over the cap before it sends anything, as Axum's accept loop
/// does: the canned 503, then the connection closed. Actix would otherwise answer only
/// once a request arrives, so a client that opens connections and sends nothing would
/// hold the refusal margin until the header timeout, and every new client would wait in
/// the listen backlog meanwhile (measured: `benches/abuse.sh`'s flood phase, a p99 of
/// 8.8 s).
///
/// When the client has sent nothing yet, both directions are shut: Actix reads the end
/// at once and lets the connection go, whether or not the client ever closes its side.
/// When a request is already there, only the write side is: Actix reads the request and
/// drops the connection when its answer meets the closed side, and since the request
/// was read, closing does not reset the connection under the client's 503.
fn refuse_at_once(io: &dyn std::any::Any) {
    let Some(stream) = io.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    let refusal = example_server::http::too_many_connections_response();
    // Sent through the socket itself: Tokio's `try_write` has seen no readiness yet at
    // this point and would answer `WouldBlock`. A fresh socket's send buffer takes these
    // few hundred bytes whole. If it takes none, the per-request refusal in `serve` still
    // answers; if it takes a part, the connection is cut rather than answered twice.
    let socket = socket2::SockRef::from(stream);
    let shutdown = match socket.send(&refusal) {
        Ok(written) if written == refusal.len() => {
            let mut first = [std::mem::MaybeUninit::<u8>::uninit()];
            match socket.peek(&mut first) {
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => std::net::Shutdown::Both,
                _ => std::net::Shutdown::Write,
            }
        }
        Ok(_) => std::net::Shutdown::Both,
        Err(_) => return,
    };
    let _ = socket.shutdown(shutdown);
}

/// One open connection, counted while its connection data lives (it is dropped with the
/// connection).
struct ConnectionSlot {
    open: Arc<AtomicUsize>,
    over_capacity: bool,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}
