//! Password hashing cost: the argon2id grid (memory × passes), hashing and verification at
//! the default parameters, the dummy-hash path, and verification of each legacy format.
//!
//! ```sh
//! cargo bench -p benches --bench hashing
//! ```
//!
//! One hash takes milliseconds to a third of a second, so these groups use flat sampling
//! (the same iteration count in every sample) with 10 samples over 3 s: enough for a
//! median with min and max, and the whole file runs in about three minutes on 2 cores.

// Benches fail loudly by design: a setup error must stop the run, not be measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use auth_core::{Argon2Hasher, Argon2Params, HashedPassword, Password, PasswordHasher, Verification};
use benches::{MinimalCostHasher, PASSWORD};
use criterion::{BenchmarkId, Criterion, PlottingBackend, SamplingMode, criterion_group, criterion_main};

/// Memory settings of the grid, in KiB: 8 MiB, OWASP's 19 MiB (t = 2) and 46 MiB (t = 1,
/// the "47" of 47104 KiB), and 64 MiB (the default `HashLimits` maximum).
const GRID_MEMORY_KIB: [u32; 4] = [8_192, 19_456, 47_104, 65_536];
const GRID_PASSES: [u32; 4] = [1, 2, 3, 4];

/// Hashes as the stacks teams migrate from wrote them (from
/// `auth-core/tests/fixtures/legacy_hashes.json`; password `testpass123`).
const LEGACY: [(&str, &str); 7] = [
    (
        "bcrypt-2b-cost12",
        "$2b$12$CqKzV8LCaFsLHng2PeymoOGvYKbnWBm7mOxNg0TdJQuT9rX8p1tFa",
    ),
    (
        "bcrypt-2y-cost10",
        "$2y$10$KmU8qvYBy5BSL.P95mnhn.ggaeNl3NAV23HrO9Up0jC47Gb7iY7xa",
    ),
    (
        "bcrypt-2a-cost10",
        "$2a$10$qvLI/JfB1b.sghDhc6vfceKZTQInV8BwlxWWnWphAJVXGjUdAOXn2",
    ),
    (
        "django-pbkdf2-sha256-1000000",
        "pbkdf2_sha256$1000000$MJRsmIPmIo1RKZZdz8UkrG$SU1XZ4y8D6HguOhn4D4nGiCdH/mDlAu/FJ3fo4rtJJI=",
    ),
    (
        "argon2id-m65536-t3-p4",
        "$argon2id$v=19$m=65536,t=3,p=4$1lyL7DH3chxG8QJtu2JAFw$uKXYbXHkj/KRCix90CgS2YsPm/LvC5HNd+gCDfswZ5U",
    ),
    (
        "argon2i-m65536-t3-p4",
        "$argon2i$v=19$m=65536,t=3,p=4$X+rmu+9CgjV7/EW1o13xSw$S/RXxOaeiEMnGaTeOdZTiQusC4FwpNRALhEL6gmt/yw",
    ),
    (
        "argon2d-m8192-t1-p4",
        "$argon2d$v=19$m=8192,t=1,p=4$qmqiURpqQ6hcd0Q2+g/Cvw$uM1xm51xm/CADXgjQs0bCIk3CV/tk3Orb0N56StJYPg",
    ),
];
const LEGACY_PASSWORD: &str = "testpass123";

fn grid(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2id-grid");
    group.sampling_mode(SamplingMode::Flat);
    let password = Password::new(PASSWORD);
    for memory_kib in GRID_MEMORY_KIB {
        for passes in GRID_PASSES {
            let hasher = Argon2Hasher::new(Argon2Params::new(memory_kib, passes, 1).unwrap());
            // Function = memory, parameter = passes: the summary plot draws time against
            // passes, one line per memory setting.
            let id = BenchmarkId::new(format!("m={memory_kib}"), passes);
            group.bench_with_input(id, &hasher, |b, hasher| {
                b.iter(|| hasher.hash(black_box(&password)).unwrap());
            });
        }
    }
    group.finish();
}

fn default_parameters(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2id-default");
    group.sampling_mode(SamplingMode::Flat);
    let hasher = Argon2Hasher::default();
    let password = Password::new(PASSWORD);
    let wrong = Password::new("correct horse battery stapler");
    let stored = hasher.hash(&password).unwrap();
    assert_eq!(
        hasher.verify(&password, &stored).unwrap(),
        Verification::Match { needs_rehash: false }
    );

    group.bench_function("hash", |b| b.iter(|| hasher.hash(black_box(&password)).unwrap()));
    group.bench_function("verify-match", |b| {
        b.iter(|| hasher.verify(black_box(&password), &stored).unwrap())
    });
    group.bench_function("verify-mismatch", |b| {
        b.iter(|| hasher.verify(black_box(&wrong), &stored).unwrap())
    });
    // What a login for an unknown email (or an account without a password) verifies:
    // it must cost what verify-match costs.
    group.bench_function("verify-dummy", |b| {
        b.iter(|| hasher.verify(black_box(&password), hasher.dummy_hash()).unwrap())
    });
    group.finish();

    // The store-isolating hasher of the service benchmark, to show what it leaves in.
    let mut group = c.benchmark_group("minimal-cost-hasher");
    // Microseconds: more samples than the slow groups, in the same time.
    group.sample_size(50);
    let minimal = MinimalCostHasher::new().unwrap();
    let stored = minimal.hash(&password).unwrap();
    group.bench_function("hash", |b| b.iter(|| minimal.hash(black_box(&password)).unwrap()));
    group.bench_function("verify-match", |b| {
        b.iter(|| minimal.verify(black_box(&password), &stored).unwrap())
    });
    group.finish();
}

fn legacy(c: &mut Criterion) {
    let mut group = c.benchmark_group("legacy-verify");
    group.sampling_mode(SamplingMode::Flat);
    // Default parameters and limits: what a server migrating these accounts runs.
    let hasher = Argon2Hasher::default();
    let password = Password::new(LEGACY_PASSWORD);
    for (name, hash) in LEGACY {
        let stored = HashedPassword::new(hash);
        // A match; a rehash unless the stored hash is argon2id at least as strong.
        assert!(hasher.verify(&password, &stored).unwrap().is_match(), "{name}");
        group.bench_function(name, |b| {
            b.iter(|| hasher.verify(black_box(&password), &stored).unwrap())
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .plotting_backend(PlottingBackend::Plotters)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = hashing;
    config = config();
    targets = grid, default_parameters, legacy
}
criterion_main!(hashing);
