-- GET of a path no route serves, without a token: a 404 through every layer of the server
-- (the accept loop and its timers, the security headers, the trace layer, the router)
-- with no token check and no store behind it. What the server's HTTP stack alone costs,
-- between bare_me and GET /me.
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/load/no-route"

done = report
