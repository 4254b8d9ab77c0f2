#!/usr/bin/env bash
# What abusive clients cost a well-behaved one: example-axum (or example-actix) on loopback,
# a GET /me probe (wrk: requests per second, p50 and p99) alone and then beside each of
# three abusers run by benches/abuse.py (Python 3, standard library only):
#
#   baseline     the probe alone
#   slowloris    SLOW_CONNECTIONS connections sending a request head one byte a second,
#                never finishing it (cut by the header timeout; reopened at once)
#   stalled      BODY_CONNECTIONS connections sending a complete head of POST /login with
#                Content-Length: 1000, a few bytes of body, then nothing (cut by the body
#                timeout; reopened at once)
#   flood        MAX_CONNECTIONS + FLOOD_EXTRA connections opened as fast as possible and
#                held idle, reopened whenever closed: the server sits at its connection cap
#                and answers the rest 503 busy; the probe arrives 1 s into it, as in the
#                phases above, so it is a client arriving at a full server
#   flood-held   the same flood, started 0.3 s after the probe has connected: a client
#                already connected when the flood begins (FLOOD_HELD=0 skips it)
#
# For each phase: the probe's figures; the abuser's connections open on average, the 503
# refusals it read and the connections the server cut (by kind, and after how long); the
# server's peak VmRSS and open descriptors, sampled every 0.5 s. Prints a markdown summary.
# See benches/BENCHMARKS.md, "Abusive clients".
#
#   apt-get install wrk curl python3   # once
#   benches/abuse.sh                   # one run, 5 phases of 20 s: about 2 minutes
#   SERVER=example-actix benches/abuse.sh
#   DURATION=5 benches/abuse.sh        # a quick check
#
# Environment (all optional):
#   SERVER=example-axum      the server package (example-actix answers the same contract)
#   RUNS=1                   independent runs (a fresh server and database each); with
#                            more than one, every figure is the median (min-max)
#   DURATION=20              seconds per phase (at least 4): the abuser runs the whole
#                            phase, the probe from 1 s after its start to 1 s before its end
#                            (flood-held: the probe from the phase's start for DURATION - 2 s,
#                            the abuser from 0.3 s to the end)
#   FLOOD_HELD=1             run the flood-held phase (0: skip it)
#   PROBE_CONNECTIONS=2      the GET /me probe: wrk, 1 thread, --latency, --timeout 10s
#   SLOW_CONNECTIONS=50  BODY_CONNECTIONS=50
#   MAX_CONNECTIONS=256      the server's AUTH_MAX_CONNECTIONS
#   FLOOD_EXTRA=64           the flood holds MAX_CONNECTIONS + FLOOD_EXTRA connections
#   HEADER_TIMEOUT=10  BODY_TIMEOUT=10   the server's AUTH_HEADER_TIMEOUT_SECS and
#                            AUTH_BODY_TIMEOUT_SECS (their defaults)
#   OPEN_FILES=4096          the open-file limit (ulimit -n) of the server, wrk and abuser
#   SETTLE=2                 seconds of quiet after each phase (closed connections drain)
#   SERVER_LOG=info          the server's RUST_LOG
#   RESULTS_DIR              keep wrk's and the abuser's raw output, the samples, the
#                            server logs and summary.md there
#   CARGO_TARGET_DIR         where cargo builds (default: target/ in the workspace)
#
# Only 127.0.0.1 is ever contacted; every phase is bounded by DURATION (the abuser runs
# under `timeout`); everything started here (server, wrk, abuser, samplers) is stopped when
# its phase or run ends, and on exit. Rate limits are off (AUTH_RATE_LIMITS=off): this
# measures the transport's defenses, not the limiter.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=benches/common.sh
. "$here/common.sh"
root=$(dirname "$here")

