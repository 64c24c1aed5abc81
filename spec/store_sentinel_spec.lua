-- tfauth.store on Redis behind Sentinel, inside a real nginx (two workers):
-- a master, a replica and three sentinels on loopback; the master killed
-- while sessions are read and written; wait_replicas.
local h = require "spec.helper"
local redis = require "spec.support.redis"
local cjson = require "cjson"

local sh = h.sh

describe("tfauth.store with Sentinel #nginx #once", function()
  local url, stop, setup_
  local NAME = "tfauth-master"

  local function call(config, ops) return redis.store_call(url, config, ops) end

  local function config(more)
    local sentinels = {}
    for i, s in ipairs(setup_.sentinels) do sentinels[i] = { host = "127.0.0.1", port = s.port } end
    table.insert(sentinels, 1, { host = "127.0.0.1", port = redis.free_port() }) -- a sentinel that is down
    local c = { kind = "redis", sentinels = sentinels, master_name = NAME, timeout_ms = 300 }
    for k, v in pairs(more or {}) do c[k] = v end
    return c
  end

  setup(function()
    setup_ = redis.start_sentinel(NAME)
    url, stop = h.start_nginx { workers = 2, conf = h.root .. "/spec/nginx/store.conf" }
  end)
  teardown(function()
    stop()
    setup_.remove()
  end)

  -- The master and the replica now, as the sentinels see them.
  local function roles()
    local port = tonumber(setup_.sentinels[1].cli("sentinel get-master-addr-by-name " .. NAME):match("\n(%d+)"))
    if port == setup_.master.port then return setup_.master, setup_.replica end
    return setup_.replica, setup_.master
  end

  it("speaks to sentinels that want a password (sentinel_password), never logging it", function()
    local guarded = redis.start_one_sentinel(NAME, setup_.master.port, "requirepass s3ntinel-pw")
    local function with(password)
      return { kind = "redis", master_name = NAME, sentinels = { { host = "127.0.0.1", port = guarded.port } },
        sentinel_password = password }
    end
    local ok = call(with("s3ntinel-pw"), { { "set", "s:guarded", "v", 60 }, { "get", "s:guarded" } })
    local refused = call(with("not-the-pw"), { { "get", "s:guarded" } })
    guarded.remove()
    assert.same({ true, "v" }, { ok[1].res, ok[2].res })
    assert.equal("auth", refused[1].kind)
    assert.matches("^redis sentinels: redis 127%.0%.0%.1:%d+: AUTH refused: WRONGPASS", refused[1].err)
    assert.is_nil(refused[1].err:find("pw", 1, true))
  end)

  it("a graceful SENTINEL FAILOVER: writes reach the new master within about a second", function()
    local old = roles()
    local r = call(config(), { { "set", "s:graceful", "before", 600 } })
    assert.equal(true, r[1].res)
    assert.matches("OK", setup_.sentinels[2].cli("sentinel failover " .. NAME))
    local new
    for _ = 1, 100 do
      new = roles()
      if new ~= old then break end
      os.execute("sleep 0.05")
    end
    assert.are_not.equal(old, new, "the sentinels never switched")
    local switched = tonumber(sh("date +%s.%N"))
    local landed
    for _ = 1, 60 do
      r = call(config(), { { "set", "s:graceful", "after", 600 } })
      if r[1].res == true and new.cli("get tfauth:s:graceful") == "after\n" then
        landed = tonumber(sh("date +%s.%N")) - switched
        break
      end
      os.execute("sleep 0.05")
    end
    assert.truthy(landed, "writes never reached the new master")
    print(("\n# SENTINEL FAILOVER: writes on the new master %.2f s after the sentinels switched"):format(landed))
    assert.is_true(landed < 3, landed)
    old.cli("replicaof 127.0.0.1 " .. new.port) -- what the sentinels do some seconds later, done now
  end)

  it("finds the master through the sentinels, survives its loss, and keeps what was replicated", function()
    local master, replica = roles()
    for _ = 1, 300 do -- the old master has resynced as a replica
      if master.cli("info replication"):match("slave0:[^\n]*state=online") then break end
      os.execute("sleep 0.05")
    end
    local ops = {}
    for i = 1, 20 do ops[i] = { "set", "s:before" .. i, "v" .. i, 600 } end
    local r = call(config { wait_replicas = 1, wait_timeout_ms = 3000 }, ops) -- a loaded machine acks slowly
    for i = 1, 20 do assert.equal(true, r[i].res, cjson.encode(r[i])) end
    assert.equal("v1\n", master.cli("get tfauth:s:before1"))
    assert.equal("v1\n", replica.cli("get tfauth:s:before1")) -- WAIT 1 returned: it is there

    local killed = sh("date +%s.%N")
    sh(("kill -9 $(cat %s/redis.pid)"):format(master.dir))
    local failures, first_ok, kinds = 0, nil, {}
    for attempt = 1, 200 do
      local out = call(config(), { { "set", "s:after", "ok", 600 }, { "get", "s:before7" } })
      if out[1].res == true and out[2].res == "v7" then
        first_ok = attempt
        break
      end
      failures = failures + 1
      assert.equal(cjson.null, out[1].res) -- an error, never a silent absence
      assert.truthy(out[1].err)
      kinds[out[1].kind] = true
      os.execute("sleep 0.1")
    end
    local window = tonumber(sh("date +%s.%N")) - tonumber(killed)
    assert.truthy(first_ok, "no master after the failover")
    print(("\n# Sentinel failover: %d failed operations, writes back %.1f s after the master was killed (%s)")
      :format(failures, window, table.concat((function()
        local t = {}
        for k in pairs(kinds) do t[#t + 1] = k end
        return t
      end)(), ",")))
    -- every worker finds the new master; every session written before is there
    for _ = 1, 10 do
      r = call(config(), { { "get", "s:before20" }, { "get", "s:after" } })
      assert.same({ "v20", "ok" }, { r[1].res, r[2].res })
    end
    assert.equal("ok\n", replica.cli("get tfauth:s:after")) -- the replica is the master now
    assert.matches("role:master", replica.cli("info replication"))

    -- wait_replicas: no replica is left, so a write is not acknowledged
    r = call(config { wait_replicas = 1, wait_timeout_ms = 100 }, { { "set", "s:lonely", "v", 60 } })
    assert.equal(cjson.null, r[1].res)
    assert.matches("reached 0 of 1 replicas", r[1].err)
    assert.equal("readonly", r[1].kind)
  end)
end)
