-- tfauth.gate on real nginx: the regressions of the December 2026 red team
-- (docs/security.md, "Red team, December 2026").
local h = require "spec.helper"
local support = require "spec.gate.support"

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

describe("the examples' auth_request locations", function()
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
end)
