//! Second-factor cost: a TOTP verification alone (opening the sealed secret with
//! AES-256-GCM and checking a code against three time steps, what every code check does),
//! the challenge step of a login (`complete_login` with a TOTP code, and with a recovery
//! code) and the password step that issues the challenge, on `MemoryStore` and
//! `SqliteStore` (a file).
//!
//! ```sh
//! cargo bench -p benches --bench second_factor
//! ```
//!
//! The service runs on a `ManualClock` moved one 30-second step on before each code, so
//! every iteration presents a fresh, valid code (a code works once); only the timed call
//! is measured. The password step uses [`MinimalCostHasher`] so that it shows what a
//! challenge adds to a login, not argon2 (`service`'s `login-default` has that). Rate
//! limits are off.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::{
    AuthService, AuthStore, Caller, ClientInfo, Clock, EncryptionKey, LoginOutcome, ManualClock, MemoryStore, Password,
    RateLimits, SecondFactorCode, SecondFactorStore, SecretCipher, SigningKey, Tokens, TotpSettings,
};
use auth_store_sqlite::SqliteStore;
use benches::{MinimalCostHasher, PASSWORD};
use criterion::{Criterion, PlottingBackend, criterion_group, criterion_main};
use time::macros::datetime;
use tokio::runtime::Runtime;

trait Store: AuthStore + SecondFactorStore {}
impl<T: AuthStore + SecondFactorStore + ?Sized> Store for T {}

type Service = AuthService<Arc<dyn Store>>;

const STEP: Duration = Duration::from_secs(30);

fn cipher() -> SecretCipher {
    SecretCipher::new(EncryptionKey::new(&[7; 32]).unwrap())
}

/// The code an app shows for `secret` (base32) at `at`.
fn code_at(secret: &str, at: time::OffsetDateTime) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
    totp.generate(u64::try_from(at.unix_timestamp()).unwrap()).to_string()
}

struct Fixture {
    name: &'static str,
    service: Service,
    clock: ManualClock,
    client: ClientInfo,
    email: String,
    secret: String,
    /// Unused recovery codes, across samples.
    recovery_codes: std::sync::Mutex<Vec<String>>,
}

impl Fixture {
    async fn new(name: &'static str, store: Arc<dyn Store>) -> Self {
        let clock = ManualClock::new(datetime!(2026-06-01 09:00 UTC));
        let tokens = Tokens::new(
            SigningKey::hs256(b"a benchmark secret of at least 32 bytes!!").unwrap(),
            "https://auth.example.com",
            "bench-api",
        );
        let service = AuthService::new(store, tokens)
            .with_clock(Arc::new(clock.clone()))
            .with_rate_limits(RateLimits::disabled())
            .with_hasher(MinimalCostHasher::new().unwrap())
            .with_totp(TotpSettings::new("Bench", cipher()));
        let client = ClientInfo::new(Some("criterion"), Some([127, 0, 0, 1].into()));
        let email = format!("totp-{name}@example.com");
        service
            .register(&email, Password::new(PASSWORD), &client)
            .await
            .unwrap();
        let login = service
            .login(&email, Password::new(PASSWORD), &client)
            .await
            .unwrap()
            .signed_in()
            .unwrap();
        let me = service
            .authenticate(login.tokens.access_token.expose_secret())
            .await
            .unwrap();
        let caller = Caller::from(&me);
        let enrolment = service
            .begin_totp_enrolment(&caller, Password::new(PASSWORD), &client)
            .await
            .unwrap();
        let secret = enrolment.expose_secret().to_owned();
        let confirmed = service
            .confirm_totp(&caller, &code_at(&secret, clock.now()), &client)
            .await
            .unwrap();
        Self {
            name,
            service,
            clock,
            client,
            email,
            secret,
            recovery_codes: std::sync::Mutex::new(
                confirmed.recovery_codes.expose_secrets().map(str::to_owned).collect(),
            ),
        }
    }

    /// The password step: a challenge's token.
    async fn challenge(&self) -> String {
        match self
            .service
            .login(&self.email, Password::new(PASSWORD), &self.client)
            .await
            .unwrap()
        {
            LoginOutcome::SecondFactorRequired(challenge) => challenge.token.expose_secret().to_owned(),
            other => panic!("expected a challenge, got {other:?}"),
        }
    }
}

