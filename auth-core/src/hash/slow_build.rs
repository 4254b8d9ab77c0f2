//! One warning for a debug build whose argon2 is compiled without optimisation.
//!
//! Cargo's `dev` profile compiles dependencies unoptimised, and argon2 unoptimised is
//! dozens of times slower: measured on the 2-core machine of `benches/BENCHMARKS.md`, a
//! debug build hashed with OWASP's setting in 1.2 to 1.5 s, and in 27 ms (52 ms the first
//! time) once the profile lines were added; a release build takes 11.8 ms. So a login in
//! development feels broken and tests time out. The cure is
//! a few lines in the *application's* `Cargo.toml` (profile settings of dependencies are
//! ignored), which this crate cannot add itself; it can only notice and say so. Builds
//! without `debug_assertions` (release) never time anything.

// Release builds compile the check (its tests run there too) but never call it.
#![cfg_attr(not(debug_assertions), allow(dead_code))]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

/// A hash at OWASP's setting (19 MiB × 2 passes) slower than this is taken to be
/// unoptimised: twice the first hash of a debug build with the profile lines (52 ms, see
/// above), a tenth of one without. Scaled by the parameters' work (see
/// [`SlowHashCheck::record`]).
pub(super) const SLOW_OWASP_HASH: Duration = Duration::from_millis(100);

/// The work of OWASP's setting, in KiB-passes (memory × iterations).
const OWASP_WORK: u64 = 19_456 * 2;

/// How many of the first hashes are timed: more than one, because the first also pays for
/// growing the working memory, and a busy machine can slow any single one.
const SAMPLED_HASHES: u32 = 3;

/// The profile lines the application should add: argon2 and what it hashes with, and the
/// legacy verifiers this build has.
pub(super) fn profile_lines() -> String {
    let mut packages = vec!["argon2", "blake2"];
    if cfg!(feature = "legacy-bcrypt") {
        packages.extend(["bcrypt", "blowfish"]);
    }
    if cfg!(feature = "legacy-pbkdf2") {
        packages.push("pbkdf2");
    }
    packages.push("sha2");
    packages
        .iter()
        .map(|package| format!("[profile.dev.package.{package}]\nopt-level = 3\n"))
        .collect()
}

/// Decides, from the durations of the first hashes, whether to warn; at most once.
#[derive(Debug)]
pub(super) struct SlowHashCheck {
    samples_left: AtomicU32,
    warned: AtomicBool,
}

impl SlowHashCheck {
    pub(super) const fn new() -> Self {
        Self {
            samples_left: AtomicU32::new(SAMPLED_HASHES),
            warned: AtomicBool::new(false),
        }
    }

    /// Whether hashes are still being timed (so the caller can skip reading the clock).
    pub(super) fn is_sampling(&self) -> bool {
        self.samples_left.load(Ordering::Relaxed) > 0 && !self.warned.load(Ordering::Relaxed)
    }

    /// Records one hash of `work` KiB-passes that took `elapsed`; true exactly once, for
    /// the first sampled hash slower than [`SLOW_OWASP_HASH`] scaled to its work (never
    /// below it, so cheap test parameters are held to the same 100 ms).
    pub(super) fn record(&self, elapsed: Duration, work: u64, slow_owasp_hash: Duration) -> bool {
        let sampled = self
            .samples_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1))
            .is_ok();
        if !sampled {
            return false;
        }
        let scale = work.div_ceil(OWASP_WORK).max(1);
        let threshold = slow_owasp_hash.saturating_mul(u32::try_from(scale).unwrap_or(u32::MAX));
        elapsed > threshold && !self.warned.swap(true, Ordering::Relaxed)
    }
}

/// The process's check: the warning is about the build, so once per process is enough.
#[cfg(debug_assertions)]
static PROCESS_CHECK: SlowHashCheck = SlowHashCheck::new();

