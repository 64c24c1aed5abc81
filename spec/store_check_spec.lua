-- tfauth.store.check: every key of a store's configuration, nested lists
-- included, checked before anything connects; errors name the whole path.
local store = require "tfauth.store"

local function refusal(config)
  local ok, err = pcall(store.check, config, "gate.init")
  assert.is_false(ok, "accepted")
  assert.is_table(err)
  return err.field, err.message, err
end

describe("tfauth.store.check", function()
  it("accepts every documented key", function()
    local file = os.tmpname()
    assert.equal("table", type(store.check {
      kind = "redis", host = "10.0.0.5", port = 6380, username = "tfauth", password = "pw", database = 2,
      prefix = "app:", timeout_ms = 500, connect_timeout_ms = 200, pool_size = 10, keepalive_ms = 1000,
      tls = { verify = true, server_name = "redis.example", cert = file, key = file }, wait_replicas = 1,
      wait_timeout_ms = 100,
    }))
    store.check { kind = "redis", sentinels = { { host = "a", port = 1 }, { host = "b", port = 2 } },
      master_name = "m", sentinel_username = "s", sentinel_password = "p" }
    store.check { kind = "redis", cluster = { { host = "a", port = 1 } }, tls = { server_name = "r.example" } }
    store.check { kind = "shared_dict", name = "tfauth_sessions" }
    os.remove(file)
  end)

  for _, case in ipairs {
    { { kind = "memcached" }, "store.kind" },
    { { kind = "redis", tls = { verfy = true } }, "store.tls.verfy", "is not a known key" },
    { { kind = "redis", tls = { verify = "yes" } }, "store.tls.verify", "expected a boolean" },
    { { kind = "redis", tls = { cert = "/nonexistent/cert.pem", key = "/etc/hostname" } }, "store.tls.cert",
      "cannot read" },
    { { kind = "redis", port = 70000 }, "store.port", "from 1 to 65535" },
    { { kind = "redis", hots = "x" }, "store.hots", "is not a known key of a redis store" },
    { { kind = "redis", name = "x" }, "store.name", "is not a known key of a redis store" },
    { { kind = "redis", timeout_ms = 0 }, "store.timeout_ms", "> 0" },
    { { kind = "redis", sentinels = {}, master_name = "m" }, "store.sentinels", "non%-empty list" },
    { { kind = "redis", sentinels = { { host = "a", port = 1 }, { host = "b", port = "2" } }, master_name = "m" },
      "store.sentinels[2].port" },
    { { kind = "redis", sentinels = { { host = "a", port = 1 }, { host = "b", prot = 2 } }, master_name = "m" },
      "store.sentinels[2].prot", "is not a known key" },
    { { kind = "redis", sentinels = { { host = "a", port = 1 } } }, "store.master_name", "required" },
    { { kind = "redis", master_name = "m" }, "store.master_name", "only with sentinels" },
    { { kind = "redis", sentinels = { { host = "a", port = 1 } }, master_name = "m", host = "h" }, "store.host" },
    { { kind = "redis", cluster = { { host = "a", port = 1 } }, sentinels = { { host = "a", port = 1 } },
      master_name = "m" }, "store.cluster" },
    { { kind = "redis", cluster = { { host = "a", port = 1 } }, prefix = "{app}:" }, "store.prefix", "{" },
    { { kind = "redis", cluster = { { host = "a", port = 1 } }, database = 1 }, "store.database", "0 with cluster" },
    { { kind = "redis", cluster = { { host = "a", port = 1 } }, tls = {} }, "store.tls.server_name", "by IP" },
    { { kind = "redis", username = "u" }, "store.password", "required with username" },
    { { kind = "redis", tls = { cert = "/etc/hostname" } }, "store.tls.key", "both cert and key" },
    { { kind = "redis", wait_replicas = -1 }, "store.wait_replicas" },
    { { kind = "redis", password = "" }, "store.password", "non%-empty" },
    { { kind = "shared_dict" }, "store.name", "required" },
    { "redis", "store", "expected a table" },
  } do
    it("refuses " .. case[2] .. (case[3] and " (" .. case[3] .. ")" or ""), function()
      local field, message, err = refusal(case[1])
      assert.equal(case[2], field)
      assert.equal("gate.init", err.operation)
      if case[3] then assert.matches(case[3], message) end
    end)
  end

  it("lists every key by kind, each accepted on its own", function()
    assert.same({ "kind", "name" }, store.KEYS.shared_dict)
    assert.is_true(#store.KEYS.redis >= 25)
    for _, path in ipairs(store.KEYS.redis) do
      assert.is_truthy(path:find("^[%l_]+$") or path:find("^[%l_]+%.[%l_]+$"), path)
    end
    for _, path in ipairs { "tls.verify", "sentinels.port", "cluster.host", "failover_wait_ms", "wait_replicas" } do
      local found = false
      for _, p in ipairs(store.KEYS.redis) do found = found or p == path end
      assert.is_true(found, path)
    end
  end)

  it("never puts a password in its message", function()
    local _, message, err = refusal { kind = "redis", password = "s3cret-pw", sentinel_password = "other-s3cret" }
    assert.is_nil(message:find("s3cret", 1, true))
    assert.is_nil(tostring(err):find("s3cret", 1, true))
  end)

  it("tells a full store's error", function()
    assert.is_true(store.full(store.FULL))
    assert.is_true(store.full("redis 127.0.0.1:6379: OOM command not allowed when used memory > 'maxmemory'."))
    assert.is_false(store.full("redis 127.0.0.1:6379: READONLY You can't write against a read only replica."))
    assert.is_false(store.full(nil))
  end)
end)
