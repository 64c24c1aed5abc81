-- tfauth.gate on real nginx (issue 18): mistakes that explain themselves.
-- The auth API's answers to a login, as the user and the log get them; a
-- wrong server_url; a missing transport location; rules, store dicts and
-- init errors named at start.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local http = h.http
local first, log_of, start_with = support.first, support.log_of, support.start_with

local function count(haystack, needle)
  local n, from = 0, 1
  while true do
    local at = haystack:find(needle, from, true)
    if not at then return n end
    n, from = n + 1, at + 1
  end
end

-- A config edit: the first plain occurrence of old replaced by new.
local function replacing(old, new)
  return function(conf)
    local at, last = conf:find(old, 1, true)
    assert(at, old)
    return conf:sub(1, at - 1) .. new .. conf:sub(last + 1)
  end
end

support.suite("tfauth.gate mistakes #nginx", function(t)
  describe("the auth API's answer to a login", function()
    -- its status -> the gate's status, JSON error, the page's message
    local cases = {
      { 401, 401, "invalid_credentials", "Wrong user name or password." },
      { 403, 401, "invalid_credentials", "Wrong user name or password." },
      { 400, 403, "account_disabled", "This account cannot sign in now. Contact your administrator." },
      { 404, 503, "unavailable", "Signing in is not possible right now. Try again in a moment." },
      { 405, 503, "unavailable", "Signing in is not possible right now. Try again in a moment." },
      { 422, 503, "unavailable", "Signing in is not possible right now. Try again in a moment." },
      { 418, 503, "unavailable", "Signing in is not possible right now. Try again in a moment." },
      { 500, 503, "unavailable", "Signing in is not possible right now. Try again in a moment." },
    }
    for _, case in ipairs(cases) do
      it(("%d: the user gets %d (%s)"):format(case[1], case[2], case[3]), function()
        local body = case[1] == 400 and '{"error":"invalid_grant","error_description":"Account disabled"}'
          or '{"detail":"x"}'
        h.script { path = "/api/iam/login", status = case[1], body = body, times = 2 }
        local form = { user = "alice", password = h.users.alice.password }
        local status, _, json = http(t.url .. "/login", { form = form })
        assert.equal(case[2], status)
        assert.same({ error = case[3] }, cjson.decode(json))
        form.rd = "/app/"
        local page
        status, _, page = http(t.url .. "/login", { form = form, headers = { "Accept: text/html" } })
        assert.equal(case[2], status)
        assert.matches('role="alert">' .. case[4] .. "<", page, 1, true)
        assert.matches('name="password" type="password" autocomplete="current%-password" required autofocus>', page)
        local log = log_of(t.prefix)
        local line = "POST " .. h.url .. "/api/iam/login answered " .. case[1] .. ": check server_url"
        if case[1] >= 404 and case[1] < 500 then
          assert.matches(line, log, 1, true)
        else
          assert.is_nil(log:find(line, 1, true))
        end
        assert.is_nil(log:find(h.users.alice.password, 1, true))
      end)
    end

    it("429: too many attempts, wait; the gate answers 429 with the API's Retry-After", function()
      h.script { path = "/api/iam/login", status = 429, body = "{}", headers = { ["Retry-After"] = "7" }, times = 2 }
      local form = { user = "alice", password = h.users.alice.password }
      local status, headers, json = http(t.url .. "/login", { form = form })
      assert.equal(429, status)
      assert.equal("7", first(headers, "retry-after"))
      assert.same({ error = "too_many_requests" }, cjson.decode(json))
      form.rd = "/app/"
      local page
      status, headers, page = http(t.url .. "/login", { form = form, headers = { "Accept: text/html" } })
      assert.equal(429, status)
      assert.equal("7", first(headers, "retry-after"))
      assert.matches("Too many attempts. Wait 7 seconds, then try again.", page, 1, true)
    end)

    it("a server_url with a wrong path: 503, and the log names method and URL", function()
      local out, log = start_with(t.prefix, replacing('server_url = "' .. h.url .. '"',
        'server_url = "' .. h.url .. '/api"'), function(url, dir)
        local status = http(url .. "/login", { form = { user = "alice", password = h.users.alice.password } })
        assert.equal(503, status)
        return log_of(dir)
      end)
      assert.matches("rc=0", out)
      assert.matches("POST " .. h.url .. "/api/api/iam/login answered 404: check server_url", log, 1, true)
    end)
  end)

  it("a missing transport location is named in the log, once per worker, with the fix", function()
    local out, log, page = start_with(t.prefix, replacing('shared_dict = "tfauth_gate",',
      'shared_dict = "tfauth_gate", nginx_location = "/_nowhere",'), function(url, dir)
      local page
      for _ = 1, 6 do
        local status
        status, _, page = http(url .. "/login", { form = { user = "alice", password = h.users.alice.password,
          rd = "/" }, headers = { "Accept: text/html" } })
        assert.equal(503, status)
      end
      return log_of(dir), page
    end)
    assert.matches("rc=0", out)
    assert.matches("Signing in is not possible right now", page, 1, true)
    local said = count(log, "the nginx location /_nowhere did not reach the auth API")
    assert.is_true(said >= 1 and said <= 2, log)
    assert.matches("declare it as docs/openresty.md shows: location = /_nowhere {", log, 1, true)
    assert.is_nil(log:find("check server_url", 1, true))
  end)

  it("an unreachable store: a browser gets the 503 page with Retry-After, an API the JSON", function()
    local out, status, headers, body, api_status, api_headers = start_with(t.prefix, function(conf)
      conf = replacing('store = { kind = "shared_dict", name = "tfauth_sessions" }',
        'store = { kind = "redis", host = "127.0.0.1", port = 1, timeout_ms = 200 }')(conf)
      return (conf:gsub("keys = {[^}]*},", 'keys = { "' .. ("ab"):rep(32) .. '" },', 1))
    end, function(url)
      local cookie = "Cookie: tfauth_sid=" .. ("0"):rep(48)
      local s1, h1, b1 = http(url .. "/app/", { headers = { "Accept: text/html", cookie } })
      local s2, h2 = http(url .. "/app/", { headers = { cookie } })
      return s1, h1, b1, s2, h2
    end)
    assert.matches("rc=0", out)
    assert.equal(503, status)
    assert.equal("10", first(headers, "retry-after"))
    assert.equal("DENY", first(headers, "x-frame-options"))
    assert.matches("<h1>Not possible right now</h1>", body, 1, true)
    assert.equal(503, api_status)
    assert.equal("10", first(api_headers, "retry-after"))
  end)

  describe("named at start", function()
    it("a named rule with a mistake: nginx does not start, and says which key", function()
      local out = start_with(t.prefix, replacing('rules = { admin = { roles = { "admin" } } }',
        'rules = { admin = { role = { "admin" } } }'))
      assert.matches("rc=1", out)
      assert.matches("init_by_lua error: tfauth: gate.init: argument 'rules.admin.role': is not a known key", out,
        1, true)
    end)

    it("a missing store dict names the directive to add", function()
      local out = start_with(t.prefix, replacing("lua_shared_dict tfauth_sessions 10m;", ""))
      assert.matches("rc=1", out)
      assert.matches("argument 'store.name': no lua_shared_dict named tfauth_sessions (declare it: "
        .. "lua_shared_dict tfauth_sessions 10m;)", out, 1, true)
    end)

    it("a gate.init error's first line names the key; the traceback holds no frame of tfauth's", function()
      local out = start_with(t.prefix, replacing("skew = 30,", "skew = 30, bogus_key = 1,"))
      assert.matches("rc=1", out)
      local first_line = out:match("[^\n]*init_by_lua error[^\n]*")
      assert.matches("init_by_lua error: tfauth: gate.init: argument 'bogus_key': is not a known key$", first_line)
      assert.is_nil(out:find("tfauth/", 1, true), out)
      assert.is_nil(out:find("gate/", 1, true), out)
    end)
  end)
end)
