#!/usr/bin/env bash
# argon2id at the default parameters (m = 19456 KiB, t = 2, p = 1: criterion's
# argon2id-default/hash and verify-match), built portably (the normal build) and with
# RUSTFLAGS="-C target-cpu=native", compared by criterion itself: the portable run saves
# the baseline `portable`, the native run is compared against it (`--baseline portable`),
# and criterion prints the change with its confidence interval. A control run of the
# portable build against the same baseline follows (portable against portable): its
# change is what the machine's noise alone gives. Prints a summary table: each build's
# median sample (fastest-slowest), the factor (portable median / native median) and
# criterion's change. See benches/BENCHMARKS.md, "Native-CPU build".
#
#   benches/native.sh                         # builds both, then about 30 s of measurement
#   ROUNDS=5 benches/native.sh                # five portable/native pairs, also pooled: 2 minutes
#   LOCK=/tmp/cpu.lock benches/native.sh      # each build and the measurements under flock
#
# Environment (all optional):
#   CARGO_TARGET_DIR      the portable build's target dir (default: target/ in the
#                         workspace); built with RUSTFLAGS empty (which also overrides any
#                         config's rustflags), so it is the normal build
#   NATIVE_TARGET_DIR     the native build's own target dir, so that its flags never
#                         invalidate the portable build's cache (default:
#                         $HOME/.cache/auth-rs-target-native)
#   FILTER                criterion's filter (default: '^argon2id-default/(hash|verify-match)$')
#   ROUNDS=1              portable/native pairs, each portable run saving the baseline anew
#   CONTROL=1             0 skips the control run (the portable build against its baseline);
#                         with ROUNDS > 1 each portable run after the first is such a
#                         comparison too
#   RESULTS_DIR           keep criterion's directory (CRITERION_HOME), the logs and
#                         summary.md there; without it they go to a temporary directory
#                         removed at the end. Never the target dirs' criterion/, so the
#                         recorded run that `report` reads stays as it is
#   LOCK                  a lock file: each build, and the measurements as one block, run
#                         under flock on it (waiting at most LOCK_WAIT=3600 s), so that
#                         nothing else that takes the same lock runs meanwhile
#   BUILD_TIMEOUT=3600    seconds allowed for each build; RUN_TIMEOUT=600 for each
#                         criterion run
#
# Contacts no network address (cargo may download crates on a first build); every step
# is bounded by the timeouts above. Needs cargo, python3 and, with LOCK, flock.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

PORTABLE_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
NATIVE_TARGET_DIR=${NATIVE_TARGET_DIR:-$HOME/.cache/auth-rs-target-native}
FILTER=${FILTER:-'^argon2id-default/(hash|verify-match)$'}
ROUNDS=${ROUNDS:-1}
CONTROL=${CONTROL:-1}
LOCK=${LOCK:-}
LOCK_WAIT=${LOCK_WAIT:-3600}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-3600}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
NATIVE_FLAGS="-C target-cpu=native"

for tool in cargo python3 timeout; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is required" >&2
    exit 1
  fi
done
if [[ -n $LOCK ]] && ! command -v flock >/dev/null 2>&1; then
  echo "error: LOCK needs flock (util-linux)" >&2
  exit 1
fi
for name in ROUNDS CONTROL LOCK_WAIT BUILD_TIMEOUT RUN_TIMEOUT; do
  if ! [[ ${!name} =~ ^[0-9]+$ ]]; then
    echo "error: $name must be a whole number" >&2
    exit 1
  fi
done
if ((ROUNDS < 1)); then
  echo "error: ROUNDS must be at least 1" >&2
  exit 1
fi
if [[ $(realpath -m "$PORTABLE_TARGET_DIR") == $(realpath -m "$NATIVE_TARGET_DIR") ]]; then
  echo "error: the native build needs a target dir of its own (NATIVE_TARGET_DIR)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/auth-native.XXXXXX")
