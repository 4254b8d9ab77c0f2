//! Email/password authentication for Rust services, with the details done right.
//!
//! `auth-core` is the domain: no web framework, no database. It holds
//!
//! - [`Email`]: one normalization (trim, NFKC, lowercase, IDNA) on every write and lookup;
//! - [`Password`] and [`PasswordPolicy`]: secrets that never print, NIST-style rules;
//! - [`Argon2Hasher`]: argon2id with OWASP parameters, verification and upgrade of legacy
//!   hashes (bcrypt, Django PBKDF2, other argon2 parameters);
//! - [`HashPool`]: hashing on a bounded pool of its own threads that answers "busy"
//!   instead of queueing without bound;
//! - [`Tokens`] and [`TokenVerifier`]: short-lived JWT access tokens (HS256, EdDSA or
//!   ES256), verified without a store, with key rotation by `kid` and a JWKS export;
//! - [`OpaqueToken`]: refresh, password-reset and email-verification tokens, 256 random
//!   bits, stored only as SHA-256;
//! - [`UserStore`], [`SessionStore`], [`OneTimeTokenStore`] (together [`AuthStore`]): the
//!   storage contract, with [`MemoryStore`] as reference and a
//!   [conformance suite](conformance) (feature `conformance`) every backend runs;
//! - [`AuthService`]: every flow (register, login, refresh with rotation and reuse
//!   detection, logout, sessions, password change and reset, email verification, roles,
//!   disable), with one typed [`AuthError`];
//! - two-factor authentication ([`AuthService::with_totp`]): TOTP (RFC 6238, `totp-rs`)
//!   with single-use recovery codes, a login challenge, the step-up rule of sensitive
//!   actions and roles that need a second factor; secrets sealed at rest by
//!   [`SecretCipher`] (AES-256-GCM), stored by a [`SecondFactorStore`].
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
//!
//! # Features
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `legacy-bcrypt` | on | [`Argon2Hasher`] verifies bcrypt hashes (`$2a$`, `$2b$`, `$2y$`) and asks for their upgrade; adds the `bcrypt` crate |
//! | `legacy-pbkdf2` | on | the same for Django's `pbkdf2_sha256$`; adds the `pbkdf2` crate |
//! | `aws-lc-rs` | on | JWTs signed and verified by aws-lc-rs (C and assembly, built with a C compiler; the backend the repository's token benchmarks measure) |
//! | `rust-crypto` | off | JWTs signed and verified by RustCrypto, pure Rust, for targets where aws-lc does not build; used only when `aws-lc-rs` is off. jsonwebtoken's `rust_crypto` also compiles the `rsa` crate, which has an open timing advisory (RUSTSEC-2023-0071); this crate never uses RSA |
//! | `conformance` | off | the [store conformance suite](conformance), for store authors |
//!
//! Without a legacy feature, a hash in that format is refused with
//! [`HashError::FeatureDisabled`] (the account cannot log in until the feature is on).
//! `default-features = false` with neither JWT backend compiles, but then the application
//! must give jsonwebtoken 11 one itself: enable `aws_lc_rs` or `rust_crypto` on its own
//! `jsonwebtoken = "11"` dependency, or install a `jsonwebtoken::crypto::CryptoProvider`
//! before the first key is made; otherwise jsonwebtoken panics at the first signature.
//! With a backend feature on, this crate installs it as jsonwebtoken's process default
//! when the first key ([`SigningKey`], [`VerificationKey`]) is made. That lets an
//! application whose own jsonwebtoken 11 enables the other backend (both on at once, which
//! jsonwebtoken alone answers with a panic) work, provided this crate makes its first key
//! before the application's own first jsonwebtoken call; otherwise the application
//! installs a backend itself first (`jsonwebtoken::crypto::CryptoProvider::install_default`),
//! as jsonwebtoken requires of any program with both. Recorded with a scratch application
//! (auth-core with its defaults, the application's `jsonwebtoken` with `rust_crypto`):
//! auth-core's token first, then the application's, both work; the application's first,
//! jsonwebtoken panics ("Could not automatically determine the process-level
//! CryptoProvider").
//!
//! # Debug builds
//!
//! Cargo compiles dependencies without optimisation in the `dev` profile, and argon2 is
//! then dozens of times slower: with OWASP's parameters, a debug build of an application
//! hashed in 1.2 to 1.5 s, and in 27 ms with the lines below (on the 2-vCPU machine of the
//! repository's `benches/BENCHMARKS.md`, where a release build takes 11.8 ms). That makes
//! logins in development slow and tests time out. Profile settings of a dependency are
//! ignored, so the application adds these lines to its own `Cargo.toml` (the workspace
//! root's):
//!
//! ```toml
//! [profile.dev.package.argon2]
//! opt-level = 3
//! [profile.dev.package.blake2]
//! opt-level = 3
//! [profile.dev.package.bcrypt]   # with legacy-bcrypt
//! opt-level = 3
//! [profile.dev.package.blowfish] # with legacy-bcrypt
//! opt-level = 3
//! [profile.dev.package.pbkdf2]   # with legacy-pbkdf2
//! opt-level = 3
//! [profile.dev.package.sha2]
//! opt-level = 3
//! ```
//!
//! In a build with debug assertions, [`Argon2Hasher`] times its first three hashes; if
//! one takes longer than 100 ms (scaled up for parameters costlier than OWASP's), it logs
//! one warning per process (`tracing`, level WARN) naming exactly these lines for the
//! features in use. Release builds time nothing.
//!
//! # Types from other crates
//!
//! The JWKS types ([`Tokens::jwks`], [`VerificationKey::from_jwk`]) are jsonwebtoken's,
//! re-exported in [`jwk`] so that they can be named without depending on the same
//! jsonwebtoken. Time values are the [`time`] crate's `OffsetDateTime` (time 0.3), ids
//! wrap [`uuid`] 1 UUIDs.
//!
//! Records a store builds ([`User`], [`Session`], [`RefreshTokenRecord`],
//! [`OneTimeToken`]) are `#[non_exhaustive]` and have constructors ([`User::existing`],
//! [`Session::new`], ...) with `with_*` methods, so that a field added in a later release,
//! with its default, breaks no store.
//!
//! # Minimum Rust version
//!
//! 1.89 (uuid 1.29's); `.ci/rust-version.py` checks it against every dependency.
//!
//! # License
//!
//! MIT OR Apache-2.0, at your option, except the bundled list of common passwords
//! (`src/password/common-passwords.txt`): it is Django's list (the file Django 5.2 ships,
//! decompressed and unchanged; 20,000 common passwords, lowercased and deduplicated, created
//! by Royce Williams), under Django's BSD 3-Clause License, whose text the crate carries in
//! `src/password/common-passwords.LICENSE` with a `NOTICE`. The crate's license expression
//! is therefore `(MIT OR Apache-2.0) AND BSD-3-Clause`.

