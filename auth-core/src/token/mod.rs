//! Tokens: JWT access tokens (short-lived, verified without a store), their keys, and the
//! opaque tokens (refresh, reset, verification) that are only ever stored hashed.

mod backend;
mod keys;
mod opaque;
mod verifier;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Header;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub use keys::{KeyError, MIN_HS256_SECRET_BYTES, SigningKey, VerificationKey};
pub use opaque::{OpaqueToken, RngError, TokenHash, TokenKind};
pub use verifier::TokenVerifier;

use crate::auth_method::AuthMethods;
use crate::clock::{Clock, SystemClock};
use crate::email::Email;
use crate::id::{SessionId, UserId};
use crate::role::Role;
use crate::user::User;

/// Default access-token lifetime: 15 minutes.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Default allowance for clock skew when checking `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Largest leeway [`TokenVerifier::with_leeway`] accepts; larger values are capped.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);
/// Tokens longer than this are rejected before parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The `token_use` claim of access tokens; no other token kind carries it.
const ACCESS_TOKEN_USE: &str = "access";

/// Why a token was refused. Tell clients only "invalid token"; this detail is for logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a well-formed token of the expected kind.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// Signed with another algorithm than the key's (including `none`).
    #[error("unexpected signing algorithm")]
    WrongAlgorithm,
    /// The header names a key id this service does not hold.
    #[error("unknown key id")]
    UnknownKey,
    /// A required claim is missing.
    #[error("missing required claim {0}")]
    MissingClaim(String),
    /// Issued by someone else.
    #[error("wrong issuer")]
    WrongIssuer,
    /// Meant for another audience.
    #[error("wrong audience")]
    WrongAudience,
    /// The header lists extensions that must be understood (`crit`, RFC 7515
    /// §4.1.11); this verifier understands none, so it refuses them all.
    #[error("unsupported critical header extension")]
    UnsupportedCriticalHeader,
    /// Another kind of token (its `token_use` is not `access`).
    #[error("not an access token")]
    WrongType,
    /// Past its lifetime (for access tokens, `exp` plus the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// Valid when issued, but revoked since: the account is gone, disabled, or its tokens
    /// or the session were revoked.
    #[error("token revoked")]
    Revoked,
    /// No such token: never issued, or already used and cleaned up.
    #[error("unknown token")]
    Unknown,
    /// A single-use token that was already used. For a refresh token this is reuse: the
    /// whole session has been revoked.
    #[error("token already used")]
    Reused,
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(error: jsonwebtoken::errors::Error) -> Self {
        match error.into_kind() {
            ErrorKind::InvalidSignature => Self::BadSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::MissingAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::UnsupportedAlgorithm => Self::WrongAlgorithm,
            ErrorKind::MissingRequiredClaim(claim) => Self::MissingClaim(claim),
            ErrorKind::InvalidIssuer => Self::WrongIssuer,
            ErrorKind::InvalidAudience => Self::WrongAudience,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            _ => Self::Malformed,
        }
    }
}

/// Signing failed; with a key that passed [`SigningKey`]'s start-up check this indicates
/// a bug or an exhausted system resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not sign the access token: {0}")]
pub struct SignError(String);

/// An issued access token: a compact JWT to hand to the client. `Debug` hides the token.
#[derive(Clone)]
pub struct AccessToken {
    token: SecretString,
    expires_at: OffsetDateTime,
    expires_in: Duration,
}

impl AccessToken {
    /// The JWT, to send to the client.
    pub fn expose_secret(&self) -> &str {
        self.token.expose_secret()
    }

    /// When it stops working.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// Its lifetime from issue (OAuth 2's `expires_in`).
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The wire form of the claims. `sub` is the user id; `sid` the session the token belongs
/// to; `ver` the account's token version at issue; `token_use` distinguishes access tokens
/// from every other token kind.
#[derive(Serialize, Deserialize)]
struct Claims {
    sub: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<SessionId>,
    email: Email,
    roles: BTreeSet<Role>,
    iat: i64,
    nbf: i64,
    exp: i64,
    iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    jti: String,
    token_use: String,
    ver: i64,
    /// How the person proved who they are (RFC 8176), for sessions that began otherwise
    /// than with a password alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amr: Option<AuthMethods>,
    /// When they proved it (OpenID Connect Core §2), beside `amr`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
}

/// What a verified access token says.
///
/// These are the facts at the moment of issue; [`AuthService::authenticate`](crate::AuthService::authenticate)
/// also checks the account still exists, is active and has not revoked the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessClaims {
    user_id: UserId,
    session_id: Option<SessionId>,
    email: Email,
    roles: BTreeSet<Role>,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    token_id: String,
    token_version: i64,
    auth_methods: Option<AuthMethods>,
    auth_time: Option<OffsetDateTime>,
}

