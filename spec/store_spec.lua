-- tfauth.store inside a real nginx (spec/nginx/store.conf): the same
-- methods on the shared dict and on a real redis-server; Redis's error
-- replies as errors; a full store; TLS with an ACL user.
local h = require "spec.helper"
local redis = require "spec.support.redis"
local cjson = require "cjson"

local sh = h.sh

describe("tfauth.store #nginx #once", function()
  local url, stop, prefix, plain, certs

  local function call(config, ops, fresh)
    local status, _, body = h.http(url .. "/t/store", { method = "POST",
      body = cjson.encode { config = config, ops = ops, fresh = fresh } })
    assert.equal(200, status, body .. sh("tail -12 " .. prefix .. "/logs/error.log"))
    return cjson.decode(body)
  end
  local function results(config, ops)
    local out = call(config, ops)
    assert.is_nil(out.raised, out.raised)
    return out.results, out
  end
  local function error_log() return sh("cat " .. prefix .. "/logs/error.log") end
  -- assert.matches, with what was matched against in the failure message
  local function matches(pattern, result)
    assert(type(result.err) == "string" and result.err:find(pattern), pattern .. " in " .. cjson.encode(result))
  end

  setup(function()
    certs = sh("mktemp -d"):gsub("%s+$", "")
    sh("bash spec/support/make-certs.sh " .. certs)
    plain = redis.start()
    url, stop, prefix = h.start_nginx { workers = 2, conf = h.root .. "/spec/nginx/store.conf",
      ca_file = certs .. "/ca.pem" }
  end)
  teardown(function()
    stop()
    plain.remove()
    os.execute("rm -rf " .. certs)
  end)

  local DICT = { kind = "shared_dict", name = "tfauth_sessions" }
  local function REDIS() return { kind = "redis", host = "127.0.0.1", port = plain.port, prefix = "t:" } end

  for _, case in ipairs { { "shared dict", function() return DICT end }, { "redis", REDIS } } do
    local name, config_of = case[1], case[2]
    describe("on the " .. name, function()
      it("set, get, delete; an absent key is nil without an error", function()
        local r = results(config_of(), {
          { "set", "s:a", "one", 60 }, { "get", "s:a" }, { "delete", "s:a" }, { "get", "s:a" }, { "get", "s:none" },
        })
        assert.same({ true, "one", true }, { r[1].res, r[2].res, r[3].res })
        assert.equal(cjson.null, r[4].res)
        assert.is_nil(r[4].err)
        assert.is_nil(r[5].err)
      end)

      it("set { exists = true } writes only over an existing key", function()
        local r = results(config_of(), {
          { "delete", "s:b" }, { "set", "s:b", "new", 60, { exists = true } }, { "get", "s:b" },
          { "set", "s:b", "one", 60 }, { "set", "s:b", "two", 60, { exists = true } }, { "get", "s:b" },
        })
        assert.equal(false, r[2].res)
        assert.equal(cjson.null, r[3].res)
        assert.equal(true, r[5].res)
        assert.equal("two", r[6].res)
      end)

      it("a locked set or delete happens only while its lock is held (logout wins)", function()
        local r = results(config_of(), {
          { "set", "s:c", "v1", 60 }, { "lock", "lock:c", 5000 }, { "lock", "lock:c", 5000 },
        })
        local token = r[2].res
        assert.matches("^%x+$", token)
        assert.equal(false, r[3].res) -- held
        r = results(config_of(), {
          { "set", "s:c", "v2", 60, { exists = true, lock = "lock:c", token = "not-the-token" } },
          { "set", "s:c", "v3", 60, { exists = true, lock = "lock:c", token = token } }, { "get", "s:c" },
          { "delete", "s:c", { lock = "lock:c", token = "not-the-token" } }, { "get", "s:c" },
          { "delete", "s:c", { lock = "lock:c", token = token } }, { "get", "s:c" },
          -- a refresh saving after the logout deleted the session: not written
          { "set", "s:c", "v4", 60, { exists = true, lock = "lock:c", token = token } }, { "get", "s:c" },
          { "unlock", "lock:c", token }, { "lock", "lock:c", 5000 },
        })
        assert.equal(false, r[1].res)
        assert.equal(true, r[2].res)
        assert.equal("v3", r[3].res)
        assert.equal(false, r[4].res)
        assert.equal("v3", r[5].res)
        assert.equal(true, r[6].res)
        assert.equal(cjson.null, r[7].res)
        assert.equal(false, r[8].res)
        assert.equal(cjson.null, r[9].res)
        assert.matches("^%x+$", r[11].res) -- free again
      end)

      it("keeps an index of a user's sessions, oldest first, and drops members past its ttl", function()
        local now = os.time()
        local r = results(config_of(), {
          { "add_member", "u:alice", "sid3", now - 10, 3600 }, { "add_member", "u:alice", "sid1", now - 30, 3600 },
          { "add_member", "u:alice", "sid2", now - 20, 3600 }, { "members", "u:alice" },
          { "remove_member", "u:alice", "sid1" }, { "members", "u:alice" },
          { "add_member", "u:alice", "sid4", now, 5 }, { "members", "u:alice" }, -- sid2 and sid3 are older than 5 s
          { "members", "u:nobody" },
        })
        assert.same({ { member = "sid1", score = now - 30 }, { member = "sid2", score = now - 20 },
          { member = "sid3", score = now - 10 } }, r[4].res)
        assert.same({ "sid2", "sid3" }, { r[6].res[1].member, r[6].res[2].member })
        assert.same({ { member = "sid4", score = now } }, r[8].res)
        assert.same({}, r[9].res)
      end)
    end)
  end

  describe("a full shared dict", function()
    it("refuses the write with store.FULL, evicts nobody, and tells its free bytes", function()
      local big = { x = 60000 } -- made by the probe
      local ops = { { "set", "s:first", "keep me", 0 }, { "free_bytes" }, { "capacity" } }
      for i = 1, 250 do ops[#ops + 1] = { "set", "s:big" .. i, big, 0 } end -- 15 MB into 10m
      ops[#ops + 1] = { "get", "s:first" }
      ops[#ops + 1] = { "free_bytes" }
      local r, out = results(DICT, ops)
      assert.equal(10 * 1024 * 1024, r[3].res)
      local first_full
      for i = 4, 253 do
        if r[i].res == cjson.null then
          first_full = first_full or i
          assert.equal("no memory", r[i].err)
          assert.equal("oom", r[i].kind)
        end
      end
      assert.truthy(first_full, "the dict never filled")
      assert.equal("keep me", r[254].res) -- nothing evicted
      assert.is_true(r[255].res < 60000 and r[2].res > r[255].res)
      assert.is_true(out.errors.oom > 0)
      local keys = {}
      for i = 1, 250 do keys[#keys + 1] = { "delete", "s:big" .. i } end
      results(DICT, keys)
    end)
  end)

  describe("Redis's error replies", function()
    it("are errors naming the reply, never an absent key (WRONGTYPE, READONLY, OOM)", function()
      plain.cli("hset t:s:hash field value")
      local r, out = results(REDIS(), { { "get", "s:hash" } })
      assert.equal(cjson.null, r[1].res)
      matches("^redis 127%.0%.0%.1:%d+: WRONGTYPE", r[1])
      assert.equal("other", r[1].kind)
      assert.same({ other = 1 }, out.errors)

      plain.cli("config set maxmemory 1")
      r, out = results(REDIS(), { { "set", "s:x", "v", 60 }, { "lock", "lock:x", 100 },
        { "add_member", "u:x", "m", 1, 60 }, { "get", "s:none" } })
      plain.cli("config set maxmemory 0")
      for i = 1, 3 do
        matches("OOM command not allowed", r[i])
        assert.equal("oom", r[i].kind)
      end
      assert.is_nil(r[4].err) -- reads still work
      assert.equal(3, out.errors.oom)
      assert.is_true(out.durations.set >= 2 and out.durations.lock == 1 and out.durations.get == 1)

      local replica = redis.start { args = "--replicaof 127.0.0.1 " .. plain.port }
      r, out = results({ kind = "redis", port = replica.port }, { { "set", "s:x", "v", 60 }, { "delete", "s:x" } })
      replica.remove()
      matches("READONLY", r[1])
      assert.same({ "readonly", "readonly" }, { r[1].kind, r[2].kind })
      assert.equal(2, out.errors.readonly)
    end)

    it("with failover_wait_ms, an operation waits out a server that comes back instead of failing", function()
      local port = redis.free_port()
      local body, answer = os.tmpname(), os.tmpname()
      local f = assert(io.open(body, "w"))
      f:write(cjson.encode { config = { kind = "redis", port = port, failover_wait_ms = 5000 },
        ops = { { "set", "s:late", "v", 60 } } })
      f:close()
      os.remove(answer)
      os.execute(("curl -s -X POST --data-binary @%s %s/t/store >%s.tmp && mv %s.tmp %s &")
        :format(body, url, answer, answer, answer))
      os.execute("sleep 0.6") -- nothing listens yet: the operation is being retried
      local late = redis.start { port = port }
      local text
      for _ = 1, 100 do
        local file = io.open(answer)
        if file then
          text = file:read("*a")
          file:close()
          break
        end
        os.execute("sleep 0.05")
      end
      assert.equal("v\n", late.cli("get tfauth:s:late"))
      late.remove()
      os.remove(body)
      os.remove(answer)
      local out = cjson.decode(text)
      assert.equal(true, out.results[1].res)
      assert.same({}, out.errors) -- the tries that failed meanwhile are not errors
    end)

    it("a refused connection and a timeout are errors of their own kinds", function()
      local port = redis.free_port()
      local r = results({ kind = "redis", port = port }, { { "get", "s:x" } })
      assert.matches("^redis 127%.0%.0%.1:" .. port .. ": connect: connection refused", r[1].err)
      assert.equal("connect", r[1].kind)
      local stuck = redis.start()
      sh(("kill -STOP $(cat %s/redis.pid)"):format(stuck.dir))
      r = results({ kind = "redis", port = stuck.port, timeout_ms = 200 }, { { "get", "s:x" } })
      sh(("kill -CONT $(cat %s/redis.pid)"):format(stuck.dir))
      stuck.remove()
      assert.equal("timeout", r[1].kind)
    end)
  end)

  describe("over TLS with an ACL user", function()
    local secure, other_ca, acl
    setup(function()
      acl = os.tmpname()
      local f = assert(io.open(acl, "w"))
      f:write("user default off\nuser tfauth on >pw-tfauth-0123 ~* &* +@all\n")
      f:close()
      secure = redis.start { tls = { dir = certs }, args = "--aclfile " .. acl,
        cli_args = "--user tfauth --pass pw-tfauth-0123 --no-auth-warning" }
      -- a server certificate for localhost that no CA nginx trusts signed
      sh(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s/self.key -out %s/self.pem"
        .. " -subj /CN=localhost -addext subjectAltName=DNS:localhost -days 1 2>/dev/null"):format(certs, certs))
      other_ca = redis.start { tls = { dir = certs, cert = certs .. "/self.pem", key = certs .. "/self.key",
        auth_clients = "no" }, cli_args = "--insecure" }
    end)
    teardown(function()
      secure.remove()
      other_ca.remove()
      os.remove(acl)
    end)
    local function config(more)
      local c = { kind = "redis", port = secure.port, username = "tfauth", password = "pw-tfauth-0123", database = 3,
        tls = { server_name = "localhost", cert = certs .. "/client.pem", key = certs .. "/client.key" } }
      for k, v in pairs(more or {}) do c[k] = v end
      return c
    end

    it("verifies the server, sends the client certificate, AUTHs as the user and SELECTs the database", function()
      local r = results(config(), { { "set", "s:tls", "sealed", 60 }, { "get", "s:tls" } })
      assert.same({ true, "sealed" }, { r[1].res, r[2].res })
      assert.equal("sealed\n", secure.cli("-n 3 get tfauth:s:tls"))
      assert.equal("\n", secure.cli("-n 0 get tfauth:s:tls"))
    end)

    it("a wrong name, a wrong CA, a wrong password, no client certificate: each an error that says which", function()
      local r = results(config { tls = { server_name = "wrong.example", cert = certs .. "/client.pem",
        key = certs .. "/client.key" } }, { { "get", "s:x" } })
      -- the reason is in the error (or, when the handshake failed at once, on nginx's own line)
      matches("TLS: ", r[1])
      assert.equal("tls", r[1].kind)
      assert.truthy(r[1].err:find("host mismatch", 1, true) or error_log():find('does not match host "wrong.example"'))
      r = results(config { port = other_ca.port }, { { "get", "s:x" } })
      matches("TLS: .*lua_ssl_trusted_certificate", r[1])
      assert.equal("tls", r[1].kind)
      assert.truthy(r[1].err:find("self%-signed") or error_log():find("verify error: %(18: self%-signed"))
      local ops = {}
      for i = 1, 20 do ops[i] = { "set", "s:x", "v", 60 } end
      for i, result in ipairs(results(config { port = other_ca.port }, ops)) do -- never once let through
        assert.equal("tls", result.kind, i)
      end
      r = results(config { password = "not-the-password" }, { { "get", "s:x" } })
      matches("AUTH refused: WRONGPASS", r[1])
      assert.equal("auth", r[1].kind)
      local anonymous = config()
      anonymous.username, anonymous.password = nil, nil
      r = results(anonymous, { { "get", "s:x" } })
      matches("NOAUTH", r[1])
      assert.equal("auth", r[1].kind)
      r = results(config { tls = { server_name = "localhost" } }, { { "get", "s:x" } })
      assert.equal(cjson.null, r[1].res)
      assert.truthy(r[1].err)
      assert.is_truthy(({ tls = true, connect = true })[r[1].kind], r[1].kind)
      assert.is_nil(error_log():find("pw-tfauth", 1, true))
      assert.is_nil(error_log():find("not-the-password", 1, true))
    end)
  end)

  it("its observer's kinds and durations export as the gate's series (every kind seen above)", function()
    local m = h.metrics(url .. "/t/store")
    for _, kind in ipairs { "connect", "timeout", "auth", "tls", "readonly", "oom", "other" } do
      assert.is_true(m[("tfauth_gate_store_errors_total{kind=%s}"):format(kind)] > 0, kind)
    end
    for _, op in ipairs { "get", "set", "delete", "lock" } do
      local n = m[("tfauth_gate_store_duration_seconds_count{operation=%s}"):format(op)]
      assert.is_true(n > 0, op)
      assert.equal(n, m[("tfauth_gate_store_duration_seconds_bucket{le=+Inf,operation=%s}"):format(op)])
    end
  end)
end)
