//! The cost of one rate-limit decision: `MemoryRateLimiter` (governor's GCRA in process)
//! against `RedisRateLimiter` (one script call to Redis over loopback), each an allowed
//! `acquire` on one key of a limit that never refuses in the run.
//!
//! ```sh
//! cargo bench -p benches --bench limiter
//! AUTH_BENCH_REDIS_URL=redis://host:6379 cargo bench -p benches --bench limiter
//! ```
//!
//! Without a reachable Redis (default `redis://127.0.0.1:6379`) the Redis case is skipped
//! with a notice. Its keys go under a fresh prefix and expire within seconds.

// Benches fail loudly by design: a setup error must stop the run, not be measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_core::{Bucket, Limit, MemoryRateLimiter, RateDecision, RateLimiter, RateLimits};
use auth_redis::RedisRateLimiter;
use criterion::{Criterion, PlottingBackend, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const BUCKET: Bucket = Bucket::LoginAttemptsPerClient;

/// A billion a second: every decision is a real one, and none refuses.
fn limits() -> RateLimits {
    RateLimits::default().with_limit(BUCKET, Some(Limit::new(1_000_000_000, Duration::from_secs(1))))
}

/// The Redis limiter, connected on `runtime` (its connection's tasks live there).
fn redis(runtime: &Runtime) -> Option<RedisRateLimiter> {
    let url = std::env::var("AUTH_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let limiter = RedisRateLimiter::new(&url, limits())
        .unwrap()
        .with_prefix(format!("bench-{}", uuid::Uuid::new_v4().simple()));
    match runtime.block_on(limiter.ping()) {
        Ok(()) => Some(limiter),
        Err(error) => {
            eprintln!("notice: no Redis at AUTH_BENCH_REDIS_URL (default: the local server) ({error}); skipping");
            None
        }
    }
}

fn one_decision(c: &mut Criterion) {
    let runtime = Runtime::new().unwrap();
    let mut limiters: Vec<(&str, Arc<dyn RateLimiter>)> = vec![("memory", Arc::new(MemoryRateLimiter::new(limits())))];
    if let Some(redis) = redis(&runtime) {
        limiters.push(("redis", Arc::new(redis)));
    }
    let mut group = c.benchmark_group("limiter-decision");
    for (name, limiter) in limiters {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let started = Instant::now();
                    for _ in 0..iters {
                        let decision = limiter.acquire(BUCKET, "203.0.113.7").await.unwrap();
                        assert_eq!(decision, RateDecision::Allowed);
                    }
                    started.elapsed()
                })
            });
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .plotting_backend(PlottingBackend::Plotters)
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = limiter;
    config = config();
    targets = one_decision
}
criterion_main!(limiter);