results=${RESULTS_DIR:-$work/results}
mkdir -p "$results"
results=$(cd "$results" && pwd)
# One criterion directory for both builds: the native run finds the portable baseline there.
export CRITERION_HOME=$results/criterion
rm -rf "$CRITERION_HOME"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

lock_fd=""
lock() {
  if [[ -n $LOCK ]]; then
    exec {lock_fd}>>"$LOCK"
    if ! flock -w "$LOCK_WAIT" "$lock_fd"; then
      echo "error: $LOCK still held after $LOCK_WAIT s" >&2
      exit 1
    fi
  fi
}
unlock() {
  if [[ -n $lock_fd ]]; then
    exec {lock_fd}>&-
    lock_fd=""
  fi
}

# Builds the hashing bench; prints its executable's path.
build() { # kind target_dir rustflags
  local kind=$1 dir=$2 flags=$3 log=$results/build-$1.log
  echo "== building the $kind bench (CARGO_TARGET_DIR=$dir${flags:+, RUSTFLAGS=\"$flags\"})" >&2
  lock
  # RUSTFLAGS set (empty for the portable build) overrides any config's rustflags.
  (cd "$root" && env -u CARGO_ENCODED_RUSTFLAGS CARGO_TARGET_DIR="$dir" RUSTFLAGS="$flags" \
    timeout "$BUILD_TIMEOUT" cargo bench --locked -p benches --bench hashing --no-run \
    --message-format=json-render-diagnostics) >"$log.json" 2>"$log" || {
    unlock
    tail -n 30 "$log" >&2
    echo "error: the $kind build failed (log: $log)" >&2
    exit 1
  }
  unlock
  python3 -c '
import json, sys
exe = [m["executable"] for m in map(json.loads, open(sys.argv[1]))
       if m.get("reason") == "compiler-artifact" and m.get("executable")
       and m["target"]["name"] == "hashing" and "bench" in m["target"]["kind"]]
print(exe[-1])' "$log.json"
}

portable_exe=$(build portable "$PORTABLE_TARGET_DIR" "")
native_exe=$(build native "$NATIVE_TARGET_DIR" "$NATIVE_FLAGS")
echo "portable: $portable_exe" >&2
echo "native:   $native_exe" >&2

# One criterion run of one build; its output goes to the terminal and the log.
run() { # label exe criterion-args...
  local label=$1 exe=$2
  shift 2
  echo "== $label ($(date -u +%H:%M:%S) UTC)" | tee -a "$results/criterion.log"
  (cd "$root/benches" && timeout "$RUN_TIMEOUT" "$exe" --bench --noplot "$@" "$FILTER") 2>&1 |
    tee -a "$results/criterion.log"
}

# Keeps what criterion wrote for each benchmark of the last run (its `new`, the baseline
# and the change) under $results/<name>/.
keep() { # name baseline-dir-name
  local name=$1
  python3 - "$CRITERION_HOME" "$results/$name" "$2" <<'EOF'
import json, os, shutil, sys
home, dest, base = sys.argv[1:4]
for dirpath, _, files in os.walk(home):
    if os.path.basename(dirpath) == "new" and "benchmark.json" in files:
        bench = os.path.dirname(dirpath)
        rel = os.path.relpath(bench, home)
        for part in ("new", base, "change"):
            src = os.path.join(bench, part)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(dest, rel, part), dirs_exist_ok=True)
EOF
}

lock
for round in $(seq "$ROUNDS"); do
  run "round $round: portable build, saved as baseline \"portable\"" "$portable_exe" --save-baseline portable
  # From the second round on, criterion has compared this portable run with the previous
  # one: the same build twice, so the change is noise alone.
  if ((round > 1)); then keep "same-$round" portable; fi
  run "round $round: native build (-C target-cpu=native), against \"portable\"" "$native_exe" --baseline portable
  keep "round-$round" portable
done
if ((CONTROL)); then
  run "control: portable build again, against \"portable\"" "$portable_exe" --baseline portable
  keep "same-control" portable
fi
unlock

