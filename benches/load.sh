#!/usr/bin/env bash
# Load benchmark of example-axum (or example-actix) on loopback, with wrk: requests per second and p50/p99
# latency of GET /me against the same route of a bare Axum server (bare_me: the HTTP
# stack alone, the baseline) and against a 404 of our server without token or store (our
# server's stack alone), POST /login and POST /register; GET /me latency while a login flood
# runs; the server's memory during the flood; login throughput as a share of the
# hashing limit measured in the same run; and whole logins with TOTP (POST /login, then
# POST /login/mfa with a code). See benches/BENCHMARKS.md.
#
#   apt-get install wrk curl oathtool   # once (oathtool for the TOTP phase only)
#   benches/load.sh                 # one run: 2.5 to 3 minutes with the default 10 s phases
#   RUNS=3 benches/load.sh          # three runs: medians with min-max
#   DURATION=3 benches/load.sh      # a quick check
#
# Environment (all optional):
#   SERVER=example-axum      the server package (example-actix answers the same contract)
#   SERVER_BIN               a server binary to run instead of building SERVER (an A/B
#                            against another commit's build, say); SERVER names it
#   STORE=sqlite             sqlite: a fresh SQLite file per run; postgres: a fresh schema
#                            per run in PG_URL (default postgres://postgres@127.0.0.1:5432/test),
#                            dropped when the run ends
#   RUNS=1                   independent runs (a fresh server and database each); with
#                            more than one, every figure is the median (min-max)
#   DURATION=10              seconds per wrk phase (at least 3)
#   WRK_THREADS=2            wrk threads per phase (at most the connections)
#   ME_CONNECTIONS=16  LOGIN_CONNECTIONS=16  REGISTER_CONNECTIONS=16
#   FLOOD_CONNECTIONS=64     the login flood during which GET /me is probed
#   PROBE_CONNECTIONS=2      the GET /me probe (few connections: its latency, not its rate)
#   PROBE_PAUSE_MS=1         how long each probe connection waits after an answer before
#                            it asks again (load/probe.lua); 0: closed-loop, as every run
#                            recorded before 2026-12-06 11:00 UTC, where the probe is itself
#                            load and asks more often the faster the server answers
#   FLOOD2_CONNECTIONS=256   a second, larger flood: memory must not grow with connections
#                            (0 skips it)
#   USERS=8                  accounts the login phases cycle through
#   TOTP_CONNECTIONS=$LOGIN_CONNECTIONS   the login-with-TOTP phase, run last (0 skips it):
#                            each connection (one wrk thread each) does whole two-step
#                            logins, POST /login with the password then POST /login/mfa
#                            with a code; the phase starts just after a 30 s TOTP step
#                            begins and lasts DURATION, at most 25 s, so it stays in that
#                            step
#   TOTP_USERS               accounts enrolled for it (with curl; codes from oathtool);
#                            each gives two logins in the phase (its codes of the step and
#                            of the next). Default: enough for 200 logins/s or 1.25 times
#                            the measured hashing limit, whichever is more
#   AUTH_HASH_THREADS, AUTH_HASH_QUEUE, AUTH_HASH_NICENESS, AUTH_HASH_IDLE_SCHEDULING
#                            reach the server (defaults: cores, 128, 0, on)
#   SERVER_LOG=info          the server's RUST_LOG (info: what a deployment logs)
#   LIMITER=off              off: rate limits off (AUTH_RATE_LIMITS=off); memory: every
#                            limit on, in the server's memory, at 10^9 a second (so every
#                            request pays a limiter decision and none is refused); redis:
#                            the same limits counted in Redis (REDIS_URL, default
#                            redis://127.0.0.1:6379, under a fresh AUTH_REDIS_PREFIX)
#   RESULTS_DIR              keep wrk's raw output, the server logs and summary.md there
#   CARGO_TARGET_DIR         where cargo builds (default: target/ in the workspace)
#   MALLOC_*                 glibc tunables reach the server (and hash_once) unchanged, and
#                            are named in the summary
#
# Only 127.0.0.1 is ever contacted; every phase is bounded by DURATION and each server is
# stopped when its run ends (and on exit). Rate limits are off in the server by default
# (AUTH_RATE_LIMITS=off), or the limiter would answer most of this load with 429; with
# LIMITER=memory or redis they are on at limits this load never reaches.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=benches/common.sh
. "$here/common.sh"
root=$(dirname "$here")

