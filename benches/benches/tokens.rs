//! Token cost: issuing and verifying access tokens (HS256, and the asymmetric EdDSA and
//! ES256 keys), and refresh-token rotation through `AuthService::refresh` on `MemoryStore`.
//!
//! ```sh
//! cargo bench -p benches --bench tokens
//! ```

// Benches fail loudly by design: a setup error must stop the run, not be measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use auth_core::{
    AuthService, ClientInfo, Email, HashPool, MemoryStore, Password, RateLimits, SessionId, SigningKey, Tokens, User,
};
use benches::{MinimalCostHasher, PASSWORD};
use criterion::{Criterion, PlottingBackend, criterion_group, criterion_main};
use time::OffsetDateTime;

// The test-only key pairs of auth-core's token tests (see that folder's README).
const ED25519_PRIVATE: &[u8] = include_bytes!("../../auth-core/tests/fixtures/ed25519-private.pem");
const ED25519_PUBLIC: &[u8] = include_bytes!("../../auth-core/tests/fixtures/ed25519-public.pem");
const P256_PRIVATE: &[u8] = include_bytes!("../../auth-core/tests/fixtures/p256-private.pem");
const P256_PUBLIC: &[u8] = include_bytes!("../../auth-core/tests/fixtures/p256-public.pem");

fn keys() -> [(&'static str, SigningKey); 3] {
    [
        (
            "HS256",
            SigningKey::hs256(b"a benchmark secret of at least 32 bytes!!").unwrap(),
        ),
        (
            "EdDSA",
            SigningKey::eddsa_pem("bench-ed", ED25519_PRIVATE, ED25519_PUBLIC).unwrap(),
        ),
        (
            "ES256",
            SigningKey::es256_pem("bench-es", P256_PRIVATE, P256_PUBLIC).unwrap(),
        ),
    ]
}

fn access_tokens(c: &mut Criterion) {
    let now = OffsetDateTime::now_utc();
    let user = User::new(Email::parse("bench@example.com").unwrap(), None, now);
    let session = SessionId::new_at(now);
    let mut group = c.benchmark_group("access-token");
    for (algorithm, key) in keys() {
        let tokens = Tokens::new(key, "https://auth.example.com", "bench-api");
        let token = tokens.issue(&user, Some(session)).unwrap();
        assert_eq!(tokens.verify(token.expose_secret()).unwrap().user_id(), user.id);
        group.bench_function(format!("issue-{algorithm}"), |b| {
            b.iter(|| tokens.issue(black_box(&user), Some(session)).unwrap())
        });
        group.bench_function(format!("verify-{algorithm}"), |b| {
            b.iter(|| tokens.verify(black_box(token.expose_secret())).unwrap())
        });
    }
    group.finish();
}

fn refresh_rotation(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let tokens = Tokens::new(
        SigningKey::hs256(b"a benchmark secret of at least 32 bytes!!").unwrap(),
        "https://auth.example.com",
        "bench-api",
    );
    // Rotation never hashes a password; the cheap hasher only speeds up the setup login.
    let auth = AuthService::new(MemoryStore::new(), tokens)
        .with_hasher(MinimalCostHasher::new().unwrap())
        .with_hash_pool(HashPool::default())
        .with_rate_limits(RateLimits::disabled());
    let client = ClientInfo::new(Some("criterion"), Some([127, 0, 0, 1].into()));
    let mut refresh_token = runtime.block_on(async {
        auth.register("rotate@example.com", Password::new(PASSWORD), &client)
            .await
            .unwrap();
        let login = auth
            .login("rotate@example.com", Password::new(PASSWORD), &client)
            .await
            .unwrap()
            .signed_in()
            .unwrap();
        login.tokens.refresh_token.expose_secret().to_owned()
    });

    let mut group = c.benchmark_group("refresh-rotation");
    group.bench_function("MemoryStore", |b| {
        // Each rotation consumes the token the previous one returned.
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    let pair = auth.refresh(&refresh_token, &client).await.unwrap();
                    refresh_token = pair.refresh_token.expose_secret().to_owned();
                }
                started.elapsed()
            })
        });
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .plotting_backend(PlottingBackend::Plotters)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = tokens;
    config = config();
    targets = access_tokens, refresh_rotation
}
criterion_main!(tokens);
