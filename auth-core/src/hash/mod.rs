//! Password hashing: argon2id for new hashes, verification of legacy formats, and the
//! bounded pool that keeps this CPU- and memory-heavy work off async worker threads.

mod argon2id;
mod legacy;
mod limits;
mod pool;
mod slow_build;

use std::fmt;

pub use argon2id::{Argon2Hasher, Argon2Params, ParamsError};
pub use limits::HashLimits;
pub use pool::{HashPool, HashPoolError, HashSlot};

use crate::password::Password;

/// A stored password hash: an argon2 PHC string, or a legacy format that
/// [`Argon2Hasher`] can verify (bcrypt `$2a$`/`$2b$`/`$2y$`, Django `pbkdf2_sha256$`).
///
/// Constructing one does not validate it: stores load whatever the database holds and
/// the hasher rejects what it cannot use when verifying. `Debug` shows the scheme only.
///
/// ```
/// use auth_core::HashedPassword;
///
/// let hash = HashedPassword::new("$2b$12$CqKzV8LCaFsLHng2PeymoOGvYKbnWBm7mOxNg0TdJQuT9rX8p1tFa");
/// assert_eq!(hash.scheme(), "2b");
/// assert_eq!(format!("{hash:?}"), r#"HashedPassword { scheme: "2b", .. }"#);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HashedPassword(String);

impl HashedPassword {
    /// Wraps a hash string as stored.
    pub fn new(hash: impl Into<String>) -> Self {
        Self(hash.into())
    }

    /// The hash string, for storing.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The scheme identifier: `argon2id`, `2b`, `pbkdf2_sha256`, ... (empty if unknown).
    pub fn scheme(&self) -> &str {
        let s = self.0.as_str();
        let id = match s.strip_prefix('$') {
            Some(rest) => rest.split('$').next(),
            None => s.split_once('$').map(|(id, _)| id),
        };
        id.filter(|id| id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            .unwrap_or("")
    }
}

impl fmt::Debug for HashedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashedPassword")
            .field("scheme", &self.scheme())
            .finish_non_exhaustive()
    }
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verification {
    /// The password is wrong.
    Mismatch,
    /// The password is right.
    Match {
        /// The hash is a legacy format, uses other parameters than the hasher's current
        /// ones, or was made from the password before normalization: store a fresh hash.
        needs_rehash: bool,
    },
}

impl Verification {
    /// Whether the password was right.
    pub fn is_match(self) -> bool {
        matches!(self, Self::Match { .. })
    }
}

/// Why a stored hash could not be used. Raised before any expensive computation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// Not a format this hasher knows.
    #[error("unrecognized password hash format")]
    UnknownFormat,
    /// A known format, but truncated, non-ASCII or otherwise malformed.
    #[error("malformed {scheme} password hash")]
    Malformed {
        /// The format it claimed to be.
        scheme: &'static str,
    },
    /// Asks for more memory, iterations, lanes or cost than [`HashLimits`] allow.
    #[error("{scheme} password hash asks for more work than the configured limits allow")]
    LimitExceeded {
        /// The format it claimed to be.
        scheme: &'static str,
    },
    /// A legacy format this build does not verify: `auth-core` was compiled without
    /// `feature` (`legacy-bcrypt` or `legacy-pbkdf2`). Enable it to let such accounts log
    /// in (and have their hash upgraded).
    #[error("{scheme} password hashes are not verified by this build (auth-core feature `{feature}` is off)")]
    FeatureDisabled {
        /// The format the hash is in.
        scheme: &'static str,
        /// The `auth-core` feature that verifies it.
        feature: &'static str,
    },
    /// Hashing itself failed (the OS random number generator, for example).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Hashes new passwords and verifies stored hashes.
///
/// [`Argon2Hasher`] is the implementation to use; the trait exists so the service can be
/// given other parameters, and so tests can wrap it (to count calls, for example).
/// Implementations are synchronous and expensive by design: the service only calls them
/// through its [`HashPool`], never on an async worker thread.
///
/// Object safe:
///
/// ```
/// use auth_core::{Argon2Hasher, PasswordHasher, Password};
///
/// let hasher: Box<dyn PasswordHasher> = Box::new(Argon2Hasher::default());
/// let hash = hasher.hash(&Password::new("plaid-otter-sunrise")).unwrap();
/// assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
/// assert!(hasher.verify(&Password::new("plaid-otter-sunrise"), &hash).unwrap().is_match());
/// ```
pub trait PasswordHasher: Send + Sync + fmt::Debug + 'static {
    /// Hashes the NFKC form of `password` with the current parameters.
    ///
    /// # Errors
    ///
    /// [`HashError::Failed`] if the underlying primitive fails.
    fn hash(&self, password: &Password) -> Result<HashedPassword, HashError>;

    /// Checks `password` against a stored hash.
    ///
    /// # Errors
    ///
    /// A [`HashError`] when the stored hash is unusable; this is decided before any
    /// expensive work, so a hostile stored hash costs nothing.
    fn verify(&self, password: &Password, hash: &HashedPassword) -> Result<Verification, HashError>;

    /// A hash of a random secret with the current parameters. The service verifies it when
    /// there is no real hash to check (unknown email, account without a password), so every
    /// login attempt costs the same work.
    fn dummy_hash(&self) -> &HashedPassword;
}

/// Lets one hasher be shared (with a wrapper in tests, for example).
impl<T: PasswordHasher + ?Sized> PasswordHasher for std::sync::Arc<T> {
    fn hash(&self, password: &Password) -> Result<HashedPassword, HashError> {
        (**self).hash(password)
    }

    fn verify(&self, password: &Password, hash: &HashedPassword) -> Result<Verification, HashError> {
        (**self).verify(password, hash)
    }

    fn dummy_hash(&self) -> &HashedPassword {
        (**self).dummy_hash()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_is_read_from_every_format() {
        assert_eq!(
            HashedPassword::new("$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA").scheme(),
            "argon2id"
        );
        assert_eq!(
            HashedPassword::new("pbkdf2_sha256$1000$salt$hash").scheme(),
            "pbkdf2_sha256"
        );
        assert_eq!(HashedPassword::new("$2y$10$abc").scheme(), "2y");
        assert_eq!(HashedPassword::new("plaintext").scheme(), "");
        assert_eq!(HashedPassword::new("$<script>$").scheme(), "");
        assert_eq!(HashedPassword::new("").scheme(), "");
    }
}
