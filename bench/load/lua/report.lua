-- Shared by every scenario: one machine-readable line at the end of a wrk run.
-- Latencies are in microseconds; "bad" counts non-2xx answers and socket errors.
function done(summary, latency, requests)
  local e = summary.errors
  local bad = e.status + e.connect + e.read + e.write + e.timeout
  io.write(string.format(
    "RESULT {\"requests\":%d,\"seconds\":%.3f,\"rps\":%.1f,\"p50\":%d,\"p99\":%d,\"p999\":%d,\"max\":%d,\"bad\":%d}\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max, bad))
end

-- Reads one value per line from the file named by environment variable `var`.
function read_lines(var)
  local t = {}
  for line in io.lines(os.getenv(var)) do t[#t + 1] = line end
  return t
end

-- Gives each wrk thread its own stride through a list, so no item is used twice.
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
