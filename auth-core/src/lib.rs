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
//! - [`Tokens`] and [`TokenVerifier`]: short-lived JWT access tokens (HS256, EdDSA or
//!   ES256), verified without a store, with key rotation by `kid` and a JWKS export;
//! - [`OpaqueToken`]: refresh, password-reset and email-verification tokens, 256 random
//!   bits, stored only as SHA-256;
//! - [`UserStore`], [`SessionStore`], [`OneTimeTokenStore`] (together [`AuthStore`]): the
//!   storage contract, with [`MemoryStore`] as reference and a
//!   [conformance suite](conformance) (feature `conformance`) every backend runs;
//! - [`AuthService`]: every flow (register, login, refresh with rotation and reuse
//!   detection, logout, sessions, password change and reset, email verification, roles,
//!   disable), with one typed [`AuthError`].
//!
//! Backends live in `auth-store-sqlite` and `auth-store-postgres`.
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::{AuthService, ClientInfo, MemoryStore, Password, SigningKey, Tokens};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::hs256(b"an example secret of at least 32 bytes!")?;
//! // What the web layer knows about the caller: it labels sessions and keys rate limits.
//! let client = ClientInfo::new(Some("curl/8.5"), Some("203.0.113.7".parse()?));
//! let auth = Arc::new(AuthService::new(
//!     MemoryStore::new(),
//!     Tokens::new(key, "https://auth.example.com", "example-api"),
//! ));
//!
//! auth.register("grace@example.com", Password::new("cobol-compiler-1959"), &client).await?;
//! let login = auth.login("Grace@Example.com", Password::new("cobol-compiler-1959"), &client).await?.signed_in()?;
//! let me = auth.authenticate(login.tokens.access_token.expose_secret()).await?;
//! assert_eq!(me.user.email.as_str(), "grace@example.com");
//!
//! // Fifteen minutes later: trade the refresh token (once) for a new pair.
//! let next = auth.refresh(login.tokens.refresh_token.expose_secret(), &client).await?;
//! auth.logout(next.refresh_token.expose_secret(), &client).await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod access;
mod auth_method;
mod clock;
mod email;
mod error;
mod event;
mod hash;
pub mod http;
mod id;
mod one_time;
mod password;
mod rate_limit;
mod role;
mod service;
mod session;
mod store;
pub mod stored;
mod token;
mod user;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use auth_method::{AuthMethod, AuthMethodError, AuthMethods};
pub use clock::{Clock, ManualClock, SystemClock};
pub use email::{Email, EmailError, MAX_ADDRESS_BYTES, MAX_LOCAL_PART_BYTES};
pub use error::{AuthError, BoxError, RETRY_AFTER, StoreError};
pub use event::{
    Action, AuthEvent, EmailDigest, EventKey, EventKind, EventSink, NoEventSink, Outcome, Refusal, Subject,
};
pub use hash::{
    Argon2Hasher, Argon2Params, HashError, HashLimits, HashPool, HashPoolError, HashedPassword, ParamsError,
    PasswordHasher, Verification,
};
pub use id::{SessionId, UserId};
pub use one_time::{Delivery, OneTimeToken, TokenPurpose, UnknownPurpose};
pub use password::{
    DEFAULT_MAX_LENGTH, DEFAULT_MIN_LENGTH, NIST_SINGLE_FACTOR_MIN_LENGTH, Password, PasswordPolicy, PolicyViolation,
};
pub use rate_limit::{
    Bucket, DEFAULT_MAX_KEYS_PER_BUCKET, Limit, MemoryRateLimiter, RateDecision, RateLimiter, RateLimits,
};
pub use role::{Role, RoleError};
pub use service::{
    Accounts, AuthService, Authenticated, DEFAULT_EMAIL_VERIFICATION_TTL, DEFAULT_PASSWORD_RESET_TTL,
    DEFAULT_SESSION_IDLE_TIMEOUT, DEFAULT_SESSION_LIFETIME, LoginOutcome, LoginSuccess, MAX_LIST_USERS, Purged,
    Registration, ResumedSession, SecondFactorChallenge, SessionCheck,
};
pub use session::{ClientInfo, MAX_USER_AGENT_CHARS, RefreshTokenRecord, Session, TokenPair};
pub use store::{
    AuthStore, ComposedStore, MemoryStore, OneTimeTokenStore, PurgeStore, RoleStore, SessionStore, UserDirectory,
    UserStore,
};
pub use token::{
    AccessClaims, AccessToken, DEFAULT_ACCESS_TTL, DEFAULT_LEEWAY, KeyError, MAX_LEEWAY, MIN_HS256_SECRET_BYTES,
    OpaqueToken, RngError, SignError, SigningKey, TokenError, TokenHash, TokenKind, TokenVerifier, Tokens,
    VerificationKey, bearer_token,
};
pub use user::User;

/// The workspace README's Rust examples, compiled and run as doctests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