/// Runs `hash` (of `work` KiB-passes); in a debug build, times the first few and warns
/// once if one was slow.
pub(super) fn timed<R>(work: u64, hash: impl FnOnce() -> R) -> R {
    #[cfg(debug_assertions)]
    {
        if PROCESS_CHECK.is_sampling() {
            let start = std::time::Instant::now();
            let result = hash();
            let elapsed = start.elapsed();
            if PROCESS_CHECK.record(elapsed, work, SLOW_OWASP_HASH) {
                warn(elapsed);
            }
            return result;
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = work;
    hash()
}

fn warn(elapsed: Duration) {
    tracing::warn!(
        hash_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "password hashing is slow in this debug build: argon2 is likely compiled without \
         optimisation (a hash then takes about a second instead of tens of milliseconds). Add these lines to your application's \
         Cargo.toml (the workspace root's), then rebuild:\n{}",
        profile_lines()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWASP: u64 = OWASP_WORK;

    #[test]
    fn a_slow_hash_warns_once_and_a_fast_one_never() {
        let check = SlowHashCheck::new();
        assert!(!check.record(Duration::from_millis(30), OWASP, SLOW_OWASP_HASH));
        assert!(check.record(Duration::from_millis(400), OWASP, SLOW_OWASP_HASH));
        assert!(
            !check.record(Duration::from_millis(400), OWASP, SLOW_OWASP_HASH),
            "once"
        );
        assert!(!check.is_sampling());
    }

    #[test]
    fn only_the_first_hashes_are_timed() {
        let check = SlowHashCheck::new();
        for _ in 0..SAMPLED_HASHES {
            assert!(check.is_sampling());
            assert!(!check.record(Duration::from_millis(20), OWASP, SLOW_OWASP_HASH));
        }
        assert!(!check.is_sampling());
        assert!(
            !check.record(Duration::from_secs(5), OWASP, SLOW_OWASP_HASH),
            "not sampled"
        );
    }

    #[test]
    fn the_threshold_scales_with_the_parameters_work() {
        let threshold = Duration::from_millis(100);
        // 64 MiB × 3 passes is about five times OWASP's work: 300 ms is normal for it.
        let strong = 65_536 * 3;
        assert!(!SlowHashCheck::new().record(Duration::from_millis(300), strong, threshold));
        assert!(SlowHashCheck::new().record(Duration::from_millis(900), strong, threshold));
        // Cheap test parameters are held to the unscaled threshold.
        assert!(!SlowHashCheck::new().record(Duration::from_millis(90), 64, threshold));
        assert!(SlowHashCheck::new().record(Duration::from_millis(110), 64, threshold));
    }

    #[test]
    fn the_lines_name_every_hashing_package_of_this_build() {
        let lines = profile_lines();
        assert!(lines.starts_with("[profile.dev.package.argon2]\nopt-level = 3\n"));
        assert!(lines.contains("[profile.dev.package.blake2]\nopt-level = 3\n"));
        assert_eq!(lines.contains("bcrypt"), cfg!(feature = "legacy-bcrypt"));
        assert_eq!(lines.contains("pbkdf2"), cfg!(feature = "legacy-pbkdf2"));
    }

    /// The lines recommended are the ones this workspace itself uses (when built inside
    /// it; a packaged crate has no workspace manifest to compare with).
    #[test]
    fn the_lines_are_the_workspaces_own() {
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let Ok(workspace) = std::fs::read_to_string(manifest) else {
            return;
        };
        if !workspace.contains("[workspace]") || !cfg!(all(feature = "legacy-bcrypt", feature = "legacy-pbkdf2")) {
            return;
        }
        let ours: Vec<String> = profile_lines().lines().map(str::to_owned).collect();
        let theirs: Vec<&str> = workspace
            .lines()
            .skip_while(|line| !line.starts_with("[profile.dev.package."))
            .filter(|line| line.starts_with("[profile.dev.package.") || line.starts_with("opt-level"))
            .collect();
        let mut ours_sorted = ours.chunks(2).map(<[String]>::concat).collect::<Vec<_>>();
        let mut theirs_sorted = theirs.chunks(2).map(<[&str]>::concat).collect::<Vec<_>>();
        ours_sorted.sort();
        theirs_sorted.sort();
        assert_eq!(ours_sorted, theirs_sorted);
    }
}
