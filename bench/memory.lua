-- memory.lua: RSS after 1,000 and after 100,000 logins on one client, and
-- the memory one more client costs (against TFAUTH_BENCH_URL).
local tfauth = require "tfauth"

local url = assert(os.getenv("TFAUTH_BENCH_URL"))
local params = { user = "alice", password = "alice-Secret-1" }

local rss_kib = dofile((arg[0]:match("^(.*)/") or ".") .. "/rss.lua")
local function settle() collectgarbage(); collectgarbage() end

local client = tfauth.new { server_url = url }
for _ = 1, 1000 do client:login(params) end
settle()
local after_1k = rss_kib()
for _ = 1, 100000 do client:login(params) end
settle()
local after_100k = rss_kib()
print(("RSS after 1,000 logins: %d KiB; after 100,000 more: %d KiB (%+d KiB; bound 1 MiB)")
  :format(after_1k, after_100k, after_100k - after_1k))

local clients, n = {}, 200
settle()
local before = rss_kib()
for i = 1, n do
  clients[i] = tfauth.new { server_url = url }
  clients[i]:login(params) -- buffers and connection in use
end
settle()
print(("memory per client (each logged in once, connection open): %.1f KiB"):format((rss_kib() - before) / n))
for i = 1, n do clients[i]:close() end