SERVER=${SERVER:-example-axum}
RUNS=${RUNS:-1}
DURATION=${DURATION:-20}
PROBE_CONNECTIONS=${PROBE_CONNECTIONS:-2}
SLOW_CONNECTIONS=${SLOW_CONNECTIONS:-50}
BODY_CONNECTIONS=${BODY_CONNECTIONS:-50}
MAX_CONNECTIONS=${MAX_CONNECTIONS:-256}
FLOOD_EXTRA=${FLOOD_EXTRA:-64}
FLOOD_HELD=${FLOOD_HELD:-1}
HEADER_TIMEOUT=${HEADER_TIMEOUT:-10}
BODY_TIMEOUT=${BODY_TIMEOUT:-10}
OPEN_FILES=${OPEN_FILES:-4096}
SETTLE=${SETTLE:-2}
SERVER_LOG=${SERVER_LOG:-info}
PASSWORD="correct horse battery staple"

for tool in wrk curl cargo awk python3 timeout; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is required (Debian: apt-get install wrk curl python3)" >&2
    exit 1
  fi
done
for name in RUNS DURATION PROBE_CONNECTIONS SLOW_CONNECTIONS BODY_CONNECTIONS MAX_CONNECTIONS \
  FLOOD_EXTRA FLOOD_HELD HEADER_TIMEOUT BODY_TIMEOUT OPEN_FILES SETTLE; do
  if ! [[ ${!name} =~ ^[0-9]+$ ]]; then
    echo "error: $name must be a whole number" >&2
    exit 1
  fi
done
if [[ ! $SERVER =~ ^example-(axum|actix)$ ]]; then
  echo "error: SERVER must be example-axum or example-actix" >&2
  exit 1
fi
if ((DURATION < 4 || RUNS < 1 || PROBE_CONNECTIONS < 1 || MAX_CONNECTIONS < 16)); then
  echo "error: DURATION must be at least 4 (seconds), RUNS and PROBE_CONNECTIONS at least 1," \
    "MAX_CONNECTIONS at least 16" >&2
  exit 1
fi
FLOOD_CONNECTIONS=$((MAX_CONNECTIONS + FLOOD_EXTRA))
# The server keeps 64 descriptors beside its connections; the abuser needs one a connection.
if ((OPEN_FILES < MAX_CONNECTIONS + 64 + 16 || OPEN_FILES < FLOOD_CONNECTIONS + 64)); then
  echo "error: OPEN_FILES ($OPEN_FILES) is too low for MAX_CONNECTIONS=$MAX_CONNECTIONS" >&2
  exit 1
fi
if ! ulimit -n "$OPEN_FILES" 2>/dev/null; then
  echo "error: cannot set the open-file limit to $OPEN_FILES (hard limit: $(ulimit -Hn))" >&2
  exit 1
fi
probe_seconds=$((DURATION - 2))

