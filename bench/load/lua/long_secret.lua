-- POST /v1/auth/tokens/long with a client secret (each 201 is a durable insert).
dofile(os.getenv("LUA_DIR") .. "/report.lua")
wrk.method = "POST"
wrk.path = "/v1/auth/tokens/long"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format('{"grant_type":"client_credentials","client_id":"%s","client_secret":"%s"}',
  os.getenv("CLIENT_ID"), os.getenv("CLIENT_SECRET"))
