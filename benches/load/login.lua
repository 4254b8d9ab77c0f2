-- POST /login as the OAuth2 password flow sends it (a form with username and password),
-- round-robin over the accounts in LOAD_USERS (space-separated emails), all with the
-- password LOAD_PASSWORD.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

local bodies = {}
local password = os.getenv("LOAD_PASSWORD")
for email in string.gmatch(os.getenv("LOAD_USERS"), "%S+") do
  bodies[#bodies + 1] = "username=" .. urlencode(email) .. "&password=" .. urlencode(password)
end
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local next_body = 0

-- Threads start at different accounts.
function setup(thread)
  thread_count = (thread_count or 0) + 1
  thread:set("start", thread_count)
end

function init(args)
  next_body = (start or 0) % #bodies
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/login", headers, bodies[next_body])
end

done = report
