//! The cost of one password hash on this machine, as `load.sh` needs it: the median time
//! of one argon2id hash at the default (OWASP) parameters, and how many hashes per second
//! `--threads` threads achieve together.
//!
//! ```sh
//! cargo run --release -p benches --bin hash_once -- [--runs 20] [--threads <cores>]
//! ```
//!
//! The last line is for scripts:
//! `hash_once median_ms=.. min_ms=.. max_ms=.. cores=.. limit_per_s=.. parallel_per_s=..`,
//! where `limit_per_s` is cores ÷ single-hash time (the ideal) and `parallel_per_s` what
//! `--threads` threads hashing at once measured.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use auth_core::{Argon2Hasher, Argon2Params, Password, PasswordHasher};
use benches::{PASSWORD, Stats, ms, phc_params, time_hashes};

const USAGE: &str = "usage: hash_once [--runs N] [--threads N]";

fn main() -> ExitCode {
    benches::exit_code(run(), USAGE)
}

fn run() -> Result<(), String> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let (mut runs, mut threads) = (20usize, cores);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            args.next()
                .ok_or(format!("{name} needs a value"))?
                .parse()
                .map_err(|e| format!("{name}: {e}"))
        };
        match arg.as_str() {
            "--runs" => runs = value("--runs")?.max(1),
            "--threads" => threads = value("--threads")?.max(1),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    let params = Argon2Params::default();
    let single = time_hashes(params, runs).map_err(|e| e.to_string())?;
    let rate = parallel_rate(params, threads, runs)?;
    let limit = cores as f64 / single.median.as_secs_f64();
    println!(
        "argon2id {}: one hash median {:.1} ms (min {:.1}, max {:.1}) over {runs} runs",
        phc_params(&params),
        ms(single.median),
        ms(single.min),
        ms(single.max),
    );
    println!(
        "hashing limit: {cores} cores / {:.1} ms = {limit:.1} hashes/s",
        ms(single.median)
    );
    println!("measured: {threads} threads hashing at once = {rate:.1} hashes/s");
    println!(
        "hash_once median_ms={:.2} min_ms={:.2} max_ms={:.2} cores={cores} limit_per_s={limit:.1} parallel_per_s={rate:.1}",
        ms(single.median),
        ms(single.min),
        ms(single.max),
    );
    Ok(())
}

/// Hashes per second with `threads` threads each hashing `runs` times.
fn parallel_rate(params: Argon2Params, threads: usize, runs: usize) -> Result<f64, String> {
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || -> Result<Duration, String> {
                let hasher = Argon2Hasher::new(params);
                let password = Password::new(PASSWORD);
                for _ in 0..runs {
                    std::hint::black_box(hasher.hash(&password).map_err(|e| e.to_string())?);
                }
                Ok(started.elapsed())
            })
        })
        .collect();
    let mut done = Vec::with_capacity(threads);
    for worker in workers {
        done.push(worker.join().map_err(|_| "a hashing thread panicked".to_owned())??);
    }
    let elapsed = Stats::of(&done).map_or(Duration::ZERO, |stats| stats.max);
    Ok((threads * runs) as f64 / elapsed.as_secs_f64())
}
