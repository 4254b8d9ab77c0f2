//! Signing and verification keys for access tokens, and their JWKS form.

use std::fmt;

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// Shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: at least the hash size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
const MAX_KID_CHARS: usize = 128;

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
    /// The PEM or JWK could not be read as a key of a supported type.
    #[error("invalid {algorithm} key: {reason}")]
    InvalidKey {
        /// The algorithm the key was meant for.
        algorithm: String,
        /// What the parser said.
        reason: String,
    },
    /// The public key does not verify what the private key signs.
    #[error("the public key does not belong to the private key")]
    KeyMismatch,
    /// Two verification keys share a key id (or both have none), so a token's `kid`
    /// could not choose between them.
    #[error("two verification keys have the key id {0:?}")]
    DuplicateKeyId(Option<String>),
}

fn check_kid(kid: Option<&str>) -> Result<(), KeyError> {
    match kid {
        Some(kid) if kid.is_empty() || kid.chars().count() > MAX_KID_CHARS => Err(KeyError::InvalidKeyId),
        _ => Ok(()),
    }
}

fn invalid(algorithm: Algorithm, error: impl fmt::Display) -> KeyError {
    KeyError::InvalidKey {
        algorithm: format!("{algorithm:?}"),
        reason: error.to_string(),
    }
}

/// A key that verifies access tokens: the public half of an EdDSA or ES256 key pair, or an
/// HS256 shared secret. A [`TokenVerifier`](crate::TokenVerifier) holds several, chosen by
/// the token's `kid`, so signing keys can rotate without logging anyone out.
///
/// `Debug` shows the algorithm and key id, never key material.
///
/// ```
/// use auth_core::{SigningKey, VerificationKey};
///
/// let signing = SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap();
/// let verification: VerificationKey = signing.verification_key().clone();
/// assert_eq!(verification.algorithm(), "HS256");
/// assert_eq!(verification.kid(), None);
/// ```
#[derive(Clone)]
pub struct VerificationKey {
    pub(super) algorithm: Algorithm,
    pub(super) kid: Option<String>,
    pub(super) decoding: DecodingKey,
}

impl VerificationKey {
    /// An HS256 shared secret of at least [`MIN_HS256_SECRET_BYTES`] bytes, with an
    /// optional key id.
    ///
    /// # Errors
    ///
    /// [`KeyError::SecretTooShort`], [`KeyError::InvalidKeyId`].
    pub fn hs256(kid: Option<&str>, secret: &[u8]) -> Result<Self, KeyError> {
        super::backend::install();
        check_kid(kid)?;
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(KeyError::SecretTooShort { len: secret.len() });
        }
        Ok(Self {
            algorithm: Algorithm::HS256,
            kid: kid.map(str::to_owned),
            decoding: DecodingKey::from_secret(secret),
        })
    }

    /// An Ed25519 public key (SPKI PEM, as `openssl pkey -pubout` writes it).
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKey`], [`KeyError::InvalidKeyId`].
    pub fn eddsa_public_pem(kid: &str, public_pem: &[u8]) -> Result<Self, KeyError> {
        super::backend::install();
        check_kid(Some(kid))?;
        let decoding = DecodingKey::from_ed_pem(public_pem).map_err(|e| invalid(Algorithm::EdDSA, e))?;
        Ok(Self {
            algorithm: Algorithm::EdDSA,
            kid: Some(kid.to_owned()),
            decoding,
        })
    }

    /// A P-256 public key (SPKI PEM).
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKey`], [`KeyError::InvalidKeyId`].
    pub fn es256_public_pem(kid: &str, public_pem: &[u8]) -> Result<Self, KeyError> {
        super::backend::install();
        check_kid(Some(kid))?;
        let decoding = DecodingKey::from_ec_pem(public_pem).map_err(|e| invalid(Algorithm::ES256, e))?;
        Ok(Self {
            algorithm: Algorithm::ES256,
            kid: Some(kid.to_owned()),
            decoding,
        })
    }

    /// A public key from a JWKS document (what [`Tokens::jwks`](crate::Tokens::jwks)
    /// publishes). The JWK must name its `kid` and its algorithm (`EdDSA` or `ES256`);
    /// symmetric keys are refused, since a JWKS is public.
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKey`], [`KeyError::InvalidKeyId`].
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        super::backend::install();
        let algorithm = match jwk.common.key_algorithm {
            Some(KeyAlgorithm::EdDSA) => Algorithm::EdDSA,
            Some(KeyAlgorithm::ES256) => Algorithm::ES256,
            other => {
                return Err(KeyError::InvalidKey {
                    algorithm: format!("{other:?}"),
                    reason: "only EdDSA and ES256 public keys are accepted from a JWKS".to_owned(),
                });
            }
        };
        let kid = jwk.common.key_id.as_deref().ok_or(KeyError::InvalidKeyId)?;
        check_kid(Some(kid))?;
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| invalid(algorithm, e))?;
        Ok(Self {
            algorithm,
            kid: Some(kid.to_owned()),
            decoding,
        })
    }

    /// The JWS algorithm (`HS256`, `EdDSA`, `ES256`).
    pub fn algorithm(&self) -> &'static str {
        algorithm_name(self.algorithm)
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public JWK of an asymmetric key; `None` for an HS256 secret, which must never
    /// be published.
    pub fn public_jwk(&self) -> Option<Jwk> {
        if self.algorithm == Algorithm::HS256 {
            return None;
        }
        let mut jwk = Jwk::from_decoding_key(&self.decoding, Some(self.algorithm))
            .inspect_err(|error| tracing::error!(%error, kid = ?self.kid, "could not export a public key as a JWK"))
            .ok()?;
        jwk.common.key_id.clone_from(&self.kid);
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Some(jwk)
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish()
    }
}

pub(super) fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "HS256",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::ES256 => "ES256",
        _ => "unsupported",
    }
}

/// The key that signs access tokens, with the matching [`VerificationKey`].
///
/// - [`hs256`](Self::hs256): a shared secret, at least 32 bytes. The default: any service
///   holding the same secret (the seeds' Python stack with `SECRET_KEY`, for instance)
///   can verify the tokens.
/// - [`eddsa_pem`](Self::eddsa_pem) or [`es256_pem`](Self::es256_pem): a key pair with a
///   key id (`kid`); other services verify with the public key from
///   [`Tokens::jwks`](crate::Tokens::jwks) and cannot mint tokens.
///
/// Constructors sign and verify a probe, so a wrong or mismatched key fails at start-up,
/// not at the first login. `Debug` shows the algorithm and key id, never key material.
///
/// ```
/// use auth_core::SigningKey;
///
/// // In a server: the bytes of the SECRET_KEY environment variable.
/// let key = SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap();
/// assert_eq!(format!("{key:?}"), r#"SigningKey { algorithm: HS256, kid: None }"#);
/// assert!(SigningKey::hs256(b"too short").is_err());
///
/// // Secrets rotate too: give each one a key id.
/// let key = SigningKey::hs256(b"an example secret of at least 32 bytes!").unwrap().with_kid("2026-11").unwrap();
/// assert_eq!(key.kid(), Some("2026-11"));
/// ```
#[derive(Clone)]
pub struct SigningKey {
    pub(super) encoding: EncodingKey,
    pub(super) verification: VerificationKey,
}

