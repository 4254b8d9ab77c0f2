//! Limits on the work a stored hash may ask for before it is verified.

// Named only by the documentation's links.
#[cfg(doc)]
use super::HashError;
#[cfg(doc)]
use super::argon2id::Argon2Params;

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
    pub(super) max_argon2_memory_kib: u32,
    pub(super) max_argon2_iterations: u32,
    pub(super) max_argon2_parallelism: u32,
    pub(super) max_argon2_work: u64,
    pub(super) max_bcrypt_cost: u32,
    pub(super) max_pbkdf2_iterations: u32,
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