impl AccessClaims {
    /// The account the token was issued to (`sub`).
    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    /// The session (refresh-token family) the token was issued for (`sid`), if any.
    pub fn session_id(&self) -> Option<SessionId> {
        self.session_id
    }

    /// The account's email at issue.
    pub fn email(&self) -> &Email {
        &self.email
    }

    /// The account's roles at issue.
    pub fn roles(&self) -> &BTreeSet<Role> {
        &self.roles
    }

    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.as_str() == role)
    }

    /// `iat`.
    pub fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }

    /// `exp`.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// `jti`: unique per token, for audit logs.
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// The account's [`token_version`](User::token_version) at issue.
    pub fn token_version(&self) -> i64 {
        self.token_version
    }

    /// How the person proved who they are (`amr`), when the token says: tokens of a
    /// session begun otherwise than with a password alone (see
    /// [`AuthService::start_session`](crate::AuthService::start_session)) carry it. A
    /// password session's tokens keep the claims they had before sessions recorded how
    /// they began, so `None` means a password (or a token issued without a session).
    pub fn auth_methods(&self) -> Option<&AuthMethods> {
        self.auth_methods.as_ref()
    }

    /// When the person proved it (`auth_time`), beside [`auth_methods`](Self::auth_methods).
    pub fn auth_time(&self) -> Option<OffsetDateTime> {
        self.auth_time
    }
}

