//! JWT access tokens: short-lived, signed, verified without touching a store.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Clock, Email, Role, SystemClock, User, UserId};

/// Shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// Default access-token lifetime: 15 minutes.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// Default allowance for clock skew when checking `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Largest leeway [`Tokens::with_leeway`] accepts; larger values are capped.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);
/// Tokens longer than this are rejected before parsing.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// The `token_use` claim of access tokens; no other token kind carries it.
const ACCESS_TOKEN_USE: &str = "access";

/// The key that signs access tokens, and the matching key that verifies them.
///
/// - [`hs256`](Self::hs256): a shared secret, at least 32 bytes. The default: any service
///   holding the same secret (the seeds' Python stack with `SECRET_KEY`, for instance)
///   can verify the tokens.
/// - [`eddsa_pem`](Self::eddsa_pem) or [`es256_pem`](Self::es256_pem): a key pair with a
///   key id (`kid`), so other services verify with the public key and cannot mint tokens.
///
/// `Debug` shows the algorithm and key id, never key material.
///
/// ```
/// use auth_core::SigningKey;
///
/// // In a server: the bytes of the SECRET_KEY environment variable.
/// let key = SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap();
/// assert_eq!(format!("{key:?}"), r#"SigningKey { algorithm: HS256, kid: None }"#);
/// assert!(SigningKey::hs256(b"too short").is_err());
/// ```
#[derive(Clone)]
pub struct SigningKey {
    algorithm: Algorithm,
    kid: Option<String>,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// A key that cannot be used to sign or verify access tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// An HS256 secret shorter than [`MIN_HS256_SECRET_BYTES`].
    #[error("the HS256 secret is {len} bytes; at least {MIN_HS256_SECRET_BYTES} are required")]
    SecretTooShort {
        /// Length of the secret given.
        len: usize,
    },
    /// The key id is empty or longer than 128 characters.
    #[error("a key id must be 1 to 128 characters")]
    InvalidKeyId,
    /// The PEM could not be read as a key of the expected type.
    #[error("invalid {algorithm:?} key: {reason}")]
    InvalidKey {
        /// The algorithm the key was meant for.
        algorithm: Algorithm,
        /// What the parser said.
        reason: String,
    },
    /// The public key does not verify what the private key signs.
    #[error("the public key does not belong to the private key")]
    KeyMismatch,
}

impl SigningKey {
    /// HMAC-SHA256 with a shared secret of at least [`MIN_HS256_SECRET_BYTES`] bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::SecretTooShort`].
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(KeyError::SecretTooShort { len: secret.len() });
        }
        Self::checked(
            Algorithm::HS256,
            None,
            EncodingKey::from_secret(secret),
            DecodingKey::from_secret(secret),
        )
    }

    /// Ed25519 (EdDSA) from a PKCS#8 private key PEM and its SPKI public key PEM, as
    /// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write them.
    ///
    /// # Errors
    ///
    /// [`KeyError`] when a PEM is not an Ed25519 key, the halves do not match, or `kid`
    /// is unusable.
    pub fn eddsa_pem(kid: impl Into<String>, private_pem: &[u8], public_pem: &[u8]) -> Result<Self, KeyError> {
        let invalid = |e: jsonwebtoken::errors::Error| KeyError::InvalidKey {
            algorithm: Algorithm::EdDSA,
            reason: e.to_string(),
        };
        Self::checked(
            Algorithm::EdDSA,
            Some(kid.into()),
            EncodingKey::from_ed_pem(private_pem).map_err(invalid)?,
            DecodingKey::from_ed_pem(public_pem).map_err(invalid)?,
        )
    }

    /// ECDSA P-256 (ES256) from a PKCS#8 private key PEM and its SPKI public key PEM.
    ///
    /// # Errors
    ///
    /// [`KeyError`] when a PEM is not a P-256 key, the halves do not match, or `kid` is
    /// unusable.
    pub fn es256_pem(kid: impl Into<String>, private_pem: &[u8], public_pem: &[u8]) -> Result<Self, KeyError> {
        let invalid = |e: jsonwebtoken::errors::Error| KeyError::InvalidKey {
            algorithm: Algorithm::ES256,
            reason: e.to_string(),
        };
        Self::checked(
            Algorithm::ES256,
            Some(kid.into()),
            EncodingKey::from_ec_pem(private_pem).map_err(invalid)?,
            DecodingKey::from_ec_pem(public_pem).map_err(invalid)?,
        )
    }

    /// Signs and verifies a probe, so a wrong or mismatched key fails here, at start-up,
    /// and not at the first login.
    fn checked(
        algorithm: Algorithm,
        kid: Option<String>,
        encoding: EncodingKey,
        decoding: DecodingKey,
    ) -> Result<Self, KeyError> {
        if kid
            .as_ref()
            .is_some_and(|kid| kid.is_empty() || kid.chars().count() > 128)
        {
            return Err(KeyError::InvalidKeyId);
        }
        let probe = b"auth-core key check";
        let invalid = |reason: String| KeyError::InvalidKey { algorithm, reason };
        let signature = jsonwebtoken::crypto::sign(probe, &encoding, algorithm).map_err(|e| invalid(e.to_string()))?;
        match jsonwebtoken::crypto::verify(&signature, probe, &decoding, algorithm) {
            Ok(true) => Ok(Self {
                algorithm,
                kid,
                encoding,
                decoding,
            }),
            Ok(false) => Err(KeyError::KeyMismatch),
            Err(e) => Err(invalid(e.to_string())),
        }
    }

    /// The JWS algorithm, as it appears in the token header (`HS256`, `EdDSA`, `ES256`).
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::HS256 => "HS256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            _ => "unsupported",
        }
    }

    /// The key id placed in the token header, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish()
    }
}

