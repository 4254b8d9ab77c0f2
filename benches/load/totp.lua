-- A whole two-step login per iteration: POST /login with the password (a form, as
-- login.lua sends it), which answers an account with two-factor authentication with
-- {"mfa_required":true,"mfa_token":...}, then POST /login/mfa {"mfa_token","code"} with a
-- precomputed TOTP code, which answers the token pair.
--
-- LOAD_TOTP_FILE: one account a line, "email code_s code_s1": the codes of time step s,
-- the step the phase starts in, and of step s+1 (both accepted during step s, ±1 step of
-- drift). The store keeps each account's last used step and refuses any step at or below
-- it, so every account gives two logins, step s's code first, then step s+1's.
-- LOAD_TOTP_THREADS: wrk's thread count, which must equal its connection count: each
-- thread has one connection, so its request() and response() calls alternate for that one
-- connection and the two steps of a login stay on it. Thread k (1-based) takes the lines
-- k, k + threads, k + 2 threads, ...: no two connections ever share an account.
-- LOAD_TOTP_DEADLINE: a Unix time (the end of step s, less a margin); no login is started
-- at or after it, nor once the thread's codes are spent: the thread stops instead. A code
-- is never sent twice, so a refused replay cannot happen here; any refusal is counted as a
-- failed login, never as a login.
--
-- The RESULT line (common.lua's format) counts whole two-step logins: requests = logins
-- finished (both steps answered 200, or a step answered otherwise), non2xx = those that
-- failed at either step; latency = from sending POST /login to the answer of
-- POST /login/mfa, over the logins that succeeded, when LuaJIT's ffi gives a monotonic
-- clock (latency=per_login on the DETAIL line); without it, wrk's own histogram, which is
-- per HTTP request (latency=per_request). Socket errors are wrk's, per connection event.
-- Logins cut by the end of the phase are not counted (nor, on the DETAIL line as
-- logins_cut, those whose code step lost its connection).
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local form_headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local json_headers = { ["Content-Type"] = "application/json" }
local password = os.getenv("LOAD_PASSWORD")
local deadline = tonumber(os.getenv("LOAD_TOTP_DEADLINE"))
local thread_total = tonumber(os.getenv("LOAD_TOTP_THREADS"))

-- A monotonic clock in microseconds (LuaJIT's ffi; wrk is built on LuaJIT).
local clock_us = nil
do
  local ok, ffi = pcall(require, "ffi")
  if ok then
    ok = pcall(ffi.cdef, [[
      typedef struct { long tv_sec; long tv_nsec; } load_totp_timespec;
      int clock_gettime(int clock_id, load_totp_timespec *tp);
    ]])
    if ok then
      local ts = ffi.new("load_totp_timespec")
      clock_us = function()
        ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
        return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
      end
    end
  end
end

-- ------------------------------------------------------------ setup and done (main state)

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("id", #threads)
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  local rank = math.ceil(p / 100 * #sorted)
  if rank < 1 then rank = 1 end
  return sorted[rank]
end

local function collect(name)
  local all = {}
  for _, thread in ipairs(threads) do
    for _, v in ipairs(thread:get(name) or {}) do all[#all + 1] = v end
  end
  table.sort(all)
  return all
end

function done(summary, latency, requests)
  local ok, failed, cut, exhausted, late = 0, 0, 0, 0, 0
  local fail_status = {}
  for _, thread in ipairs(threads) do
    ok = ok + (thread:get("logins_ok") or 0)
    failed = failed + (thread:get("logins_failed") or 0)
    cut = cut + (thread:get("logins_cut") or 0)
    if thread:get("stop_reason") == "codes spent" then exhausted = exhausted + 1 end
    if thread:get("stop_reason") == "deadline" then late = late + 1 end
    local first = thread:get("first_failure")
    if first and first ~= "" then fail_status[#fail_status + 1] = first end
  end
  local whole, step1, step2 = collect("whole_us"), collect("step1_us"), collect("step2_us")
  local per_login = (#whole > 0)
  local p50, p90, p99, max
  if per_login then
    p50, p90, p99, max = percentile(whole, 50), percentile(whole, 90), percentile(whole, 99), whole[#whole]
  else
    p50, p90, p99, max = latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      .. "non2xx=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    ok + failed, seconds, (ok + failed) / seconds, p50 / 1000, p90 / 1000, p99 / 1000, max / 1000,
    failed, e.connect, e.read, e.write, e.timeout))
  io.write(string.format(
    "DETAIL latency=%s logins_ok=%d logins_failed=%d logins_cut=%d "
      .. "wrk_responses=%d wrk_status_errors=%d threads=%d threads_out_of_codes=%d threads_past_deadline=%d "
      .. "password_step_p50_ms=%.3f password_step_p99_ms=%.3f code_step_p50_ms=%.3f code_step_p99_ms=%.3f "
      .. "http_p50_ms=%.3f http_p99_ms=%.3f\n",
    per_login and "per_login" or "per_request", ok, failed, cut,
    summary.requests, e.status, #threads, exhausted, late,
    percentile(step1, 50) / 1000, percentile(step1, 99) / 1000,
    percentile(step2, 50) / 1000, percentile(step2, 99) / 1000,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  if #fail_status > 0 then
    io.write("FAILURES " .. table.concat(fail_status, " | ") .. "\n")
  end
end

-- ------------------------------------------------------------ running (one state a thread)

local slots = {} -- { form body of step 1, code } in the order they are used
local next_slot = 0
local pending = nil -- "password", "code" or "none": the request whose answer is awaited
local code = nil
local mfa_token = nil
local started_us, step2_started_us = 0, 0
-- Globals, read by done() through thread:get().
logins_ok, logins_failed, logins_cut = 0, 0, 0
whole_us, step1_us, step2_us = {}, {}, {}
stop_reason = ""
first_failure = ""

function init(args)
  local path = os.getenv("LOAD_TOTP_FILE")
  local file = assert(io.open(path, "r"))
  local line_number = 0
  for line in file:lines() do
    local email, code_s, code_s1 = string.match(line, "^(%S+) (%d+) (%d+)$")
    if email then
      line_number = line_number + 1
      if (line_number - 1) % thread_total == (id or 1) - 1 then
        local body = "username=" .. urlencode(email) .. "&password=" .. urlencode(password)
        slots[#slots + 1] = { body, code_s }
        slots[#slots + 1] = { body, code_s1 }
      end
    end
  end
  file:close()
end

local function now_us()
  return clock_us and clock_us() or 0
end

-- Whether another login may start; if not, the thread stops (after this answer, so
-- request() is not called again).
local function may_start()
  if next_slot >= #slots then
    stop_reason = "codes spent"
  elseif os.time() >= deadline then
    stop_reason = "deadline"
  else
    return true
  end
  wrk.thread:stop()
  return false
end

local function fail(step, status)
  logins_failed = logins_failed + 1
  if first_failure == "" then
    first_failure = string.format("thread %d: %s step answered %s", id or 0, step, tostring(status))
  end
end

function request()
  if pending == "password" then
    -- The previous request got no answer: wrk's check of the script on its first thread
    -- (it calls request() once and never sends what it returns), or a socket error (wrk
    -- reconnected). No code was sent: the slot is used again.
    next_slot = next_slot - 1
  elseif pending == "code" then
    -- A socket error after the code was sent: that login is lost, and as the server may
    -- have used its code, the code is never sent again.
    logins_cut = logins_cut + 1
  end
  pending = nil
  if mfa_token ~= nil then
    local body = '{"mfa_token":' .. json_string(mfa_token) .. ',"code":' .. json_string(code) .. "}"
    mfa_token = nil
    pending = "code"
    step2_started_us = now_us()
    return wrk.format("POST", "/login/mfa", json_headers, body)
  end
  if next_slot >= #slots or os.time() >= deadline then
    -- Not reached in a normal run (response() stops the thread first): a request that is
    -- no login and is not counted as one.
    may_start()
    pending = "none"
    return wrk.format("GET", "/me", { Authorization = "Bearer " .. os.getenv("LOAD_TOKEN") })
  end
  next_slot = next_slot + 1
  local slot = slots[next_slot]
  code = slot[2]
  pending = "password"
  started_us = now_us()
  return wrk.format("POST", "/login", form_headers, slot[1])
end

function response(status, headers, body)
  local step = pending
  pending = nil
  if step == "password" then
    local token = (status == 200) and string.match(body, '"mfa_token"%s*:%s*"([^"]+)"') or nil
    if token then
      mfa_token = token
      if clock_us then step1_us[#step1_us + 1] = now_us() - started_us end
      return
    end
    fail("password", status == 200 and "200 without mfa_token" or status)
  elseif step == "code" then
    if status == 200 and string.find(body, '"access_token"', 1, true) then
      logins_ok = logins_ok + 1
      local t = now_us()
      if clock_us then
        whole_us[#whole_us + 1] = t - started_us
        step2_us[#step2_us + 1] = t - step2_started_us
      end
    else
      fail("code", status)
    end
  end
  may_start()
end