python3 - "$results" "$ROUNDS" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
  "$(nproc)" "$(rustc -vV | head -1)" \
  "$(rustc --print target-cpus | sed -n 's/^ *native .*(currently \([^)]*\)).*/\1/p')" \
  "$(grep -o 'avx2\|avx512[a-z]*\|sse4_2' /proc/cpuinfo | sort -u | tr '\n' ' ')" <<'EOF' | tee "$results/summary.md"
import json, os, statistics, sys
results, rounds, model, cores, rustc, native_cpu, flags = sys.argv[1:8]
rounds = int(rounds)

def load(path):
    with open(path) as f:
        return json.load(f)

def samples(d):
    s = load(os.path.join(d, "sample.json"))
    return sorted(t / n for t, n in zip(s["times"], s["iters"]))

def ms(ns):
    v = ns / 1e6
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"

def spread(xs):
    xs = sorted(xs)
    return f"{ms(statistics.median(xs))} ({ms(xs[0])}–{ms(xs[-1])})"

def change(d, stat):
    c = load(os.path.join(d, "change", "estimates.json"))[stat]
    lo, pt, hi = (100 * x for x in (c["confidence_interval"]["lower_bound"], c["point_estimate"],
                                    c["confidence_interval"]["upper_bound"]))
    return f"{pt:+.1f} % [{lo:+.1f}, {hi:+.1f}]"

def benches(d):
    out = []
    for dirpath, dirs, _ in os.walk(d):
        if "new" in dirs and "change" in dirs:
            out.append(os.path.relpath(dirpath, d))
    return sorted(out)

def rows(kind):
    """(label, benchmark, baseline samples, new samples, benchmark dir) of each kept run."""
    names = [f"round-{r}" for r in range(1, rounds + 1)] if kind == "native" else \
        [f"same-{r}" for r in range(2, rounds + 1)] + ["same-control"]
    for name in names:
        base = os.path.join(results, name)
        if not os.path.isdir(base):
            continue
        for b in benches(base):
            d = os.path.join(base, b)
            # A portable run saved as the baseline has already replaced it: what it was
            # compared with is the previous round's.
            r = name.removeprefix("same-")
            before = d if not r.isdigit() else os.path.join(results, f"round-{int(r) - 1}", b)
            yield name, b, samples(os.path.join(before, "portable")), samples(os.path.join(d, "new")), d

print(f"machine: {model}, {cores} cores; {rustc}; native = {native_cpu}; /proc/cpuinfo: {flags.strip()}")
for kind, title, new in (("native", "native build against the portable baseline", "native ms"),
                         ("same", "portable build against a portable baseline (noise alone)",
                          "portable again ms")):
    print()
    print(f"{title}:")
    print()
    print(f"| benchmark | run | portable ms | {new} | factor | criterion's change: mean [95 % CI] | median [95 % CI] |")
    print("|---|---|---|---|---|---|---|")
    pooled, factors = {}, {}
    for name, b, p, n, d in rows(kind):
        pooled.setdefault(b, ([], []))
        pooled[b][0].extend(p)
        pooled[b][1].extend(n)
        factor = statistics.median(p) / statistics.median(n)
        factors.setdefault(b, []).append(factor)
        print(f"| {b} | {name} | {spread(p)} | {spread(n)} | {factor:.3f} | "
              f"{change(d, 'mean')} | {change(d, 'median')} |")
    if kind == "native" and rounds > 1:
        for b, (p, n) in pooled.items():
            factor = statistics.median(p) / statistics.median(n)
            print(f"| {b} | {rounds} rounds pooled | {spread(p)} | {spread(n)} | {factor:.3f} | | |")
    print()
    for b, fs in factors.items():
        print(f"{b}: factors from {min(fs):.3f} to {max(fs):.3f} over {len(fs)} comparisons")
print()
print("Milliseconds per operation: the median sample (fastest–slowest); factor = portable")
print("median / the other's median (above 1: the other is faster); a negative change: faster.")
EOF
if [[ -n ${RESULTS_DIR:-} ]]; then
  echo "(criterion's output in $results/criterion.log, its directory in $CRITERION_HOME)"
fi