work=$(mktemp -d "${TMPDIR:-/tmp}/auth-abuse.XXXXXX")
results=${RESULTS_DIR:-$work/results}
mkdir -p "$results"
server_pid=""
sampler_pid=""
abuser_pid=""
probe_pid=""
stop_pid() { # pid: stops a process started here, and waits for it
  if [[ -n $1 ]]; then
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop_pid "$probe_pid"
  stop_pid "$abuser_pid"
  stop_pid "$sampler_pid"
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build

log "building $SERVER (release)"
(cd "$root" && cargo build --release --quiet -p "$SERVER")
target_dir=${CARGO_TARGET_DIR:-$root/target}
server_bin=$target_dir/release/$SERVER

# ---------------------------------------------------------------- one run

# Runs every phase against a fresh server and database; writes the raw output of each
# phase to $out/<phase>-*.txt and the run's figures to $out/figures.txt (key=value lines).
one_run() {
  local out=$1 db status token
  db=$(mktemp -d "$work/db.XXXXXX")
  mkdir -p "$out" "$db/outbox"
  : >"$out/figures.txt"

  log "starting $SERVER on a free loopback port (SQLite in $db; cap $MAX_CONNECTIONS connections," \
    "header timeout $HEADER_TIMEOUT s, body timeout $BODY_TIMEOUT s, open files $(ulimit -n))"
  start_server "$out/server.log" \
    DATABASE_URL="sqlite://$db/auth.db" \
    AUTH_MAIL_OUTBOX="$db/outbox" \
    AUTH_RATE_LIMITS=off \
    AUTH_MAX_CONNECTIONS="$MAX_CONNECTIONS" \
    AUTH_HEADER_TIMEOUT_SECS="$HEADER_TIMEOUT" \
    AUTH_BODY_TIMEOUT_SECS="$BODY_TIMEOUT" \
    RUST_LOG="$SERVER_LOG" \
    "$server_bin"

  status=$(curl -s --noproxy '*' -o "$db/register.json" -w '%{http_code}' -X POST "$base/register" \
    -H 'Content-Type: application/json' \
    --data "{\"email\":\"probe@example.com\",\"password\":\"$PASSWORD\"}")
  if [[ $status != 201 ]]; then
    echo "error: POST /register answered $status: $(cat "$db/register.json")" >&2
    exit 1
  fi
  status=$(curl -s --noproxy '*' -o "$db/login.json" -w '%{http_code}' -X POST "$base/login" \
    --data-urlencode "username=probe@example.com" --data-urlencode "password=$PASSWORD")
  token=$(grep -o '"access_token":"[^"]*"' "$db/login.json" | cut -d'"' -f4 || true)
  if [[ $status != 200 || -z $token ]]; then
    echo "error: POST /login answered $status: $(cat "$db/login.json")" >&2
    exit 1
  fi
  status=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "$base/me" -H "Authorization: Bearer $token")
  if [[ $status != 200 ]]; then
    echo "error: GET /me answered $status" >&2
    exit 1
  fi
  export LOAD_LUA_DIR="$here/load" LOAD_TOKEN="$token"

  figure fds_idle "$(fd_count)"
  figure rss_idle "$(rss_kib)"
  local startup_lines
  startup_lines=$(wc -l <"$out/server.log")
  phase baseline none 0
  phase slowloris slowloris "$SLOW_CONNECTIONS"
  phase stalled body "$BODY_CONNECTIONS"
  phase flood flood "$FLOOD_CONNECTIONS"
  if ((FLOOD_HELD)); then phase flood-held flood "$FLOOD_CONNECTIONS" probe-first; fi

  # The server is as good as new: a fresh client is served.
  status=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' --max-time 10 "$base/me" -H "Authorization: Bearer $token" || true)
  figure me_after "$status"
  figure hwm "$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")"
  # What the server logged during the phases (start-up warnings left out).
  tail -n +$((startup_lines + 1)) "$out/server.log" >"$out/server-phases.log"
  figure log_warn "$(grep -c ' WARN ' "$out/server-phases.log" || true)"
  figure log_error "$(grep -c ' ERROR ' "$out/server-phases.log" || true)"
  stop_server
  rm -rf "$db"
}

