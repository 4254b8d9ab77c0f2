//! The keys of access tokens, from the environment: the key that signs (an HS256
//! `SECRET_KEY` by default, or an Ed25519 or P-256 private key), and the public keys that
//! still verify during a rotation. Every mistake is a start-up error naming its variable;
//! no key material is ever logged or shown by `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use auth_core::jwk::JwkSet;
use auth_core::{SigningKey, VerificationKey};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::config::{Config, secret_key};

/// Where the asymmetric signing key comes from: `AUTH_SIGNING_KEY_FILE` or
/// `AUTH_SIGNING_KEY`. `Debug` names the variable and the path, never the key.
pub enum SigningKeySource {
    /// `AUTH_SIGNING_KEY_FILE`: a file holding the PKCS#8 private key PEM.
    File(PathBuf),
    /// `AUTH_SIGNING_KEY`: the PEM itself.
    Inline(SecretString),
}

impl fmt::Debug for SigningKeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Inline(_) => f.write_str("Inline(<redacted>)"),
        }
    }
}

impl SigningKeySource {
    /// The variable the key was given in, for error messages.
    pub fn variable(&self) -> &'static str {
        match self {
            Self::File(_) => "AUTH_SIGNING_KEY_FILE",
            Self::Inline(_) => "AUTH_SIGNING_KEY",
        }
    }

    /// `AUTH_SIGNING_KEY_FILE` or `AUTH_SIGNING_KEY`, not both.
    pub(crate) fn from_vars(file: Option<String>, inline: Option<String>) -> Result<Option<Self>, String> {
        match (file, inline) {
            (Some(_), Some(_)) => Err("AUTH_SIGNING_KEY_FILE and AUTH_SIGNING_KEY are both set: \
                 give the signing key in one of them"
                .to_owned()),
            (Some(path), None) => Ok(Some(Self::File(PathBuf::from(path)))),
            (None, Some(pem)) => Ok(Some(Self::Inline(SecretString::from(pem)))),
            (None, None) => Ok(None),
        }
    }

    fn read(&self) -> Result<Zeroizing<Vec<u8>>, String> {
        match self {
            Self::File(path) => read_file("AUTH_SIGNING_KEY_FILE", path),
            Self::Inline(pem) => Ok(Zeroizing::new(pem.expose_secret().as_bytes().to_vec())),
        }
    }
}

/// The secret the server's other keys are derived from (the pages' CSRF key, the
/// limiter's account keys), the same on every instance configured alike:
///
/// - `SECRET_KEY` when set (whether it signs, or only verifies beside an asymmetric key);
/// - otherwise the asymmetric signing key (`AUTH_SIGNING_KEY_FILE` or `AUTH_SIGNING_KEY`):
///   a rotation then changes the derived keys too, so a page form opened before it must
///   be reloaded, and the per-account limits start afresh;
/// - otherwise the development key [`secret_key`] generates beside a SQLite database.
///
/// # Errors
///
/// As [`secret_key`] and [`token_keys`]: a message naming the variable to fix.
pub fn derivation_secret(config: &Config) -> Result<Zeroizing<Vec<u8>>, String> {
    match (&config.secret_key, &config.signing_key) {
        (None, Some(source)) => source.read(),
        _ => secret_key(config).map(Zeroizing::new),
    }
}

/// The access-token keys a server runs with: [`token_keys`] reads them.
#[derive(Debug)]
pub struct TokenKeys {
    /// The key that signs every new access token.
    pub signing: SigningKey,
    /// Keys that verify tokens signed before a rotation, besides the signing key: the
    /// public keys of `AUTH_VERIFICATION_KEYS_FILE`, and `SECRET_KEY` when an asymmetric
    /// key signs (the HS256 tokens issued before the switch).
    pub verification: Vec<VerificationKey>,
}

