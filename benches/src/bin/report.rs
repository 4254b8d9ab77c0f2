//! Turns criterion's saved results into the Markdown tables of `benches/BENCHMARKS.md`,
//! and copies the summary plots next to it.
//!
//! ```sh
//! cargo run --release -p benches --bin report -- --plots benches/plots > /tmp/criterion-tables.md
//! ```
//!
//! Reads `<criterion dir>/**/new/{benchmark,sample}.json` (the last run of each
//! benchmark); the directory is `--criterion-dir`, or `$CARGO_TARGET_DIR/criterion`, or
//! `target/criterion` in the workspace. For each benchmark it prints the median, minimum
//! and maximum over criterion's samples of the time per iteration (each sample is the mean
//! of its iterations). A group whose benchmarks all have a parameter (the argon2id grid)
//! becomes a matrix: one row per function, one column per parameter.
//!
//! With `--plots DIR`, each group's `violin.svg` (and `lines.svg`, drawn for parameterized
//! groups) is copied to `DIR/<group>-violin.svg` (`-lines.svg`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use benches::Stats;
use serde_json::Value;

const USAGE: &str = "usage: report [--criterion-dir DIR] [--plots DIR]";

fn main() -> ExitCode {
    benches::exit_code(run(), USAGE)
}

/// One benchmark's last run.
struct Result {
    function: String,
    value: Option<String>,
    stats: Stats,
    samples: usize,
}

fn run() -> std::result::Result<(), String> {
    let (mut criterion_dir, mut plots) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--criterion-dir" => criterion_dir = Some(PathBuf::from(args.next().ok_or("--criterion-dir DIR")?)),
            "--plots" => plots = Some(PathBuf::from(args.next().ok_or("--plots DIR")?)),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let criterion_dir = criterion_dir.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
            .join("criterion")
    });

    let mut files = Vec::new();
    find_benchmarks(&criterion_dir, &mut files).map_err(|e| {
        format!(
            "cannot read {}: {e} (run cargo bench -p benches first)",
            criterion_dir.display()
        )
    })?;
    // Group directory → (group id, results).
    let mut groups: BTreeMap<String, (String, Vec<Result>)> = BTreeMap::new();
    for new_dir in files {
        let benchmark = read_json(&new_dir.join("benchmark.json"))?;
        let sample = read_json(&new_dir.join("sample.json"))?;
        let text = |key: &str| benchmark.get(key).and_then(Value::as_str).map(str::to_owned);
        let (Some(group), Some(function), Some(directory)) =
            (text("group_id"), text("function_id"), text("directory_name"))
        else {
            continue;
        };
        let numbers = |key: &str| -> Vec<f64> {
            sample
                .get(key)
                .and_then(Value::as_array)
                .map(|values| values.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let per_iteration: Vec<Duration> = numbers("iters")
            .iter()
            .zip(numbers("times"))
            .filter(|(iters, _)| **iters > 0.0)
            .map(|(iters, nanos)| Duration::from_secs_f64(nanos / iters / 1e9))
            .collect();
        let Some(stats) = Stats::of(&per_iteration) else {
            continue;
        };
        let group_dir = directory.split('/').next().unwrap_or(&directory).to_owned();
        groups
            .entry(group_dir)
            .or_insert_with(|| (group, Vec::new()))
            .1
            .push(Result {
                function,
                value: text("value_str"),
                stats,
                samples: per_iteration.len(),
            });
    }
    if groups.is_empty() {
        return Err(format!("no criterion results under {}", criterion_dir.display()));
    }

    for (group_dir, (group, results)) in &mut groups {
        println!("### {group}\n");
        if results.iter().all(|result| result.value.is_some()) {
            print_matrix(results);
        } else {
            results.sort_by(|a, b| a.function.cmp(&b.function));
            println!("| benchmark | median | min | max | samples |");
            println!("|---|---|---|---|---|");
            for result in results.iter() {
                println!(
                    "| {} | {} | {} | {} | {} |",
                    result.function,
                    human(result.stats.median),
                    human(result.stats.min),
                    human(result.stats.max),
                    result.samples
                );
            }
        }
        println!();
        if let Some(plots) = &plots {
            copy_plots(&criterion_dir.join(group_dir.as_str()), plots, group_dir)?;
        }
    }
    Ok(())
}

fn find_benchmarks(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|name| name == "new") && path.join("benchmark.json").is_file() {
            found.push(path);
        } else {
            find_benchmarks(&path, found)?;
        }
    }
    Ok(())
}

fn read_json(path: &Path) -> std::result::Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Rows: functions; columns: parameter values (numerically sorted when they are numbers).
fn print_matrix(results: &[Result]) {
    let mut values: Vec<&str> = results.iter().filter_map(|r| r.value.as_deref()).collect();
    values.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y),
        _ => a.cmp(b),
    });
    values.dedup();
    let mut functions: Vec<&str> = results.iter().map(|r| r.function.as_str()).collect();
    functions.sort_by_key(|f| (f.len(), *f));
    functions.dedup();
    println!("median (min–max) per iteration:\n");
    println!("| | {} |", values.join(" | "));
    println!("|---|{}", "---|".repeat(values.len()));
    for function in functions {
        let cells: Vec<String> = values
            .iter()
            .map(|value| {
                results
                    .iter()
                    .find(|r| r.function == function && r.value.as_deref() == Some(*value))
                    .map_or_else(
                        || "–".to_owned(),
                        |r| {
                            format!(
                                "{} ({}–{})",
                                human(r.stats.median),
                                human(r.stats.min),
                                human(r.stats.max)
                            )
                        },
                    )
            })
            .collect();
        println!("| {function} | {} |", cells.join(" | "));
    }
}

fn copy_plots(group_dir: &Path, plots: &Path, name: &str) -> std::result::Result<(), String> {
    std::fs::create_dir_all(plots).map_err(|e| format!("{}: {e}", plots.display()))?;
    for plot in ["violin", "lines"] {
        let from = group_dir.join("report").join(format!("{plot}.svg"));
        if from.is_file() {
            let to = plots.join(format!("{name}-{plot}.svg"));
            std::fs::copy(&from, &to).map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))?;
            eprintln!("copied {}", to.display());
        }
    }
    Ok(())
}

/// Three significant digits in the largest unit under which the value is at least 1.
fn human(duration: Duration) -> String {
    let nanos = duration.as_secs_f64() * 1e9;
    let (value, unit) = if nanos >= 1e9 {
        (nanos / 1e9, "s")
    } else if nanos >= 1e6 {
        (nanos / 1e6, "ms")
    } else if nanos >= 1e3 {
        (nanos / 1e3, "µs")
    } else {
        (nanos, "ns")
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}
