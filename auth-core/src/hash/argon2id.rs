use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

#[cfg(feature = "legacy-bcrypt")]
use super::legacy::Bcrypt;
#[cfg(feature = "legacy-pbkdf2")]
use super::legacy::DjangoPbkdf2;
use super::limits::HashLimits;
use super::slow_build;
use super::{HashError, HashedPassword, PasswordHasher, Verification};
use crate::password::Password;

/// Argon2id cost parameters for new hashes.
///
/// The default is OWASP's recommendation (Password Storage Cheat Sheet): 19 MiB of
/// memory, 2 iterations, 1 lane. Each hash in flight holds `memory_kib` of RAM, so a
/// server's hashing memory is [`HashPool`](crate::HashPool) permits × `memory_kib`.
///
/// ```
/// use auth_core::Argon2Params;
///
/// let owasp = Argon2Params::default();
/// assert_eq!((owasp.memory_kib(), owasp.iterations(), owasp.parallelism()), (19_456, 2, 1));
///
/// // Another of OWASP's equivalent settings: 46 MiB, one pass.
/// let params = Argon2Params::new(47_104, 1, 1).unwrap();
/// assert!(!params.is_below_owasp_minimum());
/// assert!(Argon2Params::new(8_192, 1, 1).unwrap().is_below_owasp_minimum());
/// assert!(Argon2Params::new(0, 1, 1).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
}

/// Argon2 parameters the algorithm itself cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid argon2 parameters: {0}")]
pub struct ParamsError(String);

impl Argon2Params {
    /// OWASP's recommended argon2id setting: m = 19456 KiB, t = 2, p = 1.
    pub const OWASP: Self = Self {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    /// Custom parameters: memory in KiB, iterations (time cost) and lanes (parallelism).
    ///
    /// # Errors
    ///
    /// [`ParamsError`] when argon2 cannot run with them (memory below 8 KiB per lane,
    /// zero iterations or lanes). Settings below OWASP's minimum are accepted, because
    /// tests and benchmarks need them, but logged as a warning when a hasher uses them.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, ParamsError> {
        Params::new(memory_kib, iterations, parallelism, None).map_err(|e| ParamsError(e.to_string()))?;
        Ok(Self {
            memory_kib,
            iterations,
            parallelism,
        })
    }

    /// Memory cost in KiB.
    pub fn memory_kib(&self) -> u32 {
        self.memory_kib
    }

    /// Time cost: passes over memory.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Lanes.
    pub fn parallelism(&self) -> u32 {
        self.parallelism
    }

    /// Whether these parameters are weaker than every setting OWASP lists as equivalent
    /// (46 MiB × 1, 19 MiB × 2, 12 MiB × 3, 9 MiB × 4, 7 MiB × 5 iterations).
    pub fn is_below_owasp_minimum(&self) -> bool {
        let min_memory_kib = match self.iterations {
            0 | 1 => 47_104,
            2 => 19_456,
            3 => 12_288,
            4 => 9_216,
            _ => 7_168,
        };
        self.memory_kib < min_memory_kib
    }

    fn to_argon2(self) -> Result<Params, ParamsError> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None).map_err(|e| ParamsError(e.to_string()))
    }
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::OWASP
    }
}

