-- tfauth.gate on real nginx: the gate's configuration, checked at init (nginx does not start on a
-- mistake), and its cookie and origin settings.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local sh, http = h.sh, h.http
local first, log_of, start_with = support.first, support.log_of, support.start_with

support.suite("tfauth.gate #nginx", function(t)
  describe("configuration checked at init", function()
    local cases = {
      { "an unknown key", "skew = 30,", "skew = 30, bogus_key = 1,", "'bogus_key': is not a known key" },
      { "same_site None", 'same_site = "Lax"', 'same_site = "None"', "'cookie.same_site': \"None\" is refused" },
      { "an unknown cookie key", 'same_site = "Lax"', 'same_site = "Lax", sceure = true', "'cookie.sceure'" },
      { "a wrong type", "skew = 30,", 'skew = "30",', "'skew': expected a number, got string" },
      { "a wrong store kind", 'store = { kind = "shared_dict"', 'store = { kind = "memcached"', "'store.kind'" },
      { "a short sealing key", "keys = { ", 'keys = { "abcd", ', "'keys': item 1: expected 64 hex digits" },
      { "bearer without audience", 'shared_dict = "tfauth_gate",',
        'shared_dict = "tfauth_gate", bearer = { issuer = "http://127.0.0.1:1/realms/x" },',
        "'bearer.audience': required" },
      { "bearer audience of a wrong type", 'shared_dict = "tfauth_gate",',
        'shared_dict = "tfauth_gate", bearer = { issuer = "http://127.0.0.1:1/realms/x", audience = 5 },',
        "'bearer.audience'" },
      { "a server_url that is not http(s)", 'server_url = "http', 'server_url = "ftp', "'server_url'" },
      { "a bad jwks_url", 'shared_dict = "tfauth_gate",', 'shared_dict = "tfauth_gate", bearer = { '
        .. 'issuer = "http://127.0.0.1:1/realms/x", audience = false, jwks_url = "nope" },', "'bearer.jwks_url': must be" },
      { "bearer types of a wrong type", 'shared_dict = "tfauth_gate",', 'shared_dict = "tfauth_gate", bearer = { '
        .. 'issuer = "http://127.0.0.1:1/realms/x", audience = false, types = "Bearer" },', "'bearer.types': expected a list" },
      { "a missing shared dict", 'shared_dict = "tfauth_gate",', 'shared_dict = "nope",', "'shared_dict'" },
      { "a shared dict too small for the metrics", "lua_shared_dict tfauth_gate 1m;",
        "lua_shared_dict tfauth_gate 12k;", "'shared_dict': lua_shared_dict too small for the metrics" },
    }
    for _, case in ipairs(cases) do
      it("refuses " .. case[1] .. ": nginx does not start, and says which key", function()
        local out = start_with(t.prefix, function(conf)
          conf = conf:gsub("bearer = {.-},\n", "\n") -- the bearer section, when set, does not count here
          local n
          conf, n = conf:gsub(case[2]:gsub("%p", "%%%0"), (case[3]:gsub("%%", "%%%%")), 1)
          assert.equal(1, n, case[2])
          return conf
        end)
        assert.matches("rc=1", out)
        assert.matches("init_by_lua error: tfauth: gate.init: argument " .. case[4]:gsub("%p", "%%%0"), out)
      end)
    end

    for _, audience in ipairs { '{ "fndtn-api", "account" }', "false", '"fndtn-api", types = false' } do
      it("starts with bearer.audience = " .. audience .. " (a list, or explicitly unchecked)", function()
        local out = start_with(t.prefix, function(conf)
          conf = conf:gsub("bearer = {.-},\n", "\n")
          local n
          conf, n = conf:gsub('shared_dict = "tfauth_gate",', 'shared_dict = "tfauth_gate", bearer = { '
            .. 'issuer = "http://127.0.0.1:1/realms/x", audience = ' .. audience .. ' },', 1)
          assert.equal(1, n)
          return conf
        end)
        assert.matches("rc=0", out)
      end)
    end

    it("starts with the example's configuration (the cases above change one thing each)", function()
      local out = start_with(t.prefix, function(conf) return conf end)
      assert.matches("rc=0", out)
    end)
  end)
end)

