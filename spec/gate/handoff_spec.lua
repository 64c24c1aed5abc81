-- tfauth.gate on real nginx: what the guard hands on to the upstream, by
-- both ways (handoff = "variables", the example's, and "headers"): the
-- access token, and the Cookie header without the gate's own cookie.
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
