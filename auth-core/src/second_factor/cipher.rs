//! Secrets that must be read back (TOTP seeds), encrypted at rest with AES-256-GCM.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The bytes of an AES-256 key.
pub const ENCRYPTION_KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
/// What every sealed value begins with: the format's version.
const FORMAT: &str = "v1";

/// A 256-bit key that encrypts secrets at rest, with an id derived from it (the first
/// 8 hex digits of a SHA-256 of the key under a label), which sealed values carry so that
/// a rotated key still opens what it sealed. Never printed.
///
/// ```
/// use auth_core::EncryptionKey;
///
/// // 32 random bytes, base64 (`openssl rand -base64 32`).
/// let key = EncryptionKey::from_base64("q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=").unwrap();
/// assert_eq!(key.id().len(), 8);
/// assert!(!format!("{key:?}").contains("q83v"));
/// assert!(EncryptionKey::from_base64("c2hvcnQ=").is_err(), "5 bytes is no AES-256 key");
/// ```
#[derive(Clone)]
pub struct EncryptionKey {
    id: String,
    key: Zeroizing<[u8; ENCRYPTION_KEY_BYTES]>,
}

/// A string that is not a 256-bit key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an encryption key is {ENCRYPTION_KEY_BYTES} bytes, base64-encoded (`openssl rand -base64 32`)")]
pub struct EncryptionKeyError;

impl EncryptionKey {
    /// A key from exactly 32 secret bytes.
    ///
    /// # Errors
    ///
    /// [`EncryptionKeyError`] for any other length.
    pub fn new(bytes: &[u8]) -> Result<Self, EncryptionKeyError> {
        let key: [u8; ENCRYPTION_KEY_BYTES] = bytes.try_into().map_err(|_| EncryptionKeyError)?;
        let digest = Sha256::new()
            .chain_update(b"auth-core encryption key id\0")
            .chain_update(key)
            .finalize();
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self {
            id,
            key: Zeroizing::new(key),
        })
    }

    /// A key from its standard base64 (with or without padding, surrounding whitespace
    /// ignored).
    ///
    /// # Errors
    ///
    /// [`EncryptionKeyError`] when it is not base64 or not 32 bytes.
    pub fn from_base64(encoded: &str) -> Result<Self, EncryptionKeyError> {
        let encoded = encoded.trim().trim_end_matches('=');
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(encoded)
                .map_err(|_| EncryptionKeyError)?,
        );
        Self::new(&bytes)
    }

    /// The key's id, which the values it seals carry.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Encrypts secrets at rest under the current [`EncryptionKey`], and opens values sealed
/// under it or under a previous one (a rotation): each sealed value names its key's id.
///
/// A sealed value is `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`: AES-256-GCM with
/// a random 96-bit nonce, the value bound to its context (the account it belongs to), so
/// a value copied to another account does not open.
///
/// Rotation: make the new key current and keep the old one as previous
/// ([`with_previous_key`](Self::with_previous_key)); values are resealed under the current
/// key when next used ([`needs_reseal`](Self::needs_reseal)), and the old key can go once
/// none carries its id.
///
/// ```
/// use auth_core::{EncryptionKey, SecretCipher};
///
/// let old = EncryptionKey::new(&[7; 32]).unwrap();
/// let new = EncryptionKey::new(&[9; 32]).unwrap();
/// let sealed = SecretCipher::new(old.clone()).seal(b"seed", b"account 1").unwrap();
///
/// let rotated = SecretCipher::new(new).with_previous_key(old);
/// assert_eq!(rotated.open(&sealed, b"account 1").unwrap().as_slice(), b"seed");
/// assert!(rotated.needs_reseal(&sealed));
/// assert!(rotated.open(&sealed, b"account 2").is_err(), "bound to its account");
/// ```
#[derive(Clone, Debug)]
pub struct SecretCipher {
    current: EncryptionKey,
    previous: Vec<EncryptionKey>,
}

/// A value could not be sealed or opened: unknown key id, malformed, or tampered with (or
/// sealed for another context). Says nothing more, by design.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the sealed secret cannot be opened (unknown key, malformed, or altered)")]
pub struct SealError;

impl SecretCipher {
    /// Seals under `current`.
    pub fn new(current: EncryptionKey) -> Self {
        Self {
            current,
            previous: Vec::new(),
        }
    }

