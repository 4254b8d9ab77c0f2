//! Measurement tools for the workspace; figures, commands and their reading are in
//! `benches/BENCHMARKS.md`.
//!
//! - criterion benchmarks (`cargo bench -p benches`): `hashing` (argon2id grid, legacy
//!   formats, dummy hash), `tokens` (access tokens, refresh rotation), `service` (every
//!   flow per store, with production hashing and with [`MinimalCostHasher`]), `limiter`
//!   (one rate-limit decision, in memory and in Redis);
//! - `calibrate`: argon2id parameters meeting a time target on this machine, never below
//!   OWASP's floor;
//! - `hash_once`: the single-hash time (and the parallel hashing rate) that `load.sh`
//!   compares login throughput against;
//! - `store_throughput`: registrations and login lookups per second of each store alone
//!   (no hashing), at a given number of accounts;
//! - `scale`: p50 and p99 of login, authenticate and refresh on SQLite and PostgreSQL
//!   seeded with 1k, 100k and 1M accounts, and their plot;
//! - `report`: criterion's saved results as Markdown tables, and the plots copied to
//!   `benches/plots/`;
//! - `load.sh`: wrk against `example-axum` on loopback.
//!
//! Nothing here is for production use; [`MinimalCostHasher`] in particular is insecure
//! by design.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use auth_core::{
    Argon2Hasher, Argon2Params, HashError, HashedPassword, ParamsError, Password, PasswordHasher, Verification,
};

/// The password every benchmark uses: passes the default policy (long enough, not on the
/// common-password list, not the email).
pub const PASSWORD: &str = "correct horse battery staple";

/// OWASP's argon2id settings, all of equal strength (Password Storage Cheat Sheet):
/// `(iterations, memory KiB)`. Beyond 5 iterations the floor stays at 7 MiB.
pub const OWASP_FLOORS: [(u32, u32); 5] = [(1, 47_104), (2, 19_456), (3, 12_288), (4, 9_216), (5, 7_168)];

/// OWASP's minimum memory (KiB) for `iterations` passes (see [`OWASP_FLOORS`]).
pub fn owasp_floor_kib(iterations: u32) -> u32 {
    OWASP_FLOORS
        .iter()
        .find(|(t, _)| *t >= iterations)
        .map_or(7_168, |(_, m)| *m)
}

/// A deliberately cheap hasher that isolates the store in service benchmarks: argon2id
/// with the smallest parameters the algorithm accepts (8 KiB, 1 pass, 1 lane), through
/// the same [`Argon2Hasher`] code path as production (PHC strings, normalization,
/// limits), at a few microseconds per hash.
///
/// **Insecure by design: benchmarks only.** It exists in this unpublished crate and
/// nowhere else, so that no application can pick it up.
#[derive(Debug)]
pub struct MinimalCostHasher(Argon2Hasher);

impl MinimalCostHasher {
    /// Memory (KiB), iterations and lanes: argon2's minimum.
    pub const PARAMS: (u32, u32, u32) = (8, 1, 1);

    /// The hasher.
    ///
    /// # Errors
    ///
    /// [`ParamsError`] if the argon2 crate ever stops accepting its own minimum.
    pub fn new() -> Result<Self, ParamsError> {
        let (m, t, p) = Self::PARAMS;
        Ok(Self(Argon2Hasher::new(Argon2Params::new(m, t, p)?)))
    }
}

impl PasswordHasher for MinimalCostHasher {
    fn hash(&self, password: &Password) -> Result<HashedPassword, HashError> {
        self.0.hash(password)
    }

    fn verify(&self, password: &Password, hash: &HashedPassword) -> Result<Verification, HashError> {
        self.0.verify(password, hash)
    }

    fn dummy_hash(&self) -> &HashedPassword {
        self.0.dummy_hash()
    }
}

/// Median, minimum and maximum of a set of timings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// The median (the mean of the middle two for an even count).
    pub median: Duration,
    /// The fastest.
    pub min: Duration,
    /// The slowest.
    pub max: Duration,
}

impl Stats {
    /// The statistics of `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let (min, max) = (*sorted.first()?, *sorted.last()?);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2
        };
        Some(Self { median, min, max })
    }
}

/// A tool's exit: success, or its error and `usage` on standard error and status 1.
pub fn exit_code(result: Result<(), String>, usage: &str) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}\n{usage}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Milliseconds, for printing.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// Times `runs` argon2id hashes of [`PASSWORD`] with `params` (after one untimed warm-up
/// hash, which also faults the memory in).
///
/// # Errors
///
/// The hasher's error, if hashing fails.
pub fn time_hashes(params: Argon2Params, runs: usize) -> Result<Stats, HashError> {
    let hasher = Argon2Hasher::new(params);
    let password = Password::new(PASSWORD);
    hasher.hash(&password)?;
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        std::hint::black_box(hasher.hash(&password)?);
        samples.push(started.elapsed());
    }
    Stats::of(&samples).ok_or_else(|| HashError::Failed("no samples".to_owned()))
}

/// The PHC parameter string of `params`: `m=19456,t=2,p=1`.
pub fn phc_params(params: &Argon2Params) -> String {
    format!(
        "m={},t={},p={}",
        params.memory_kib(),
        params.iterations(),
        params.parallelism()
    )
}

/// The PostgreSQL server of the service benchmark: `AUTH_BENCH_DATABASE_URL`, or the
/// local one.
pub fn postgres_url() -> String {
    std::env::var("AUTH_BENCH_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_odd_and_even_counts() {
        let d = Duration::from_millis;
        assert_eq!(Stats::of(&[]), None);
        let odd = Stats::of(&[d(5), d(1), d(3)]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (d(3), d(1), d(5)));
        let even = Stats::of(&[d(4), d(1), d(2), d(3)]).unwrap();
        assert_eq!(even.median, Duration::from_micros(2500));
    }

    #[test]
    fn floors_follow_owasp() {
        assert_eq!(owasp_floor_kib(1), 47_104);
        assert_eq!(owasp_floor_kib(2), 19_456);
        assert_eq!(owasp_floor_kib(5), 7_168);
        assert_eq!(owasp_floor_kib(9), 7_168);
        for (t, m) in OWASP_FLOORS {
            let params = Argon2Params::new(m, t, 1).unwrap();
            assert!(!params.is_below_owasp_minimum());
            assert!(Argon2Params::new(m - 1024, t, 1).unwrap().is_below_owasp_minimum());
        }
    }

    #[test]
    fn the_minimal_hasher_round_trips() {
        let hasher = MinimalCostHasher::new().unwrap();
        let hash = hasher.hash(&Password::new(PASSWORD)).unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(hasher.verify(&Password::new(PASSWORD), &hash).unwrap().is_match());
    }
}

/// The workspace README's Rust examples, compiled and run as doctests so they cannot drift
/// (here, in a crate that is never packaged: the README is outside every library crate).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