/// Why an access token was refused. Tell clients only "invalid token"; this detail is for
/// logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a well-formed JWT with the expected claims.
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
    /// Another kind of token (its `token_use` is not `access`).
    #[error("not an access token")]
    WrongType,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// Valid when issued, but revoked since: the account is gone, or its tokens were
    /// revoked by a password change or a disable.
    #[error("token revoked")]
    Revoked,
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

/// The wire form of the claims. `sub` is the user id; `ver` the account's token version
/// at issue; `token_use` distinguishes access tokens from every other token kind.
#[derive(Serialize, Deserialize)]
struct Claims {
    sub: UserId,
    email: Email,
    roles: BTreeSet<Role>,
    iat: i64,
    nbf: i64,
    exp: i64,
    iss: String,
    aud: String,
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

/// Issues and verifies access tokens: a sync, store-free value that a web extractor can
/// hold on its own.
///
/// Every token carries `sub`, `email`, `roles`, `iat`, `nbf`, `exp`, `iss`, `aud`, a
/// random `jti`, `token_use: "access"` and the account's token version `ver`.
///
/// Verification, field by field:
///
/// | check | rule |
/// |---|---|
/// | algorithm | pinned to the key's; `none` and every other algorithm are refused |
/// | `kid` | must be the key's, when the key has one |
/// | signature | must verify |
/// | `exp`, `nbf`, `iss`, `aud`, `sub` | required |
/// | `iss`, `aud` | must equal the configured issuer and audience |
/// | `exp` | the token is refused from `exp` on, plus the leeway |
/// | `nbf` | the token is refused until `nbf`, minus the leeway |
/// | leeway | 5 s by default, at most 30 s |
/// | `token_use` | must be `access` |
///
/// Times come from the injected [`Clock`], so expiry is testable without sleeping.
/// `verify` alone cannot know about revocation (a password change, a disabled account):
/// a verified token stays valid until it expires. Services that must honour revocation
/// immediately call [`AuthService::authenticate`](crate::AuthService::authenticate),
/// which adds one store lookup; services that accept a revocation delay of up to the TTL
/// (15 minutes by default) can use `verify` alone.
///
/// ```
/// use auth_core::{SigningKey, Tokens};
///
/// let tokens = Tokens::new(
///     SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap(),
///     "https://auth.example.com",
///     "example-api",
/// );
/// assert_eq!(tokens.ttl().as_secs(), 15 * 60);
/// assert!(tokens.verify("not.a.jwt").is_err());
/// ```
#[derive(Clone)]
pub struct Tokens {
    key: SigningKey,
    issuer: String,
    audience: String,
    ttl: Duration,
    leeway: Duration,
    validation: Validation,
    clock: Arc<dyn Clock>,
}

impl Tokens {
    /// Tokens signed with `key`, issued by `issuer` (usually your public URL) for
    /// `audience` (the API that accepts them).
    pub fn new(key: SigningKey, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        let (issuer, audience) = (issuer.into(), audience.into());
        let mut validation = Validation::new(key.algorithm);
        validation.algorithms = vec![key.algorithm];
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        // jsonwebtoken compares exp/nbf with the system clock; `verify` checks them
        // against the injected clock instead.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Self {
            key,
            issuer,
            audience,
            ttl: DEFAULT_ACCESS_TTL,
            leeway: DEFAULT_LEEWAY,
            validation,
            clock: Arc::new(SystemClock),
        }
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
        if leeway > MAX_LEEWAY {
            tracing::warn!(requested_secs = leeway.as_secs(), "token leeway capped at 30 seconds");
        }
        self.leeway = leeway.min(MAX_LEEWAY);
        self
    }