SERVER=${SERVER:-example-axum}
RUNS=${RUNS:-1}
DURATION=${DURATION:-10}
WRK_THREADS=${WRK_THREADS:-2}
ME_CONNECTIONS=${ME_CONNECTIONS:-16}
LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-16}
REGISTER_CONNECTIONS=${REGISTER_CONNECTIONS:-16}
FLOOD_CONNECTIONS=${FLOOD_CONNECTIONS:-64}
PROBE_CONNECTIONS=${PROBE_CONNECTIONS:-2}
PROBE_PAUSE_MS=${PROBE_PAUSE_MS:-1}
if ! [[ $PROBE_PAUSE_MS =~ ^[0-9]+$ ]]; then
  echo "error: PROBE_PAUSE_MS is a whole number of milliseconds" >&2
  exit 1
fi
FLOOD2_CONNECTIONS=${FLOOD2_CONNECTIONS:-256}
USERS=${USERS:-8}
TOTP_CONNECTIONS=${TOTP_CONNECTIONS:-$LOGIN_CONNECTIONS}
TOTP_USERS=${TOTP_USERS:-}
SERVER_LOG=${SERVER_LOG:-info}
STORE=${STORE:-sqlite}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
case $STORE in
  sqlite) ;;
  postgres)
    if ! command -v psql >/dev/null 2>&1; then
      echo "error: STORE=postgres needs psql (to drop each run's schema)" >&2
      exit 1
    fi
    ;;
  *) echo "error: STORE is sqlite or postgres" >&2; exit 1 ;;
esac
LIMITER=${LIMITER:-off}
case $LIMITER in
  off | memory | redis) ;;
  *) echo "error: LIMITER is off, memory or redis" >&2; exit 1 ;;
esac
PASSWORD="correct horse battery staple"

for tool in wrk curl cargo awk; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "error: $tool is required (Debian: apt-get install wrk curl)" >&2
    exit 1
  fi
done
for name in RUNS DURATION WRK_THREADS ME_CONNECTIONS LOGIN_CONNECTIONS REGISTER_CONNECTIONS \
  FLOOD_CONNECTIONS PROBE_CONNECTIONS FLOOD2_CONNECTIONS USERS TOTP_CONNECTIONS TOTP_USERS; do
  if [[ $name == TOTP_USERS && -z $TOTP_USERS ]]; then continue; fi
  if ! [[ ${!name} =~ ^[0-9]+$ ]]; then
    echo "error: $name must be a whole number" >&2
    exit 1
  fi
done
if [[ ! $SERVER =~ ^example-(axum|actix)$ ]]; then
  echo "error: SERVER must be example-axum or example-actix" >&2
  exit 1
fi
if ((DURATION < 3 || RUNS < 1 || USERS < 1)); then
  echo "error: DURATION must be at least 3 (seconds), RUNS and USERS at least 1" >&2
  exit 1
fi
if ((TOTP_CONNECTIONS > 0)) && ! command -v oathtool >/dev/null 2>&1; then
  echo "error: oathtool is required for the TOTP phase (Debian: apt-get install oathtool; TOTP_CONNECTIONS=0 skips it)" >&2
  exit 1
fi
if [[ -n $TOTP_USERS ]] && ((TOTP_USERS < 1)); then
  echo "error: TOTP_USERS must be at least 1" >&2
  exit 1
fi
# The TOTP phase must fit in one 30 s step (it starts 0.2 s into it).
totp_seconds=$((DURATION < 25 ? DURATION : 25))

