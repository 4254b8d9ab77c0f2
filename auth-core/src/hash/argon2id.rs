use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use super::legacy::{Bcrypt, DjangoPbkdf2};
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

/// The most work a stored hash may ask for before it is refused without being computed.
///
/// A stored hash carries its own cost parameters; one written by an attacker with
/// database access, or corrupted, could ask for terabytes of memory or years of CPU.
/// Hashes beyond these limits are rejected with [`HashError::LimitExceeded`] before any
/// work. The current [`Argon2Params`] are always allowed, whatever the limits say.
///
/// The defaults admit what real stacks store (argon2-cffi's and RFC 9106's 64 MiB × 3
/// iterations × 4 lanes, passlib's bcrypt cost 12, Django's PBKDF2 rounds) with headroom,
/// and bound the worst verification to a few hundred milliseconds and 64 MiB per hash in
/// flight.
///
/// | limit | default |
/// |---|---|
/// | argon2 memory | 65,536 KiB (64 MiB) |
/// | argon2 iterations | 10 |
/// | argon2 lanes | 8 |
/// | argon2 work: memory × iterations | 262,144 KiB-passes (64 MiB × 4, or 19 MiB × 13) |
/// | bcrypt cost | 14 (passlib's default is 12; each step doubles the work) |
/// | PBKDF2 iterations | 3,000,000 (Django 5.2 uses 1,000,000) |
///
/// ```
/// use auth_core::{Argon2Hasher, Argon2Params, HashLimits};
///
/// let hasher = Argon2Hasher::new(Argon2Params::default())
///     .with_limits(HashLimits::default().with_max_bcrypt_cost(12));
/// assert_eq!(hasher.limits().max_bcrypt_cost(), 12);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashLimits {
    max_argon2_memory_kib: u32,
    max_argon2_iterations: u32,
    max_argon2_parallelism: u32,
    max_argon2_work: u64,
    max_bcrypt_cost: u32,
    max_pbkdf2_iterations: u32,
}

impl Default for HashLimits {
    fn default() -> Self {
        Self {
            max_argon2_memory_kib: 64 * 1024,
            max_argon2_iterations: 10,
            max_argon2_parallelism: 8,
            max_argon2_work: 64 * 1024 * 4,
            max_bcrypt_cost: 14,
            max_pbkdf2_iterations: 3_000_000,
        }
    }
}

impl HashLimits {
    /// Most argon2 memory, in KiB.
    #[must_use]
    pub fn with_max_argon2_memory_kib(mut self, kib: u32) -> Self {
        self.max_argon2_memory_kib = kib;
        self
    }

    /// Most argon2 iterations.
    #[must_use]
    pub fn with_max_argon2_iterations(mut self, iterations: u32) -> Self {
        self.max_argon2_iterations = iterations;
        self
    }

    /// Most argon2 lanes.
    #[must_use]
    pub fn with_max_argon2_parallelism(mut self, lanes: u32) -> Self {
        self.max_argon2_parallelism = lanes;
        self
    }

    /// Most argon2 work: memory in KiB × iterations.
    #[must_use]
    pub fn with_max_argon2_work(mut self, kib_passes: u64) -> Self {
        self.max_argon2_work = kib_passes;
        self
    }

    /// Highest bcrypt cost (each step doubles the work; bcrypt itself allows 31).
    #[must_use]
    pub fn with_max_bcrypt_cost(mut self, cost: u32) -> Self {
        self.max_bcrypt_cost = cost;
        self
    }

    /// Most PBKDF2 iterations.
    #[must_use]
    pub fn with_max_pbkdf2_iterations(mut self, iterations: u32) -> Self {
        self.max_pbkdf2_iterations = iterations;
        self
    }

    /// Most argon2 memory, in KiB.
    pub fn max_argon2_memory_kib(&self) -> u32 {
        self.max_argon2_memory_kib
    }

    /// Most argon2 iterations.
    pub fn max_argon2_iterations(&self) -> u32 {
        self.max_argon2_iterations
    }