    /// Uses `clock` for issue and expiry times.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The access-token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The clock-skew allowance.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The `iss` of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` of issued tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Issues an access token for `user` as it is now.
    ///
    /// # Errors
    ///
    /// [`SignError`] if signing fails (see its documentation).
    pub fn issue(&self, user: &User) -> Result<AccessToken, SignError> {
        let now = self.clock.now();
        let issued_at = now.unix_timestamp();
        let ttl_secs = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let expires = issued_at.saturating_add(ttl_secs);
        let claims = Claims {
            sub: user.id,
            email: user.email.clone(),
            roles: user.roles.clone(),
            iat: issued_at,
            nbf: issued_at,
            exp: expires,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            jti: Uuid::new_v4().simple().to_string(),
            token_use: ACCESS_TOKEN_USE.to_owned(),
            ver: user.token_version,
        };
        let mut header = Header::new(self.key.algorithm);
        header.kid.clone_from(&self.key.kid);
        let token = jsonwebtoken::encode(&header, &claims, &self.key.encoding).map_err(|e| SignError(e.to_string()))?;
        Ok(AccessToken {
            token: SecretString::from(token),
            expires_at: OffsetDateTime::from_unix_timestamp(expires).unwrap_or(now),
            expires_in: self.ttl,
        })
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
        let data = jsonwebtoken::decode::<Claims>(token, &self.key.decoding, &self.validation)?;
        if data.header.kid != self.key.kid {
            return Err(TokenError::UnknownKey);
        }
        let claims = data.claims;
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
            email: claims.email,
            roles: claims.roles,
            issued_at: time(claims.iat)?,
            expires_at: time(claims.exp)?,
            token_id: claims.jti,
            token_version: claims.ver,
        })
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("key", &self.key)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .field("leeway", &self.leeway)
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
mod tests {
    use super::*;
    use crate::ManualClock;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use time::macros::datetime;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const ED_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/ed25519-private.pem");
    const ED_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/ed25519-public.pem");
    const EC_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/p256-private.pem");
    const EC_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/p256-public.pem");

    fn user() -> User {
        let now = datetime!(2026-05-01 12:00 UTC);
        User {
            id: UserId::new_at(now),
            email: Email::parse("alice@example.com").unwrap(),
            password_hash: None,
            is_active: true,
            email_verified_at: None,
            roles: [Role::new("admin").unwrap()].into(),
            token_version: 3,
            created_at: now,
            updated_at: now,
        }
    }

    fn tokens(key: SigningKey) -> (Tokens, ManualClock) {
        let clock = ManualClock::new(datetime!(2026-05-01 12:00 UTC));
        let tokens = Tokens::new(key, "https://auth.example.com", "api").with_clock(Arc::new(clock.clone()));
        (tokens, clock)
    }

    fn hs256() -> (Tokens, ManualClock) {
        tokens(SigningKey::hs256(SECRET).unwrap())
    }

