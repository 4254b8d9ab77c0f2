//! Service cost per store: `AuthService` register, login, authenticate and refresh on
//! `MemoryStore`, `SqliteStore` (a file, as servers use it) and `PostgresStore` (a fresh
//! schema `bench_<uuid>`, dropped afterwards); SQLite and PostgreSQL also with the audit
//! log on (`sqlite+audit`, `postgres+audit`: `with_audit_log`, each change's record in its
//! transaction, as the example servers run), for the log's cost beside the same store
//! without it.
//!
//! ```sh
//! cargo bench -p benches --bench service
//! AUTH_BENCH_DATABASE_URL=postgres://user@host/db cargo bench -p benches --bench service
//! ```
//!
//! Register and login run twice: with the production hasher (argon2id at OWASP's
//! parameters, what a deployment pays) and with [`MinimalCostHasher`] (argon2id at its
//! 8 KiB minimum), which leaves the store, the policy checks, the hash pool hand-off and
//! token issuing. Authenticate and refresh never hash, so they run once. Rate limits are
//! off (`RateLimits::disabled()`): the limiter would refuse a benchmark's repetition.
//! Calls are sequential (latency of one call); concurrency is `load.sh`'s business.
//! Without a reachable PostgreSQL server the postgres cases are skipped with a notice.

// Benches fail loudly by design: a setup error must stop the run, not be measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use auth_core::{
    AuditLog, AuditLogStore, AuthService, AuthStore, ClientInfo, MemoryStore, Password, RateLimits, SigningKey, Tokens,
};
use auth_store_postgres::PostgresStore;
use auth_store_sqlite::SqliteStore;
use benches::{MinimalCostHasher, PASSWORD, postgres_url};
use criterion::{Criterion, PlottingBackend, SamplingMode, criterion_group, criterion_main};
use tokio::runtime::Runtime;

type Service = AuthService<Arc<dyn AuthStore>>;

#[derive(Clone, Copy)]
enum Hashing {
    /// `Argon2Hasher::default()`: m = 19456 KiB, t = 2.
    Production,
    /// [`MinimalCostHasher`].
    Minimal,
}

#[derive(Clone, Copy)]
enum Op {
    Register(Hashing),
    Login(Hashing),
    Authenticate,
    Refresh,
}

/// One store with a service per hashing variant, an account each to log in to, and the
/// tokens of a live session.
struct Fixture {
    name: &'static str,
    production: Service,
    minimal: Service,
    client: ClientInfo,
    registered: AtomicU64,
    access_token: String,
    refresh_token: Mutex<String>,
}

/// A service over `store`, keeping every event in `audit` when given (its writer spawned
/// on the current runtime).
fn new_service(store: Arc<dyn AuthStore>, audit: Option<Arc<dyn AuditLogStore>>, hashing: Hashing) -> Service {
    let tokens = Tokens::new(
        SigningKey::hs256(b"a benchmark secret of at least 32 bytes!!").unwrap(),
        "https://auth.example.com",
        "bench-api",
    );
    let mut service = AuthService::new(store, tokens).with_rate_limits(RateLimits::disabled());
    if let Some(audit) = audit {
        let (log, writer) = AuditLog::new(audit);
        tokio::spawn(writer.run());
        service = service.with_audit_log(log);
    }
    match hashing {
        Hashing::Production => service,
        Hashing::Minimal => service.with_hasher(MinimalCostHasher::new().unwrap()),
    }
}

impl Fixture {
    async fn new(name: &'static str, store: Arc<dyn AuthStore>, audit: Option<Arc<dyn AuditLogStore>>) -> Self {
        let production = new_service(Arc::clone(&store), audit.clone(), Hashing::Production);
        let minimal = new_service(store, audit, Hashing::Minimal);
        let client = ClientInfo::new(Some("criterion"), Some([127, 0, 0, 1].into()));
        production
            .register("login-production@example.com", Password::new(PASSWORD), &client)
            .await
            .unwrap();
        minimal
            .register("login-minimal@example.com", Password::new(PASSWORD), &client)
            .await
            .unwrap();
        let login = minimal
            .login("login-minimal@example.com", Password::new(PASSWORD), &client)
            .await
            .unwrap()
            .signed_in()
            .unwrap();
        Self {
            name,
            production,
            minimal,
            client,
            registered: AtomicU64::new(0),
            access_token: login.tokens.access_token.expose_secret().to_owned(),
            refresh_token: Mutex::new(login.tokens.refresh_token.expose_secret().to_owned()),
        }
    }

    fn service(&self, hashing: Hashing) -> &Service {
        match hashing {
            Hashing::Production => &self.production,
            Hashing::Minimal => &self.minimal,
        }
    }

