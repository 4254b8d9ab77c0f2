//! The load benchmark's baseline: the HTTP stack alone. A bare Axum server (the same
//! `axum` and Tokio as `example-axum`, `#[tokio::main]` with a worker per core, no
//! middleware) whose one route, `GET /me`, answers the same JSON body and headers as the
//! example server's `/me` for an account without a second factor, with nothing behind it:
//! no token check, no store, no logging. What `example-axum`'s `/me` reaches as a share of
//! this route's throughput, in the same run, is what everything we add costs.
//!
//! ```sh
//! cargo run --release -p benches --bin bare_me    # BIND=127.0.0.1:0 by default
//! ```
//!
//! Logs `listening address=<ip:port>` on stderr once it accepts, as the example servers do.

use std::io::Write;
use std::process::ExitCode;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// The body `example-axum` answers to `GET /me` for the load benchmark's first account,
/// byte for byte except the id (another UUID of the same length).
const BODY: &str = concat!(
    r#"{"email":"load-1@example.com","email_verified":false,"#,
    r#""id":"0193a1f4-6c1e-7b2a-9d3e-5f6a7b8c9d0e","is_active":true,"#,
    r#""mfa":{"recovery_codes_left":0,"totp":false},"roles":[]}"#
);

async fn me() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        BODY,
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    let listener = match tokio::net::TcpListener::bind(&bind).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot listen on {bind}: {error}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        // One write: stderr is unbuffered, and `eprintln!` may write the pieces of the
        // line one by one, so a script reading the log could see the address cut short.
        Ok(address) => {
            let line = format!("listening address={address}\n");
            if let Err(error) = std::io::stderr().write_all(line.as_bytes()) {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
        }
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    }
    let app = Router::new().route("/me", get(me));
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