    fn decode_part(token: &str, index: usize) -> serde_json::Value {
        let part = token.split('.').nth(index).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    /// Re-signs `claims` with `key`, as an attacker holding the key (or a bug) would.
    fn forge(header: &Header, claims: &serde_json::Value, secret: &[u8]) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    #[test]
    fn short_secrets_refuse_to_build() {
        assert_eq!(
            SigningKey::hs256(&SECRET[..31]).unwrap_err(),
            KeyError::SecretTooShort { len: 31 }
        );
        assert!(SigningKey::hs256(&SECRET[..32]).is_ok());
    }

    #[test]
    fn issued_tokens_carry_every_claim() {
        let (tokens, _) = hs256();
        let user = user();
        let token = tokens.issue(&user).unwrap();
        let header = decode_part(token.expose_secret(), 0);
        assert_eq!(header["alg"], "HS256");
        let claims = decode_part(token.expose_secret(), 1);
        let iat = datetime!(2026-05-01 12:00 UTC).unix_timestamp();
        assert_eq!(claims["sub"], user.id.to_string());
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(claims["roles"], serde_json::json!(["admin"]));
        assert_eq!(claims["iat"], iat);
        assert_eq!(claims["nbf"], iat);
        assert_eq!(claims["exp"], iat + 900);
        assert_eq!(claims["iss"], "https://auth.example.com");
        assert_eq!(claims["aud"], "api");
        assert_eq!(claims["token_use"], "access");
        assert_eq!(claims["ver"], 3);
        assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
        assert_ne!(
            tokens.issue(&user).unwrap().expose_secret(),
            token.expose_secret(),
            "jti differs"
        );
        assert_eq!(token.expires_in(), Duration::from_secs(900));
        assert!(!format!("{token:?}").contains(token.expose_secret()));
    }

    #[test]
    fn verify_round_trip() {
        let (tokens, _) = hs256();
        let user = user();
        let claims = tokens.verify(tokens.issue(&user).unwrap().expose_secret()).unwrap();
        assert_eq!(claims.user_id(), user.id);
        assert_eq!(claims.email(), &user.email);
        assert!(claims.has_role("admin"));
        assert_eq!(claims.token_version(), 3);
        assert_eq!(claims.expires_at(), datetime!(2026-05-01 12:15 UTC));
    }

    #[test]
    fn expiry_boundary_with_leeway() {
        let (tokens, clock) = hs256();
        let tokens = tokens
            .with_ttl(Duration::from_secs(60))
            .with_leeway(Duration::from_secs(5));
        let token = tokens.issue(&user()).unwrap();
        clock.advance(Duration::from_secs(64));
        assert!(tokens.verify(token.expose_secret()).is_ok(), "exp + leeway - 1s");
        clock.advance(Duration::from_secs(1));
        assert_eq!(
            tokens.verify(token.expose_secret()),
            Err(TokenError::Expired),
            "exp + leeway"
        );
    }

    #[test]
    fn not_before_boundary_with_leeway() {
        let (tokens, clock) = hs256();
        let token = tokens.issue(&user()).unwrap();
        clock.set(datetime!(2026-05-01 11:59:55 UTC));
        assert!(tokens.verify(token.expose_secret()).is_ok(), "nbf - leeway");
        clock.set(datetime!(2026-05-01 11:59:54 UTC));
        assert_eq!(tokens.verify(token.expose_secret()), Err(TokenError::NotYetValid));
    }

    #[test]
    fn leeway_is_capped_at_thirty_seconds() {
        let (tokens, _) = hs256();
        assert_eq!(
            tokens.clone().with_leeway(Duration::from_secs(3600)).leeway(),
            MAX_LEEWAY
        );
        assert_eq!(tokens.leeway(), DEFAULT_LEEWAY);
    }

    #[test]
    fn other_keys_issuers_and_audiences_are_refused() {
        let (tokens, clock) = hs256();
        let token = tokens.issue(&user()).unwrap();
        let token = token.expose_secret();

        let other_key = Tokens::new(
            SigningKey::hs256(&[7u8; 32]).unwrap(),
            "https://auth.example.com",
            "api",
        )
        .with_clock(Arc::new(clock.clone()));
        assert_eq!(other_key.verify(token), Err(TokenError::BadSignature));
        let other_issuer = Tokens::new(SigningKey::hs256(SECRET).unwrap(), "https://evil.example", "api")
            .with_clock(Arc::new(clock.clone()));
        assert_eq!(other_issuer.verify(token), Err(TokenError::WrongIssuer));
        let other_audience = Tokens::new(
            SigningKey::hs256(SECRET).unwrap(),
            "https://auth.example.com",
            "billing",
        )
        .with_clock(Arc::new(clock));
        assert_eq!(other_audience.verify(token), Err(TokenError::WrongAudience));
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let (tokens, _) = hs256();
        let token = tokens.issue(&user()).unwrap();
        let token = token.expose_secret();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut claims = decode_part(token, 1);
        claims["roles"] = serde_json::json!(["admin", "superuser"]);
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(tokens.verify(&parts.join(".")), Err(TokenError::BadSignature));
        for garbage in ["", ".", "..", "a.b.c", "not a token", &"x".repeat(20_000)] {
            assert!(tokens.verify(garbage).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn the_none_algorithm_and_algorithm_confusion_are_refused() {
        let (tokens, _) = hs256();
        let token = tokens.issue(&user()).unwrap();
        let token = token.expose_secret();
        let claims = token.split('.').nth(1).unwrap();
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert!(tokens.verify(&format!("{none_header}.{claims}.")).is_err());
        // HS384 with the same secret is still not the pinned algorithm.
        let hs384 = forge(&Header::new(Algorithm::HS384), &decode_part(token, 1), SECRET);
        assert_eq!(tokens.verify(&hs384), Err(TokenError::WrongAlgorithm));

        // An HS256 token "signed" with the public key of an EdDSA service.
        let (ed_tokens, _) = tokens_ed25519();
        let confused = forge(&Header::new(Algorithm::HS256), &decode_part(token, 1), ED_PUBLIC);
        assert_eq!(ed_tokens.verify(&confused), Err(TokenError::WrongAlgorithm));
    }

    #[test]
    fn missing_claims_are_refused() {
        let (tokens, _) = hs256();
        let token = tokens.issue(&user()).unwrap();
        let claims = decode_part(token.expose_secret(), 1);
        for claim in [
            "exp",
            "nbf",
            "iat",
            "iss",
            "aud",
            "sub",
            "token_use",
            "ver",
            "email",
            "roles",
            "jti",
        ] {
            let mut stripped = claims.clone();
            stripped.as_object_mut().unwrap().remove(claim);
            let forged = forge(&Header::new(Algorithm::HS256), &stripped, SECRET);
            let result = tokens.verify(&forged);
            assert!(
                matches!(result, Err(TokenError::Malformed | TokenError::MissingClaim(_))),
                "{claim}: {result:?}"
            );
        }
    }

    #[test]
    fn other_token_kinds_cannot_pass_as_access_tokens() {
        let (tokens, _) = hs256();
        let token = tokens.issue(&user()).unwrap();
        for kind in ["refresh", "reset", "verification", "Access", ""] {
            let mut claims = decode_part(token.expose_secret(), 1);
            claims["token_use"] = serde_json::json!(kind);
            let forged = forge(&Header::new(Algorithm::HS256), &claims, SECRET);
            assert_eq!(tokens.verify(&forged), Err(TokenError::WrongType), "{kind}");
        }
    }

    fn tokens_ed25519() -> (Tokens, ManualClock) {
        tokens(SigningKey::eddsa_pem("ed-2026", ED_PRIVATE, ED_PUBLIC).unwrap())
    }

    #[test]
    fn asymmetric_keys_sign_with_a_kid() {
        for (tokens, alg) in [
            (tokens_ed25519().0, "EdDSA"),
            (
                tokens(SigningKey::es256_pem("ec-2026", EC_PRIVATE, EC_PUBLIC).unwrap()).0,
                "ES256",
            ),
        ] {
            let user = user();
            let token = tokens.issue(&user).unwrap();
            let header = decode_part(token.expose_secret(), 0);
            assert_eq!(header["alg"], alg);
            assert!(header["kid"].as_str().unwrap().ends_with("-2026"));
            assert_eq!(tokens.verify(token.expose_secret()).unwrap().user_id(), user.id);
        }
    }

    #[test]
    fn a_different_kid_is_refused() {
        let (tokens, clock) = tokens_ed25519();
        let token = tokens.issue(&user()).unwrap();
        let renamed = Tokens::new(
            SigningKey::eddsa_pem("ed-2027", ED_PRIVATE, ED_PUBLIC).unwrap(),
            "https://auth.example.com",
            "api",
        )
        .with_clock(Arc::new(clock));
        assert_eq!(renamed.verify(token.expose_secret()), Err(TokenError::UnknownKey));
    }

    #[test]
    fn bad_key_material_fails_at_construction() {
        assert!(matches!(
            SigningKey::eddsa_pem("k", b"not a pem", ED_PUBLIC),
            Err(KeyError::InvalidKey { .. })
        ));
        assert!(matches!(
            SigningKey::es256_pem("k", ED_PRIVATE, ED_PUBLIC),
            Err(KeyError::InvalidKey { .. })
        ));
        assert_eq!(
            SigningKey::eddsa_pem("", ED_PRIVATE, ED_PUBLIC).unwrap_err(),
            KeyError::InvalidKeyId
        );
        let other_public = include_bytes!("../tests/fixtures/ed25519-other-public.pem");
        assert_eq!(
            SigningKey::eddsa_pem("k", ED_PRIVATE, other_public).unwrap_err(),
            KeyError::KeyMismatch
        );
        assert!(!format!("{:?}", SigningKey::hs256(SECRET).unwrap()).contains("0123"));
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer a.b.c"), Some("a.b.c"));
        assert_eq!(bearer_token("BEARER a.b.c "), Some("a.b.c"));
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Token a.b.c"), None);
        assert_eq!(bearer_token(""), None);
    }
}
