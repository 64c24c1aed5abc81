-- tfauth.gate on real nginx (issue 18): the account's own pages, on the auth
-- API's reset_password and change_password.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local http = h.http
local first = support.first
local HTML = "Accept: text/html"

-- The requests the auth API received at path.
local function received(path)
  local out = {}
  for _, r in ipairs(h.requests()) do
    if r.path == path then out[#out + 1] = r end
  end
  return out
end

-- Waits (up to 10 s) until the backend recorded n resets.
local function resets_after(n)
  local got
  for _ = 1, 200 do
    got = h.resets()
    if #got >= n then return got end
    os.execute("sleep 0.05")
  end
  return got
end

local function without_nonce(body) return (body:gsub("nonce%-?=?\"?%x+", "")) end

support.suite("tfauth.gate account pages #nginx", function(t)
  describe("reset_password", function()
    it("asks the user name on GET, with the page's security headers", function()
      local status, headers, body = http(t.url .. "/login/reset", { headers = { HTML } })
      assert.equal(200, status)
      assert.equal("DENY", first(headers, "x-frame-options"))
      assert.equal("no-store", first(headers, "cache-control"))
      assert.matches('<form method="post" action="/login/reset">', body, 1, true)
      assert.matches('<input id="user" name="user" autocomplete="username" required autofocus>', body, 1, true)
      assert.matches('<a href="/login">Back to sign in</a>', body, 1, true)
    end)

    it("is linked from the sign-in page as \"Forgot password?\"", function()
      local _, _, body = http(t.url .. "/login")
      assert.matches('<a href="/login/reset">Forgot password?</a>', body, 1, true)
    end)

    it("answers the same text and status whether or not the account exists, and mails an existing one", function()
      local status1, _, known = http(t.url .. "/login/reset", { headers = { HTML }, form = { user = "alice" } })
      local status2, _, unknown = http(t.url .. "/login/reset", { headers = { HTML }, form = { user = "nobody-x" } })
      assert.equal(200, status1)
      assert.equal(status1, status2)
      assert.equal(without_nonce(known), without_nonce(unknown))
      assert.matches("If an account with this user name exists, an email to reset its password is on its way.",
        known, 1, true)
      assert.is_nil(known:find("alice", 1, true))
      assert.same({ "alice" }, resets_after(1))
      local status, _, body = http(t.url .. "/login/reset", { body = '{"user": "bob"}',
        headers = { "Content-Type: application/json" } })
      assert.equal(200, status)
      assert.same({ requested = true }, cjson.decode(body))
      assert.same({ "alice", "bob" }, resets_after(2))
    end)

    it("answers at once: the auth API is called after the answer", function()
      h.script { path = "/api/iam/password/reset", status = 200, body = "{}", delay_ms = 2000 }
      local function now_ms() return tonumber(h.sh("date +%s%3N")) end
      local started = now_ms()
      local status = http(t.url .. "/login/reset", { form = { user = "timing-" .. os.time() } })
      local took = now_ms() - started
      assert.equal(200, status)
      assert.is_true(took < 1500, "waited for the auth API: " .. took .. " ms") -- a generous bound: it takes 2 s
    end)

    it("sends at most one reset per user name per reset_interval, whichever worker answers", function()
      for i = 1, 8 do
        assert.equal(200, (http(t.url .. "/login/reset", { form = { user = i % 2 == 1 and "admin" or "Admin" } })))
      end
      resets_after(1)
      os.execute("sleep 0.3")
      assert.same({ "admin" }, h.resets())
    end)

    it("refuses a form posted from another origin, and a missing user name", function()
      local status, _, body = http(t.url .. "/login/reset", { headers = { HTML, "Origin: https://evil.example" },
        form = { user = "alice" } })
      assert.equal(403, status)
      assert.matches('role="alert"', body, 1, true)
      status, _, body = http(t.url .. "/login/reset", { body = "{}", headers = { "Content-Type: application/json" } })
      assert.equal(400, status)
      assert.same({ error = "invalid_request" }, cjson.decode(body))
      os.execute("sleep 0.2")
      assert.same({}, h.resets())
    end)
  end)

  describe("change_password", function()
    local function change(fields, extra_headers)
      local headers = { HTML }
      for _, v in ipairs(extra_headers or {}) do headers[#headers + 1] = v end
      return t.get("/account/password", { form = fields, headers = headers })
    end
    local alice = h.users.alice.password

    it("sends a browser without a session to sign in and back; an API client gets 401", function()
      local status, headers = http(t.url .. "/account/password", { headers = { HTML } })
      assert.equal(302, status)
      assert.equal("/login?rd=%2Faccount%2Fpassword", first(headers, "location"))
      local body
      status, headers, body = http(t.url .. "/account/password", { method = "POST", body = "{}" })
      assert.equal(401, status)
      assert.equal('Bearer realm="tfauth"', first(headers, "www-authenticate"))
      assert.same({ error = "unauthenticated" }, cjson.decode(body))
    end)

    it("shows the form to a signed-in user: current password, the new one twice", function()
      t.login("alice")
      local status, headers, body = t.get("/account/password", { headers = { HTML } })
      assert.equal(200, status)
      assert.equal("DENY", first(headers, "x-frame-options"))
      assert.matches('name="current_password" type="password" autocomplete="current-password"', body, 1, true)
      assert.matches('name="new_password" type="password" autocomplete="new-password"', body, 1, true)
      assert.matches('name="new_password_again" type="password" autocomplete="new-password"', body, 1, true)
    end)

    it("changes it with the session's token and account.x_org; the user stays signed in", function()
      t.login("alice")
      local status, _, body = change { current_password = alice, new_password = "alice-New-Secret-2",
        new_password_again = "alice-New-Secret-2" }
      assert.equal(200, status)
      assert.matches("Your password has been changed.", body, 1, true)
      assert.is_nil(body:find("alice-New-Secret-2", 1, true))
      local call = received("/api/iam/password/change")[1]
      assert.equal("acme", call.headers["x-org"])
      assert.matches("^Bearer eyJ", call.headers.authorization)
      assert.equal(200, (t.get("/app/")))
      assert.equal(303, (http(t.url .. "/login", { form = { user = "alice", password = "alice-New-Secret-2",
        rd = "/" } })))
    end)

    local refusals = {
      { "a wrong current password (the API's 400)", "alice", { current_password = "wrong-One-1",
        new_password = "alice-New-Secret-2" }, 400, "The current password is wrong.", "wrong_current_password" },
      { "another organisation (the API's 403)", "bob", { current_password = h.users.bob.password,
        new_password = "bob-New-Secret-2" }, 403, "You may not change your password in this organisation.",
        "not_allowed" },
      { "a refused new password (the API's 422)", "alice", { current_password = alice, new_password = "short" },
        422, "The new password was refused. Choose another one.", "password_refused" },
    }
    for _, case in ipairs(refusals) do
      it("shows " .. case[1] .. " from the fixed messages, as a page or JSON", function()
        t.login(case[2])
        local fields = { new_password_again = case[3].new_password }
        for k, v in pairs(case[3]) do fields[k] = v end
        local status, _, body = change(fields)
        assert.equal(case[4], status)
        assert.matches('role="alert">' .. case[5], body, 1, true)
        status, _, body = t.get("/account/password", { body = cjson.encode(case[3]),
          headers = { "Content-Type: application/json" } })
        assert.equal(case[4], status)
        assert.same({ error = case[6] }, cjson.decode(body))
        assert.equal(200, (t.get("/app/")))
      end)
    end

    it("refuses two different new passwords without calling the API", function()
      t.login("alice")
      local status, _, body = change { current_password = alice, new_password = "alice-New-Secret-2",
        new_password_again = "alice-New-Secret-3" }
      assert.equal(422, status)
      assert.matches("The two new passwords are not the same.", body, 1, true)
      assert.same({}, received("/api/iam/password/change"))
    end)

    it("refuses a form posted from another origin", function()
      t.login("alice")
      local status = change({ current_password = alice, new_password = "alice-New-Secret-2",
        new_password_again = "alice-New-Secret-2" }, { "Origin: https://evil.example" })
      assert.equal(403, status)
      assert.same({}, received("/api/iam/password/change"))
    end)

    it("is linked as \"Change password\" from the gate's pages for a signed-in user only", function()
      local _, _, body = http(t.url .. "/logout", { headers = { HTML } })
      assert.is_nil(body:find("Change password", 1, true))
      t.login("alice")
      _, _, body = t.get("/logout", { headers = { HTML } })
      assert.matches('<a href="/account/password">Change password</a>', body, 1, true)
    end)
  end)
end)
