//! Argon2id parameters that meet a time target on this machine, never below OWASP's floor.
//!
//! ```sh
//! cargo run --release -p benches --bin calibrate -- --target-ms 200
//! cargo run --release -p benches --bin calibrate -- --target-ms 100 --max-memory-mib 19 --runs 7
//! ```
//!
//! (Without `--release` the timings are the same: the workspace builds argon2 and blake2
//! optimized in every profile.)
//!
//! OWASP lists five equivalent argon2id floors: 46 MiB × 1 pass, 19 MiB × 2, 12 MiB × 3,
//! 9 MiB × 4, 7 MiB × 5. For each pass count from 1 to 5 this finds the largest memory, in
//! MiB steps from the floor up to `--max-memory-mib` (default 64, the default
//! `HashLimits`), whose median hash time (of `--runs`, default 5) stays within the target;
//! when even the cap fits at 5 passes, it adds the largest pass count that fits at the cap.
//! It then chooses as RFC 9106 §4 does: the most memory, then the most passes. If no floor
//! meets the target, it says so and prints the fastest floor: the floor is never crossed.

use std::collections::BTreeMap;
use std::process::ExitCode;

use auth_core::{Argon2Params, HashLimits};
use benches::{OWASP_FLOORS, Stats, ms, owasp_floor_kib, phc_params, time_hashes};

const USAGE: &str = "usage: calibrate --target-ms N [--max-memory-mib N (default 64)] [--runs N (default 5)]";

fn main() -> ExitCode {
    benches::exit_code(run(), USAGE)
}

struct Options {
    target_ms: f64,
    max_memory_mib: u32,
    runs: usize,
}

