-- bench.lua N [operation]: N calls of tfauth's login (default) on one client
-- against TFAUTH_BENCH_URL. Prints "calls_per_second p50_us p99_us".
local tfauth = require "tfauth"
local clock = require("tfauth.core").clock

local n = tonumber(arg[1]) or 10000
local client = tfauth.new { server_url = assert(os.getenv("TFAUTH_BENCH_URL")) }
local params = { user = "alice", password = "alice-Secret-1" }
local latencies = {}

for _ = 1, 200 do client:login(params) end -- warm: connection, JIT, buffers
local start = clock()
for i = 1, n do
  local t0 = clock()
  local t = client:login(params)
  latencies[i] = (clock() - t0) * 1e6
  assert(t.expires_in == 300)
end
local total = clock() - start
table.sort(latencies)
print(("%.0f %.1f %.1f"):format(n / total, latencies[math.floor(n / 2)], latencies[math.floor(n * 0.99)]))
