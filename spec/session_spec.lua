-- tfauth.session: a handle that always gives a valid access token.
local tfauth = require "tfauth"
local h = require "spec.helper"

local creds = { user = "alice", password = "alice-Secret-1" }

local count = h.count

describe("session", function()
  before_each(h.reset)

  it("logs in and gives the access token while it is fresh, without refreshing", function()
    local s = h.client():session(creds)
    assert.equal("active", s.state)
    local token = s:access_token()
    assert.equal(token, s:access_token())
    assert.equal(0, count("/api/iam/refresh"))
    assert.equal("alice", s:claims().preferred_username)
    assert.is_true(s:expires_in() > 250)
  end)

  it("refreshes first when the token expires within the skew", function()
    local clock = os.time()
    local s = h.client():session(creds, { clock = function() return clock end })
    local first = s:access_token()
    clock = clock + 300 - 29 -- inside the default 30 s skew
    local second = s:access_token()
    assert.are_not.equal(first, second)
    assert.equal(1, count("/api/iam/refresh"))
  end)

  it("takes a configurable skew", function()
    local s = h.client():session(creds, { skew = 301 }) -- the 300 s token is already "expiring"
    s:access_token()
    assert.equal(1, count("/api/iam/refresh"))
    s = h.client():session(creds, { skew = 0 })
    s:access_token()
    assert.equal(1, count("/api/iam/refresh"))
  end)

  it("outlives its access token and keeps working", function()
    h.configure_server { access_ttl = 4 } -- long enough for the first call on a loaded machine
    local client = h.client()
    local s = client:session(creds, { skew = 0 })
    local api = h.client { bearer = function() return s:access_token() end }
    api:change_password { x_org = "acme", current_password = creds.password, new_password = "Second-Pass-2" }
    -- The refreshed token gets a longer life: with a few seconds (and iat in
    -- whole seconds) it could expire before use on a loaded machine.
    h.configure_server { access_ttl = 60 }
    os.execute("sleep 5.1") -- the first access token is now expired on the server
    api:change_password { x_org = "acme", current_password = "Second-Pass-2", new_password = "Third-Pass-3" }
    assert.equal(1, count("/api/iam/refresh"))
    assert.equal(2, count("/api/iam/password/change"))
    assert.equal("active", s.state)
  end)

  it("becomes expired when its refresh token is revoked, and says so without asking again", function()
    local client = h.client()
    local s = client:session(creds, { skew = 1e6 }) -- every use refreshes
    client:logout { refresh_token = s:export().refresh_token } -- revoked behind its back
    local ok, err = pcall(s.access_token, s)
    assert.is_false(ok)
    assert.equal("expired", s.state)
    assert.is_true(tfauth.is_error(err))
    assert.is_true(err.expired)
    assert.equal("http", err.kind)
    assert.equal(400, err.status)
    assert.equal("invalid_grant", err.error)
    assert.matches("session expired", tostring(err))
    local before = #h.requests()
    local err2 = h.error_of(s.access_token, s)
    assert.is_true(err2.expired)
    assert.equal(before, #h.requests(), "an expired session sends nothing")
  end)

  it("surfaces other refresh failures as the structured error and stays active", function()
    local s = h.client():session(creds, { skew = 1e6 })
    h.script { path = "/api/iam/refresh", status = 503, body = '{"detail":"maintenance"}' }
    local err = h.error_of(s.access_token, s)
    assert.equal(503, err.status)
    assert.equal("active", s.state)
    assert.is_string(s:access_token())
  end)

  it("refreshes once for coroutines that ask at once (single-flight)", function()
    local real = h.client()
    -- A client whose refresh yields mid-flight, as a non-blocking transport does.
    local yielding = setmetatable({}, { __index = function(_, name)
      return function(_, ...)
        if name == "refresh" then coroutine.yield("in flight") end
        return real[name](real, ...)
      end
    end })
    local clock = os.time()
    local s = tfauth.session.new(yielding, creds, { clock = function() return clock end })
    clock = clock + 290
    local tokens, threads = {}, {}
    for i = 1, 5 do
      threads[i] = coroutine.create(function() tokens[i] = s:access_token() end)
    end
    repeat -- a tiny scheduler: resume each until all are done
      local alive = 0
      for _, co in ipairs(threads) do
        if coroutine.status(co) == "suspended" then
          assert(coroutine.resume(co))
          alive = alive + 1
        end
      end
    until alive == 0
    assert.equal(1, count("/api/iam/refresh"))
    for i = 2, 5 do assert.equal(tokens[1], tokens[i]) end
  end)

  it("serialises to a plain table and back", function()
    local client = h.client()
    local s = client:session(creds)
    local state = s:export()
    assert.is_nil(getmetatable(state))
    for _, field in ipairs { "access_token", "refresh_token", "expires_at", "refresh_expires_at" } do
      assert.is_not_nil(state[field], field)
    end
    local restored = client:session(state, { skew = 1e6 })
    restored:refresh()
    assert.equal(1, count("/api/iam/refresh"))
    assert.equal("active", restored.state)
    local from_token = client:session(client:login(creds)) -- a TokenOpenID works too
    assert.equal("active", from_token.state)
  end)

  it("never shows a token through tostring", function()
    local s = h.client():session(creds)
    local state = s:export()
    for _, text in ipairs { tostring(s), tostring(state) } do
      assert.is_nil(text:find(state.access_token, 1, true))
      assert.is_nil(text:find(state.refresh_token, 1, true))
    end
    assert.matches("^tfauth.session %(active, access token valid %d+ s%)$", tostring(s))
  end)

  it("logs out once (idempotent), and a logged-out session refuses use", function()
    local s = h.client():session(creds)
    s:logout()
    s:logout()
    assert.equal(1, count("/api/iam/logout"))
    assert.equal("closed", s.state)
    local err = h.error_of(s.access_token, s)
    assert.equal("argument", err.kind)
    assert.matches("logged out", err.message)
  end)

  it("logs out at the end of a <close> scope (Lua 5.4)", function()
    if _VERSION ~= "Lua 5.4" then return pending("to-be-closed variables are Lua 5.4") end
    local s = assert(load([[
      local client, creds = ...
      local kept
      do
        local s <close> = client:session(creds)
        kept = s
      end
      return kept
    ]]))(h.client(), creds)
    assert.equal("closed", s.state)
    assert.equal(1, count("/api/iam/logout"))
  end)

  it("reports a failed login as the structured error, and bad options as argument errors", function()
    local client = h.client()
    assert.equal(401, h.error_of(client.session, client, { user = "alice", password = "wrong-pw-1" }).status)
    assert.equal("skew", h.error_of(client.session, client, creds, { skew = -1 }).field)
    assert.equal("colour", h.error_of(client.session, client, creds, { colour = 1 }).field)
    local res, err = require("tfauth.safe").new({ server_url = h.url }):session { user = "alice", password = "wrong-pw-1" }
    assert.is_nil(res)
    assert.equal(401, err.status)
  end)

  it("calls on_refresh with the session after each refresh, to store its new state", function()
    local stored
    local s = h.client():session(creds, { skew = 1e6, on_refresh = function(sess) stored = sess:export() end })
    s:access_token()
    assert.equal(s:export().refresh_token, stored.refresh_token)
  end)
end)
