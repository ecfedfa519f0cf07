-- POST /v1/auth/tokens/long with single-use EdDSA assertions from ASSERTIONS_FILE.
dofile(os.getenv("LUA_DIR") .. "/report.lua")
local items, n, i
function init(args)
  items = read_lines("ASSERTIONS_FILE")
  n = tonumber(os.getenv("THREADS"))
  i = tid
end
function request()
  local a = items[(i % #items) + 1]
  i = i + n
  return wrk.format("POST", "/v1/auth/tokens/long", { ["Content-Type"] = "application/json" },
    '{"grant_type":"assertion","assertion":"' .. a .. '"}')
end
