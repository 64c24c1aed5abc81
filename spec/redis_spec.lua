-- Sessions shared by two nginx nodes (two workers each) through a real
-- redis-server on loopback (no persistence), sealed at rest.
local h = require "spec.helper"

local sh = h.sh
local KEYS = ("5e"):rep(32) .. "," .. ("a1"):rep(32) -- newest first

local function free_port()
  return tonumber(sh("/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); "
    .. "print(s.getsockname()[1])'"))
end

local count = h.count

describe("redis session store #nginx", function()
  local port, dir, a, b, stop_a, stop_b, prefix_a

  local function redis_cli(args) return sh(("redis-cli -p %d %s"):format(port, args)) end
  local function start_redis()
    os.execute(("env -u LD_PRELOAD redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no "
      .. "--daemonize yes --dir %s --pidfile %s/redis.pid --logfile %s/redis.log"):format(port, dir, dir, dir))
    for _ = 1, 100 do
      if redis_cli("ping"):match("PONG") then return end
      os.execute("sleep 0.05")
    end
    error("redis-server did not start")
  end
  local function stop_redis() redis_cli("shutdown nosave") end

  setup(function()
    port, dir = free_port(), sh("mktemp -d"):gsub("%s+$", "")
    start_redis()
    local redis = "127.0.0.1:" .. port
    a, stop_a, prefix_a = h.start_nginx { workers = 2, skew = 1, redis = redis, keys = KEYS }
    b, stop_b = h.start_nginx { workers = 2, skew = 1, redis = redis, keys = KEYS }
  end)
  teardown(function()
    stop_a()
    stop_b()
    stop_redis()
    os.execute("rm -rf " .. dir)
  end)

  local jar
  before_each(function()
    h.reset()
    redis_cli("flushall")
    jar = os.tmpname()
  end)
  after_each(function() os.remove(jar) end)

  local function login(node, user)
    return sh(("curl -s -c %s -w ' %%{http_code}' --data-urlencode 'user=%s' --data-urlencode 'password=%s' %s/login")
      :format(jar, user, h.users[user].password, node))
  end
  local function app(node) return sh(("curl -s -b %s -w ' %%{http_code}' %s/app/x"):format(jar, node)) end
  local function sid() return sh("awk '$6 == \"tfauth_sid\" {print $7}' " .. jar):gsub("%s+$", "") end

  it("a session made on node A works on node B, and logout on B ends it on both", function()
    assert.matches("200$", login(a, "alice"))
    assert.matches('"x%-auth%-request%-user":"alice".* 200$', app(b))
    assert.matches("200$", app(a))
    assert.matches("200$", sh(("curl -s -b %s -w ' %%{http_code}' -X POST %s/logout"):format(jar, b)))
    assert.matches("401$", app(a))
    assert.matches("401$", app(b))
    assert.equal("0\n", redis_cli("exists tfauth:s:" .. sid()))
  end)

  it("stores the session sealed, for as long as its refresh token lives", function()
    assert.matches("200$", login(a, "alice"))
    local raw = redis_cli("--no-raw get tfauth:s:" .. sid())
    assert.is_true(#raw > 500)
    assert.is_nil(raw:find("eyJ", 1, true), "no token in the clear")
    assert.is_nil(raw:find("refresh_token", 1, true))
    local ttl = tonumber(redis_cli("ttl tfauth:s:" .. sid()))
    assert.is_true(ttl > 1790 and ttl <= 1800, "TTL " .. ttl)
    local key = "tfauth:s:" .. sid()
    print(("\n# Redis: one session takes %s bytes (MEMORY USAGE), its sealed value %s bytes")
      :format(redis_cli("memory usage " .. key):gsub("%s+$", ""), redis_cli("strlen " .. key):gsub("%s+$", "")))
  end)

  it("refreshes once across both nodes at expiry, and no concurrent request fails", function()
    h.configure_server { access_ttl = 5 } -- a round may take 2 s on a loaded machine: one refresh per round
    assert.matches("200$", login(a, "alice"))
    for round = 1, 2 do
      os.execute("sleep 4.2") -- inside the 1 s skew of the 5 s token
      local urls = os.tmpname()
      local f = assert(io.open(urls, "w"))
      for i = 1, 60 do f:write((i % 2 == 0 and a or b) .. "/app/" .. i .. "\n") end -- both nodes, interleaved
      f:close()
      local out = sh(("xargs -P 30 -I{} curl -s -o /dev/null -b %s -w '%%{http_code}\\n' {} <%s"):format(jar, urls))
      os.remove(urls)
      local n = 0
      for code in out:gmatch("%d+") do
        n = n + 1
        assert.equal("200", code)
      end
      assert.equal(60, n)
      assert.equal(round, count("/api/iam/refresh"), "round " .. round)
    end
  end)

  it("a refresher that died frees the lock by its TTL; the next request refreshes", function()
    h.configure_server { access_ttl = 2 }
    assert.matches("200$", login(a, "alice"))
    redis_cli("set tfauth:lock:" .. sid() .. " a-worker-that-died PX 1500") -- never released by its holder
    os.execute("sleep 2.1") -- the access token has expired
    local started = os.time()
    assert.matches("200$", app(b)) -- waits for the lock's TTL, then refreshes
    assert.is_true(os.time() - started <= 3)
    assert.equal(1, count("/api/iam/refresh"))
  end)

  it("treats a changed or transplanted blob as no session", function()
    assert.matches("200$", login(a, "alice"))
    local first = sid()
    redis_cli("setrange tfauth:s:" .. first .. " 40 XYZ")
    assert.matches("401$", app(a))
    assert.matches("200$", login(a, "bob"))
    local second = sid()
    -- bob's sealed blob stored under alice's id: refused (the id is sealed in)
    redis_cli(("copy tfauth:s:%s tfauth:s:%s replace"):format(second, first))
    sh(("sed -i 's/%s/%s/' %s"):format(second, first, jar))
    assert.matches("401$", app(b))
    assert.matches("refused a stored session", sh("cat " .. prefix_a .. "/logs/error.log"))
  end)

  it("answers 503 with a clear log line while Redis is down, and recovers when it returns", function()
    assert.matches("200$", login(a, "alice"))
    local key = "tfauth_gate_requests_total{outcome=unavailable,via=session}"
    local before = h.metrics(a)[key]
    stop_redis()
    assert.matches("503$", app(a))
    local status, headers, body = h.http(b .. "/app/x", { jar = jar })
    assert.equal(503, status)
    assert.same({ error = "unavailable" }, require("cjson").decode(body))
    assert.equal("no-store", headers["cache-control"][1])
    assert.equal(500, (h.http(a .. "/ar/x", { jar = jar }))) -- nginx turns auth_request's 503 into 500 (documented)
    assert.equal(before + 2, h.metrics(a)[key]) -- /app/ and /ar/ on node a
    assert.matches("503$", login(b, "bob")) -- the auth API said yes, the session cannot be kept
    assert.equal("pong\n", sh("curl -s " .. a .. "/ping"))
    assert.matches("session store unavailable: redis 127.0.0.1:" .. port, sh("cat " .. prefix_a .. "/logs/error.log"))
    start_redis()
    assert.matches("401$", app(a)) -- the session went with Redis (no persistence): log in again
    assert.matches("200$", login(b, "alice"))
    assert.matches("200$", app(a))
  end)
end)