fn totp_check(c: &mut Criterion) {
    let cipher = cipher();
    let context = b"auth-core totp 0192f0c4-8a7e-7cc3-9f3b-1d2e3f4a5b6c";
    let sealed = cipher.seal(&[42; 20], context).unwrap();
    let totp = totp_rs::Builder::new().with_secret(vec![42; 20]).build().unwrap();
    let now = 1_780_000_000;
    // The worst case: the code of the step after, found last of the three.
    let code = totp.generate(now + 30).to_string();
    let near: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|t| totp.generate(*t).to_string())
        .collect();
    let wrong = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap();
    let mut group = c.benchmark_group("totp-verification");
    group.bench_function("open-and-check", |b| {
        b.iter(|| {
            let secret = cipher.open(std::hint::black_box(&sealed), context).unwrap();
            let totp = totp_rs::Builder::new().with_secret(secret.to_vec()).build().unwrap();
            assert!(totp.check(std::hint::black_box(&code), now).is_some());
        });
    });
    group.bench_function("wrong-code", |b| {
        b.iter(|| {
            let secret = cipher.open(std::hint::black_box(&sealed), context).unwrap();
            let totp = totp_rs::Builder::new().with_secret(secret.to_vec()).build().unwrap();
            assert!(totp.check(std::hint::black_box(&wrong), now).is_none());
        });
    });
    group.finish();
}

fn challenge_step(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fixtures = runtime.block_on(async {
        vec![
            Fixture::new("memory", Arc::new(MemoryStore::new())).await,
            Fixture::new(
                "sqlite",
                Arc::new(SqliteStore::open(dir.path().join("auth.db")).await.unwrap()),
            )
            .await,
        ]
    });

    let mut group = c.benchmark_group("login-password-step-with-totp");
    for fixture in &fixtures {
        group.bench_function(fixture.name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        fixture.challenge().await;
                    }
                    started.elapsed()
                })
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("complete-login-totp");
    for fixture in &fixtures {
        group.bench_function(fixture.name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        fixture.clock.advance(STEP);
                        let challenge = fixture.challenge().await;
                        let code = SecondFactorCode::totp(code_at(&fixture.secret, fixture.clock.now()));
                        let started = Instant::now();
                        fixture
                            .service
                            .complete_login(&challenge, code, &fixture.client)
                            .await
                            .unwrap();
                        timed += started.elapsed();
                    }
                    timed
                })
            });
        });
    }
    group.finish();

    // Recovery codes are few: each iteration makes new ones (untimed) when spent.
    let mut group = c.benchmark_group("complete-login-recovery-code");
    for fixture in &fixtures {
        group.bench_function(fixture.name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let next = fixture.recovery_codes.lock().unwrap().pop();
                        let code = match next {
                            Some(code) => code,
                            None => {
                                let mut fresh = fresh_codes(fixture).await;
                                let code = fresh.pop().unwrap();
                                *fixture.recovery_codes.lock().unwrap() = fresh;
                                code
                            }
                        };
                        let code = SecondFactorCode::recovery_code(code);
                        let challenge = fixture.challenge().await;
                        let started = Instant::now();
                        fixture
                            .service
                            .complete_login(&challenge, code, &fixture.client)
                            .await
                            .unwrap();
                        timed += started.elapsed();
                    }
                    timed
                })
            });
        });
    }
    group.finish();
}

/// New recovery codes for the fixture's account (a fresh session: the step-up rule).
async fn fresh_codes(fixture: &Fixture) -> Vec<String> {
    fixture.clock.advance(STEP);
    let challenge = fixture.challenge().await;
    let code = SecondFactorCode::totp(code_at(&fixture.secret, fixture.clock.now()));
    let login = fixture
        .service
        .complete_login(&challenge, code, &fixture.client)
        .await
        .unwrap();
    let me = fixture
        .service
        .authenticate(login.tokens.access_token.expose_secret())
        .await
        .unwrap();
    fixture
        .service
        .regenerate_recovery_codes(&Caller::from(&me), Password::new(PASSWORD), &fixture.client)
        .await
        .unwrap()
        .recovery_codes
        .expose_secrets()
        .map(str::to_owned)
        .collect()
}

fn config() -> Criterion {
    Criterion::default()
        .plotting_backend(PlottingBackend::Plotters)
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = totp_check, challenge_step
}
criterion_main!(benches);
