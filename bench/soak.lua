-- soak.lua [sentinel|cluster ...]: `make soak` (not part of `make test`;
-- about two minutes per setup). Two nginx nodes of two workers each on
-- Redis behind Sentinel (and again on a Redis Cluster), a few hundred
-- simulated users (bench/soak_users.py) signing in, browsing with access
-- tokens that expire every few seconds, signing out; a master killed in the
-- middle and started again 5 s later (as orchestrators do). Prints, per setup: sessions lost, refreshes per expiry per
-- session, error rate, p50/p99, and the workers' RSS over time.
-- Run by the Makefile under spec/support/with-backend.sh (the reference backend).
-- Settings: TFAUTH_SOAK_USERS (200), TFAUTH_SOAK_SECONDS (60).
local h = require "spec.helper"
local redis = require "spec.support.redis"
local cjson = require "cjson"

local sh = h.sh
local USERS = tonumber(os.getenv("TFAUTH_SOAK_USERS")) or 200
local SECONDS = tonumber(os.getenv("TFAUTH_SOAK_SECONDS")) or 60
local ACCESS_TTL, SKEW = 5, 1
-- Requests wait out a failover rather than fail (0: they fail at once, 503).
local FAILOVER_WAIT = tonumber(os.getenv("TFAUTH_SOAK_FAILOVER_WAIT_MS")) or 5000
local KEYS = ("5e"):rep(32)

-- Starts setup `name`: the store table for the gate and the command that kills a master.
local SETUPS = {
  sentinel = function()
    local s = redis.start_sentinel("soak")
    local sentinels = {}
    for i, node in ipairs(s.sentinels) do sentinels[i] = ("{ host = \"127.0.0.1\", port = %d }"):format(node.port) end
    local store = ("{ kind = \"redis\", sentinels = { %s }, master_name = \"soak\", wait_replicas = 1,"
      .. " timeout_ms = 500, failover_wait_ms = FAILOVER_WAIT }"):format(table.concat(sentinels, ", "))
    store = store:gsub("FAILOVER_WAIT", FAILOVER_WAIT)
    -- killed, and started again 5 s later as a replica of the master the sentinels then name
    local event = ("kill -9 $(cat %s/redis.pid); sleep 5; %s --replicaof $(redis-cli -p %d sentinel"
      .. " get-master-addr-by-name soak | tr '\\n' ' ')"):format(s.master.dir, s.master.restart_command(),
        s.sentinels[1].port)
    return store, event, s.remove
  end,
  cluster = function()
    local c = redis.start_cluster()
    local seeds = {}
    for i = 1, 3 do seeds[i] = ("{ host = \"127.0.0.1\", port = %d }"):format(c.nodes[i].port) end
    local store = ("{ kind = \"redis\", cluster = { %s }, wait_replicas = 1, timeout_ms = 500,"
      .. " failover_wait_ms = FAILOVER_WAIT }")
      :format(table.concat(seeds, ", "))
    local victim
    for _, node in ipairs(c.nodes) do
      if node.cli("role"):match("^master") then victim = node break end
    end
    store = store:gsub("FAILOVER_WAIT", FAILOVER_WAIT)
    -- killed, and started again 5 s later: it rejoins as a replica of its promoted one
    return store, ("kill -9 $(cat %s/redis.pid); sleep 5; %s"):format(victim.dir, victim.restart_command()), c.remove
  end,
}

-- Samples the RSS (KiB) of every nginx worker of the prefixes every 10 s into file.
local function start_rss(prefixes, file)
  local pids = {}
  for _, prefix in ipairs(prefixes) do pids[#pids + 1] = "$(pgrep -P $(cat " .. prefix .. "/nginx.pid))" end
  os.execute(("(while true; do echo $(ps -o rss= -p \"$(echo %s | tr ' ' ',')\"); sleep 10; done) >%s 2>&1 &"
    .. " echo $! >%s.pid"):format(table.concat(pids, " "), file, file))
  return function() os.execute(("kill $(cat %s.pid); rm -f %s.pid"):format(file, file)) end
end

local function soak(name)
  h.reset()
  h.configure_server { access_ttl = ACCESS_TTL }
  local store, kill_master, remove = SETUPS[name]()
  local nodes, stops, prefixes = {}, {}, {}
  for i = 1, 2 do
    nodes[i], stops[i], prefixes[i] = h.start_nginx { workers = 2, skew = SKEW, keys = KEYS, env = {
      TFAUTH_STORE = store, TFAUTH_LOGIN_RATE = "10000r/s", TFAUTH_LOGIN_BURST = "10000" } }
  end
  local rss_file = os.tmpname()
  local stop_rss = start_rss(prefixes, rss_file)
  local quoted = "'" .. kill_master:gsub("'", "'\\''") .. "'" -- run when its time comes, not now
  local out = sh(("/usr/bin/python3 %s/bench/soak_users.py %d %d %d %s %s"):format(h.root, USERS, SECONDS,
    SECONDS // 2, quoted, table.concat(nodes, " ")))
  stop_rss()
  -- Each refresh token stands for one expiry of one session: a second
  -- refresh with it is a refresh more than once per expiry.
  local refreshes, tokens, distinct = 0, {}, 0
  for _, r in ipairs(h.requests()) do
    if r.path == "/api/iam/refresh" then
      refreshes = refreshes + 1
      if not tokens[r.body] then distinct = distinct + 1 end
      tokens[r.body] = true
    end
  end
  local crashes = 0
  for _, prefix in ipairs(prefixes) do
    crashes = crashes + tonumber(sh("grep -c 'exited on signal' " .. prefix .. "/logs/error.log || true"))
  end
  for _, stop in ipairs(stops) do stop() end
  remove()
  local ok, stats = pcall(cjson.decode, out)
  if not ok then error("soak_users.py: " .. out) end
  local statuses = stats.statuses
  local errors = stats.requests - (statuses["200"] or 0) - (statuses["401"] or 0)
  print(("# soak on %s: %d users, %d s, 2 nodes x 2 workers, access tokens of %d s, master killed at %.0f s,"
    .. " failover_wait_ms %d"):format(name, USERS, SECONDS, ACCESS_TTL, stats.event_at or -1, FAILOVER_WAIT))
  print(("#   requests %d, statuses %s, error rate %.2f%%, p50 %.0f ms, p99 %.0f ms")
    :format(stats.requests, cjson.encode(statuses), 100 * errors / stats.requests, stats.p50 * 1000, stats.p99 * 1000))
  print(("#   sessions lost %d (of %d signed in), failed sign-ins %d, failed logouts %d, logouts that did not"
    .. " end the session %d"):format(stats.lost, USERS - stats.login_failed, stats.login_failed, stats.logout_failed,
      stats.logout_kept))
  print(("#   refreshes %d for %d expiries: %.3f per expiry per session; worker crashes %d")
    :format(refreshes, distinct, refreshes / math.max(distinct, 1), crashes))
  print("#   workers' RSS (KiB) every 10 s: " .. sh("cat " .. rss_file):gsub("\n", " | "))
  os.remove(rss_file)
  return stats.lost == 0 and stats.logout_kept == 0 and crashes == 0 and refreshes == distinct
end

local all = true
for _, name in ipairs(#arg > 0 and arg or { "sentinel", "cluster" }) do
  all = soak(name) and all
end
print(all and "ok - soak: no session lost, every logout held, no worker crash" or "not ok - soak")
os.exit(all and 0 or 1)