/// The [`PasswordHasher`] to use: argon2id (RustCrypto `argon2`) for new hashes, PHC
/// strings at rest, and verification of the formats teams migrate from.
///
/// | stored hash | verified | needs rehash |
/// |---|---|---|
/// | `$argon2id$` v19 with memory and iterations at least the current ones | yes | no |
/// | `$argon2id$` below the current memory or iterations, `$argon2i$`, `$argon2d$`, v16 | yes | yes |
/// | `$2a$`, `$2b$`, `$2y$` bcrypt (passlib, the `bcrypt` package, PHP) | with feature `legacy-bcrypt` (default) | yes |
/// | `pbkdf2_sha256$` (Django) | with feature `legacy-pbkdf2` (default) | yes |
///
/// Built without one of those features, a hash in that format is refused with
/// [`HashError::FeatureDisabled`] before any work (the account cannot log in, and the
/// service logs it as an unusable hash), never mistaken for an unknown format.
///
/// Stronger argon2id hashes (argon2-cffi's default of 64 MiB × 3, say) are kept: a rehash
/// with the configured parameters would weaken them.
///
/// Passwords are verified in their NFKC form. Legacy stacks hashed the password as
/// typed, so when the NFKC form does not match and differs from the raw form, the raw
/// form is tried too; a match that way also asks for a rehash, which stores a hash of the
/// normalized form. The retry applies to argon2id hashes with the current parameters as
/// well, because another stack may have made them (argon2-cffi with OWASP's settings); it
/// happens equally for the dummy hash, so it reveals nothing, and it at most doubles the
/// work of a wrong password that NFKC changes. bcrypt only ever looked at the first 72 bytes of a password; that
/// limit applies to verifying bcrypt hashes and disappears with the rehash.
///
/// ```
/// use auth_core::{Argon2Hasher, HashedPassword, Password, PasswordHasher, Verification};
///
/// let hasher = Argon2Hasher::default();
/// // Made by passlib's CryptContext(schemes=["bcrypt"]), as the FastAPI tutorials store.
/// let legacy = HashedPassword::new("$2b$12$CqKzV8LCaFsLHng2PeymoOGvYKbnWBm7mOxNg0TdJQuT9rX8p1tFa");
/// # #[cfg(feature = "legacy-bcrypt")] {
/// assert_eq!(
///     hasher.verify(&Password::new("testpass123"), &legacy),
///     Ok(Verification::Match { needs_rehash: true }),
/// );
/// assert_eq!(hasher.verify(&Password::new("wrong"), &legacy), Ok(Verification::Mismatch));
/// # }
/// ```
#[derive(Clone)]
pub struct Argon2Hasher {
    params: Argon2Params,
    limits: HashLimits,
    argon2: Argon2<'static>,
    dummy: HashedPassword,
    memory: WorkingMemory,
}

impl Argon2Hasher {
    /// A hasher producing argon2id hashes with `params`. Parameters below OWASP's
    /// minimum are logged as a warning.
    pub fn new(params: Argon2Params) -> Self {
        if params.is_below_owasp_minimum() {
            tracing::warn!(
                memory_kib = params.memory_kib,
                iterations = params.iterations,
                parallelism = params.parallelism,
                "argon2 parameters are below the OWASP minimum; use them for tests only"
            );
        }
        let argon2_params = params.to_argon2().unwrap_or_default();
        Self {
            params,
            limits: HashLimits::default(),
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params.clone()),
            dummy: dummy_hash(&argon2_params),
            memory: WorkingMemory::default(),
        }
    }

    /// Replaces the limits on what a stored hash may ask for.
    #[must_use]
    pub fn with_limits(mut self, limits: HashLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The parameters of new hashes.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// The limits on stored hashes.
    pub fn limits(&self) -> &HashLimits {
        &self.limits
    }

    /// Parses `hash` and checks it against the limits: everything that can be decided
    /// without computing anything.
    fn prepare<'h>(&self, hash: &'h HashedPassword) -> Result<Stored<'h>, HashError> {
        let s = hash.as_str();
        if s.starts_with("$argon2") {
            return self.prepare_argon2(s).map(Stored::Argon2);
        }
        if s.starts_with("$2") {
            #[cfg(feature = "legacy-bcrypt")]
            return Bcrypt::parse(s, self.limits.max_bcrypt_cost).map(Stored::Bcrypt);
            #[cfg(not(feature = "legacy-bcrypt"))]
            return Err(super::legacy::disabled("bcrypt", "legacy-bcrypt"));
        }
        if s.starts_with("pbkdf2_sha256$") {
            #[cfg(feature = "legacy-pbkdf2")]
            return DjangoPbkdf2::parse(s, self.limits.max_pbkdf2_iterations).map(Stored::DjangoPbkdf2);
            #[cfg(not(feature = "legacy-pbkdf2"))]
            return Err(super::legacy::disabled("pbkdf2_sha256", "legacy-pbkdf2"));
        }
        Err(HashError::UnknownFormat)
    }

    fn prepare_argon2<'h>(&self, s: &'h str) -> Result<StoredArgon2<'h>, HashError> {
        const SCHEME: &str = "argon2";
        let malformed = HashError::Malformed { scheme: SCHEME };
        let phc = PasswordHash::new(s).map_err(|_| malformed.clone())?;
        let algorithm = Algorithm::try_from(phc.algorithm.as_str()).map_err(|_| malformed.clone())?;
        let version = match phc.version {
            None => Version::V0x10,
            Some(v) => Version::try_from(v).map_err(|_| malformed.clone())?,
        };
        let params = Params::try_from(&phc).map_err(|_| malformed.clone())?;
        let (Some(salt), Some(_)) = (&phc.salt, &phc.hash) else {
            return Err(malformed);
        };

        let (limits, own) = (&self.limits, &self.params);
        let (memory, iterations) = (params.m_cost(), params.t_cost());
        let work = u64::from(memory) * u64::from(iterations);
        let own_work = u64::from(own.memory_kib) * u64::from(own.iterations);
        if memory > limits.max_argon2_memory_kib.max(own.memory_kib)
            || iterations > limits.max_argon2_iterations.max(own.iterations)
            || params.p_cost() > limits.max_argon2_parallelism.max(own.parallelism)
            || work > limits.max_argon2_work.max(own_work)
        {
            return Err(HashError::LimitExceeded { scheme: SCHEME });
        }

        let up_to_date = algorithm == Algorithm::Argon2id
            && version == Version::V0x13
            && memory >= own.memory_kib
            && iterations >= own.iterations
            && params.output_len().unwrap_or(0) >= Params::DEFAULT_OUTPUT_LEN
            && params.keyid().is_empty()
            && params.data().is_empty()
            && salt.len() >= argon2::RECOMMENDED_SALT_LEN;
        Ok(StoredArgon2 {
            phc,
            algorithm,
            version,
            params,
            up_to_date,
            raw: s,
        })
    }
}

