-- POST /v1/auth/tokens/short with long-term bearer tokens, round robin over TOKENS_FILE.
-- The requests are formatted once, in init: formatting one per request in Lua cost wrk about
-- 1 µs of CPU per request more than the ceiling's static request, on the cores it shares with
-- the server (see BENCHMARKS.md).
dofile(os.getenv("LUA_DIR") .. "/report.lua")
local requests, i
function init(args)
  requests = {}
  for _, token in ipairs(read_lines("TOKENS_FILE")) do
    requests[#requests + 1] =
      wrk.format("POST", "/v1/auth/tokens/short", { ["Authorization"] = "Bearer " .. token }, nil)
  end
  i = 0
end
function request()
  i = i + 1
  return requests[(i % #requests) + 1]
end