/// The signing key and the verification keys the configuration names:
///
/// - `AUTH_SIGNING_KEY_FILE` or `AUTH_SIGNING_KEY`: an Ed25519 or P-256 PKCS#8 private key
///   PEM signs (its public half derived from it); its key id is `AUTH_SIGNING_KEY_ID`, or
///   its RFC 7638 thumbprint. `SECRET_KEY`, if also set, then only verifies: the HS256
///   tokens issued before the switch keep working until they expire.
/// - Otherwise the HS256 `SECRET_KEY` signs, as [`secret_key`] decides.
/// - `AUTH_VERIFICATION_KEYS_FILE`: more public keys that verify (see
///   [`read_verification_keys`]). The signing key's own public key may be listed there too
///   (the same file can serve the rotation's first two steps); it is kept once.
///
/// # Errors
///
/// A message naming the variable to fix: an unreadable file, a key of another type, a
/// private key where public ones are expected, two keys with one key id, a key id
/// without a key, or no key where one is required.
pub fn token_keys(config: &Config) -> Result<TokenKeys, String> {
    let mut verification = Vec::new();
    let signing = match &config.signing_key {
        Some(source) => {
            let pem = source.read()?;
            let key = SigningKey::from_private_pem(config.signing_key_id.as_deref(), &pem)
                .map_err(|error| format!("{}: {error}", source.variable()))?;
            if let Some(secret) = &config.secret_key {
                let retired = VerificationKey::hs256(None, secret.as_bytes()).map_err(|error| {
                    format!("SECRET_KEY (kept to verify the HS256 tokens issued before the switch): {error}")
                })?;
                tracing::warn!(
                    "SECRET_KEY still verifies the HS256 access tokens issued before {} signed; \
                     unset it once they have expired (ACCESS_TOKEN_EXPIRE_MINUTES)",
                    source.variable()
                );
                verification.push(retired);
            }
            key
        }
        None => {
            if config.signing_key_id.is_some() {
                return Err("AUTH_SIGNING_KEY_ID names an asymmetric signing key: \
                     set AUTH_SIGNING_KEY_FILE or AUTH_SIGNING_KEY too"
                    .to_owned());
            }
            let secret = secret_key(config)?;
            SigningKey::hs256(&secret).map_err(|error| format!("SECRET_KEY: {error}"))?
        }
    };
    if let Some(path) = &config.verification_keys_file {
        for key in read_verification_keys(path)? {
            let same_as_signing = key.kid() == signing.kid()
                && key.thumbprint().is_some()
                && key.thumbprint() == signing.verification_key().thumbprint();
            if same_as_signing {
                continue;
            }
            if key.kid() == signing.kid() {
                return Err(format!(
                    "AUTH_VERIFICATION_KEYS_FILE ({}): the key id {:?} is the signing key's, but the key is another",
                    path.display(),
                    key.kid().unwrap_or_default()
                ));
            }
            verification.push(key);
        }
    }
    Ok(TokenKeys { signing, verification })
}

