//! Tokens: JWT access tokens (short-lived, verified without a store), their keys, and the
//! opaque tokens (refresh, reset, verification) that are only ever stored hashed.

mod keys;
mod opaque;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub use keys::{KeyError, MIN_HS256_SECRET_BYTES, SigningKey, VerificationKey};
pub use opaque::{OpaqueToken, RngError, TokenHash, TokenKind};

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
}

/// Verifies access tokens with one or more [`VerificationKey`]s, chosen by the token's
/// `kid`: a sync, store-free value that a web extractor, or another service holding only
/// public keys, can use on its own.
///
/// Verification, check by check:
///
/// | check | rule |
/// |---|---|
/// | `kid` | selects the key: a token with a `kid` needs the key with that id, a token without one the key without one |
/// | algorithm | pinned to the selected key's; `none` and every other algorithm are refused |
/// | signature | must verify |
/// | `exp`, `nbf`, `iss`, `aud`, `sub` | required |
/// | `iss`, `aud` | must equal the configured issuer and audience (without an audience, see [`TokenVerifier::without_audience_claim`], `aud` must be absent) |
/// | header `crit` | refused whatever it lists (RFC 7515 §4.1.11: no extension is understood) |
/// | `exp` | the token is refused from `exp` on, plus the leeway |
/// | `nbf` | the token is refused until `nbf`, minus the leeway |
/// | leeway | 5 s by default, at most 30 s |
/// | `token_use` | must be `access` |
///
/// Times come from the injected [`Clock`], so expiry is testable without sleeping.
///
/// `verify` alone cannot know about revocation: a verified token stays valid until it
/// expires, even after a password change, a disable, a role change, a logout or the end
/// of its session: its bound is the access-token lifetime. Services that must honour
/// revocation immediately use
/// [`AuthService::authenticate`](crate::AuthService::authenticate), which adds the
/// account and session lookups; services that accept a revocation delay of up to the access-token lifetime
/// (15 minutes by default) can use `verify` alone.
///
/// ```
/// use auth_core::{SigningKey, TokenVerifier, VerificationKey};
///
/// // Another service, holding only the public keys from the issuer's JWKS document.
/// let public = include_bytes!("../../tests/fixtures/ed25519-public.pem");
/// let key = VerificationKey::eddsa_public_pem("ed-2026", public).unwrap();
/// let verifier = TokenVerifier::new([key], "https://auth.example.com", "example-api").unwrap();
/// assert!(verifier.verify("not.a.jwt").is_err());
/// ```
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Vec<(VerificationKey, Validation)>,
    issuer: String,
    audience: String,
    /// Whether tokens carry (and must carry) `aud`; see [`TokenVerifier::without_audience_claim`].
    audience_claim: bool,
    leeway: Duration,
    clock: Arc<dyn Clock>,
}

