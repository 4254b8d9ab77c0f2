# Shared by benches/load.sh and benches/abuse.sh, which source it: logging, key=value
# fields, the aggregate of several runs, and starting and stopping the server under test.
# The caller sets `server_pid=""` before its cleanup trap can run.

log() { printf '\n=== %s\n' "$*" >&2; }

# The value of key=value in a line of such pairs (0 if absent).
field() { # key, line
  local value
  value=$(printf '%s\n' "$2" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k {print $2}')
  printf '%s' "${value:-0}"
}

# Reads one number per line; prints the median, with (min-max) when there are several.
aggregate() { # printf format
  sort -g | awk -v fmt="$1" '
    { v[NR] = $1 }
    END {
      if (NR == 0) { print "n/a"; exit }
      median = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf fmt, median
      if (NR > 1) { printf " (" fmt "–" fmt ")", v[1], v[NR] }
    }'
}

# Starts a server on a free loopback port (BIND=127.0.0.1:0) and waits until it logs
# `listening address=<ip:port>`; sets server_pid, base (http://<ip:port>) and port. Exits
# if the server dies first, is silent for 30 s, or listens elsewhere than on 127.0.0.1.
start_server() { # log file, then the program and its environment as `env` takes them
  local log_file=$1 address=""
  shift
  env BIND=127.0.0.1:0 "$@" >"$log_file" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 300); do
    address=$(grep -o 'listening address=[0-9.:]*' "$log_file" 2>/dev/null | head -n 1 | cut -d= -f2 || true)
    [[ -n $address ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "error: the server exited:" >&2
      cat "$log_file" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [[ -z $address ]]; then
    echo "error: the server did not log its address within 30 s" >&2
    exit 1
  fi
  if [[ $address != 127.0.0.1:* ]]; then
    echo "error: the server listens on $address, not on 127.0.0.1" >&2
    exit 1
  fi
  base="http://$address"
  port=${address##*:}
  echo "server pid $server_pid at $base" >&2
}

# Stops the server start_server started, if it runs, and waits for it.
stop_server() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