describe("tfauth.gate cookie and origin settings #nginx", function()
  local url, stop, prefix

  setup(function()
    url, stop, prefix = h.start_nginx { workers = 2, env = { TFAUTH_SECURE = "true",
      TFAUTH_PUBLIC_ORIGIN = "https://app.example", TFAUTH_LOGIN_RATE = "1r/s", TFAUTH_LOGIN_BURST = "6" } }
  end)
  teardown(function() stop() end)
  before_each(h.reset)

  local function post_login(headers, user)
    user = user or "alice"
    return http(url .. "/login", { headers = headers, form = { user = user, password = h.users[user].password } })
  end

  it("names the cookie __Host-tfauth when Secure on / without a domain, with every attribute", function()
    local status, headers = post_login { "Origin: https://app.example" }
    assert.equal(200, status)
    local cookie = first(headers, "set-cookie")
    local value = cookie:match("^__Host%-tfauth=(%x+); Path=/; HttpOnly; Secure; SameSite=Lax$")
    assert.truthy(value, cookie)
    local got = cjson.decode(select(3, http(url .. "/app/x", { headers = { "Cookie: __Host-tfauth=" .. value } })))
    assert.equal("alice", got.headers["x-auth-request-user"])
    assert.equal(401, (http(url .. "/app/x", { headers = { "Cookie: tfauth_sid=" .. value } })))
    status, headers = http(url .. "/logout", { method = "POST", headers = { "Cookie: __Host-tfauth=" .. value } })
    assert.equal(200, status)
    assert.equal("__Host-tfauth=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; Secure; SameSite=Lax",
      first(headers, "set-cookie"))
  end)

  it("does not accept bearer tokens when the config has no bearer section", function()
    local token = h.login("alice").access_token
    local status, headers = http(url .. "/app/x", { headers = { "Authorization: Bearer " .. token } })
    assert.equal(401, status)
    assert.equal('Bearer realm="tfauth"', first(headers, "www-authenticate"))
  end)

  it("compares origins with public_origin, not with Host", function()
    assert.equal(403, (post_login { "Origin: " .. url }))
    assert.equal(403, (post_login { "Origin: http://app.example" }))
    assert.equal(200, (post_login { "Origin: https://APP.example:443" }))
    assert.equal(200, (post_login { "Referer: https://app.example/login" }))
  end)

  it("limits password guesses per client address (limit_req), not the page", function()
    local codes = {}
    for _ = 1, 14 do
      local status = http(url .. "/login", { form = { user = "alice", password = "guess-guess-1" } })
      codes[tostring(status)] = (codes[tostring(status)] or 0) + 1
    end
    assert.is_true((codes["429"] or 0) >= 4, cjson.encode(codes))
    assert.is_true((codes["401"] or 0) >= 1, cjson.encode(codes))
    assert.equal(200, (http(url .. "/login")))
    assert.equal(200, (http(url .. "/login")))
  end)

  it("says so in the error log when another writer evicted a counter, and still answers metrics", function()
    assert.is_true(tonumber(sh("curl -s " .. url .. "/t/flood")) > 0)
    http(url .. "/login", { headers = { "Origin: https://app.example" },
      form = { user = "alice", password = h.users.alice.password } })
    http(url .. "/app/x")
    assert.matches("tfauth: metric [%w_]+{[^}]*} was evicted from lua_shared_dict tfauth_gate", log_of(prefix))
    local status, _, body = http(url .. "/metrics")
    assert.equal(200, status)
    assert.matches("tfauth_logins_total", body)
  end)
end)

describe("tfauth.gate cookie settings #nginx", function()
  local EXPIRED = "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
  for _, case in ipairs {
    { '{ secure = true, same_site = "Strict", path = "/", domain = "app.example" }', "tfauth_sid",
      "; Path=/; Domain=app.example; HttpOnly; Secure; SameSite=Strict", "a Domain: not __Host-" },
    { '{ secure = true, path = "/app/" }', "tfauth_sid", "; Path=/app/; HttpOnly; Secure; SameSite=Lax",
      "a Path other than /: not __Host-" },
    { '{ secure = false }', "tfauth_sid", "; Path=/; HttpOnly; SameSite=Lax", "not Secure: not __Host-" },
    { '{ secure = true, name = "myapp_session" }', "myapp_session", "; Path=/; HttpOnly; Secure; SameSite=Lax",
      "cookie.name overrides __Host-tfauth" },
  } do
    local conf, name, attributes, why = case[1], case[2], case[3], case[4]
    it(("cookie = %s: named %s (%s), the same attributes on login and logout"):format(conf, name, why), function()
      local url, stop = h.start_nginx { workers = 2, env = { TFAUTH_COOKIE = conf } }
      local ok, err = pcall(function()
        h.reset()
        local status, headers = http(url .. "/login", { form = { user = "alice", password = h.users.alice.password } })
        assert.equal(200, status)
        local cookie = first(headers, "set-cookie")
        local value = cookie:match("^" .. name:gsub("%p", "%%%0") .. "=(%x+)" .. attributes:gsub("%p", "%%%0") .. "$")
        assert.truthy(value, cookie)
        local got = cjson.decode(select(3, http(url .. "/app/x", { headers = { "Cookie: " .. name .. "=" .. value } })))
        assert.equal("alice", got.headers["x-auth-request-user"])
        status, headers = http(url .. "/logout", { method = "POST", headers = { "Cookie: " .. name .. "=" .. value } })
        assert.equal(200, status)
        assert.equal(name .. EXPIRED .. attributes, first(headers, "set-cookie"))
        assert.equal(401, (http(url .. "/app/x", { headers = { "Cookie: " .. name .. "=" .. value } })))
      end)
      stop()
      assert(ok, err)
    end)
  end
end)
