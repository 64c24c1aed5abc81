-- Redis servers for the store specs, on free loopback ports, without
-- persistence, each in its own temporary folder: one server (optionally TLS
-- and an ACL file), a master with a replica and three sentinels, a cluster
-- of three masters and three replicas. Each start takes well under a second.
local cjson = require "cjson"
local luassert = require "luassert" -- busted's assert: this module is not a spec file
local h = require "spec.helper"

local sh = h.sh
local redis = {}

--- Runs ops on a store made of config inside the spec nginx at url
-- (spec/nginx/store_probe.lua's /t/store): their results, and the whole answer.
function redis.store_call(url, config, ops)
  local status, _, body = h.http(url .. "/t/store", { method = "POST",
    body = cjson.encode { config = config, ops = ops } })
  luassert.equal(200, status, body)
  local out = cjson.decode(body)
  luassert.is_nil(out.raised, out.raised)
  return out.results, out
end

function redis.free_port()
  return tonumber(sh("/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); "
    .. "print(s.getsockname()[1])'"))
end

local function wait_for(check, what)
  for _ = 1, 200 do
    if check() then return end
    os.execute("sleep 0.05")
  end
  error(what .. " did not come up")
end

-- A server: { port =, dir =, cli = function(args) -> output, stop = function() }.
-- options: args (more redis-server arguments), tls ({ dir = make-certs.sh's, cert =, key = }:
-- TLS only, on the port), cli_args (what redis-cli needs: --tls ..., --user ...).
function redis.start(options)
  options = options or {}
  local port = options.port or redis.free_port()
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  local listen = ("--port %d"):format(port)
  local cli_args = options.cli_args or ""
  if options.tls then
    local t = options.tls
    listen = ("--port 0 --tls-port %d --tls-cert-file %s --tls-key-file %s --tls-ca-cert-file %s/ca.pem"
      .. " --tls-auth-clients %s"):format(port, t.cert or t.dir .. "/server.pem", t.key or t.dir .. "/server.key",
        t.dir, t.auth_clients or "yes")
    cli_args = ("--tls --cacert %s/ca.pem --cert %s/client.pem --key %s/client.key --sni localhost %s")
      :format(t.dir, t.dir, t.dir, cli_args)
  end
  local command = ("env -u LD_PRELOAD redis-server %s --bind 127.0.0.1 --save '' --appendonly no --daemonize yes"
    .. " --dir %s --pidfile %s/redis.pid --logfile %s/redis.log %s"):format(listen, dir, dir, dir, options.args or "")
  os.execute(command)
  -- the shell command that starts it again, in its folder (a cluster node keeps its nodes.conf), with more arguments
  local server = { port = port, dir = dir, restart_command = function(more) return command .. " " .. (more or "") end }
  function server.cli(args) return sh(("redis-cli -p %d %s %s 2>&1"):format(port, cli_args, args)) end
  function server.stop()
    os.execute(("kill $(cat %s/redis.pid 2>/dev/null) 2>/dev/null"):format(dir))
    for _ = 1, 100 do
      if not io.open(dir .. "/redis.pid") then break end
      os.execute("sleep 0.02")
    end
  end
  function server.remove() server.stop(); os.execute("rm -rf " .. dir) end
  function server.log() return sh("cat " .. dir .. "/redis.log") end
  if not options.no_wait then
    wait_for(function() return server.cli("ping"):match("PONG") or server.cli("ping"):match("NOAUTH") end,
      "redis-server on port " .. port .. " (" .. sh("cat " .. dir .. "/redis.log") .. ")")
  end
  return server
end

-- One sentinel monitoring master_port as name (quorum 2, fast failover);
-- more: lines added to its sentinel.conf (requirepass ...).
function redis.start_one_sentinel(name, master_port, more)
  local port = redis.free_port()
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  local conf = assert(io.open(dir .. "/sentinel.conf", "w"))
  conf:write(("port %d\nbind 127.0.0.1\ndaemonize yes\npidfile %s/sentinel.pid\nlogfile %s/sentinel.log\ndir %s\n"
    .. "sentinel monitor %s 127.0.0.1 %d 2\nsentinel down-after-milliseconds %s 1000\n"
    .. "sentinel failover-timeout %s 5000\nsentinel parallel-syncs %s 1\n%s\n")
    :format(port, dir, dir, dir, name, master_port, name, name, name, more or ""))
  conf:close()
  os.execute(("env -u LD_PRELOAD redis-server %s/sentinel.conf --sentinel"):format(dir))
  local s = { port = port, dir = dir }
  function s.cli(args) return sh(("redis-cli -p %d %s 2>&1"):format(port, args)) end
  function s.remove()
    os.execute(("kill $(cat %s/sentinel.pid 2>/dev/null) 2>/dev/null; sleep 0.1; rm -rf %s"):format(dir, dir))
  end
  return s
end

-- A master, a replica and three sentinels (quorum 2, fast failover).
function redis.start_sentinel(name)
  local master = redis.start { args = "--repl-diskless-sync-delay 0" }
  local replica = redis.start { args = "--repl-diskless-sync-delay 0 --replicaof 127.0.0.1 " .. master.port }
  wait_for(function() return replica.cli("info replication"):match("master_link_status:up") end, "replication")
  local sentinels = {}
  for i = 1, 3 do sentinels[i] = redis.start_one_sentinel(name, master.port) end
  for _, s in ipairs(sentinels) do -- each knows the master, its replica and the other sentinels
    wait_for(function()
      return s.cli("sentinel replicas " .. name):match(tostring(replica.port))
        and s.cli("sentinel master " .. name):match("num%-other%-sentinels\n2\n")
    end, "sentinel")
  end
  return { master = master, replica = replica, sentinels = sentinels,
    remove = function()
      for _, s in ipairs(sentinels) do s.remove() end
      master.remove()
      replica.remove()
    end }
end

-- Three masters and three replicas, joined with redis-cli --cluster create.
-- tls_dir (make-certs.sh's): TLS only, the cluster bus and replication too.
function redis.start_cluster(tls_dir)
  local nodes, addresses = {}, {}
  local tls, more, cli = nil, "", ""
  if tls_dir then
    tls = { dir = tls_dir, auth_clients = "optional" }
    more = (" --tls-cluster yes --tls-replication yes --tls-client-cert-file %s/client.pem"
      .. " --tls-client-key-file %s/client.key"):format(tls_dir, tls_dir)
    cli = ("--tls --cacert %s/ca.pem --cert %s/client.pem --key %s/client.key"):format(tls_dir, tls_dir, tls_dir)
  end
  for i = 1, 6 do
    nodes[i] = redis.start { tls = tls, args = "--repl-diskless-sync-delay 0 --cluster-enabled yes"
      .. " --cluster-config-file nodes.conf --cluster-port " .. redis.free_port()
      .. " --cluster-node-timeout 1000 --cluster-require-full-coverage no" .. more }
    addresses[i] = "127.0.0.1:" .. nodes[i].port
  end
  local out = sh("redis-cli " .. cli .. " --cluster create " .. table.concat(addresses, " ")
    .. " --cluster-replicas 1 --cluster-yes 2>&1")
  assert(out:match("All 16384 slots covered"), out)
  wait_for(function()
    for _, node in ipairs(nodes) do
      if not node.cli("cluster info"):match("cluster_state:ok") then return false end
    end
    return true
  end, "the cluster")
  return { nodes = nodes, remove = function() for _, n in ipairs(nodes) do n.remove() end end }
end

return redis
