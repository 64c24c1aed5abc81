-- Hooks (before_request, after_success, after_error) and tfauth.jwt.
local cjson = require "cjson"
local tfauth = require "tfauth"
local h = require "spec.helper"

local creds = { user = "alice", password = "alice-Secret-1" }

describe("hooks", function()
  before_each(h.reset)

  it("before_request sees the request redacted and may add or change headers", function()
    local seen
    local t = h.login("alice")
    local client = h.client {
      bearer = t.access_token,
      http_headers = { ["X-Request-Id"] = "from-config" },
      before_request = function(req)
        seen = req
        req.headers["X-Signature"] = "sig-" .. req.operation
        req.headers["X-Request-Id"] = "from-hook"
        assert.equal("sig-" .. req.operation, req.headers["X-Signature"]) -- reads back what it set
      end,
    }
    client:change_password { x_org = "acme", current_password = creds.password, new_password = "Hooked-Pass-1" }
    assert.equal("change_password", seen.operation)
    assert.equal("POST", seen.method)
    assert.equal(h.url .. "/api/iam/password/change", seen.url)
    assert.equal("Bearer [REDACTED]", seen.headers.Authorization)
    assert.equal("acme", seen.headers["X-Org"])
    assert.same({ current_password = "[REDACTED]", new_password = "[REDACTED]" }, cjson.decode(seen.body))
    local req = h.last_request()
    assert.equal("sig-change_password", req.headers["x-signature"])
    assert.equal("from-hook", req.headers["x-request-id"])
    assert.equal("Bearer " .. t.access_token, req.headers.authorization)
  end)

  it("before_request may not set what tfauth sets, nor send a bad value; nothing is sent", function()
    for _, change in ipairs { { Authorization = "Bearer stolen" }, { ["X-Org"] = "globex" }, { ["X-Bad"] = "a\r\nb" } } do
      local client = h.client { before_request = function(req)
        for k, v in pairs(change) do req.headers[k] = v end
      end }
      local err = h.error_of(client.login, client, creds)
      assert.equal("argument", err.kind)
      assert.matches("^before_request", err.field)
    end
    assert.equal(0, #h.requests())
  end)

  it("a hook that raises fails the call: tfauth errors as they are, others named, redacted", function()
    local client = h.client { before_request = function() error("hook broke near " .. creds.password) end }
    local err = h.error_of(client.login, client, creds)
    assert.equal("argument", err.kind)
    assert.equal("before_request", err.field)
    assert.is_nil(err.message:find(creds.password, 1, true))
    assert.equal(0, #h.requests())
    local own = tfauth.Error.new("http", "refused by policy", { status = 403 })
    client = h.client { after_success = function() error(own) end }
    assert.equal(own, h.error_of(client.login, client, creds))
  end)

  it("after_success gets the status, headers and a redacted copy of the result", function()
    local info
    local client = h.client { after_success = function(i) info = i end }
    local t = client:login(creds)
    assert.equal("login", info.operation)
    assert.equal(200, info.status)
    assert.equal(1, info.attempts)
    assert.equal("application/json", info.headers["content-type"])
    assert.equal("[REDACTED]", info.result.access_token)
    assert.equal("[REDACTED]", info.result.refresh_token)
    assert.equal(300, info.result.expires_in)
    assert.matches("^eyJ", t.access_token, nil) -- the caller's own result is untouched
  end)

  it("after_error gets the error", function()
    local got
    local client = h.client { after_error = function(err) got = err end }
    local err = h.error_of(client.login, client, { user = "alice", password = "wrong-pw-1" })
    assert.equal(err, got)
    assert.equal(401, got.status)
  end)

  it("are checked as functions when the client is made", function()
    for _, name in ipairs { "before_request", "after_success", "after_error" } do
      local err = h.error_of(tfauth.new, { server_url = h.url, [name] = "yes" })
      assert.equal(name, err.field)
    end
  end)
end)

describe("tfauth.jwt.claims", function()
  before_each(h.reset)

  it("decodes a token's payload, integers as integers", function()
    local t = h.login("alice")
    local claims = tfauth.jwt.claims(t.access_token)
    assert.equal("alice", claims.preferred_username)
    assert.equal(t.session_state, claims.sid)
    assert.equal(h.users.alice.id, claims.sub)
    assert.is_true(math.abs(claims.exp - t.expires_at) <= 2)
    if math.type then
      assert.equal("integer", math.type(claims.exp))
      assert.equal("integer", math.type(t.expires_in))
    end
  end)

  it("accepts base64url without padding, and with it", function()
    local payload = "eyJzdWIiOiJhIn0" -- {"sub":"a"}
    assert.equal("a", tfauth.jwt.claims("e30." .. payload .. ".sig").sub)
    assert.equal("a", tfauth.jwt.claims("e30." .. payload .. "=.").sub)
  end)

  for what, token in pairs {
    ["a number"] = 42, ["one segment"] = "abc", ["two segments"] = "abc.def",
    ["a non-base64url payload"] = "e30.a+b/c.sig", ["a payload that is not JSON"] = "e30.bm90IGpzb24.sig",
    ["a JSON array payload"] = "e30.WzEsMl0.sig", ["an empty payload"] = "e30..sig",
  } do
    it("refuses " .. what .. " with an argument error that does not quote it", function()
      local err = h.error_of(tfauth.jwt.claims, token)
      assert.equal("argument", err.kind)
      assert.equal("token", err.field)
      if type(token) == "string" and #token > 4 then assert.is_nil(err.message:find(token, 1, true)) end
    end)
  end
end)
