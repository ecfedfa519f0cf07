-- The ceiling server's fixed answer, same route and method as the hot path.
dofile(os.getenv("LUA_DIR") .. "/report.lua")
wrk.method = "POST"
wrk.path = "/v1/auth/tokens/short"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