fn parse_args() -> Result<Option<Options>, String> {
    let (mut target_ms, mut max_memory_mib, mut runs) = (None, 64u32, 5usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // `--name value` or `--name=value`.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))
        };
        match name.as_str() {
            "--target-ms" => {
                let ms: f64 = value()?.parse().map_err(|e| format!("--target-ms: {e}"))?;
                if !(ms.is_finite() && ms > 0.0) {
                    return Err("--target-ms: a positive number of milliseconds".to_owned());
                }
                target_ms = Some(ms);
            }
            "--max-memory-mib" => {
                max_memory_mib = value()?.parse().map_err(|e| format!("--max-memory-mib: {e}"))?;
                if !(7..=4096).contains(&max_memory_mib) {
                    return Err("--max-memory-mib: between 7 (the lowest OWASP floor) and 4096".to_owned());
                }
            }
            "--runs" => runs = value()?.parse::<usize>().map_err(|e| format!("--runs: {e}"))?.max(1),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let target_ms = target_ms.ok_or("--target-ms is required")?;
    Ok(Some(Options {
        target_ms,
        max_memory_mib,
        runs,
    }))
}

/// Measurements so far, by (memory MiB, passes).
struct Bench {
    runs: usize,
    target_ms: f64,
    seen: BTreeMap<(u32, u32), Stats>,
}

impl Bench {
    fn time(&mut self, mib: u32, passes: u32) -> Result<Stats, String> {
        if let Some(stats) = self.seen.get(&(mib, passes)) {
            return Ok(*stats);
        }
        let params = Argon2Params::new(mib * 1024, passes, 1).map_err(|e| e.to_string())?;
        let stats = time_hashes(params, self.runs).map_err(|e| e.to_string())?;
        eprintln!(
            "  m={mib:>4} MiB t={passes:>2}: median {:>8.1} ms (min {:.1}, max {:.1})",
            ms(stats.median),
            ms(stats.min),
            ms(stats.max)
        );
        self.seen.insert((mib, passes), stats);
        Ok(stats)
    }

    fn fits(&mut self, mib: u32, passes: u32) -> Result<bool, String> {
        Ok(ms(self.time(mib, passes)?.median) <= self.target_ms)
    }

    /// The largest memory in `floor..=cap` MiB meeting the target at `passes`, if any.
    fn largest_memory(&mut self, floor: u32, cap: u32, passes: u32) -> Result<Option<u32>, String> {
        if !self.fits(floor, passes)? {
            return Ok(None);
        }
        if self.fits(cap, passes)? {
            return Ok(Some(cap));
        }
        // `lo` fits, `hi` does not.
        let (mut lo, mut hi) = (floor, cap);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.fits(mid, passes)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(Some(lo))
    }

    /// The largest pass count from `from` (which fits) meeting the target at `mib`.
    fn largest_passes(&mut self, mib: u32, from: u32) -> Result<u32, String> {
        let (mut lo, mut hi) = (from, from.saturating_mul(2));
        while self.fits(mib, hi)? {
            lo = hi;
            if hi >= 1024 {
                return Ok(hi);
            }
            hi = hi.saturating_mul(2);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.fits(mib, mid)? {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

fn run() -> Result<(), String> {
    let Some(options) = parse_args()? else {
        return Ok(());
    };
    let cap = options.max_memory_mib;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut bench = Bench {
        runs: options.runs,
        target_ms: options.target_ms,
        seen: BTreeMap::new(),
    };
    eprintln!(
        "calibrating argon2id (p=1) for {} ms per hash, memory up to {cap} MiB, median of {} runs each:",
        options.target_ms, options.runs
    );

    // (passes, largest fitting memory in MiB, or None).
    let mut rows: Vec<(u32, Option<u32>)> = Vec::new();
    for (passes, floor_kib) in OWASP_FLOORS {
        let floor = floor_kib / 1024;
        let fitting = if floor > cap {
            None
        } else {
            bench.largest_memory(floor, cap, passes)?
        };
        rows.push((passes, fitting));
    }
    if let Some((last, Some(mib))) = rows.last().copied()
        && mib == cap
    {
        let passes = bench.largest_passes(cap, last)?;
        if passes > last {
            rows.push((passes, Some(cap)));
        }
    }

    println!();
    println!(
        "target {} ms on {cores} cores; memory cap {cap} MiB; median of {} runs",
        options.target_ms, options.runs
    );
    println!(
        "{:>6}  {:>14}  {:>12}  {:>18}",
        "passes", "OWASP floor", "largest m", "median ms (min-max)"
    );
    for (passes, fitting) in &rows {
        let floor = format!("{} MiB", owasp_floor_kib(*passes) / 1024);
        match fitting {
            Some(mib) => {
                let stats = bench.time(*mib, *passes)?;
                println!(
                    "{passes:>6}  {floor:>14}  {:>12}  {:>8.1} ({:.1}-{:.1})",
                    format!("{mib} MiB"),
                    ms(stats.median),
                    ms(stats.min),
                    ms(stats.max)
                );
            }
            None => println!("{passes:>6}  {floor:>14}  {:>12}  floor exceeds the target", "none"),
        }
    }
    println!();

    // RFC 9106 §4: as much memory as allowed, then as many passes as the time allows.
    let chosen = rows
        .iter()
        .filter_map(|(passes, fitting)| fitting.map(|mib| (mib, *passes)))
        .max();
    let (mib, passes, verdict) = match chosen {
        Some((mib, passes)) => (mib, passes, "meets the target"),
        None => {
            // Never below the floor: the fastest floor that the cap allows (measured above
            // when the cap allows it at all).
            let fastest = OWASP_FLOORS
                .iter()
                .map(|(passes, kib)| (kib / 1024, *passes))
                .filter(|(mib, _)| *mib <= cap)
                .filter_map(|key| bench.seen.get(&key).map(|stats| (stats.median, key)))
                .min();
            let Some((_, (mib, passes))) = fastest else {
                return Err(format!(
                    "--max-memory-mib {cap} is below every OWASP floor (7 MiB at 5 passes)"
                ));
            };
            println!(
                "even OWASP's floor exceeds {} ms on this machine: never go below it; the fastest floor is:",
                options.target_ms
            );
            (mib, passes, "the OWASP floor (exceeds the target)")
        }
    };
    let params = Argon2Params::new(mib * 1024, passes, 1).map_err(|e| e.to_string())?;
    let stats = bench.time(mib, passes)?;
    println!("chosen: $argon2id$v=19${}", phc_params(&params));
    println!(
        "  median {:.1} ms (min {:.1}, max {:.1}) over {} runs: {verdict}",
        ms(stats.median),
        ms(stats.min),
        ms(stats.max),
        options.runs
    );
    println!(
        "  in code: Argon2Hasher::new(Argon2Params::new({}, {}, 1)?)",
        params.memory_kib(),
        passes
    );
    println!(
        "  hashing memory at full load: {cores} pool permits x {mib} MiB = {} MiB",
        cores as u64 * u64::from(mib)
    );
    let limits = HashLimits::default();
    let work = u64::from(params.memory_kib()) * u64::from(passes);
    if params.memory_kib() > limits.max_argon2_memory_kib()
        || passes > limits.max_argon2_iterations()
        || work > limits.max_argon2_work()
    {
        println!(
            "  note: beyond the default HashLimits (m <= {} KiB, t <= {}, m x t <= {}): the hasher always \
             accepts its own parameters, but raise the limits too, or hashes made now will be refused \
             if the parameters are ever lowered",
            limits.max_argon2_memory_kib(),
            limits.max_argon2_iterations(),
            limits.max_argon2_work()
        );
    }
    Ok(())
}