/// A stored hash that passed every check that costs nothing.
#[expect(
    clippy::large_enum_variant,
    reason = "a short-lived stack value, one per verification"
)]
enum Stored<'h> {
    Argon2(StoredArgon2<'h>),
    #[cfg(feature = "legacy-bcrypt")]
    Bcrypt(Bcrypt<'h>),
    #[cfg(feature = "legacy-pbkdf2")]
    DjangoPbkdf2(DjangoPbkdf2<'h>),
}

struct StoredArgon2<'h> {
    phc: PasswordHash,
    algorithm: Algorithm,
    version: Version,
    params: Params,
    /// argon2id v19, at least as strong as the current parameters.
    up_to_date: bool,
    raw: &'h str,
}

impl StoredArgon2<'_> {
    /// What `argon2`'s own `verify_password` computes, in reused working memory; the
    /// outputs are compared in constant time.
    fn matches(&self, password: &[u8], memory: &WorkingMemory) -> Result<bool, argon2::Error> {
        let (Some(salt), Some(expected)) = (&self.phc.salt, &self.phc.hash) else {
            return Ok(false);
        };
        let argon2 = Argon2::new(self.algorithm, self.version, self.params.clone());
        let mut computed = [0u8; Output::MAX_LENGTH];
        let computed = computed.get_mut(..expected.len()).ok_or(argon2::Error::OutputTooLong)?;
        let work = u64::from(self.params.m_cost()) * u64::from(self.params.t_cost());
        slow_build::timed(work, || {
            memory.with(self.params.block_count(), |blocks| {
                argon2.hash_password_into_with_memory(password, salt.as_ref(), computed, blocks)
            })
        })?;
        Ok(bool::from(computed.ct_eq(expected.as_ref())))
    }
}