    /// Also opens values sealed under `key` (a key being rotated out).
    #[must_use]
    pub fn with_previous_key(mut self, key: EncryptionKey) -> Self {
        if key.id != self.current.id && self.previous.iter().all(|k| k.id != key.id) {
            self.previous.push(key);
        }
        self
    }

    /// The current key's id.
    pub fn current_key_id(&self) -> &str {
        self.current.id()
    }

    /// Encrypts `plaintext`, bound to `context`.
    ///
    /// # Errors
    ///
    /// [`SealError`] when the system has no randomness for the nonce.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError)?;
        let cipher = Aes256Gcm::new_from_slice(self.current.key.as_ref()).map_err(|_| SealError)?;
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .map_err(|_| SealError)?;
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Ok(format!(
            "{FORMAT}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// Decrypts a value [`seal`](Self::seal)ed under the current or a previous key for the
    /// same `context`.
    ///
    /// # Errors
    ///
    /// [`SealError`] for an unknown key id, a malformed value, or one altered or sealed
    /// for another context.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let (key_id, encoded) = split(sealed).ok_or(SealError)?;
        let key = self.key(key_id).ok_or(SealError)?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| SealError)?;
        if bytes.len() < NONCE_BYTES {
            return Err(SealError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError)?;
        let cipher = Aes256Gcm::new_from_slice(key.key.as_ref()).map_err(|_| SealError)?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError)
    }

    /// Whether `sealed` was sealed under another key than the current one (and should be
    /// sealed again once opened).
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        split(sealed).is_none_or(|(key_id, _)| key_id != self.current.id)
    }

    fn key(&self, id: &str) -> Option<&EncryptionKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == id)
    }
}

/// The key id and the encoded bytes of a sealed value.
fn split(sealed: &str) -> Option<(&str, &str)> {
    let rest = sealed.strip_prefix(FORMAT)?.strip_prefix('.')?;
    rest.split_once('.')
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn cipher(byte: u8) -> SecretCipher {
        SecretCipher::new(EncryptionKey::new(&[byte; 32]).unwrap())
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let sealed = cipher(1).seal(b"JBSWY3DPEHPK3PXP", b"user-a").unwrap();
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("JBSWY3DP"));
        assert_eq!(
            cipher(1).open(&sealed, b"user-a").unwrap().as_slice(),
            b"JBSWY3DPEHPK3PXP"
        );
        assert_eq!(cipher(2).open(&sealed, b"user-a"), Err(SealError), "another key");
        assert_eq!(cipher(1).open(&sealed, b"user-b"), Err(SealError), "another context");
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let c = cipher(1);
        assert_ne!(c.seal(b"x", b"c").unwrap(), c.seal(b"x", b"c").unwrap());
    }

    #[test]
    fn altered_or_malformed_values_do_not_open() {
        let c = cipher(1);
        let sealed = c.seal(b"secret", b"c").unwrap();
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        for bad in [
            altered.as_str(),
            "",
            "v1.",
            "v2.abcd1234.AAAA",
            &sealed[..sealed.len() - 10],
            &sealed.replacen("v1.", "v1.0000", 1),
        ] {
            assert_eq!(c.open(bad, b"c"), Err(SealError), "{bad:?}");
        }
    }

    #[test]
    fn a_rotation_opens_old_values_and_asks_to_reseal_them() {
        let old = EncryptionKey::new(&[1; 32]).unwrap();
        let new = EncryptionKey::new(&[2; 32]).unwrap();
        let sealed_old = SecretCipher::new(old.clone()).seal(b"s", b"c").unwrap();
        let rotated = SecretCipher::new(new).with_previous_key(old);
        assert_eq!(rotated.open(&sealed_old, b"c").unwrap().as_slice(), b"s");
        assert!(rotated.needs_reseal(&sealed_old));
        let resealed = rotated.seal(b"s", b"c").unwrap();
        assert!(!rotated.needs_reseal(&resealed));
    }

    #[test]
    fn keys_are_32_bytes_and_never_printed() {
        assert_eq!(EncryptionKey::new(&[0; 31]).unwrap_err(), EncryptionKeyError);
        assert_eq!(
            EncryptionKey::from_base64("not base64!").unwrap_err(),
            EncryptionKeyError
        );
        let key = EncryptionKey::from_base64(&STANDARD.encode([5u8; 32])).unwrap();
        assert_eq!(key.id(), EncryptionKey::new(&[5; 32]).unwrap().id());
        assert!(!format!("{key:?}{:?}", SecretCipher::new(key.clone())).contains("BQUF"));
    }
}