figure() { echo "$1=$2" >>"$out/figures.txt"; }
# The GET /me probe, in the background (probe_pid), for probe_seconds.
start_probe() { # file prefix
  wrk -t 1 -c "$PROBE_CONNECTIONS" -d "${probe_seconds}s" --timeout 10s --latency \
    -s "$here/load/me.lua" "$base/me" >"$1-probe.txt" 2>&1 &
  probe_pid=$!
}
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
fd_count() { find "/proc/$server_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# name, abuser mode (none: the probe alone), connections[, probe-first]: one phase of
# DURATION seconds. The abuser starts first and runs the whole phase; the probe runs from
# 1 s in to 1 s before the end. With probe-first, the probe starts the phase (DURATION - 2
# seconds) and the abuser follows 0.3 s later, to the end. The server's VmRSS and
# descriptors are sampled every 0.5 s meanwhile.
phase() {
  local name=$1 mode=$2 connections=$3 order=${4:-abuser-first} prefix=$out/$1 line
  log "phase $name: $(if [[ $mode == none ]]; then echo "the probe alone"; else echo "$connections $mode connections"; fi)," \
    "$DURATION s (probe: $PROBE_CONNECTIONS connections, GET /me, ${probe_seconds} s)"
  : >"$prefix-samples.txt"
  (
    while [[ -r /proc/$server_pid/status ]]; do
      echo "$(awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0) $(fd_count)" \
        >>"$prefix-samples.txt"
      sleep 0.5
    done
  ) &
  sampler_pid=$!
  local started=$SECONDS abuser_seconds=$DURATION
  if [[ $order == probe-first ]]; then
    start_probe "$prefix"
    sleep 0.3
    abuser_seconds=$(awk -v d="$DURATION" 'BEGIN { print d - 0.3 }')
  fi
  if [[ $mode != none ]]; then
    timeout -k 2 $((DURATION + 5)) python3 -B "$here/abuse.py" "$mode" --port "$port" \
      --connections "$connections" --duration "$abuser_seconds" >"$prefix-abuser.txt" 2>"$prefix-abuser.log" &
    abuser_pid=$!
  fi
  if [[ $order != probe-first ]]; then
    sleep 1
    start_probe "$prefix"
  fi
  wait "$probe_pid" || true
  probe_pid=""
  if [[ $mode != none ]]; then
    wait "$abuser_pid" || true
    abuser_pid=""
  else
    sleep $((DURATION - 1 - probe_seconds))
  fi
  stop_pid "$sampler_pid"
  sampler_pid=""
  echo "phase $name took $((SECONDS - started)) s" >&2

  line=$(grep '^RESULT ' "$prefix-probe.txt" | head -n 1 || true)
  if [[ -z $line ]]; then
    echo "error: wrk gave no result for $name:" >&2
    cat "$prefix-probe.txt" >&2
    exit 1
  fi
  echo "probe: $line" >&2
  local key
  for key in requests duration_s p50_ms p99_ms max_ms non2xx connect_errors read_errors write_errors timeouts; do
    figure "$name.$key" "$(field "$key" "$line")"
  done
  if [[ $mode != none ]]; then
    line=$(grep '^ABUSE ' "$prefix-abuser.txt" | head -n 1 || true)
    if [[ -z $line ]]; then
      echo "error: the abuser gave no result for $name:" >&2
      tail -n 20 "$prefix-abuser.log" >&2
      exit 1
    fi
    echo "abuser: $line" >&2
    for key in opened open_mean open_max connecting_mean refused_503 cut cut_408 cut_other_status cut_silent \
      cut_reset cut_age_mean_s cut_age_min_s cut_age_max_s connect_errors; do
      figure "$name.$key" "$(field "$key" "$line")"
    done
    figure "$name.statuses" "$(field statuses "$line")"
  fi
  figure "$name.rss_peak" "$(awk 'BEGIN { m = 0 } $1 > m { m = $1 } END { print m }' "$prefix-samples.txt")"
  figure "$name.fds_peak" "$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$prefix-samples.txt")"
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: the server exited during phase $name:" >&2
    tail -n 30 "$out/server.log" >&2
    exit 1
  fi
  sleep "$SETTLE"
}

for run in $(seq 1 "$RUNS"); do
  log "run $run of $RUNS"
  out=$results/run-$run
  one_run "$out"
done

# ---------------------------------------------------------------- summary

# A figure of every run (key), or an awk expression over a phase's figures, aggregated.
value_of() { # run, key
  field "$2" "$(tr '\n' ' ' <"$results/run-$1/figures.txt")"
}
over_runs() { # awk expression over the phase's keys (as variables), phase, format
  local expression=$1 phase=$2 format=$3 run vars key
  for run in $(seq 1 "$RUNS"); do
    vars=()
    for key in requests duration_s p50_ms p99_ms non2xx connect_errors read_errors write_errors timeouts \
      open_mean open_max refused_503 cut cut_408 cut_other_status cut_silent cut_reset cut_age_mean_s \
      rss_peak fds_peak; do
      vars+=(-v "$key=$(value_of "$run" "$phase.$key")")
    done
    awk "${vars[@]}" "BEGIN { print $expression }"
  done | aggregate "$format"
}
# How the server cut the abuser's connections: the total, its kinds and the mean age.
cuts() { # phase
  local phase=$1 kinds="" kind count
  if [[ $phase == baseline ]]; then echo "–"; return; fi
  for kind in 408:cut_408 "closed without an answer":cut_silent reset:cut_reset "other answer":cut_other_status; do
    count=$(over_runs "${kind#*:}" "$phase" '%d')
    if [[ ! $count =~ ^0( \(0–0\))?$ ]]; then
      kinds="$kinds${kinds:+, }${kind%%:*} $count"
    fi
  done
  printf '%s' "$(over_runs cut "$phase" '%d')"
  if [[ -n $kinds ]]; then printf ' (%s), after %s s on average' "$kinds" "$(over_runs cut_age_mean_s "$phase" '%.1f')"; fi
}
row() { # label, phase
  local phase=$2 abuser refusals
  if [[ $phase == baseline ]]; then
    abuser="0"
    refusals="–"
  else
    abuser="$(over_runs open_mean "$phase" '%.0f'), max $(over_runs open_max "$phase" '%d')"
    refusals=$(over_runs refused_503 "$phase" '%d')
  fi
  echo "| $1 | $(over_runs 'requests / duration_s' "$phase" '%.0f') | $(over_runs '(requests - non2xx) / duration_s' "$phase" '%.0f')" \
    "| $(over_runs '(requests > 0 ? p50_ms : -1)' "$phase" '%.2f' | sed 's/-1\.00/none/g')" \
    "| $(over_runs '(requests > 0 ? p99_ms : -1)' "$phase" '%.2f' | sed 's/-1\.00/none/g')" \
    "| $(over_runs non2xx "$phase" '%d') / $(over_runs 'connect_errors + read_errors + write_errors + timeouts' "$phase" '%d')" \
    "| $abuser | $refusals | $(cuts "$phase")" \
    "| $(over_runs 'rss_peak / 1024' "$phase" '%.1f') | $(over_runs fds_peak "$phase" '%d') |"
}

