//! The access-token verifier: a sync, store-free check of a token against its keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::Validation;
use jsonwebtoken::jwk::JwkSet;
use time::OffsetDateTime;

use super::keys::{KeyError, VerificationKey};
use super::{ACCESS_TOKEN_USE, AccessClaims, Claims, DEFAULT_LEEWAY, MAX_LEEWAY, MAX_TOKEN_BYTES, TokenError};
use crate::clock::{Clock, SystemClock};

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
    pub(super) keys: Vec<(VerificationKey, Validation)>,
    pub(super) issuer: String,
    pub(super) audience: String,
    /// Whether tokens carry (and must carry) `aud`; see [`TokenVerifier::without_audience_claim`].
    pub(super) audience_claim: bool,
    pub(super) leeway: Duration,
    pub(super) clock: Arc<dyn Clock>,
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
        let mut verifier = Self::without_keys(issuer.into(), audience.into());
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

    /// A verifier for `issuer` and `audience` that holds no key yet: every constructor
    /// adds at least one.
    pub(super) fn without_keys(issuer: String, audience: String) -> Self {
        Self {
            keys: Vec::new(),
            issuer,
            audience,
            audience_claim: true,
            leeway: DEFAULT_LEEWAY,
            clock: Arc::new(SystemClock),
        }
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

    pub(super) fn validation_for(&self, key: &VerificationKey) -> Validation {
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
        let claims = self.verified_claims(token)?;
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
            auth_methods: claims.amr,
            auth_time: claims.auth_time.map(time).transpose()?,
        })
    }
}

impl TokenVerifier {
    /// The claims of a token whose header selects one of the keys and whose signature that
    /// key verifies, with jsonwebtoken's checks (algorithm, `exp`, `nbf`, `iss`, `aud`).
    fn verified_claims(&self, token: &str) -> Result<Claims, TokenError> {
        // With one key (the usual case), the token is decoded first and its header, which
        // `decode` parses anyway, is checked after: the header is then parsed once per
        // request instead of twice. A token `decode` refuses goes the general way below,
        // so every refusal keeps the reason it had: an unknown `kid` or a `crit` header is
        // named as such, not as a bad signature.
        if let [(key, validation)] = self.keys.as_slice()
            && let Ok(decoded) = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
        {
            if decoded.header.crit.is_some() {
                return Err(TokenError::UnsupportedCriticalHeader);
            }
            if decoded.header.kid != key.kid {
                return Err(TokenError::UnknownKey);
            }
            return Ok(decoded.claims);
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
        Ok(jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)?.claims)
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
