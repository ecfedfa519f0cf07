-- POST /v1/auth/tokens/long with a registered client id and a wrong secret (401 expected).
-- Side by side with fail_unknown_client: the two must take the same time (issue 6, item 6).
dofile(os.getenv("LUA_DIR") .. "/report.lua")
wrk.method = "POST"
wrk.path = "/v1/auth/tokens/long"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"grant_type":"client_credentials","client_id":"%s","client_secret":"%s"}',
  os.getenv("CLIENT_ID"), "tsc_0000000000000000000000000000000000000000000wrong0")