    async fn once(&self, op: Op) {
        match op {
            Op::Register(hashing) => {
                let n = self.registered.fetch_add(1, Ordering::Relaxed);
                let email = format!("register-{n}@example.com");
                self.service(hashing)
                    .register(&email, Password::new(PASSWORD), &self.client)
                    .await
                    .unwrap();
            }
            Op::Login(hashing) => {
                let email = match hashing {
                    Hashing::Production => "login-production@example.com",
                    Hashing::Minimal => "login-minimal@example.com",
                };
                self.service(hashing)
                    .login(email, Password::new(PASSWORD), &self.client)
                    .await
                    .unwrap()
                    .signed_in()
                    .unwrap();
            }
            Op::Authenticate => {
                self.minimal.authenticate(&self.access_token).await.unwrap();
            }
            Op::Refresh => {
                // Each rotation consumes the token the previous one returned.
                let presented = self.refresh_token.lock().unwrap().clone();
                let pair = self.minimal.refresh(&presented, &self.client).await.unwrap();
                *self.refresh_token.lock().unwrap() = pair.refresh_token.expose_secret().to_owned();
            }
        }
    }
}

/// A fresh schema on the PostgreSQL server, or `None` (with a notice) when it cannot be
/// reached.
async fn postgres() -> Option<PostgresStore> {
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let connected = tokio::time::timeout(Duration::from_secs(10), PostgresStore::connect(&postgres_url())).await;
    let store = match connected {
        Ok(Ok(store)) => store.with_schema(&schema).unwrap(),
        Ok(Err(error)) => {
            eprintln!(
                "notice: no PostgreSQL at AUTH_BENCH_DATABASE_URL (default: the local server) ({error}); \
                 skipping the postgres service benchmarks"
            );
            return None;
        }
        Err(_) => {
            eprintln!("notice: PostgreSQL did not answer in 10 s; skipping the postgres service benchmarks");
            return None;
        }
    };
    store.migrate().await.unwrap();
    Some(store)
}

fn bench_op(c: &mut Criterion, runtime: &Runtime, fixtures: &[Fixture], group: &str, op: Op) {
    let mut group = c.benchmark_group(group);
    if matches!(op, Op::Register(Hashing::Production) | Op::Login(Hashing::Production)) {
        // Tens of milliseconds per call: the same iteration count in every sample.
        group.sampling_mode(SamplingMode::Flat).sample_size(10);
    }
    for fixture in fixtures {
        group.bench_function(fixture.name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        fixture.once(op).await;
                    }
                    started.elapsed()
                })
            });
        });
    }
    group.finish();
}

fn service_per_store(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let postgres = runtime.block_on(postgres());
    let fixtures = runtime.block_on(async {
        let sqlite = SqliteStore::open(dir.path().join("auth.db")).await.unwrap();
        let audited = SqliteStore::open(dir.path().join("audited.db")).await.unwrap();
        let mut fixtures = vec![
            Fixture::new("memory", Arc::new(MemoryStore::new()), None).await,
            Fixture::new("sqlite", Arc::new(sqlite), None).await,
            Fixture::new("sqlite+audit", Arc::new(audited.clone()), Some(Arc::new(audited))).await,
        ];
        if let Some(store) = &postgres {
            fixtures.push(Fixture::new("postgres", Arc::new(store.clone()), None).await);
            let audited = store.clone().with_schema(&format!("{}_audit", store.schema())).unwrap();
            audited.migrate().await.unwrap();
            fixtures.push(Fixture::new("postgres+audit", Arc::new(audited.clone()), Some(Arc::new(audited))).await);
        }
        fixtures
    });

    bench_op(
        c,
        &runtime,
        &fixtures,
        "register-default",
        Op::Register(Hashing::Production),
    );
    bench_op(c, &runtime, &fixtures, "login-default", Op::Login(Hashing::Production));
    bench_op(
        c,
        &runtime,
        &fixtures,
        "register-minimal",
        Op::Register(Hashing::Minimal),
    );
    bench_op(c, &runtime, &fixtures, "login-minimal", Op::Login(Hashing::Minimal));
    bench_op(c, &runtime, &fixtures, "authenticate", Op::Authenticate);
    bench_op(c, &runtime, &fixtures, "refresh", Op::Refresh);

    drop(fixtures);
    if let Some(store) = postgres {
        for schema in [store.schema().to_owned(), format!("{}_audit", store.schema())] {
            // Built from our own hex digits only: nothing to quote.
            let drop_schema = format!("DROP SCHEMA {schema} CASCADE");
            runtime.block_on(async {
                if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(drop_schema))
                    .execute(store.pool())
                    .await
                {
                    eprintln!("warning: could not drop schema {schema}: {error}");
                }
            });
        }
    }
}

fn config() -> Criterion {
    Criterion::default()
        .plotting_backend(PlottingBackend::Plotters)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = services;
    config = config();
    targets = service_per_store
}
criterion_main!(services);