work=$(mktemp -d "${TMPDIR:-/tmp}/auth-load.XXXXXX")
results=${RESULTS_DIR:-$work/results}
mkdir -p "$results"
server_pid=""
sampler_pid=""
pg_schema=""
cleanup() {
  if [[ -n $sampler_pid ]]; then kill "$sampler_pid" 2>/dev/null || true; fi
  stop_server
  drop_schema
  rm -rf "$work"
}
drop_schema() {
  if [[ -n $pg_schema ]]; then
    psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $pg_schema CASCADE" >/dev/null 2>&1 || true
    pg_schema=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ---------------------------------------------------------------- build

log "building $SERVER, bare_me and hash_once (release)"
if [[ -z ${SERVER_BIN:-} ]]; then (cd "$root" && cargo build --release --quiet -p "$SERVER"); fi
(cd "$root" && cargo build --release --quiet -p benches --bin hash_once --bin bare_me)
target_dir=${CARGO_TARGET_DIR:-$root/target}
server_bin=${SERVER_BIN:-$target_dir/release/$SERVER}
if [[ ! -x $server_bin ]]; then
  echo "error: $server_bin is not an executable" >&2
  exit 1
fi
hash_once_bin=$target_dir/release/hash_once
bare_bin=$target_dir/release/bare_me


# ---------------------------------------------------------------- one run

# Runs every phase against a fresh server and database; writes wrk's output to
# $out/<phase>.txt and the run's other figures to $out/figures.txt (key=value lines).
one_run() {
  local out=$1 db
  db=$(mktemp -d "$work/db.XXXXXX")
  mkdir -p "$out" "$db/outbox"

  # Before the server starts, on a quiet machine: one hash alone, and all cores hashing.
  log "single-hash time (argon2id at the default parameters)"
  "$hash_once_bin" --runs 20 | tee "$out/hash_once.txt" >&2
  grep '^hash_once ' "$out/hash_once.txt" | cut -d' ' -f2- | tr ' ' '\n' >"$out/figures.txt"

  # The baseline, also on a quiet machine: the same request, the HTTP stack alone.
  log "baseline: GET /me of a bare Axum server (bare_me), $ME_CONNECTIONS connections, ${DURATION} s"
  start_server "$out/bare.log" "$bare_bin"
  local ticks
  ticks=$(cpu_ticks)
  LOAD_LUA_DIR="$here/load" LOAD_TOKEN=baseline run_wrk "$out/bare" "$ME_CONNECTIONS" "$DURATION" me.lua /me
  figure bare_cpu_us "$(cpu_us_per_request "$ticks" "$out/bare.txt")"
  stop_server

  local database limits=()
  case $STORE in
    sqlite) database="sqlite://$db/auth.db" ;;
    postgres)
      pg_schema="auth_load_$(basename "$db" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z')"
      database=$PG_URL
      # The server refuses PostgreSQL without a key every instance shares: a fresh one.
      limits+=("SECRET_KEY=$(head -c 48 /dev/urandom | base64 | tr -d '\n')")
      ;;
  esac
  log "starting $SERVER on a free loopback port ($STORE: ${pg_schema:-$db}; rate limits: $LIMITER)"
  case $LIMITER in
    off) limits+=(AUTH_RATE_LIMITS=off) ;;
    memory | redis)
      for bucket in LOGIN_FAILURES_PER_ACCOUNT CONSECUTIVE_LOGIN_FAILURES_PER_ACCOUNT LOGIN_ATTEMPTS_PER_CLIENT \
        REGISTRATIONS_PER_CLIENT RESET_REQUESTS_PER_ACCOUNT RESET_REQUESTS_PER_CLIENT CONFIRMATIONS_PER_CLIENT \
        MAILS_PER_ACCOUNT MAILS_PER_CLIENT SECOND_FACTOR_FAILURES_PER_ACCOUNT; do
        limits+=("AUTH_RATE_LIMIT_$bucket=1000000000/second")
      done
      ;;
  esac
  if [[ $LIMITER == redis ]]; then
    limits+=("REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}" "AUTH_REDIS_PREFIX=load-$(basename "$db")")
  fi
  start_server "$out/server.log" \
    DATABASE_URL="$database" \
    ${pg_schema:+AUTH_DATABASE_SCHEMA=$pg_schema} \
    AUTH_MAIL_OUTBOX="$db/outbox" \
    "${limits[@]}" \
    RUST_LOG="$SERVER_LOG" \
    "$server_bin"

  log "registering $USERS accounts"
  local users="" status email token
  for i in $(seq 1 "$USERS"); do
    email="load-$i@example.com"
    status=$(curl -s -o "$db/register.json" -w '%{http_code}' -X POST "$base/register" \
      -H 'Content-Type: application/json' \
      --data "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}")
    if [[ $status != 201 ]]; then
      echo "error: POST /register answered $status: $(cat "$db/register.json")" >&2
      exit 1
    fi
    users="$users $email"
  done
  status=$(curl -s -o "$db/login.json" -w '%{http_code}' -X POST "$base/login" \
    --data-urlencode "username=load-1@example.com" --data-urlencode "password=$PASSWORD")
  token=$(grep -o '"access_token":"[^"]*"' "$db/login.json" | cut -d'"' -f4 || true)
  if [[ $status != 200 || -z $token ]]; then
    echo "error: POST /login answered $status: $(cat "$db/login.json")" >&2
    exit 1
  fi
  status=$(curl -s -o /dev/null -w '%{http_code}' "$base/me" -H "Authorization: Bearer $token")
  if [[ $status != 200 ]]; then
    echo "error: GET /me answered $status" >&2
    exit 1
  fi
  export LOAD_LUA_DIR="$here/load" LOAD_TOKEN="$token" LOAD_USERS="$users" LOAD_PASSWORD="$PASSWORD" \
    LOAD_PROBE_PAUSE_MS="$PROBE_PAUSE_MS"

  figure rss_start "$(rss_kib)"
  log "GET /me: $ME_CONNECTIONS connections, ${DURATION} s"
  ticks=$(cpu_ticks)
  run_wrk "$out/me" "$ME_CONNECTIONS" "$DURATION" me.lua /me
  figure me_cpu_us "$(cpu_us_per_request "$ticks" "$out/me.txt")"
  figure rss_me "$(rss_kib)"
  log "GET of an unrouted path (a 404: the server's stack alone): $ME_CONNECTIONS connections, ${DURATION} s"
  ticks=$(cpu_ticks)
  run_wrk "$out/stack" "$ME_CONNECTIONS" "$DURATION" stack.lua /load/no-route
  figure stack_cpu_us "$(cpu_us_per_request "$ticks" "$out/stack.txt")"
  log "POST /login: $LOGIN_CONNECTIONS connections, ${DURATION} s"
  run_wrk "$out/login" "$LOGIN_CONNECTIONS" "$DURATION" login.lua /login
  figure rss_login "$(rss_kib)"
  log "POST /register: $REGISTER_CONNECTIONS connections, ${DURATION} s"
  run_wrk "$out/register" "$REGISTER_CONNECTIONS" "$DURATION" register.lua /register
  figure rss_register "$(rss_kib)"
  log "GET /me probe, idle: $PROBE_CONNECTIONS connections, ${DURATION} s"
  run_wrk "$out/probe-idle" "$PROBE_CONNECTIONS" "$DURATION" probe.lua /me

  figure rss_before_floods "$(rss_kib)"
  log "login flood: $FLOOD_CONNECTIONS connections, ${DURATION} s, with the GET /me probe"
  flood "$out/flood" "$FLOOD_CONNECTIONS"
  figure rss_peak_flood "$(sort -n "$out/flood-rss.txt" | tail -n 1)"
  if ((FLOOD2_CONNECTIONS > 0)); then
    log "login flood: $FLOOD2_CONNECTIONS connections, ${DURATION} s, with the GET /me probe"
    flood "$out/flood2" "$FLOOD2_CONNECTIONS"
    figure rss_peak_flood2 "$(sort -n "$out/flood2-rss.txt" | tail -n 1)"
  fi
  figure rss_after_floods "$(rss_kib)"
  if ((TOTP_CONNECTIONS > 0)); then
    totp_phase "$out/totp" "$db"
  fi
  figure hwm "$(awk '/^VmHWM:/ {print $2}' "/proc/$server_pid/status")"
  stop_server
  drop_schema
  rm -rf "$db"
}

