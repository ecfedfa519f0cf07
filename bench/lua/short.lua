-- POST /v1/auth/tokens/short with long-term bearer tokens, round robin over TOKENS_FILE.
dofile(os.getenv("LUA_DIR") .. "/report.lua")
local tokens, i
function init(args)
  tokens = read_lines("TOKENS_FILE")
  i = 0
end
function request()
  i = i + 1
  return wrk.format("POST", "/v1/auth/tokens/short",
    { ["Authorization"] = "Bearer " .. tokens[(i % #tokens) + 1] }, nil)
end
