//! Signing and verification keys for access tokens, and their JWKS form.

use std::fmt;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
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
    /// A PEM that is not an Ed25519 or P-256 key of the kind expected (a private key in
    /// PKCS#8 where one signs, a public key in SPKI where one verifies); the text says what
    /// was found instead, never the key.
    #[error("not a usable Ed25519 or P-256 key: {0}")]
    UnsupportedKey(String),
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
        // jsonwebtoken builds a key of any curve; one that cannot be the named
        // algorithm's would only fail at every verification.
        if !curve_fits(algorithm, &jwk.algorithm) {
            return Err(invalid(algorithm, "the key's type or curve is not the algorithm's"));
        }
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| invalid(algorithm, e))?;
        Ok(Self {
            algorithm,
            kid: Some(kid.to_owned()),
            decoding,
        })
    }

    /// An Ed25519 or P-256 public key (SPKI PEM, as `openssl pkey -pubout` writes it),
    /// whichever it is: the algorithm (`EdDSA` or `ES256`) is the key's. The key id is
    /// `kid`, or when `None` the key's [RFC 7638 thumbprint](Self::thumbprint), the same
    /// one [`SigningKey::from_private_pem`] gives the private half.
    ///
    /// ```
    /// use auth_core::{SigningKey, VerificationKey};
    ///
    /// let public = include_bytes!("../../tests/fixtures/ed25519-public.pem");
    /// let private = include_bytes!("../../tests/fixtures/ed25519-private.pem");
    /// let key = VerificationKey::from_public_pem(None, public).unwrap();
    /// assert_eq!(key.algorithm(), "EdDSA");
    /// assert_eq!(key.kid(), SigningKey::from_private_pem(None, private).unwrap().kid());
    /// assert!(VerificationKey::from_public_pem(None, private).is_err(), "a private key is not a public one");
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyError::UnsupportedKey`] for anything but an Ed25519 or P-256 public key (the
    /// message says what it is instead), [`KeyError::InvalidKeyId`].
    pub fn from_public_pem(kid: Option<&str>, public_pem: &[u8]) -> Result<Self, KeyError> {
        super::backend::install();
        check_kid(kid)?;
        match pem_label(public_pem) {
            Some("PUBLIC KEY") => {}
            Some(label) if label.contains("PRIVATE KEY") => {
                return Err(KeyError::UnsupportedKey(
                    "a private key, where a public key (`-----BEGIN PUBLIC KEY-----`) is expected".to_owned(),
                ));
            }
            found => return Err(KeyError::UnsupportedKey(unexpected_pem(found, "PUBLIC KEY"))),
        }
        let (algorithm, decoding) = if let Ok(decoding) = DecodingKey::from_ed_pem(public_pem) {
            (Algorithm::EdDSA, decoding)
        } else if let Ok(decoding) = DecodingKey::from_ec_pem(public_pem) {
            if !names_p256(public_pem) {
                return Err(KeyError::UnsupportedKey(other_curve(Algorithm::ES256)));
            }
            (Algorithm::ES256, decoding)
        } else {
            return Err(KeyError::UnsupportedKey(
                "neither an Ed25519 nor an EC public key (RSA and other types are not supported)".to_owned(),
            ));
        };
        let jwk = Jwk::from_decoding_key(&decoding, Some(algorithm))
            .ok()
            .filter(|jwk| curve_fits(algorithm, &jwk.algorithm))
            .ok_or_else(|| KeyError::UnsupportedKey(other_curve(algorithm)))?;
        let kid = match kid {
            Some(kid) => kid.to_owned(),
            None => thumbprint(&jwk)?,
        };
        Ok(Self {
            algorithm,
            kid: Some(kid),
            decoding,
        })
    }

    /// The key's JWK thumbprint (RFC 7638: SHA-256 of its required members, base64url
    /// without padding, 43 characters): a name every holder of the key computes alike,
    /// used as the key id when none is given. `None` for an HS256 secret, which has no
    /// public form.
    pub fn thumbprint(&self) -> Option<String> {
        if self.algorithm == Algorithm::HS256 {
            return None;
        }
        let jwk = Jwk::from_decoding_key(&self.decoding, Some(self.algorithm)).ok()?;
        thumbprint(&jwk).ok()
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

/// Whether a JWK's key type and curve are the ones `algorithm` signs with.
fn curve_fits(algorithm: Algorithm, parameters: &AlgorithmParameters) -> bool {
    match (algorithm, parameters) {
        (Algorithm::EdDSA, AlgorithmParameters::OctetKeyPair(key)) => key.curve == EllipticCurve::Ed25519,
        (Algorithm::ES256, AlgorithmParameters::EllipticCurve(key)) => key.curve == EllipticCurve::P256,
        _ => false,
    }
}

fn other_curve(algorithm: Algorithm) -> String {
    match algorithm {
        Algorithm::ES256 => "an EC key that is not a P-256 key (other curves are not supported)".to_owned(),
        _ => "an EdDSA key that is not an Ed25519 key".to_owned(),
    }
}

/// DER of the named curve P-256 (`prime256v1`, OID 1.2.840.10045.3.1.7), as an SPKI
/// names it.
const P256_CURVE_OID: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Whether an EC public key PEM names the curve P-256. jsonwebtoken tells curves apart
/// by the point's length alone, which secp256k1 shares with P-256.
fn names_p256(pem: &[u8]) -> bool {
    use base64::Engine as _;
    let Ok(text) = std::str::from_utf8(pem) else {
        return false;
    };
    // The first block's body, as jsonwebtoken reads the first block.
    let body: String = text
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END "))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .is_ok_and(|der| der.windows(P256_CURVE_OID.len()).any(|window| window == P256_CURVE_OID))
}

/// RFC 7638 SHA-256 thumbprint of a public JWK.
fn thumbprint(jwk: &Jwk) -> Result<String, KeyError> {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map_err(|error| KeyError::InvalidKey {
            algorithm: format!("{:?}", jwk.common.key_algorithm),
            reason: format!("no thumbprint: {error}"),
        })
}

/// The label of the first PEM block (`PRIVATE KEY` in `-----BEGIN PRIVATE KEY-----`), if
/// the text has one: enough to say what a wrong file is without echoing any of it.
fn pem_label(pem: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(pem).ok()?;
    let after = &text[text.find("-----BEGIN ")? + "-----BEGIN ".len()..];
    let label = &after[..after.find("-----")?];
    (label.len() <= 64).then_some(label)
}

/// What a PEM of the wrong kind is, for an error message.
fn unexpected_pem(found: Option<&str>, expected: &str) -> String {
    let advice = match found {
        None => return format!("not a PEM key (expected `-----BEGIN {expected}-----`)"),
        Some("EC PRIVATE KEY") => {
            " (a SEC1 EC key: convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.p8.pem`)"
        }
        Some("ENCRYPTED PRIVATE KEY") => {
            " (an encrypted key: decrypt it with `openssl pkey -in key.pem -out plain.pem`)"
        }
        Some("RSA PRIVATE KEY" | "RSA PUBLIC KEY") => " (RSA keys are not supported)",
        Some(_) => "",
    };
    format!(
        "a PEM `{}`, where `-----BEGIN {expected}-----` is expected{advice}",
        found.unwrap_or_default()
    )
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
/// - [`from_private_pem`](Self::from_private_pem) (the private key alone: algorithm, public
///   half and key id derived from it), [`eddsa_pem`](Self::eddsa_pem) or
///   [`es256_pem`](Self::es256_pem): a key pair with a key id (`kid`); other services
///   verify with the public key from [`Tokens::jwks`](crate::Tokens::jwks) and cannot mint
///   tokens.
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

    /// An Ed25519 or P-256 key pair from its PKCS#8 private key PEM alone, as
    /// `openssl genpkey -algorithm ed25519` or
    /// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` write it: the
    /// algorithm (`EdDSA` or `ES256`) is the key's, the public half is derived from the
    /// private one, and the key id is `kid` or, when `None`, the public key's
    /// [RFC 7638 thumbprint](VerificationKey::thumbprint), so that every instance given
    /// the same key names it alike without being told.
    ///
    /// ```
    /// use auth_core::SigningKey;
    ///
    /// let pem = include_bytes!("../../tests/fixtures/p256-private.pem");
    /// let key = SigningKey::from_private_pem(None, pem).unwrap();
    /// assert_eq!(key.algorithm(), "ES256");
    /// assert_eq!(key.kid().map(str::len), Some(43), "the thumbprint");
    /// assert_eq!(SigningKey::from_private_pem(Some("2026-11"), pem).unwrap().kid(), Some("2026-11"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyError::UnsupportedKey`] for anything but an unencrypted PKCS#8 Ed25519 or
    /// P-256 private key (the message says what it is instead and, for a SEC1 or
    /// encrypted key, how to convert it), [`KeyError::InvalidKeyId`].
    pub fn from_private_pem(kid: Option<&str>, private_pem: &[u8]) -> Result<Self, KeyError> {
        super::backend::install();
        check_kid(kid)?;
        match pem_label(private_pem) {
            Some("PRIVATE KEY") => {}
            Some("PUBLIC KEY") => {
                return Err(KeyError::UnsupportedKey(
                    "a public key, where the private key (`-----BEGIN PRIVATE KEY-----`) is expected".to_owned(),
                ));
            }
            found => return Err(KeyError::UnsupportedKey(unexpected_pem(found, "PRIVATE KEY"))),
        }
        let (algorithm, encoding) = if let Ok(encoding) = EncodingKey::from_ed_pem(private_pem) {
            (Algorithm::EdDSA, encoding)
        } else if let Ok(encoding) = EncodingKey::from_ec_pem(private_pem) {
            (Algorithm::ES256, encoding)
        } else {
            return Err(KeyError::UnsupportedKey(
                "neither an Ed25519 nor an EC private key (RSA and other types are not supported)".to_owned(),
            ));
        };
        // The public half, computed by the crypto backend from the private key.
        let mut jwk = Jwk::from_encoding_key(&encoding, algorithm)
            .ok()
            .filter(|jwk| curve_fits(algorithm, &jwk.algorithm))
            .ok_or_else(|| KeyError::UnsupportedKey(other_curve(algorithm)))?;
        jwk.common.key_id = Some(match kid {
            Some(kid) => kid.to_owned(),
            None => thumbprint(&jwk)?,
        });
        let verification = VerificationKey::from_jwk(&jwk)?;
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