cores=$(nproc)
{
  echo
  echo "### $SERVER, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "$cores cores; Linux $(uname -r); $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}'); $(python3 --version 2>&1);" \
    "$RUNS run(s) of $((FLOOD_HELD ? 5 : 4)) phases of ${DURATION} s$( ((RUNS > 1)) && echo ', median (min–max) over runs')." \
    "Server: AUTH_MAX_CONNECTIONS=$MAX_CONNECTIONS, AUTH_HEADER_TIMEOUT_SECS=$HEADER_TIMEOUT," \
    "AUTH_BODY_TIMEOUT_SECS=$BODY_TIMEOUT, open-file limit $OPEN_FILES, rate limits off, RUST_LOG=$SERVER_LOG, SQLite." \
    "Probe: wrk -t1 -c$PROBE_CONNECTIONS --latency GET /me with a bearer token, ${probe_seconds} s from 1 s into each phase."
  echo
  echo "| phase | probe requests/s | probe 2xx/s | p50 ms | p99 ms | probe non-2xx / socket errors | abuser connections open: mean, max | 503 refusals read | connections the server cut | peak RSS MiB | server descriptors, peak |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  row "baseline: the probe alone" baseline
  row "slowloris: $SLOW_CONNECTIONS heads at 1 byte/s" slowloris
  row "stalled bodies: $BODY_CONNECTIONS POST /login, 1000-byte body stalled after 10 bytes" stalled
  row "flood: $FLOOD_CONNECTIONS idle connections ($MAX_CONNECTIONS + $FLOOD_EXTRA), the probe arriving 1 s into it" flood
  if ((FLOOD_HELD)); then
    row "flood-held: the same flood, the probe connected 0.3 s before it" flood-held
  fi
  echo
  echo "p50 and p99 are over every answer the probe read, non-2xx included (none: no answer at all);" \
    "a request still unanswered when the probe stops counts nowhere. Cuts: connections the server" \
    "ended other than with a 503 refusal, and how long they had been open."
  echo
  for run in $(seq 1 "$RUNS"); do
    echo "Run $run: GET /me after the phases answered $(value_of "$run" me_after); server log: $(value_of "$run" log_warn) WARN," \
      "$(value_of "$run" log_error) ERROR lines; VmHWM $(awk -v k="$(value_of "$run" hwm)" 'BEGIN { printf "%.1f", k / 1024 }') MiB;" \
      "statuses read by the abusers: slowloris $(value_of "$run" slowloris.statuses), stalled $(value_of "$run" stalled.statuses)," \
      "flood $(value_of "$run" flood.statuses)$( ((FLOOD_HELD)) && echo ", flood-held $(value_of "$run" flood-held.statuses)")."
  done
  if [[ -n ${RESULTS_DIR:-} ]]; then echo; echo "Raw output: $results"; fi
} | tee "$results/summary.md"
