//! Email/password authentication for Rust services, with the details done right.
//!
//! `auth-core` is the domain: no web framework, no database. It holds
//!
//! - [`Email`]: one normalization (trim, NFKC, lowercase, IDNA) on every write and lookup;
//! - [`Password`] and [`PasswordPolicy`]: secrets that never print, NIST-style rules;
//! - [`Argon2Hasher`]: argon2id with OWASP parameters, verification and upgrade of legacy
//!   hashes (bcrypt, Django PBKDF2, other argon2 parameters);
//! - [`HashPool`]: hashing on a bounded blocking pool that answers "busy" instead of
//!   queueing without bound;
//! - [`Tokens`]: short-lived JWT access tokens (HS256, EdDSA or ES256), verified without a
//!   store;
//! - [`UserStore`]: the storage contract, with [`MemoryStore`] as reference and a
//!   [conformance suite](conformance) (feature `conformance`) every backend runs;
//! - [`AuthService`]: every flow (register, login, authenticate, change password,
//!   disable), with one typed [`AuthError`].
//!
//! Backends live in `auth-store-sqlite` and `auth-store-postgres`.
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::{AuthService, MemoryStore, Password, SigningKey, Tokens};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::hs256(b"an example secret of at least 32 bytes!")?;
//! let auth = Arc::new(AuthService::new(
//!     MemoryStore::new(),
//!     Tokens::new(key, "https://auth.example.com", "example-api"),
//! ));
//!
//! auth.register("grace@example.com", Password::new("cobol-compiler-1959")).await?;
//! let login = auth.login("Grace@Example.com", Password::new("cobol-compiler-1959")).await?;
//! let user = auth.authenticate(login.access_token.expose_secret()).await?;
//! assert_eq!(user.email.as_str(), "grace@example.com");
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod clock;
mod email;
mod error;
mod hash;
mod password;
mod service;
mod store;
mod token;
mod user;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use clock::{Clock, ManualClock, SystemClock};
pub use email::{Email, EmailError, MAX_ADDRESS_BYTES, MAX_LOCAL_PART_BYTES};
pub use error::{AuthError, RETRY_AFTER};
pub use hash::{
    Argon2Hasher, Argon2Params, HashError, HashLimits, HashPool, HashPoolError, HashedPassword, ParamsError,
    PasswordHasher, Verification,
};
pub use password::{
    DEFAULT_MAX_LENGTH, DEFAULT_MIN_LENGTH, NIST_SINGLE_FACTOR_MIN_LENGTH, Password, PasswordPolicy, PolicyViolation,
};
pub use service::{AuthService, LoginSuccess};
pub use store::{BoxError, MemoryStore, StoreError, UserStore};
pub use token::{
    AccessClaims, AccessToken, DEFAULT_ACCESS_TTL, DEFAULT_LEEWAY, KeyError, MAX_LEEWAY, MIN_HS256_SECRET_BYTES,
    SignError, SigningKey, TokenError, Tokens, bearer_token,
};
pub use user::{Role, RoleError, User, UserId};

/// The workspace README's Rust examples, compiled and run as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
