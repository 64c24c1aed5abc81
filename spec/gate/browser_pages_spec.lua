-- tfauth.gate on real nginx (issue 18): a page for every answer a browser
-- gets (403, the sign-out confirmation, "You have signed out.", 503, 500),
-- while APIs keep their JSON, statuses and WWW-Authenticate.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local first, log_of = support.first, support.log_of
local HTML = { "Accept: text/html,application/xhtml+xml,*/*;q=0.8" }

-- The headers every page carries, as the sign-in page's.
local function assert_page_headers(headers)
  assert.matches("^text/html", first(headers, "content-type"))
  assert.equal("DENY", first(headers, "x-frame-options"))
  assert.equal("no-store", first(headers, "cache-control"))
  local csp = first(headers, "content-security-policy")
  assert.matches("^default%-src 'none'; style%-src 'nonce%-%x+'", csp)
  assert.matches("frame%-ancestors 'none'", csp)
  assert.is_nil(csp:find("script", 1, true))
end

support.suite("tfauth.gate pages #nginx", function(t)
  local function html(path, opts)
    opts = opts or {}
    opts.headers = opts.headers or HTML
    return t.get(path, opts)
  end

  describe("403 by the rules", function()
    it("shows a browser who is signed in, a link back, sign out, sign in as someone else", function()
      t.login("alice")
      local status, headers, body = html("/admin/reports?x=1")
      assert.equal(403, status)
      assert_page_headers(headers)
      assert.matches("<h1>No access</h1>", body, 1, true)
      assert.matches("You are signed in as alice. This account does not have access to this page.", body, 1, true)
      assert.matches('<a href="/">Back to the start page</a>', body, 1, true)
      assert.matches('<a href="/account/password">Change password</a>', body, 1, true)
      assert.matches('<form class="inline" method="post" action="/logout"><input type="hidden" name="rd" '
        .. 'value="/login"><button type="submit">Sign out</button></form>', body, 1, true)
      assert.matches('<input type="hidden" name="rd" value="/admin/reports?x=1"><button type="submit">Sign out, '
        .. "then sign in as someone else</button>", body, 1, true)
      assert.is_nil(body:find("eyJ", 1, true))
    end)

    it("keeps the JSON, status and WWW-Authenticate for APIs", function()
      t.login("alice")
      local status, headers, body = t.get("/admin/")
      assert.equal(403, status)
      assert.equal('Bearer realm="tfauth", error="insufficient_scope"', first(headers, "www-authenticate"))
      assert.same({ error = "insufficient_scope" }, cjson.decode(body))
    end)

    it("signing out from it lands on the sign-in page, which says so (once)", function()
      t.login("alice")
      local status, headers = t.get("/logout", { form = { rd = "/login" }, headers = HTML })
      assert.equal(303, status)
      assert.equal("/login", first(headers, "location"))
      local _, _, body = html("/login")
      assert.matches('<p class="notice" role="status">You have signed out.</p>', body, 1, true)
      _, _, body = html("/login")
      assert.is_nil(body:find("You have signed out.", 1, true))
      assert.equal(302, (html("/app/")))
    end)

    it("is served by gate.forbidden() for auth_request's error_page 403; APIs get today's JSON", function()
      t.login("alice")
      local status, headers, body = html("/ar-admin/x")
      assert.equal(403, status)
      assert_page_headers(headers)
      assert.matches("You are signed in as alice.", body, 1, true)
      status, headers, body = t.get("/ar-admin/x")
      assert.equal(403, status)
      assert.equal('Bearer realm="tfauth", error="insufficient_scope"', first(headers, "www-authenticate"))
      assert.same({ error = "insufficient_scope" }, cjson.decode(body))
      t.login("admin")
      assert.equal(200, (html("/ar-admin/x")))
    end)

    it("links only local paths: a request for //admin/x (a host, to a browser) gets / back", function()
      t.login("alice")
      local body = h.sh(("curl -s --path-as-is -b %s -H 'Accept: text/html' %s//admin/x"):format(t.jar, t.url))
      assert.matches("<h1>No access</h1>", body, 1, true) -- nginx merged the slashes for the location
      assert.matches('name="rd" value="/"><button type="submit">Sign out, then sign in as someone else', body, 1,
        true)
      assert.is_nil(body:find('"//admin', 1, true))
    end)

    it("escapes the user's name", function()
      if not support.issuer then return pending("no realm issuer") end
      local token = h.sign { claims = { iss = support.issuer, aud = "fndtn-api", sub = "s-1",
        preferred_username = '<b onclick="x">mallory</b>', exp = os.time() + 300, typ = "Bearer" } }
      local _, _, body = html("/admin/", { headers = { HTML[1], "Authorization: Bearer " .. token }, jar = false })
      assert.matches("signed in as &lt;b onclick=&quot;x&quot;&gt;mallory&lt;/b&gt;", body, 1, true)
      assert.is_nil(body:find("<b onclick", 1, true))
    end)
  end)

  describe("GET /logout", function()
    it("shows a browser a confirmation whose button posts the sign-out, which passes the CSRF check", function()
      t.login("alice")
      local status, headers, body = html("/logout")
      assert.equal(200, status)
      assert_page_headers(headers)
      assert.matches("You are signed in as alice. Do you want to sign out?", body, 1, true)
      local action, rd = body:match('<form method="post" action="([^"]+)"><input type="hidden" name="rd" value="([^"]+)">')
      assert.equal("/logout", action)
      assert.equal("/login", rd)
      -- the browser posts it from the page: same origin
      status, headers = t.get(action, { form = { rd = rd }, headers = { HTML[1], "Origin: " .. t.url } })
      assert.equal(303, status)
      assert.equal("/login", first(headers, "location"))
      assert.equal(302, (html("/app/")))
    end)

    it("carries a local rd only, and says so when nobody is signed in", function()
      local _, _, body = html("/logout?rd=%2F%2Fevil.example", { jar = false })
      assert.matches('name="rd" value="/"', body, 1, true)
      assert.matches("You are not signed in.", body, 1, true)
    end)

    it("keeps 405 JSON for API clients", function()
      local status, headers, body = t.get("/logout")
      assert.equal(405, status)
      assert.equal("POST", first(headers, "allow"))
      assert.same({ error = "method_not_allowed" }, cjson.decode(body))
    end)

    it("a JSON sign-out does not make the sign-in page say so", function()
      t.login("alice")
      assert.equal(200, (t.get("/logout", { method = "POST" })))
      local _, _, body = html("/login")
      assert.is_nil(body:find("signed out", 1, true))
    end)
  end)

  describe("500 for rules with a mistake", function()
    it("refuses every request to the location, signed in or not, with the gate's page or JSON; logged once", function()
      local status, headers, body = html("/t/badrule/x", { jar = false })
      assert.equal(500, status)
      assert_page_headers(headers)
      assert.matches("<h1>Something went wrong</h1>", body, 1, true)
      t.login("admin")
      local _
      status, _, body = t.get("/t/badrule/x")
      assert.equal(500, status)
      assert.same({ error = "misconfigured" }, cjson.decode(body))
      for _ = 1, 6 do t.get("/t/badrule/y") end
      local log = log_of(t.prefix)
      local _, lines = log:gsub("rules%.role: is not a known key %(roles, client_roles%)", "")
      assert.is_true(lines >= 1 and lines <= 2, log) -- once per worker
      assert.matches("gate rules of location /t/badrule/", log, 1, true)
    end)

    it("a rule name init does not declare, and an auth_request rule of the wrong type, alike", function()
      assert.equal(500, (t.get("/t/unnamed/", { jar = false })))
      assert.matches("no rule named 'nosuchrule'", log_of(t.prefix), 1, true)
      t.login("admin")
      local status, _, body = t.get("/t/ar-badrule/")
      assert.equal(500, status)
      assert.is_nil(body:find("<center>", 1, true)) -- never nginx's bare page
      assert.matches("rules%.roles: expected a list of role names, got string", log_of(t.prefix))
    end)

    it("named rules work: guard \"admin\" lets the admin in", function()
      t.login("admin")
      assert.equal(200, (t.get("/admin/")))
    end)
  end)

  describe("503", function()
    it("shows a browser 'not possible right now' with Retry-After; APIs keep the JSON", function()
      h.script { path = "/api/iam/login", status = 503, body = "{}", times = 2 }
      local status, headers, body = t.get("/login", { headers = HTML,
        form = { user = "alice", password = h.users.alice.password, rd = "/app/" } })
      assert.equal(503, status)
      assert.equal("DENY", first(headers, "x-frame-options"))
      assert.matches("Signing in is not possible right now", body, 1, true)
      status, headers, body = t.get("/login", { form = { user = "alice", password = h.users.alice.password } })
      assert.equal(503, status)
      assert.equal("10", first(headers, "retry-after"))
      assert.same({ error = "unavailable" }, cjson.decode(body))
    end)
  end)
end)
