-- POST /v1/auth/tokens/long with a client id nobody has (401 expected), to compare with
-- fail_wrong_secret: an unknown client must not be told apart by time or answer.
dofile(os.getenv("LUA_DIR") .. "/report.lua")
wrk.method = "POST"
wrk.path = "/v1/auth/tokens/long"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"grant_type":"client_credentials","client_id":"%s","client_secret":"%s"}',
  "cli_NoSuchClient0000000", "tsc_0000000000000000000000000000000000000000000wrong0")
