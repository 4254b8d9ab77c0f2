-- Shared by the wrk scripts of benches/load.sh: form encoding and one machine-readable
-- result line per run. Loaded with dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua").

-- application/x-www-form-urlencoded (spaces as '+').
function urlencode(s)
  s = string.gsub(s, "([^%w%-%._~ ])", function(c)
    return string.format("%%%02X", string.byte(c))
  end)
  return (string.gsub(s, " ", "+"))
end

-- Escapes a string for a JSON string literal (the values here are plain ASCII).
function json_string(s)
  return '"' .. string.gsub(s, '(["\\])', "\\%1") .. '"'
end

-- wrk calls `done` once, after every thread has finished. Latencies are in microseconds.
-- errors.status counts the "Non-2xx or 3xx responses" of wrk's own summary.
function report(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      .. "non2xx=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout))
end