/// Argon2's working memory (`m` KiB a hash), kept between hashes instead of allocated for
/// each. Measured on glibc: allocated per hash, the freed 19 MiB blocks stayed in the
/// allocator's arenas, and a server's memory grew to 2.6 GiB during a 10-second login
/// flood with two hashes at a time; reused, it stays at the hashes in flight × `m`.
///
/// Holds one buffer per hash that ever ran at the same time as others (the
/// [`HashPool`](crate::HashPool) runs one hash per thread, and has at most its permits'
/// threads), each as large as the largest
/// hash it served (the [`HashLimits`] bound that). Clones share the buffers. A buffer
/// holds the last state of the memory-hard function, never the password; it is
/// overwritten by the next hash and zeroed when the last clone of the hasher is dropped.
#[derive(Clone, Default)]
struct WorkingMemory {
    free: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl WorkingMemory {
    /// Runs `job` on `blocks` blocks of memory, then keeps them for the next hash.
    fn with<R>(&self, blocks: usize, job: impl FnOnce(&mut [Block]) -> R) -> R {
        let taken = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut buffer = taken.unwrap_or_default();
        if buffer.len() < blocks {
            // Grown once to the largest size asked for, then reused.
            buffer.resize(blocks, Block::new());
        }
        let result = job(&mut buffer[..blocks]);
        self.free.lock().unwrap_or_else(PoisonError::into_inner).push(buffer);
        result
    }

    /// How many buffers are kept, and their total size in blocks (KiB).
    #[cfg(test)]
    fn kept(&self) -> (usize, usize) {
        let free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        (free.len(), free.iter().map(Vec::len).sum())
    }
}

impl Drop for WorkingMemory {
    fn drop(&mut self) {
        if let Some(free) = Arc::get_mut(&mut self.free) {
            for buffer in free.get_mut().unwrap_or_else(PoisonError::into_inner) {
                buffer.iter_mut().for_each(zeroize::Zeroize::zeroize);
            }
        }
    }
}

impl Stored<'_> {
    /// The expensive part.
    fn matches(&self, password: &[u8], memory: &WorkingMemory) -> Result<bool, HashError> {
        match self {
            Self::Argon2(stored) => stored.matches(password, memory).map_err(|e| {
                tracing::warn!(error = %e, hash_len = stored.raw.len(), "argon2 verification failed");
                HashError::Malformed { scheme: "argon2" }
            }),
            #[cfg(feature = "legacy-bcrypt")]
            Self::Bcrypt(stored) => stored.matches(password),
            #[cfg(feature = "legacy-pbkdf2")]
            Self::DjangoPbkdf2(stored) => Ok(stored.matches(password)),
        }
    }

    fn is_up_to_date(&self) -> bool {
        matches!(self, Self::Argon2(StoredArgon2 { up_to_date: true, .. }))
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash(&self, password: &Password) -> Result<HashedPassword, HashError> {
        let normalized = password.normalized();
        let mut salt = [0u8; argon2::RECOMMENDED_SALT_LEN];
        getrandom::fill(&mut salt).map_err(|e| HashError::Failed(e.to_string()))?;
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        let params = self.argon2.params();
        let work = u64::from(params.m_cost()) * u64::from(params.t_cost());
        slow_build::timed(work, || {
            self.memory.with(params.block_count(), |blocks| {
                self.argon2
                    .hash_password_into_with_memory(normalized.as_bytes(), &salt, &mut output, blocks)
            })
        })
        .map_err(|e| HashError::Failed(e.to_string()))?;
        argon2id_phc(params, &salt, &output).map_err(HashError::Failed)
    }

    fn verify(&self, password: &Password, hash: &HashedPassword) -> Result<Verification, HashError> {
        let stored = self.prepare(hash)?;
        let normalized = password.normalized();
        if stored.matches(normalized.as_bytes(), &self.memory)? {
            return Ok(Verification::Match {
                needs_rehash: !stored.is_up_to_date(),
            });
        }
        let raw = password.expose_secret();
        if raw != normalized.as_str() && stored.matches(raw.as_bytes(), &self.memory)? {
            return Ok(Verification::Match { needs_rehash: true });
        }
        Ok(Verification::Mismatch)
    }

    fn dummy_hash(&self) -> &HashedPassword {
        &self.dummy
    }
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self::new(Argon2Params::default())
    }
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("params", &self.params)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The argon2id v19 PHC string of `output`, computed with `params` and `salt`.
fn argon2id_phc(params: &Params, salt: &[u8], output: &[u8]) -> Result<HashedPassword, String> {
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| e.to_string())?,
        salt: Some(Salt::new(salt).map_err(|e| e.to_string())?),
        hash: Some(Output::new(output).map_err(|e| e.to_string())?),
    };
    Ok(HashedPassword::new(phc.to_string()))
}

/// A well-formed argon2id PHC string with the given parameters, a random salt and a random
/// output. Verifying it costs exactly what verifying a real hash costs, and no password
/// matches it; building it costs nothing, so it needs no blocking work at construction.
fn dummy_hash(params: &Params) -> HashedPassword {
    let mut salt = [0u8; argon2::RECOMMENDED_SALT_LEN];
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    rand::fill(&mut salt);
    rand::fill(&mut output);
    match argon2id_phc(params, &salt, &output) {
        Ok(phc) => phc,
        // Unreachable with valid `Params`; a string the hasher rejects keeps login failing
        // closed (every attempt answers "invalid credentials") rather than panicking.
        Err(e) => {
            tracing::error!(error = %e, "could not build the dummy argon2 hash");
            HashedPassword::new(String::new())
        }
    }
}

#[cfg(test)]
mod tests;