#![forbid(unsafe_code)]

mod access;
mod audit;
mod auth_method;
mod clock;
mod email;
mod error;
mod event;
mod hash;
pub mod http;
mod id;
mod identity;
mod notice;
mod one_time;
mod passkey;
mod password;
mod rate_limit;
mod role;
mod second_factor;
mod service;
mod session;
mod store;
pub mod stored;
mod token;
mod user;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use audit::{AUDIT_QUEUE, AuditLog, AuditQuery, AuditRecord, AuditWriter, MAX_AUDIT_PAGE, PendingRecords};
pub use auth_method::{AuthMethod, AuthMethodError, AuthMethods};
pub use clock::{Clock, ManualClock, SystemClock};
pub use email::{Email, EmailError, MAX_ADDRESS_BYTES, MAX_LOCAL_PART_BYTES};
pub use error::{AuthError, BoxError, RETRY_AFTER, StoreError};
pub use event::{
    Action, AuthEvent, EmailDigest, EventKey, EventKind, EventSink, NoEventSink, Outcome, PasskeyRefusal, Refusal,
    Subject,
};
pub use hash::{
    Argon2Hasher, Argon2Params, HashError, HashLimits, HashPool, HashPoolError, HashSlot, HashedPassword, ParamsError,
    PasswordHasher, Verification,
};
pub use id::{EventId, IdentityId, PasskeyId, SessionId, UserId};
pub use identity::{
    AuthorizationRequest, CodeChallenge, CodeChallengeError, EXTERNAL_LOGIN_CODE_TTL, EXTERNAL_LOGIN_STATE_TTL,
    ExternalIdentity, ExternalLoginCode, ExternalLoginPurpose, ExternalLoginRefusal, ExternalLoginState,
    IdentityProvider, LinkedIdentity, ProviderError, ProviderName, ProviderNameError, ReturnPath, ReturnPathError,
};
pub use notice::{NoticeSink, SecurityNotice, SecurityNoticeKind};
pub use one_time::{Delivery, OneTimeToken, TokenPurpose, UnknownPurpose};
pub use passkey::{
    DEFAULT_PASSKEY_NAME, MAX_PASSKEY_NAME_CHARS, PASSKEY_CEREMONY_TTL, PasskeyCeremony, PasskeyCeremonyKind,
    PasskeyCredential,
};
pub use password::{
    DEFAULT_MAX_LENGTH, DEFAULT_MIN_LENGTH, NIST_SINGLE_FACTOR_MIN_LENGTH, Password, PasswordPolicy, PolicyViolation,
};
pub use rate_limit::{
    Bucket, DEFAULT_MAX_KEYS_PER_BUCKET, Limit, MemoryRateLimiter, RateDecision, RateLimiter, RateLimits,
};
pub use role::{Role, RoleError};
pub use second_factor::{
    ENCRYPTION_KEY_BYTES, EncryptionKey, EncryptionKeyError, LOGIN_CHALLENGE_TTL, LoginChallenge,
    MAX_LOGIN_CHALLENGE_ATTEMPTS, RECOVERY_CODE_COUNT, RecoveryCodes, SealError, SecondFactorCode, SecondFactorMethod,
    SecondFactorStatus, SecretCipher, TOTP_ENROLMENT_TTL, TOTP_SECRET_BYTES, TOTP_STEP_SECS, TotpEnrolment, TotpFactor,
};
pub use service::{
    AccountExport, Accounts, AuthService, Authenticated, BrowserCheck, BrowserSession, Caller,
    DEFAULT_EMAIL_VERIFICATION_TTL, DEFAULT_PASSWORD_RESET_TTL, DEFAULT_SESSION_IDLE_TIMEOUT, DEFAULT_SESSION_LIFETIME,
    DEFAULT_STEP_UP_WINDOW, EMAIL_CHANGE_UNDO_WINDOW, ExchangeProof, ExternalCallback, ExternalLoginFailure,
    ExternalLoginFinish, ExternalLoginStart, INVITATION_TTL, Invitation, LoginOutcome, LoginSuccess, MAX_LIST_USERS,
    NewRecoveryCodes, Purged, Registration, ResumedSession, SecondFactorChallenge, SessionCheck, TotpSettings,
};
#[cfg(feature = "passkeys")]
pub use service::{PasskeyChallenge, PasskeySettings, PasskeySettingsError};
pub use session::{ClientInfo, MAX_USER_AGENT_CHARS, RefreshTokenRecord, Session, TokenPair};
pub use store::{
    AccountDeletionStore, AuditLogStore, AuthStore, BrowserSessionStore, ComposedStore, EmailChange, EmailChangeStore,
    EmailConfirmation, IdentityRemoval, IdentityStore, MemoryStore, OneTimeTokenStore, PasskeyRemoval, PasskeyStore,
    PurgeStore, RoleStore, SecondFactorStore, SessionStore, UserDirectory, UserStore,
};
pub use token::{
    AccessClaims, AccessToken, DEFAULT_ACCESS_TTL, DEFAULT_LEEWAY, KeyError, MAX_LEEWAY, MIN_HS256_SECRET_BYTES,
    OpaqueToken, RngError, SignError, SigningKey, TokenError, TokenHash, TokenKind, TokenVerifier, Tokens,
    VerificationKey, bearer_token,
};
pub use user::User;

/// The JSON Web Key types of the key API ([`Tokens::jwks`], [`VerificationKey::from_jwk`],
/// [`VerificationKey::public_jwk`]): jsonwebtoken's, re-exported so they can be named
/// without a dependency of your own on the same jsonwebtoken. They serialize as RFC 7517
/// JSON, which is all a JWKS endpoint needs.
pub mod jwk {
    pub use jsonwebtoken::jwk::{Jwk, JwkSet};
}

/// This crate's README, compiled and run as doctests so it cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