/// The public keys of `AUTH_VERIFICATION_KEYS_FILE`, in one of two formats, told apart by
/// the first character:
///
/// - a JWKS document (`{"keys": [...]}`), such as a server's `/.well-known/jwks.json`:
///   every key keeps its `kid`, and must name its `alg` (`EdDSA` or `ES256`);
/// - PEM: one or more `-----BEGIN PUBLIC KEY-----` blocks (`openssl pkey -pubout`), each
///   an Ed25519 or P-256 key named by its RFC 7638 thumbprint, the key id a server gives
///   the private key when `AUTH_SIGNING_KEY_ID` is unset.
///
/// An empty file holds no key (the state after a rotation's last step).
///
/// # Errors
///
/// A message naming the variable, the file and, for PEM, the block: a private key
/// (refused, so it is not left lying beside public ones), a key of another type, a
/// symmetric JWK, or two keys with one key id.
pub fn read_verification_keys(path: &Path) -> Result<Vec<VerificationKey>, String> {
    const NAME: &str = "AUTH_VERIFICATION_KEYS_FILE";
    let contents = read_file(NAME, path)?;
    let at = |what: String| format!("{NAME} ({}): {what}", path.display());
    let text =
        std::str::from_utf8(&contents).map_err(|_| at("not text: expected PEM or a JWKS document".to_owned()))?;
    let keys = if text.trim_start().starts_with('{') {
        let set: JwkSet = serde_json::from_str(text).map_err(|error| at(format!("not a JWKS document: {error}")))?;
        set.keys
            .iter()
            .enumerate()
            .map(|(index, jwk)| {
                VerificationKey::from_jwk(jwk).map_err(|error| at(format!("key {} of the JWKS: {error}", index + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let blocks = pem::parse_many(text).map_err(|error| at(format!("not PEM: {error}")))?;
        if blocks.is_empty() && !text.trim().is_empty() {
            return Err(at(
                "holds no PEM block and is not a JWKS document (expected -----BEGIN PUBLIC KEY----- blocks)".to_owned(),
            ));
        }
        blocks
            .iter()
            .enumerate()
            .map(|(index, block)| {
                let block_at = |what: String| at(format!("PEM block {}: {what}", index + 1));
                if block.tag().contains("PRIVATE KEY") {
                    return Err(block_at(
                        "a private key; this file is for public keys only (openssl pkey -in key.pem -pubout)"
                            .to_owned(),
                    ));
                }
                let single = Zeroizing::new(pem::encode(block));
                VerificationKey::from_public_pem(None, single.as_bytes()).map_err(|error| block_at(error.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    for (index, key) in keys.iter().enumerate() {
        if keys[..index].iter().any(|earlier| earlier.kid() == key.kid()) {
            return Err(at(format!(
                "two keys have the key id {:?}",
                key.kid().unwrap_or_default()
            )));
        }
    }
    Ok(keys)
}

fn read_file(variable: &str, path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|error| format!("{variable}: cannot read {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../auth-core/tests/fixtures")
            .join(name)
    }

    fn scratch(name: &str, contents: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(name);
        std::fs::write(&file, contents).unwrap();
        (dir, file)
    }

    #[test]
    fn the_signing_key_is_named_once_and_never_shown() {
        let pem = std::fs::read_to_string(fixture("ed25519-private.pem")).unwrap();
        assert!(
            SigningKeySource::from_vars(Some("key.pem".to_owned()), Some(pem.clone()))
                .unwrap_err()
                .contains("AUTH_SIGNING_KEY_FILE and AUTH_SIGNING_KEY are both set")
        );
        let inline = SigningKeySource::from_vars(None, Some(pem.clone())).unwrap().unwrap();
        assert_eq!(inline.variable(), "AUTH_SIGNING_KEY");
        assert_eq!(format!("{inline:?}"), "Inline(<redacted>)");
        let key = SigningKey::from_private_pem(None, &inline.read().unwrap()).unwrap();
        let keys = TokenKeys {
            signing: key,
            verification: vec![],
        };
        let shown = format!("{keys:?}");
        let body = pem.lines().nth(1).unwrap();
        assert!(shown.contains("EdDSA") && !shown.contains(body), "{shown}");
    }

    #[test]
    fn pem_files_hold_public_keys_named_by_their_thumbprints() {
        let ed = std::fs::read_to_string(fixture("ed25519-public.pem")).unwrap();
        let ec = std::fs::read_to_string(fixture("p256-public.pem")).unwrap();
        let (_dir, file) = scratch("keys.pem", &format!("# previous keys\n{ed}\n{ec}"));
        let keys = read_verification_keys(&file).unwrap();
        let algorithms: Vec<&str> = keys.iter().map(VerificationKey::algorithm).collect();
        assert_eq!(algorithms, ["EdDSA", "ES256"]);
        for key in &keys {
            assert_eq!(key.kid(), key.thumbprint().as_deref());
        }
        let (_dir, empty) = scratch("none.pem", "\n");
        assert!(
            read_verification_keys(&empty).unwrap().is_empty(),
            "after the last step"
        );
    }

    #[test]
    fn a_jwks_document_keeps_its_key_ids() {
        let public = std::fs::read(fixture("ed25519-public.pem")).unwrap();
        let key = VerificationKey::from_public_pem(Some("2026-11"), &public).unwrap();
        let jwks = serde_json::json!({"keys": [key.public_jwk().unwrap()]});
        let (_dir, file) = scratch("jwks.json", &jwks.to_string());
        let keys = read_verification_keys(&file).unwrap();
        assert_eq!(keys.iter().map(|key| key.kid()).collect::<Vec<_>>(), [Some("2026-11")]);
        let (_dir, broken) = scratch("broken.json", "{\"keys\": [{}]}");
        let error = read_verification_keys(&broken).unwrap_err();
        assert!(error.starts_with("AUTH_VERIFICATION_KEYS_FILE ("), "{error}");
    }

    #[test]
    fn private_keys_and_keys_of_other_types_are_refused_naming_the_block() {
        let public = std::fs::read_to_string(fixture("ed25519-public.pem")).unwrap();
        for (other, says) in [
            ("ed25519-private.pem", "PEM block 2: a private key"),
            ("p256-sec1-private.pem", "PEM block 2: a private key"),
            ("p384-public.pem", "PEM block 2: not a usable Ed25519 or P-256 key"),
        ] {
            let other_pem = std::fs::read_to_string(fixture(other)).unwrap();
            let (_dir, file) = scratch("keys.pem", &(public.clone() + &other_pem));
            let error = read_verification_keys(&file).unwrap_err();
            assert!(error.contains(says), "{other}: {error}");
            let body = other_pem.lines().nth(1).unwrap();
            assert!(!error.contains(body), "{other}: the key is repeated in {error}");
        }
    }
}
