-- POST /v1/auth/tokens/introspect of a short-term JWT, by a caller with tokens:introspect.
dofile(os.getenv("LUA_DIR") .. "/report.lua")
wrk.method = "POST"
wrk.path = "/v1/auth/tokens/introspect"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"token":"' .. os.getenv("JWT") .. '"}'
