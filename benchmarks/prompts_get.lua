-- wrk script for bench_serve.py: POST one JSON-RPC request again and again.
--
-- Environment: BENCH_BODY (the JSON-RPC request, with __ID__ where its id goes: every request
-- gets an id of its own, as JSON-RPC asks within a session), BENCH_TOKEN (bearer token),
-- BENCH_SESSION (Mcp-Session-Id, optional), BENCH_PROTOCOL (MCP-Protocol-Version).
-- A response counts as an error unless it is a 200 whose body holds a JSON-RPC "result".
-- done() prints one line starting with BENCH for bench_serve.py to read.

local head, tail = string.match(os.getenv("BENCH_BODY"), "^(.-)__ID__(.*)$")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = os.getenv("BENCH_PROTOCOL") or "2025-11-25"
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end
local session = os.getenv("BENCH_SESSION") or ""
if session ~= "" then
   wrk.headers["Mcp-Session-Id"] = session
end

local threads = {}

function setup(thread)
   thread:set("first_id", #threads * 1000000000)
   table.insert(threads, thread)
end

function init(args)
   errors = 0
   answered = 0
   next_id = first_id
end

function request()
   next_id = next_id + 1
   return wrk.format(nil, nil, nil, head .. next_id .. tail)
end

function response(status, headers, body)
   answered = answered + 1
   if status ~= 200 or not string.find(body, '"result"', 1, true) then
      errors = errors + 1
   end
end

function done(summary, latency, requests)
   local failed, total = 0, 0
   for _, thread in ipairs(threads) do
      failed = failed + thread:get("errors")
      total = total + thread:get("answered")
   end
   local socket = summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout
   io.write(string.format(
      "BENCH requests=%d duration_us=%d errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
      total, summary.duration, failed, socket,
      latency:percentile(50), latency:percentile(99)))
end
