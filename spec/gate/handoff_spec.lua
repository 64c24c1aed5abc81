-- tfauth.gate on real nginx: what the guard hands on to the upstream, by
-- both ways (handoff = "variables", the example's, and "headers"; and
-- identity_handoff = "variables"): the access token, the identity headers,
-- and the Cookie header without the gate's own cookie.
local h = require "spec.helper"
local support = require "spec.gate.support"

local bearer_it = support.issuer and it or pending

local function handed_on(t)
  it("passes a session's access token as Authorization: Bearer", function()
    t.login("alice")
    local got = t.upstream(select(3, t.get("/app/x")))
    assert.matches("^Bearer eyJ[%w_-]+%.[%w_-]+%.[%w_-]+$", got.authorization)
    assert.equal("alice", got["x-auth-request-user"])
  end)

  it("passes the identity headers, never the client's own under their names", function()
    t.login("alice")
    local forged = { "X-Auth-Request-User: mallory", "X-Auth-Request-Roles: admin",
      "X-Auth-Request-Subject: 0000", "X-Auth-Request-Email: mallory@example.com" }
    local got = t.upstream(select(3, t.get("/app/x", { headers = forged })))
    assert.equal("alice", got["x-auth-request-user"])
    assert.equal(h.users.alice.id, got["x-auth-request-subject"])
    assert.not_matches("admin", got["x-auth-request-roles"] or "")
    assert.not_equal("mallory@example.com", got["x-auth-request-email"])
    -- admin holds the role: the roles header lists it
    t.login("admin")
    got = t.upstream(select(3, t.get("/admin/x")))
    assert.equal("admin", got["x-auth-request-user"])
    assert.matches("admin", got["x-auth-request-roles"])
  end)

  it("removes the gate's cookie and passes every other cookie byte for byte", function()
    t.login("alice")
    local sid = t.sid()
    local cases = {
      { "a=1; tfauth_sid=" .. sid .. "; b=2", "a=1; b=2" },
      { "tfauth_sid=" .. sid .. "; theme=dark;  lang=en-GB", "theme=dark;  lang=en-GB" },
      { "pref=x,y; consent=a%3Db==; tfauth_sid=" .. sid, "pref=x,y; consent=a%3Db==" },
      { "a=1;tfauth_sid=" .. sid .. ";b=2", "a=1; b=2" },
    }
    for _, case in ipairs(cases) do
      local status, _, body = t.get("/app/x", { jar = false, headers = { "Cookie: " .. case[1] } })
      assert.equal(200, status, case[1])
      assert.equal(case[2], t.upstream(body).cookie, case[1])
    end
  end)

  it("removes the Cookie header when the gate's cookie is the only one", function()
    t.login("alice")
    local status, _, body = t.get("/app/x", { jar = false, headers = { "Cookie: tfauth_sid=" .. t.sid() } })
    assert.equal(200, status)
    assert.is_nil(t.upstream(body).cookie)
  end)

  bearer_it("leaves a bearer request's own Authorization and cookies as they came", function()
    local token = h.login("alice").access_token
    local status, _, body = t.get("/app/x", { jar = false,
      headers = { "Authorization: Bearer " .. token, "Cookie: a=1; b=2" } })
    assert.equal(200, status)
    local got = t.upstream(body)
    assert.equal("Bearer " .. token, got.authorization)
    assert.equal("a=1; b=2", got.cookie)
  end)
end

support.suite("tfauth.gate hand-off through nginx variables #nginx", handed_on)
support.suite("tfauth.gate hand-off through ngx.req.set_header #nginx", handed_on, { TFAUTH_HANDOFF = "headers" })
support.suite("tfauth.gate hand-off with identity_handoff = \"variables\" #nginx", function(t)
  handed_on(t)

  it("answers 500 and logs the fix when the identity variables are not declared", function()
    local out, status, log = support.start_with(t.prefix, function(conf)
      return (conf:gsub('\n *set %$tfauth_user "";', ""):gsub("\n *proxy_set_header X%-Auth%-Request%-User %$tfauth_user;", ""))
    end, function(url, dir)
      local form = { user = "alice", password = h.users.alice.password }
      assert.equal(200, (h.http(url .. "/login", { form = form, jar = t.jar })))
      local got = h.http(url .. "/app/x", { jar = t.jar })
      return got, io.open(dir .. "/logs/error.log"):read("a")
    end)
    assert.matches("rc=0", out, 1, true)
    assert.equal(500, status)
    assert.matches('identity_handoff = "variables" needs `set $tfauth_user "";`', log, 1, true)
  end)
end, { TFAUTH_IDENTITY_HANDOFF = "variables" })
