-- The GET /me probe of benches/load.sh (idle and inside the login floods): GET /me with the
-- bearer token of a logged-in user (LOAD_TOKEN), paced: each connection waits
-- LOAD_PROBE_PAUSE_MS milliseconds after an answer before it asks again, as a client that
-- is not itself load does. Latency is counted from sending to the answer, never the pause.
-- With 0 the probe is closed-loop: each connection asks again the moment it is answered,
-- so it spends every CPU cycle the server gives it, and its rate rises as the server gets
-- faster.
dofile(os.getenv("LOAD_LUA_DIR") .. "/me.lua")

local pause = tonumber(os.getenv("LOAD_PROBE_PAUSE_MS") or "0")
if pause > 0 then
  function delay()
    return pause
  end
end
