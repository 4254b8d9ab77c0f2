-- GET /me with the bearer token of a logged-in user (LOAD_TOKEN).
dofile(os.getenv("LOAD_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
wrk.path = "/me"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("LOAD_TOKEN")

done = report
