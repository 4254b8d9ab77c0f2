//! The HTTP API of [`auth_core`], whatever the web framework: the endpoints of the
//! contract ([`Endpoints`]), the JSON shapes and body parsing ([`api`]), how a client is
//! told apart ([`ClientAddressing`]), the error answers ([`ErrorAnswer`]) and the headers
//! every answer carries ([`headers`]). Written once here, so that every framework answers
//! byte for byte alike.
//!
//! A framework integration (`auth-axum`, `auth-actix`) only moves bytes: it reads a
//! request's parts into these types, calls an endpoint, and writes the [`Answer`] or
//! [`ErrorAnswer`] as its framework's response.
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::{AuthService, ClientInfo, MemoryStore, SigningKey, Tokens};
//! use auth_http::{Endpoints, api};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::hs256(b"a secret of at least thirty-two bytes!!")?;
//! let service = Arc::new(AuthService::new(MemoryStore::new(), Tokens::new(key, "https://auth.example", "api")));
//! let endpoints = Endpoints::new(service);
//!
//! // What a framework does for `POST /register` from 203.0.113.9:
//! let client = endpoints.addressing().client("203.0.113.9".parse()?, None, Some("curl/8"));
//! let body: api::Credentials = api::json_body(
//!     Some("application/json"),
//!     br#"{"email": "ada@example.com", "password": "analytical-engine"}"#,
//! )?;
//! let answer = endpoints.register(&client, body).await?;
//! assert_eq!(answer.status(), 201);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub mod api;
mod client;
mod endpoints;
mod error;
pub mod headers;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod qr;
mod role;

pub use client::ClientAddressing;
pub use endpoints::{Answer, DEFAULT_BODY_TIMEOUT, EndpointResult, Endpoints, Mail, SendMail};
pub use error::ErrorAnswer;
pub use role::{Admin, RoleRequirement};

/// Largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest path and query accepted (414 `uri_too_long` beyond). No route needs more; far
/// below what the frameworks' parsers take, so every framework answers alike up to there.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Most header fields a request may carry (431 `header_fields_too_large` beyond). Browsers
/// send about 20; far below what the frameworks' parsers take (96), so every framework
/// answers alike up to there.
pub const MAX_HEADER_FIELDS: usize = 64;

/// Most bytes a request's header fields may take, names and values (431
/// `header_fields_too_large` beyond): room for large cookies, far below the frameworks'
/// parsers (128 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Whether header fields of these `(name, value)` lengths are over [`MAX_HEADER_FIELDS`]
/// or [`MAX_HEADER_BYTES`].
///
/// ```
/// assert!(!auth_http::headers_over_limits([(4, 9), (6, 16)]));
/// assert!(auth_http::headers_over_limits(std::iter::repeat((8, 8)).take(65)));
/// assert!(auth_http::headers_over_limits([(6, 40_000)]));
/// ```
pub fn headers_over_limits(fields: impl IntoIterator<Item = (usize, usize)>) -> bool {
    let (mut count, mut bytes) = (0usize, 0usize);
    for (name, value) in fields {
        count += 1;
        bytes = bytes.saturating_add(name).saturating_add(value);
        if count > MAX_HEADER_FIELDS || bytes > MAX_HEADER_BYTES {
            return true;
        }
    }
    false
}
