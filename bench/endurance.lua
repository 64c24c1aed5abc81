-- endurance.lua [N]: N calls (default 100,000) on one client against a
-- loopback server (bench/with-nginx.sh), cycling through all six operations
-- and an error; prints RSS after 1,000 calls and after N. Prints TAP: ok
-- when RSS grew by less than 1 MiB.
local tfauth = require "tfauth"

local N = tonumber(arg[1]) or 100000
local url = assert(os.getenv("TFAUTH_BENCH_URL"), "run under bench/with-nginx.sh")

local rss_kib = dofile((arg[0]:match("^(.*)/") or ".") .. "/rss.lua")

local client = tfauth.new { server_url = url, bearer = "bench.bearer-token" }
local calls = {
  function() return client:login { user = "alice", password = "alice-Secret-1" } end,
  function() return client:refresh { refresh_token = "refresh.token-value" } end,
  function() return client:logout { refresh_token = "refresh.token-value" } end,
  function() return client:reset_password { username = "alice" } end,
  function()
    return client:change_password { x_org = "acme", current_password = "a-1", new_password = "b-12345678" }
  end,
  function()
    return client:admin_change_password { user_id = "u-1", x_org = "acme", new_password = "b-12345678" }
  end,
  function() return select(2, pcall(client.reset_password, client, { username = "nobody" })) end,
}
local function run(n)
  for i = 1, n do assert(calls[i % #calls + 1]()) end
end

run(1000)
collectgarbage(); collectgarbage()
local before = rss_kib()
local started = os.clock()
run(N)
local cpu = os.clock() - started
collectgarbage(); collectgarbage()
local after = rss_kib()
client:close()

local growth = after - before
print("1..1")
print(("# %s: %d calls on one client (all six operations and an http error), %.1f s CPU"):format(_VERSION, N, cpu))
print(("# RSS after 1,000 calls: %d KiB; after %d more: %d KiB; growth %d KiB"):format(before, N, after, growth))
print((growth < 1024 and "ok" or "not ok") .. " 1 - endurance: RSS grew by less than 1 MiB over " .. N .. " calls")
