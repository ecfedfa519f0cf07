-- POST /v1/auth/tokens/{id}/revoke for distinct short-term token ids from IDS_FILE.
dofile(os.getenv("LUA_DIR") .. "/report.lua")
local items, n, i, auth
function init(args)
  items = read_lines("IDS_FILE")
  n = tonumber(os.getenv("THREADS"))
  i = tid
  auth = "Bearer " .. os.getenv("TOKEN")
end
function request()
  local id = items[(i % #items) + 1]
  i = i + n
  return wrk.format("POST", "/v1/auth/tokens/" .. id .. "/revoke", { ["Authorization"] = auth }, nil)
end
