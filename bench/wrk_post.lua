-- POSTs pre-signed deliveries, each once, split between wrk's threads.
--
--   wrk -t T -c C -d 10s -s bench/wrk_post.lua http://127.0.0.1:PORT \
--       -- /webhooks/bench/ deliveries.tsv T
--
-- deliveries.tsv: one "<jwt>\t<json body>" per line. Two optional arguments
-- after T name another header for the first column and its prefix
-- (default "Authorization" and "Bearer "): bench/peer.py sends
-- "Stripe-Signature" with none. A thread that runs out
-- of lines starts again (the server then sees copies); `wrapped` says so.
-- done() prints one JSON line for bench/intake.py.

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  local path, file, nthreads = args[1], args[2], tonumber(args[3])
  local header, prefix = args[4] or "Authorization", args[5] or "Bearer "
  requests_ = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == id then
      local tab = line:find("\t", 1, true)
      local headers = {
        ["Content-Type"] = "application/json",
        [header] = prefix .. line:sub(1, tab - 1),
      }
      table.insert(requests_, wrk.format("POST", path, headers, line:sub(tab + 1)))
    end
    i = i + 1
  end
  index = 0
  wrapped = 0
end

function request()
  index = index + 1
  if index > #requests_ then
    index = 1
    wrapped = wrapped + 1
  end
  return requests_[index]
end

function done(summary, latency, requests)
  local wraps = 0
  for _, thread in ipairs(threads) do
    wraps = wraps + (thread:get("wrapped") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "mean_us": %.1f, "wrapped": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, wraps))
end