    /// Most argon2 lanes.
    pub fn max_argon2_parallelism(&self) -> u32 {
        self.max_argon2_parallelism
    }

    /// Most argon2 work: memory in KiB × iterations.
    pub fn max_argon2_work(&self) -> u64 {
        self.max_argon2_work
    }

    /// Highest bcrypt cost.
    pub fn max_bcrypt_cost(&self) -> u32 {
        self.max_bcrypt_cost
    }

    /// Most PBKDF2 iterations.
    pub fn max_pbkdf2_iterations(&self) -> u32 {
        self.max_pbkdf2_iterations
    }
}

/// The [`PasswordHasher`] to use: argon2id (RustCrypto `argon2`) for new hashes, PHC
/// strings at rest, and verification of the formats teams migrate from.
///
/// | stored hash | verified | needs rehash |
/// |---|---|---|
/// | `$argon2id$` v19 with memory and iterations at least the current ones | yes | no |
/// | `$argon2id$` below the current memory or iterations, `$argon2i$`, `$argon2d$`, v16 | yes | yes |
/// | `$2a$`, `$2b$`, `$2y$` bcrypt (passlib, the `bcrypt` package, PHP) | yes | yes |
/// | `pbkdf2_sha256$` (Django) | yes | yes |
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
/// assert_eq!(
///     hasher.verify(&Password::new("testpass123"), &legacy),
///     Ok(Verification::Match { needs_rehash: true }),
/// );
/// assert_eq!(hasher.verify(&Password::new("wrong"), &legacy), Ok(Verification::Mismatch));
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
            return Bcrypt::parse(s, self.limits.max_bcrypt_cost).map(Stored::Bcrypt);
        }
        if s.starts_with("pbkdf2_sha256$") {
            return DjangoPbkdf2::parse(s, self.limits.max_pbkdf2_iterations).map(Stored::DjangoPbkdf2);
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
    Bcrypt(Bcrypt<'h>),
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
        memory.with(self.params.block_count(), |blocks| {
            argon2.hash_password_into_with_memory(password, salt.as_ref(), computed, blocks)
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
/// [`HashPool`](crate::HashPool)'s permits bound that), each as large as the largest
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
            Self::Bcrypt(stored) => stored.matches(password),
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
        self.memory
            .with(params.block_count(), |blocks| {
                self.argon2
                    .hash_password_into_with_memory(normalized.as_bytes(), &salt, &mut output, blocks)
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
mod tests {
    use super::*;

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::new(Argon2Params::new(64, 1, 1).unwrap())
    }

    fn verify(hasher: &Argon2Hasher, password: &str, hash: &str) -> Result<Verification, HashError> {
        hasher.verify(&Password::new(password), &HashedPassword::new(hash))
    }

    #[test]
    fn default_is_argon2id_with_owasp_parameters() {
        let hasher = Argon2Hasher::default();
        let hash = hasher.hash(&Password::new("plaid-otter-sunrise")).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash:?}");
        let phc = PasswordHash::new(hash.as_str()).unwrap();
        assert_eq!(phc.salt.unwrap().len(), 16);
        assert_eq!(phc.hash.unwrap().len(), 32);
    }

    #[test]
    fn hashes_agree_with_the_argon2_crates_own_phc_functions() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let ours = cheap();
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        );
        let password = "plaid-otter-sunrise";
        let made_by_us = ours.hash(&Password::new(password)).unwrap();
        assert!(theirs.verify_password(password.as_bytes(), made_by_us.as_str()).is_ok());
        assert!(theirs.verify_password(b"other", made_by_us.as_str()).is_err());
        let made_by_them = theirs.hash_password(password.as_bytes()).unwrap().to_string();
        assert_eq!(
            verify(&ours, password, &made_by_them),
            Ok(Verification::Match { needs_rehash: false })
        );
        assert_eq!(verify(&ours, "other", &made_by_them), Ok(Verification::Mismatch));
        // And a hash of another variant, version and output length, as a stored one may be.
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(64, 1, 1, Some(40)).unwrap(),
        );
        let legacy = argon2i.hash_password(password.as_bytes()).unwrap().to_string();
        assert_eq!(
            verify(&ours, password, &legacy),
            Ok(Verification::Match { needs_rehash: true })
        );
        assert_eq!(verify(&ours, "other", &legacy), Ok(Verification::Mismatch));
    }

    #[test]
    fn working_memory_is_reused_not_allocated_per_hash() {
        let hasher = cheap();
        let password = Password::new("plaid-otter-sunrise");
        assert_eq!(hasher.memory.kept(), (0, 0));
        let hash = hasher.hash(&password).unwrap();
        for _ in 0..5 {
            assert!(hasher.verify(&password, &hash).unwrap().is_match());
            hasher.hash(&password).unwrap();
        }
        assert_eq!(hasher.memory.kept(), (1, 64), "one buffer of m KiB, reused");

        // A stored hash that asks for more memory grows the buffer once.
        let bigger = Argon2Hasher::new(Argon2Params::new(256, 1, 1).unwrap())
            .hash(&password)
            .unwrap();
        assert!(hasher.verify(&password, &bigger).unwrap().is_match());
        assert!(hasher.verify(&password, &hash).unwrap().is_match());
        assert_eq!(hasher.memory.kept(), (1, 256));

        // Concurrent hashes each need their own, and keep no more than ran at once.
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let (hasher, hash) = (hasher.clone(), hash.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let verified = hasher.verify(&Password::new("plaid-otter-sunrise"), &hash);
                        assert!(verified.unwrap().is_match());
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|thread| thread.join().unwrap());
        let (buffers, _) = hasher.memory.kept();
        assert!((1..=3).contains(&buffers), "{buffers} buffers for 3 threads");
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let hasher = cheap();
        let hash = hasher.hash(&Password::new("plaid-otter-sunrise")).unwrap();
        assert_eq!(
            hasher.verify(&Password::new("plaid-otter-sunrise"), &hash),
            Ok(Verification::Match { needs_rehash: false })
        );
        assert_eq!(
            hasher.verify(&Password::new("plaid-otter-sunrisE"), &hash),
            Ok(Verification::Mismatch)
        );
        // Never trimmed.
        assert_eq!(
            hasher.verify(&Password::new("plaid-otter-sunrise "), &hash),
            Ok(Verification::Mismatch)
        );
    }

    #[test]
    fn salts_differ_between_hashes() {
        let hasher = cheap();
        let a = hasher.hash(&Password::new("same password")).unwrap();
        let b = hasher.hash(&Password::new("same password")).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn hashes_the_nfkc_form() {
        let hasher = cheap();
        // Typed with the "fi" ligature, verified as plain letters, and the other way round.
        let hash = hasher.hash(&Password::new("\u{FB01}sh-and-chips")).unwrap();
        assert_eq!(
            hasher.verify(&Password::new("fish-and-chips"), &hash),
            Ok(Verification::Match { needs_rehash: false })
        );
        let decomposed = hasher.hash(&Password::new("cafe\u{0301}-au-lait")).unwrap();
        assert!(
            hasher
                .verify(&Password::new("café-au-lait"), &decomposed)
                .unwrap()
                .is_match()
        );
    }

    #[test]
    fn weaker_parameters_ask_for_rehash_and_stronger_ones_do_not() {
        let current = Argon2Hasher::new(Argon2Params::new(64, 2, 1).unwrap());
        let password = Password::new("plaid-otter-sunrise");
        for (memory, iterations, lanes, needs_rehash) in [
            (32, 2, 1, true),   // less memory
            (64, 1, 1, true),   // fewer iterations
            (128, 1, 1, true),  // more memory does not make up for fewer iterations
            (64, 2, 2, false),  // other lanes, same cost
            (128, 3, 1, false), // stronger: keep it rather than weaken it
        ] {
            let other = Argon2Hasher::new(Argon2Params::new(memory, iterations, lanes).unwrap());
            let hash = other.hash(&password).unwrap();
            assert_eq!(
                current.verify(&password, &hash),
                Ok(Verification::Match { needs_rehash }),
                "m={memory} t={iterations} p={lanes}"
            );
            assert_eq!(
                current.verify(&Password::new("nope"), &hash),
                Ok(Verification::Mismatch)
            );
        }
    }

    #[test]
    fn the_dummy_hash_has_current_parameters_and_matches_nothing() {
        let hasher = Argon2Hasher::default();
        let dummy = hasher.dummy_hash();
        assert!(
            dummy.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{dummy:?}"
        );
        let stored = hasher.prepare(dummy).unwrap();
        assert!(
            stored.is_up_to_date(),
            "verifying the dummy must cost what a real hash costs"
        );
        assert_eq!(dummy.as_str().split('$').nth(3), Some("m=19456,t=2,p=1"));
        let cheap = cheap();
        assert_eq!(
            cheap.verify(&Password::new(""), cheap.dummy_hash()),
            Ok(Verification::Mismatch)
        );
        assert_ne!(Argon2Hasher::default().dummy_hash(), hasher.dummy_hash());
    }

    #[test]
    fn hostile_argon2_hashes_are_refused_without_computing() {
        let hasher = cheap();
        // Each of these would take many gigabytes or hours if computed; the test would
        // run out of memory or time rather than pass.
        for hostile in [
            "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=19$m=19456,t=4294967295,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=19$m=2097152,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=19$m=65536,t=1,p=255$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            // Each limit alone is met; together they are 64 MiB × 10 passes.
            "$argon2id$v=19$m=65536,t=10,p=8$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        ] {
            assert!(
                matches!(verify(&hasher, "pw", hostile), Err(HashError::LimitExceeded { .. })),
                "{hostile}"
            );
        }
    }

    #[test]
    fn malformed_argon2_hashes_are_errors_not_panics() {
        let hasher = cheap();
        let valid = hasher.hash(&Password::new("pw")).unwrap();
        let valid = valid.as_str();
        let mut cases: Vec<String> = (0..valid.len()).map(|n| valid[..n].to_owned()).collect();
        cases.extend([
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ".to_owned(), // no output
            "$argon2id$v=19$m=64,t=1,p=1".to_owned(),             // no salt
            "$argon2x$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(), // unknown variant
            "$argon2id$v=99$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(), // unknown version
            "$argon2id$v=19$m=-1,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(), // negative
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaA\u{00e9}".to_owned(), // non-ASCII
            "$argon2id$v=19$m=64,t=1,p=1$c2Fsd\u{1F980}HNhbHQ$aGFzaA".to_owned(),
            format!("{valid}{}", "A".repeat(10_000)), // oversized
        ]);
        for case in cases {
            let result = verify(&hasher, "pw", &case);
            assert!(
                result.is_err() || result == Ok(Verification::Mismatch),
                "{case:?} -> {result:?}"
            );
        }
    }

    #[test]
    fn unknown_formats_are_refused() {
        let hasher = cheap();
        for unknown in [
            "",
            "plaintext-password",
            "5f4dcc3b5aa765d61d8327deb882cf99",
            "$1$salt$hash",
            "$6$salt$hash",
            "{SSHA}abc",
        ] {
            assert_eq!(
                verify(&hasher, "pw", unknown),
                Err(HashError::UnknownFormat),
                "{unknown:?}"
            );
        }
    }

    #[test]
    fn current_parameters_are_always_within_limits() {
        let params = Argon2Params::new(64, 20, 1).unwrap();
        let hasher = Argon2Hasher::new(params).with_limits(HashLimits::default().with_max_argon2_iterations(2));
        let hash = hasher.hash(&Password::new("pw")).unwrap();
        assert!(hasher.verify(&Password::new("pw"), &hash).unwrap().is_match());
    }
}
