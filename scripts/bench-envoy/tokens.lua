-- The wrk script of scripts/bench-envoy.sh. Every request is `GET /` with
-- `Authorization: Bearer TOKEN`, cycling through the tokens file named after `--` (one token a
-- line). The requests are formatted once, in init(), so that wrk spends little per request.
-- done() prints one `RESULT key=value ...` line for the script to read (times in µs).
local requests = {}
local count = 0
local index = 0

function init(args)
  local path = args[#args]
  local file = assert(io.open(path, "r"), "cannot open the tokens file " .. tostring(path))
  for line in file:lines() do
    if line ~= "" then
      local headers = {}
      for name, value in pairs(wrk.headers) do
        headers[name] = value
      end
      headers["Authorization"] = "Bearer " .. line
      count = count + 1
      requests[count] = wrk.format("GET", "/", headers)
    end
  end
  file:close()
  assert(count > 0, "no tokens in " .. path)
end

function request()
  index = index % count + 1
  return requests[index]
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    errors.status, errors.connect, errors.read, errors.write, errors.timeout))
end
