-- tfauth.gate on real nginx: the regressions of the December 2026 red team
-- (docs/security.md, "Red team, December 2026").
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- What a location behind auth_request must set itself: the subrequest cannot
-- remove the client's copies (docs/gate.md, "With nginx's own auth_request").
local MUST_SET = { "cookie", "authorization", "x-auth-request-user", "x-auth-request-email",
  "x-auth-request-roles", "x-auth-request-subject", "x-auth-request-access-token", "x-auth-request-groups",
  "x-auth-request-preferred-username", "x-forwarded-user", "x-forwarded-email", "x-forwarded-groups",
  "x-forwarded-preferred-username", "x-forwarded-access-token" }

-- The `location` blocks of an nginx.conf that use auth_request: name -> the
-- header names their proxy_set_header lines set (lower-cased).
local function auth_request_locations(path)
  local f = assert(io.open(path))
  local text = f:read("*a")
  f:close()
  local found = {}
  for name, body in text:gmatch("location%s+([^%s{]+)%s*(%b{})") do
    if body:find("\n%s*auth_request%s+/") then
      local set = {}
      for header in body:gmatch("proxy_set_header%s+([%w_-]+)") do set[header:lower()] = true end
      found[name] = set
    end
  end
  return found
end

describe("the examples' auth_request locations #once", function()
  for _, conf in ipairs { "examples/nginx/nginx.conf", "examples/demo-gate/nginx.conf" } do
    it("set every identity header, Authorization and Cookie: " .. conf, function()
      local locations = auth_request_locations(h.root .. "/" .. conf)
      assert.is_not_nil(next(locations), "no auth_request location in " .. conf)
      for name, set in pairs(locations) do
        for _, header in ipairs(MUST_SET) do
          assert.is_true(set[header] == true, conf .. ": location " .. name .. " does not set " .. header)
        end
      end
    end)
  end
end)

support.suite("tfauth.gate red team #nginx", function(t)
  it("auth_request with rules: the client's identity headers, Authorization and the gate's cookie never pass", function()
    t.login("admin")
    local status, _, body = t.get("/ar-admin/x", { headers = {
      "X-Auth-Request-Roles: superuser", "X-Auth-Request-Email: ceo@example.com", "X-Auth-Request-Subject: 0",
      "X-Forwarded-User: root", "X-Forwarded-Groups: admin", "Authorization: Basic bWFsbG9yeTp4" } })
    assert.equal(200, status)
    local got = t.upstream(body)
    assert.equal("admin", got["x-auth-request-user"])
    assert.equal("user,admin", got["x-auth-request-roles"])
    assert.equal("admin@example.com", got["x-auth-request-email"])
    assert.equal(h.users.admin.id, got["x-auth-request-subject"])
    assert.is_nil(got["x-forwarded-user"])
    assert.is_nil(got["x-forwarded-groups"])
    assert.matches("^Bearer eyJ", got.authorization)
    assert.is_falsy((got.cookie or ""):find(t.sid(), 1, true))
  end)

  -- Asks, over one connection, for the reset of n made-up names; the statuses seen.
  local function flood_resets(url, n)
    return h.sh(("/usr/bin/python3 -c %s %s %d"):format(shell_quote([[
import collections, http.client, sys, urllib.parse
host, port = urllib.parse.urlsplit(sys.argv[1]).netloc.split(":")
conn, seen = http.client.HTTPConnection(host, int(port), timeout=10), collections.Counter()
for i in range(int(sys.argv[2])):
    conn.request("POST", "/login/reset", body="user=made-up-%d" % i,
                 headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    r = conn.getresponse(); r.read(); seen[r.status] += 1
print(dict(seen))]]), url, n))
  end

  it("a flood of password resets for made-up names neither fills the gate's dict nor stops real resets", function()
    local out, resets, statuses, log = support.start_with(t.prefix, function(conf)
      return (conf:gsub("lua_shared_dict tfauth_gate 1m;", "lua_shared_dict tfauth_gate 128k;"))
    end, function(url, dir)
      local seen = flood_resets(url, 1500) -- a 128k dict holds about 1,000 marks
      os.execute("sleep 1.1") -- limit_req's burst refilled
      local status = h.http(url .. "/login/reset", { form = { user = "bob" } })
      assert.equal(200, status)
      os.execute("sleep 0.5") -- sent by a timer, after the answer
      return h.resets(), seen, support.log_of(dir)
    end)
    assert.matches("rc=0", out)
    assert.matches("200", statuses)
    assert.same({ "bob" }, resets)
    assert.same({}, support.lines_with(log, "no memory")) -- the key set, its lock and the metrics still fit
  end)

  it("refuses a path with a dot segment, which nginx resolves but proxy_pass hands on as sent", function()
    t.login("alice") -- no admin role: /admin/ refuses her, /app/ lets her in
    assert.equal(403, (t.get("/admin/x", { headers = { "Accept: application/json" } })))
    -- {refused}: a location whose rules refuse her; {allowed}: one that lets her in
    local forms = { "/{refused}/..%2f{allowed}/x", "/{refused}/%2e%2e/{allowed}/x", "/{refused}/%2E%2E%2F{allowed}/x",
      "/{refused}/../{allowed}/x", "/{refused}/.%2e/{allowed}/x", "/{refused}%2f..%2f{allowed}/x", "/{allowed}/./x",
      "/{allowed}/..;/{refused}/x" } -- Tomcat's `..;`: nginx sees /{allowed}/, Tomcat /{refused}/
    for _, form in ipairs(forms) do
      local path = form:gsub("{refused}", "admin"):gsub("{allowed}", "app")
      local status, _, body = t.get(path, { path_as_is = true, headers = { "Accept: application/json" } })
      assert.equal(400, status, path)
      assert.same({ error = "invalid_request" }, cjson.decode(body), path)
      path = form:gsub("{refused}", "ar-admin"):gsub("{allowed}", "ar") -- auth_request: nginx shows its 403
      assert.equal(403, (t.get(path, { path_as_is = true })), path)
    end
    for _, path in ipairs { "/app/x", "/app/.well-known/x", "/app/a...b/x", "/app/x?next=/../admin/", "/app/x?a=%2e%2e" } do
      local status, _, body = t.get(path, { path_as_is = true })
      assert.equal(200, status, path)
      assert.equal(path, cjson.decode(body).uri, path)
    end
  end)
end)