impl SigningKey {
    /// HMAC-SHA256 with a shared secret of at least [`MIN_HS256_SECRET_BYTES`] bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::SecretTooShort`].
    pub fn hs256(secret: &[u8]) -> Result<Self, KeyError> {
        let verification = VerificationKey::hs256(None, secret)?;
        Self::checked(EncodingKey::from_secret(secret), verification)
    }

    /// Ed25519 (EdDSA) from a PKCS#8 private key PEM and its SPKI public key PEM, as
    /// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write them.
    ///
    /// # Errors
    ///
    /// [`KeyError`] when a PEM is not an Ed25519 key, the halves do not match, or `kid`
    /// is unusable.
    pub fn eddsa_pem(kid: &str, private_pem: &[u8], public_pem: &[u8]) -> Result<Self, KeyError> {
        let verification = VerificationKey::eddsa_public_pem(kid, public_pem)?;
        let encoding = EncodingKey::from_ed_pem(private_pem).map_err(|e| invalid(Algorithm::EdDSA, e))?;
        Self::checked(encoding, verification)
    }

    /// ECDSA P-256 (ES256) from a PKCS#8 private key PEM and its SPKI public key PEM.
    ///
    /// # Errors
    ///
    /// [`KeyError`] when a PEM is not a P-256 key, the halves do not match, or `kid` is
    /// unusable.
    pub fn es256_pem(kid: &str, private_pem: &[u8], public_pem: &[u8]) -> Result<Self, KeyError> {
        let verification = VerificationKey::es256_public_pem(kid, public_pem)?;
        let encoding = EncodingKey::from_ec_pem(private_pem).map_err(|e| invalid(Algorithm::ES256, e))?;
        Self::checked(encoding, verification)
    }

    /// Sets the key id placed in token headers (and on the verification key).
    ///
    /// # Errors
    ///
    /// [`KeyError::InvalidKeyId`].
    pub fn with_kid(mut self, kid: &str) -> Result<Self, KeyError> {
        check_kid(Some(kid))?;
        self.verification.kid = Some(kid.to_owned());
        Ok(self)
    }

    fn checked(encoding: EncodingKey, verification: VerificationKey) -> Result<Self, KeyError> {
        let probe = b"auth-core key check";
        let algorithm = verification.algorithm;
        let signature = jsonwebtoken::crypto::sign(probe, &encoding, algorithm).map_err(|e| invalid(algorithm, e))?;
        match jsonwebtoken::crypto::verify(&signature, probe, &verification.decoding, algorithm) {
            Ok(true) => Ok(Self { encoding, verification }),
            Ok(false) => Err(KeyError::KeyMismatch),
            Err(e) => Err(invalid(algorithm, e)),
        }
    }

    /// The JWS algorithm, as it appears in the token header (`HS256`, `EdDSA`, `ES256`).
    pub fn algorithm(&self) -> &'static str {
        self.verification.algorithm()
    }

    /// The key id placed in the token header, if any.
    pub fn kid(&self) -> Option<&str> {
        self.verification.kid()
    }

    /// The key that verifies what this key signs.
    pub fn verification_key(&self) -> &VerificationKey {
        &self.verification
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.verification.algorithm)
            .field("kid", &self.verification.kid)
            .finish()
    }
}