impl TokenVerifier {
    /// A verifier accepting tokens signed by any of `keys`, issued by `issuer` for
    /// `audience`.
    ///
    /// # Errors
    ///
    /// [`KeyError::DuplicateKeyId`] when two keys share a `kid` (or both have none), and
    /// [`KeyError::InvalidKey`] when there is no key at all.
    pub fn new(
        keys: impl IntoIterator<Item = VerificationKey>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, KeyError> {
        let mut verifier = Self {
            keys: Vec::new(),
            issuer: issuer.into(),
            audience: audience.into(),
            audience_claim: true,
            leeway: DEFAULT_LEEWAY,
            clock: Arc::new(SystemClock),
        };
        for key in keys {
            verifier = verifier.with_key(key)?;
        }
        if verifier.keys.is_empty() {
            return Err(KeyError::InvalidKey {
                algorithm: "none".to_owned(),
                reason: "a verifier needs at least one key".to_owned(),
            });
        }
        Ok(verifier)
    }

    /// **Risky, for interoperability only**: accepts tokens without an `aud` claim, and
    /// refuses any token that carries one ([`TokenError::WrongAudience`]: it was meant
    /// for a named audience, which this verifier is not). An audience keeps a token meant for one API from being
    /// replayed to another that shares the key; drop it only for a verifier that must
    /// accept tokens from issuers that set none. Logged as a warning.
    #[must_use]
    pub fn without_audience_claim(mut self) -> Self {
        tracing::warn!(issuer = %self.issuer, "access tokens are verified without an audience claim");
        self.audience_claim = false;
        self.keys = self
            .keys
            .iter()
            .map(|(key, _)| (key.clone(), self.validation_for(key)))
            .collect();
        self
    }

    /// Also accepts tokens signed by `key` (a retired signing key, during rotation).
    ///
    /// # Errors
    ///
    /// [`KeyError::DuplicateKeyId`] when a key with the same `kid` is already held.
    pub fn with_key(mut self, key: VerificationKey) -> Result<Self, KeyError> {
        if self.keys.iter().any(|(held, _)| held.kid == key.kid) {
            return Err(KeyError::DuplicateKeyId(key.kid));
        }
        let validation = self.validation_for(&key);
        self.keys.push((key, validation));
        Ok(self)
    }

    fn validation_for(&self, key: &VerificationKey) -> Validation {
        let mut validation = Validation::new(key.algorithm);
        validation.algorithms = vec![key.algorithm];
        validation.set_issuer(&[&self.issuer]);
        if self.audience_claim {
            validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
            validation.set_audience(&[&self.audience]);
        } else {
            validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
            validation.validate_aud = false;
        }
        // jsonwebtoken compares exp/nbf with the system clock; `verify` checks them
        // against the injected clock instead.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation
    }

    /// Sets the clock-skew allowance for `exp` and `nbf`, capped at [`MAX_LEEWAY`].
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        if leeway > MAX_LEEWAY {
            tracing::warn!(requested_secs = leeway.as_secs(), "token leeway capped at 30 seconds");
        }
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// Uses `clock` for expiry checks.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The clock-skew allowance.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The accepted issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The accepted audience.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The public keys, as a JWKS document (`/.well-known/jwks.json`): asymmetric keys
    /// only; HS256 secrets are never included, so with HS256 the set is empty.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().filter_map(|(key, _)| key.public_jwk()).collect(),
        }
    }

    /// Verifies an access token (see the type documentation for every check).
    ///
    /// # Errors
    ///
    /// A [`TokenError`] saying why the token was refused.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(TokenError::from)?;
        if header.crit.is_some() {
            return Err(TokenError::UnsupportedCriticalHeader);
        }
        let (key, validation) = self
            .keys
            .iter()
            .find(|(key, _)| key.kid == header.kid)
            .ok_or(TokenError::UnknownKey)?;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)?.claims;
        // jsonwebtoken skips `aud` entirely when told not to validate it; a token meant
        // for a named audience is not one for a verifier that expects none.
        if !self.audience_claim && claims.aud.is_some() {
            return Err(TokenError::WrongAudience);
        }
        if claims.token_use != ACCESS_TOKEN_USE {
            return Err(TokenError::WrongType);
        }
        let now = self.clock.now().unix_timestamp();
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(0);
        if now >= claims.exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if claims.nbf > now.saturating_add(leeway) {
            return Err(TokenError::NotYetValid);
        }
        let time = |t: i64| OffsetDateTime::from_unix_timestamp(t).map_err(|_| TokenError::Malformed);
        Ok(AccessClaims {
            user_id: claims.sub,
            session_id: claims.sid,
            email: claims.email,
            roles: claims.roles,
            issued_at: time(claims.iat)?,
            expires_at: time(claims.exp)?,
            token_id: claims.jti,
            token_version: claims.ver,
        })
    }
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&VerificationKey> = self.keys.iter().map(|(key, _)| key).collect();
        f.debug_struct("TokenVerifier")
            .field("keys", &keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

/// Issues access tokens with one [`SigningKey`] and verifies them with a
/// [`TokenVerifier`] that holds its verification key plus any retired ones.
///
/// Every token carries `sub`, `email`, `roles`, `iat`, `nbf`, `exp`, `iss`, `aud`, a
/// random `jti`, `token_use: "access"`, the account's token version `ver` and, when it
/// belongs to a session, `sid`. The default lifetime is 15 minutes.
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
        let mut verifier = TokenVerifier {
            keys: Vec::new(),
            issuer: issuer.into(),
            audience: audience.into(),
            audience_claim: true,
            leeway: DEFAULT_LEEWAY,
            clock: Arc::new(SystemClock),
        };
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
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(char::is_whitespace))
        .then_some(token)
}

#[cfg(test)]
mod tests;