/// Issues access tokens with one [`SigningKey`] and verifies them with a
/// [`TokenVerifier`] that holds its verification key plus any retired ones.
///
/// Every token carries `sub`, `email`, `roles`, `iat`, `nbf`, `exp`, `iss`, `aud`, a
/// random `jti`, `token_use: "access"`, the account's token version `ver`, when it
/// belongs to a session, `sid`, and when that session began otherwise than with a
/// password alone, `amr` and `auth_time`. The default lifetime is 15 minutes.
///
/// Key rotation without logging anyone out: start signing with the new key and keep the
/// old one as a verification key until the longest access-token lifetime has passed.
///
/// ```
/// use auth_core::{SigningKey, Tokens};
///
/// let old = SigningKey::hs256(b"the previous secret, 32 bytes or more").unwrap().with_kid("2026-10").unwrap();
/// let new = SigningKey::hs256(b"the current secret, also 32+ bytes!!").unwrap().with_kid("2026-11").unwrap();
/// let tokens = Tokens::new(new, "https://auth.example.com", "example-api")
///     .with_verification_key(old.verification_key().clone())
///     .unwrap();
/// assert_eq!(tokens.ttl().as_secs(), 15 * 60);
/// assert!(tokens.jwks().keys.is_empty(), "shared secrets are never published");
/// ```
#[derive(Clone)]
pub struct Tokens {
    signing: SigningKey,
    verifier: TokenVerifier,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl Tokens {
    /// Tokens signed with `key`, issued by `issuer` (usually your public URL) for
    /// `audience` (the API that accepts them).
    pub fn new(key: SigningKey, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        let mut verifier = TokenVerifier::without_keys(issuer.into(), audience.into());
        let validation = verifier.validation_for(&key.verification);
        verifier.keys.push((key.verification.clone(), validation));
        Self {
            signing: key,
            verifier,
            ttl: DEFAULT_ACCESS_TTL,
            clock: Arc::new(SystemClock),
        }
    }

    /// Also accepts tokens signed by `key`: a retired signing key, kept until every token
    /// it signed has expired.
    ///
    /// # Errors
    ///
    /// [`KeyError::DuplicateKeyId`] when a key with the same `kid` is already held.
    pub fn with_verification_key(mut self, key: VerificationKey) -> Result<Self, KeyError> {
        self.verifier = self.verifier.with_key(key)?;
        Ok(self)
    }

    /// **Risky, for interoperability only**: issues tokens without an `aud` claim, and
    /// verifies them without one, so that verifiers which refuse any audience they were
    /// not told about (python-jose's and PyJWT's `decode(token, key, algorithms=[...])`)
    /// accept them. Any service holding the key then accepts the tokens as meant for it.
    /// Logged as a warning.
    ///
    /// ```
    /// use auth_core::{SigningKey, Tokens};
    ///
    /// let tokens = Tokens::new(SigningKey::hs256(&[7; 32]).unwrap(), "https://auth.example.com", "api")
    ///     .without_audience_claim();
    /// # let _ = tokens;
    /// ```
    #[must_use]
    pub fn without_audience_claim(mut self) -> Self {
        self.verifier = self.verifier.without_audience_claim();
        self
    }

    /// Sets the access-token lifetime (at least one second). Lifetimes over an hour widen
    /// the window in which a stolen token works and are logged as a warning.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        if ttl > Duration::from_secs(3600) {
            tracing::warn!(ttl_secs = ttl.as_secs(), "access tokens live longer than an hour");
        }
        self.ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Sets the clock-skew allowance for `exp` and `nbf`, capped at [`MAX_LEEWAY`].
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.verifier = self.verifier.with_leeway(leeway);
        self
    }

    /// Uses `clock` for issue and expiry times.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.verifier = self.verifier.with_clock(Arc::clone(&clock));
        self.clock = clock;
        self
    }

    /// The access-token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The verifier, for extractors and services that only verify.
    pub fn verifier(&self) -> &TokenVerifier {
        &self.verifier
    }

    /// The public keys as a JWKS document; see [`TokenVerifier::jwks`].
    pub fn jwks(&self) -> JwkSet {
        self.verifier.jwks()
    }

    /// Verifies an access token; see [`TokenVerifier::verify`].
    ///
    /// # Errors
    ///
    /// A [`TokenError`] saying why the token was refused.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verifier.verify(token)
    }

    /// Issues an access token for `user` as it is now, belonging to `session` if any.
    ///
    /// # Errors
    ///
    /// [`SignError`] if signing fails (see its documentation).
    pub fn issue(&self, user: &User, session: Option<SessionId>) -> Result<AccessToken, SignError> {
        self.sign(user, session, None)
    }

    /// Issues an access token for `user` as it is now, belonging to `session` if any, that
    /// says how and when the person proved who they are (`amr`, `auth_time`).
    ///
    /// # Errors
    ///
    /// [`SignError`] if signing fails (see its documentation).
    pub fn issue_with_authentication(
        &self,
        user: &User,
        session: Option<SessionId>,
        methods: &AuthMethods,
        auth_time: OffsetDateTime,
    ) -> Result<AccessToken, SignError> {
        self.sign(user, session, Some((methods, auth_time)))
    }

    fn sign(
        &self,
        user: &User,
        session: Option<SessionId>,
        authentication: Option<(&AuthMethods, OffsetDateTime)>,
    ) -> Result<AccessToken, SignError> {
        let now = self.clock.now();
        let issued_at = now.unix_timestamp();
        let ttl_secs = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let expires = issued_at.saturating_add(ttl_secs);
        let claims = Claims {
            sub: user.id,
            sid: session,
            email: user.email.clone(),
            roles: user.roles.clone(),
            iat: issued_at,
            nbf: issued_at,
            exp: expires,
            iss: self.verifier.issuer.clone(),
            aud: self.verifier.audience_claim.then(|| self.verifier.audience.clone()),
            jti: Uuid::new_v4().simple().to_string(),
            token_use: ACCESS_TOKEN_USE.to_owned(),
            ver: user.token_version,
            amr: authentication.map(|(methods, _)| methods.clone()),
            auth_time: authentication.map(|(_, at)| at.unix_timestamp()),
        };
        let mut header = Header::new(self.signing.verification.algorithm);
        header.kid.clone_from(&self.signing.verification.kid);
        let token =
            jsonwebtoken::encode(&header, &claims, &self.signing.encoding).map_err(|e| SignError(e.to_string()))?;
        Ok(AccessToken {
            token: SecretString::from(token),
            expires_at: OffsetDateTime::from_unix_timestamp(expires).unwrap_or(now),
            expires_in: self.ttl,
        })
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("signing", &self.signing)
            .field("verifier", &self.verifier)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// The token in an `Authorization: Bearer <token>` header value, if it is one. The
/// scheme is case-insensitive (RFC 9110 §11.1); the token must be non-empty and contain
/// no whitespace.
///
/// ```
/// assert_eq!(auth_core::bearer_token("Bearer abc.def.ghi"), Some("abc.def.ghi"));
/// assert_eq!(auth_core::bearer_token("bearer   abc"), Some("abc"));
/// assert_eq!(auth_core::bearer_token("Basic dXNlcjpwYXNz"), None);
/// assert_eq!(auth_core::bearer_token("Bearer "), None);
/// ```
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, token) = header_value.trim().split_once(' ')?;
    let token = token.trim_start();
    // A token is ASCII (base64url and dots); a scan of bytes decides it, and only another
    // header needs the scan of characters for Unicode whitespace.
    let spaced = if token.is_ascii() {
        token.bytes().any(|b| char::from(b).is_whitespace())
    } else {
        token.contains(char::is_whitespace)
    };
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !spaced).then_some(token)
}

#[cfg(test)]
mod tests;