figure() { echo "$1=$2" >>"$out/figures.txt"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status"; }
# The server's CPU time so far (user + system), in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
# ticks before a phase, the phase's wrk output: the server's CPU µs per request in it.
cpu_us_per_request() {
  local line
  line=$(grep '^RESULT ' "$2" | head -n 1)
  awk -v before="$1" -v after="$(cpu_ticks)" -v hz="$(getconf CLK_TCK)" -v n="$(field requests "$line")" \
    'BEGIN { printf "%.1f", (n > 0) ? (after - before) / hz * 1e6 / n : 0 }'
}

# file prefix, connections, seconds, script, path[, threads]: runs wrk into <prefix>.txt.
run_wrk() {
  local prefix=$1 connections=$2 seconds=$3 script=$4 path=$5
  local threads=${6:-$((WRK_THREADS < connections ? WRK_THREADS : connections))}
  wrk -t "$threads" -c "$connections" -d "${seconds}s" --timeout 30s --latency \
    -s "$here/load/$script" "$base$path" >"$prefix.txt" 2>&1
  if ! grep -q '^RESULT ' "$prefix.txt"; then
    echo "error: wrk gave no result for $prefix:" >&2
    cat "$prefix.txt" >&2
    exit 1
  fi
}

# file prefix, connections: a login flood of DURATION seconds; the GET /me probe runs
# inside it (from 1 s after its start to 1 s before its end) while the server's VmRSS is
# sampled every 100 ms into <prefix>-rss.txt.
flood() {
  local prefix=$1 connections=$2
  : >"$prefix-rss.txt"
  (
    end=$((SECONDS + DURATION + 1))
    while ((SECONDS < end)) && [[ -r /proc/$server_pid/status ]]; do
      awk '/^VmRSS:/ {print $2}' "/proc/$server_pid/status" >>"$prefix-rss.txt" 2>/dev/null || true
      sleep 0.1
    done
  ) &
  sampler_pid=$!
  run_wrk "$prefix" "$connections" "$DURATION" login.lua /login &
  local flood_pid=$!
  sleep 1
  run_wrk "$prefix-probe" "$PROBE_CONNECTIONS" $((DURATION - 2)) probe.lua /me
  wait "$flood_pid"
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=""
}

# One account with two-factor authentication: registers totp-<index>@example.com, logs in,
# begins the enrolment with the password and confirms it with oathtool's current code;
# prints "email secret". Run by xargs (exported): any failure exits 255, which stops xargs.
enrol_totp() { # base URL, index, scratch directory
  local base=$1 i=$2 dir=$3 email body status token secret
  email="totp-$i@example.com"
  body="$dir/enrol-$i.json"
  status=$(curl -s -o "$body" -w '%{http_code}' -X POST "$base/register" \
    -H 'Content-Type: application/json' --data "{\"email\":\"$email\",\"password\":\"$PASSWORD\"}")
  if [[ $status != 201 ]]; then
    echo "error: POST /register ($email) answered $status: $(cat "$body")" >&2
    exit 255
  fi
  status=$(curl -s -o "$body" -w '%{http_code}' -X POST "$base/login" \
    --data-urlencode "username=$email" --data-urlencode "password=$PASSWORD")
  token=$(grep -o '"access_token":"[^"]*"' "$body" | cut -d'"' -f4 || true)
  if [[ $status != 200 || -z $token ]]; then
    echo "error: POST /login ($email) answered $status: $(cat "$body")" >&2
    exit 255
  fi
  status=$(curl -s -o "$body" -w '%{http_code}' -X POST "$base/mfa/totp/setup" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data "{\"password\":\"$PASSWORD\"}")
  secret=$(grep -o '"secret":"[^"]*"' "$body" | cut -d'"' -f4 || true)
  if [[ $status != 200 || ! $secret =~ ^[A-Z2-7]+=*$ ]]; then
    echo "error: POST /mfa/totp/setup ($email) answered $status" >&2
    exit 255
  fi
  status=$(curl -s -o "$body" -w '%{http_code}' -X POST "$base/mfa/totp/confirm" \
    -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    --data "{\"code\":\"$(oathtool --totp -b "$secret")\"}")
  if [[ $status != 200 ]]; then
    echo "error: POST /mfa/totp/confirm ($email) answered $status: $(cat "$body")" >&2
    exit 255
  fi
  rm -f "$body"
  echo "$email $secret"
}

# file prefix, scratch directory: the login-with-TOTP phase. Enrols the accounts, computes
# each one's codes of the step the phase will start in and of the next, waits for that
# step to begin and runs totp.lua for totp_seconds, one wrk thread per connection.
totp_phase() {
  local prefix=$1 dir=$2 users limit started boundary now detail email secret
  if [[ -n $TOTP_USERS ]]; then
    users=$TOTP_USERS
  else
    # Two logins per account; at least 200 logins/s, or 1.25 x cores / one hash.
    limit=$(field limit_per_s "$(tr '\n' ' ' <"$out/figures.txt")")
    users=$(awk -v s="$totp_seconds" -v l="$limit" \
      'BEGIN { r = (l * 1.25 > 200) ? l * 1.25 : 200; u = s * r / 2; print (u == int(u)) ? u : int(u) + 1 }')
  fi
  log "login with TOTP: enrolling $users accounts (register, login, setup, confirm)"
  started=$SECONDS
  export PASSWORD
  export -f enrol_totp
  seq 1 "$users" | xargs -P "$(($(nproc) * 2))" -I{} bash -c 'enrol_totp "$@"' _ "$base" {} "$dir" \
    >"$dir/totp-secrets.txt"
  if (($(wc -l <"$dir/totp-secrets.txt") != users)); then
    echo "error: enrolled $(wc -l <"$dir/totp-secrets.txt") of $users accounts" >&2
    exit 1
  fi
  figure totp_users "$users"
  figure totp_enrol_s "$((SECONDS - started))"

  # The codes of steps s, s+1 and s+2, s the next step; if computing them took until s
  # began, the phase starts with step s+1 instead: each account's codes of the phase's
  # first step and of the next.
  boundary=$((($(date +%s) / 30 + 1) * 30))
  while read -r email secret; do
    echo "$email $(oathtool --totp -b "$secret" --now "@$boundary" -w 2 | paste -sd ' ')"
  done <"$dir/totp-secrets.txt" >"$dir/totp-codes3.txt"
  if (($(date +%s) < boundary)); then
    awk '{ print $1, $2, $3 }' "$dir/totp-codes3.txt" >"$dir/totp-codes.txt"
  else
    boundary=$((boundary + 30))
    awk '{ print $1, $3, $4 }' "$dir/totp-codes3.txt" >"$dir/totp-codes.txt"
  fi
  now=$(date +%s.%N)
  log "login with TOTP: $TOTP_CONNECTIONS connections, $totp_seconds s, from $(date -u -d "@$boundary" +%H:%M:%S) UTC (step $((boundary / 30)); waiting $(awk -v b="$boundary" -v n="$now" 'BEGIN { printf "%.1f", b - n }') s)"
  sleep "$(awk -v b="$boundary" -v n="$now" 'BEGIN { w = b + 0.2 - n; printf "%.3f", (w > 0) ? w : 0 }')"
  LOAD_TOTP_FILE="$dir/totp-codes.txt" LOAD_TOTP_THREADS=$TOTP_CONNECTIONS LOAD_TOTP_DEADLINE=$((boundary + 29)) \
    run_wrk "$prefix" "$TOTP_CONNECTIONS" "$totp_seconds" totp.lua /login "$TOTP_CONNECTIONS"
  figure totp_phase_end_s "$(($(date +%s) - boundary))"
  detail=$(grep '^DETAIL ' "$prefix.txt" | head -n 1)
  echo "$detail" >&2
  if (($(field threads_out_of_codes "$detail") + $(field threads_past_deadline "$detail") > 0)); then
    echo "warning: some connections stopped before the phase's end (out of codes or past the step):" \
      "the TOTP login rate is a lower bound; raise TOTP_USERS" >&2
  fi
}

for run in $(seq 1 "$RUNS"); do
  log "run $run of $RUNS"
  one_run "$results/run-$run"
done

# ---------------------------------------------------------------- summary

# key, format: a figure of figures.txt over the runs.
over_runs() {
  for run in $(seq 1 "$RUNS"); do field "$1" "$(tr '\n' ' ' <"$results/run-$run/figures.txt")"; echo; done |
    aggregate "$2"
}
# phase, awk expression over the RESULT fields (n, d, bad, errors, p50, p99), format.
wrk_over_runs() {
  local phase=$1 expression=$2 format=$3 line
  for run in $(seq 1 "$RUNS"); do
    line=$(grep '^RESULT ' "$results/run-$run/$phase.txt" | head -n 1)
    awk -v n="$(field requests "$line")" -v d="$(field duration_s "$line")" \
      -v bad="$(field non2xx "$line")" -v p50="$(field p50_ms "$line")" -v p99="$(field p99_ms "$line")" \
      -v errors="$(($(field connect_errors "$line") + $(field read_errors "$line") + $(field write_errors "$line") + $(field timeouts "$line")))" \
      "BEGIN { print $expression }"
  done | aggregate "$format"
}
row() { # label, connections, phase
  echo "| $1 | $2 | $(wrk_over_runs "$3" 'n / d' '%.1f') | $(wrk_over_runs "$3" '(n - bad) / d' '%.1f')" \
    "| $(wrk_over_runs "$3" p50 '%.2f') | $(wrk_over_runs "$3" p99 '%.2f')" \
    "| $(wrk_over_runs "$3" bad '%d') | $(wrk_over_runs "$3" errors '%d') |"
}
# The ratio of successful logins per second in <phase> to figure <key>, per run.
login_share() { # phase, key
  local phase=$1 key=$2 line limit
  for run in $(seq 1 "$RUNS"); do
    line=$(grep '^RESULT ' "$results/run-$run/$phase.txt" | head -n 1)
    limit=$(field "$key" "$(tr '\n' ' ' <"$results/run-$run/figures.txt")")
    awk -v n="$(field requests "$line")" -v d="$(field duration_s "$line")" -v bad="$(field non2xx "$line")" \
      -v limit="$limit" 'BEGIN { print (limit > 0) ? (n - bad) / d / limit : 0 }'
  done | aggregate '%.2f'
}
# A phase's answers a second as a share of the baseline's 2xx/s, per run: GET /me's 2xx,
# or (stack) every answer, since the unrouted path's answer is a 404.
baseline_share() { # [phase]
  local run phase=${1:-me} me bare
  for run in $(seq 1 "$RUNS"); do
    me=$(grep '^RESULT ' "$results/run-$run/$phase.txt" | head -n 1)
    bare=$(grep '^RESULT ' "$results/run-$run/bare.txt" | head -n 1)
    awk -v n="$(field requests "$me")" -v d="$(field duration_s "$me")" \
      -v bad="$([[ $phase == stack ]] && echo 0 || field non2xx "$me")" \
      -v bn="$(field requests "$bare")" -v bd="$(field duration_s "$bare")" -v bbad="$(field non2xx "$bare")" \
      'BEGIN { print ((bn - bbad) > 0) ? ((n - bad) / d) / ((bn - bbad) / bd) : 0 }'
  done | aggregate '%.2f'
}
mib_over_runs() { # key
  for run in $(seq 1 "$RUNS"); do
    awk -v k="$(field "$1" "$(tr '\n' ' ' <"$results/run-$run/figures.txt")")" 'BEGIN { print k / 1024 }'
  done | aggregate '%.1f'
}

cores=$(field cores "$(tr '\n' ' ' <"$results/run-1/figures.txt")")
permits=${AUTH_HASH_THREADS:-$cores}
hash_mib=19
malloc_env=$(env | grep '^MALLOC_' | sort | tr '\n' ' ' | sed 's/ $//' || true)

{
  echo
  echo "## Load benchmark: $SERVER on $(case $STORE in sqlite) echo SQLite ;; postgres) echo PostgreSQL ;; esac), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "$cores cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)); $(wrk --version 2>&1 | head -n 1 | awk '{print $1, $2}');" \
    "$RUNS run(s) of ${DURATION} s per phase$( ((RUNS > 1)) && echo ', median (min–max) over runs')." \
    "Server${SERVER_BIN:+ $SERVER_BIN}: hash pool ${AUTH_HASH_THREADS:-$cores} threads, queue ${AUTH_HASH_QUEUE:-128}, niceness ${AUTH_HASH_NICENESS:-0}, idle scheduling beyond the first thread ${AUTH_HASH_IDLE_SCHEDULING:-on};" \
    "rate limits $(case $LIMITER in off) echo off ;; memory) echo 'on, in memory, every bucket at 10^9/s' ;; redis) echo 'on, in Redis on loopback, every bucket at 10^9/s' ;; esac);" \
    "RUST_LOG=$SERVER_LOG; glibc malloc${malloc_env:+ with $malloc_env}." \
    "The GET /me probe: $PROBE_CONNECTIONS connections, $( ((PROBE_PAUSE_MS > 0)) && echo "each pausing $PROBE_PAUSE_MS ms after every answer" || echo 'closed-loop (no pause)')."
  echo
  echo "| phase | connections | requests/s | 2xx/s | p50 ms | p99 ms | non-2xx | socket errors |"
  echo "|---|---|---|---|---|---|---|---|"
  row "GET /me, bare Axum baseline (bare_me)" "$ME_CONNECTIONS" bare
  row "GET /me" "$ME_CONNECTIONS" me
  row "GET of an unrouted path, no token (404): the server's stack alone" "$ME_CONNECTIONS" stack
  row "POST /login" "$LOGIN_CONNECTIONS" login
  if ((TOTP_CONNECTIONS > 0)); then
    row "login with TOTP, run last$( ((totp_seconds < DURATION)) && echo " for $totp_seconds s"): POST /login, then POST /login/mfa; $(
      if grep -q '^DETAIL .*latency=per_login' "$results/run-1/totp.txt"; then
        echo 'rates, p50/p99 and non-2xx per whole two-step login'
      else
        echo 'rates per whole two-step login, p50/p99 per HTTP request'
      fi)" "$TOTP_CONNECTIONS" totp
  fi
  row "POST /register" "$REGISTER_CONNECTIONS" register
  row "GET /me probe, idle" "$PROBE_CONNECTIONS" probe-idle
  row "POST /login flood" "$FLOOD_CONNECTIONS" flood
  row "GET /me probe during the $FLOOD_CONNECTIONS-connection flood" "$PROBE_CONNECTIONS" flood-probe
  if ((FLOOD2_CONNECTIONS > 0)); then
    row "POST /login flood" "$FLOOD2_CONNECTIONS" flood2
    row "GET /me probe during the $FLOOD2_CONNECTIONS-connection flood" "$PROBE_CONNECTIONS" flood2-probe
  fi
  if ((TOTP_CONNECTIONS > 0)); then
    for run in $(seq 1 "$RUNS"); do
      line=$(grep '^DETAIL ' "$results/run-$run/totp.txt" | head -n 1)
      stopped=$(($(field threads_out_of_codes "$line") + $(field threads_past_deadline "$line")))
      if ((stopped > 0)); then
        echo
        echo "Run $run: $stopped of the $TOTP_CONNECTIONS login-with-TOTP connections stopped before the phase's end" \
          "(out of codes or past the step): that run's login-with-TOTP rate is a lower bound (raise TOTP_USERS)."
      fi
    done
  fi
  echo
  echo "GET /me as a share of the baseline's requests/s, per run: $(baseline_share)." \
    "The stack alone (the unrouted path's 404s), the same way: $(baseline_share stack)." \
    "The server's CPU time per request (user + system, from /proc): bare_me $(over_runs bare_cpu_us '%.1f') µs," \
    "the stack alone $(over_runs stack_cpu_us '%.1f') µs, GET /me $(over_runs me_cpu_us '%.1f') µs."
  echo
  echo "Hashing limit, measured before each run by \`hash_once\`: argon2id m=19456,t=2,p=1, one hash" \
    "$(over_runs median_ms '%.2f') ms (median of 20); $cores cores / that = $(over_runs limit_per_s '%.1f') hashes/s;" \
    "$cores threads hashing at once measured $(over_runs parallel_per_s '%.1f') hashes/s."
  echo
  echo "| login throughput | logins/s | share of the hashing limit | share of the measured parallel rate |"
  echo "|---|---|---|---|"
  echo "| POST /login, $LOGIN_CONNECTIONS connections | $(wrk_over_runs login '(n - bad) / d' '%.1f') |" \
    "$(login_share login limit_per_s) | $(login_share login parallel_per_s) |"
  echo "| POST /login flood, $FLOOD_CONNECTIONS connections | $(wrk_over_runs flood '(n - bad) / d' '%.1f') |" \
    "$(login_share flood limit_per_s) | $(login_share flood parallel_per_s) |"
  echo
  echo "| server memory (VmRSS) | MiB |"
  echo "|---|---|"
  echo "| after start-up and $USERS registrations | $(mib_over_runs rss_start) |"
  echo "| after the GET /me phase | $(mib_over_runs rss_me) |"
  echo "| after the POST /login phase | $(mib_over_runs rss_login) |"
  echo "| after the POST /register phase | $(mib_over_runs rss_register) |"
  echo "| before the floods | $(mib_over_runs rss_before_floods) |"
  echo "| peak during the $FLOOD_CONNECTIONS-connection flood (sampled every 100 ms) | $(mib_over_runs rss_peak_flood) |"
  if ((FLOOD2_CONNECTIONS > 0)); then
    echo "| peak during the $FLOOD2_CONNECTIONS-connection flood | $(mib_over_runs rss_peak_flood2) |"
  fi
  echo "| after the floods | $(mib_over_runs rss_after_floods) |"
  echo "| VmHWM: the peak over the whole run | $(mib_over_runs hwm) |"
  echo "| expected bound: start-up + $permits hash permits x $hash_mib MiB | start-up + $((permits * hash_mib)) |"
  echo
  if [[ -n ${RESULTS_DIR:-} ]]; then echo "Raw wrk output and the server logs: $results"; fi
} | tee "$results/summary.md"
