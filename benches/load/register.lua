-- POST /register with a new email on every request: a per-thread counter, the thread's
-- number and a random tag (so reruns against the same database never collide), with the
-- password LOAD_PASSWORD.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local headers = { ["Content-Type"] = "application/json" }
local password = os.getenv("LOAD_PASSWORD")
local counter = 0
local tag = "0"

function setup(thread)
  thread_count = (thread_count or 0) + 1
  thread:set("id", thread_count)
end

function init(args)
  math.randomseed(os.time() * 1000 + (id or 0))
  tag = string.format("%d-%06d", id or 0, math.random(0, 999999))
end

function request()
  counter = counter + 1
  local email = string.format("reg-%s-%d@example.com", tag, counter)
  local body = '{"email":' .. json_string(email) .. ',"password":' .. json_string(password) .. "}"
  return wrk.format("POST", "/register", headers, body)
end

done = report
