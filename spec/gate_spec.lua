-- tfauth.gate on real nginx (two workers), the reference backend as the auth
-- API and as Keycloak: sessions, bearer tokens, rules, identity headers,
-- auth_request, the sign-in page, login and logout, rd, cross-site requests,
-- metrics (read with prometheus_client's own parser), hostile inputs.
local cjson = require "cjson"
local h = require "spec.helper"

local sh, http, count = h.sh, h.http, h.count
local has_jwks = pcall(require, "tfauth.jwks")
local issuer = has_jwks and os.getenv("TFAUTH_TEST_ISSUER") or nil
local bearer_it = (has_jwks and issuer) and it or pending

local function first(headers, name) return headers[name] and headers[name][1] end

local metrics = h.metrics

local function log_of(prefix) return sh("cat " .. prefix .. "/logs/error.log") end

-- The run.sh'd nginx.conf of a running prefix, with `edit` applied, started
-- in the foreground: nginx's exit status and what it printed.
local function start_with(prefix, edit)
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  sh(("mkdir -p %s/logs %s/tmp %s/conf"):format(dir, dir, dir))
  local conf = sh(("cat %s/conf/nginx.conf"):format(prefix)):gsub(prefix:gsub("%p", "%%%0"), dir)
  local port = sh("/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); "
    .. "print(s.getsockname()[1])'"):gsub("%s+$", "")
  -- its own port: with reuseport, the running nginx's would be shared with it
  conf = conf:gsub("daemon off;", "daemon on;"):gsub("listen 127%.0%.0%.1:%d+ reuseport;", "listen 127.0.0.1:" .. port .. ";")
  conf = edit(conf)
  local f = assert(io.open(dir .. "/conf/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local out = sh(("timeout 30 nginx -p %s -c conf/nginx.conf 2>&1; echo \"rc=$?\""):format(dir))
  sh(("kill $(cat %s/nginx.pid 2>/dev/null) 2>/dev/null; sleep 0.1; rm -rf %s"):format(dir, dir))
  return out
end

describe("tfauth.gate #nginx", function()
  local url, stop, prefix, jar

  setup(function()
    url, stop, prefix = h.start_nginx { workers = 2, skew = 30,
      env = { TFAUTH_ISSUER = issuer or "", TFAUTH_LOGIN_RATE = "1000r/s", TFAUTH_LOGIN_BURST = "1000" } }
  end)
  teardown(function() stop() end)
  before_each(function()
    h.reset()
    jar = os.tmpname()
  end)
  after_each(function() os.remove(jar) end)

  local function login(user, extra)
    local form = { user = user, password = h.users[user].password }
    for k, v in pairs(extra or {}) do form[k] = v end
    return http(url .. "/login", { form = form, jar = jar })
  end
  local function get(path, opts)
    opts = opts or {}
    opts.jar = opts.jar == nil and jar or opts.jar or nil
    return http(url .. path, opts)
  end
  local function upstream(body) return cjson.decode(body).headers end
  local function sid()
    return (sh("awk '$6 == \"tfauth_sid\" {print $7}' " .. jar):gsub("%s+$", ""))
  end

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
      { "a missing shared dict", 'shared_dict = "tfauth_gate",', 'shared_dict = "nope",', "'shared_dict'" },
      { "a shared dict too small for the metrics", "lua_shared_dict tfauth_gate 1m;",
        "lua_shared_dict tfauth_gate 12k;", "'shared_dict': lua_shared_dict too small for the metrics" },
    }
    for _, case in ipairs(cases) do
      it("refuses " .. case[1] .. ": nginx does not start, and says which key", function()
        local out = start_with(prefix, function(conf)
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

    for _, audience in ipairs { '{ "fndtn-api", "account" }', "false" } do
      it("starts with bearer.audience = " .. audience .. " (a list, or explicitly unchecked)", function()
        local out = start_with(prefix, function(conf)
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
      local out = start_with(prefix, function(conf) return conf end)
      assert.matches("rc=0", out)
    end)
  end)

  describe("sessions", function()
    it("signs in behind an opaque cookie, guards the application, signs out", function()
      local status, headers, body = login("alice")
      assert.equal(200, status)
      assert.same({ user = "alice" }, cjson.decode(body))
      assert.equal("no-store", first(headers, "cache-control"))
      local cookie = first(headers, "set-cookie")
      assert.matches("^tfauth_sid=%x+; Path=/; HttpOnly; SameSite=Lax$", cookie)
      assert.is_nil(sh("cat " .. jar):find("eyJ", 1, true), "no token in the browser's cookies")
      local app_status, _, app_body = get("/app/x")
      assert.equal(200, app_status)
      assert.equal("alice", upstream(app_body)["x-auth-request-user"])
      assert.equal(401, (get("/app/x", { jar = false })))
      status, headers, body = http(url .. "/logout", { method = "POST", jar = jar })
      assert.equal(200, status)
      assert.same({ logged_out = true }, cjson.decode(body))
      assert.equal("no-store", first(headers, "cache-control"))
      assert.matches("^tfauth_sid=; Max%-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax$",
        first(headers, "set-cookie"))
      assert.equal(1, count("/api/iam/logout"))
      assert.equal(401, (get("/app/x")))
    end)

    it("refuses wrong credentials with 401 and sets no cookie", function()
      local status, headers, body = http(url .. "/login", { form = { user = "alice", password = "nope-nope-1" } })
      assert.equal(401, status)
      assert.is_nil(headers["set-cookie"])
      assert.same({ error = "invalid_credentials" }, cjson.decode(body))
      status, headers, body = http(url .. "/login", { body = cjson.encode { user = "alice", password = "nope-nope-1" },
        headers = { "Content-Type: application/json" } })
      assert.equal(401, status)
      assert.is_nil(headers["set-cookie"])
      assert.same({ error = "invalid_credentials" }, cjson.decode(body))
      -- without a password (or with an empty one) too: a failed login is 401, never a cookie
      for _, form in ipairs { { user = "alice" }, { user = "alice", password = "" }, { password = "alice-Secret-1" } } do
        status, headers = http(url .. "/login", { form = form })
        assert.equal(401, status)
        assert.is_nil(headers["set-cookie"])
      end
    end)

    it("signs in with a JSON body too", function()
      local status, _, body = http(url .. "/login", { jar = jar, headers = { "Content-Type: application/json" },
        body = cjson.encode { user = "bob", password = h.users.bob.password } })
      assert.equal(200, status)
      assert.same({ user = "bob" }, cjson.decode(body))
      -- labelled as a form (curl -d's default): still read as JSON
      status, _, body = http(url .. "/login", { headers = { "Content-Type: application/x-www-form-urlencoded" },
        body = cjson.encode { user = "alice", password = h.users.alice.password, rd = "/app/j" } })
      assert.equal(303, status, body)
      assert.equal("bob", upstream(select(3, get("/app/x")))["x-auth-request-user"])
    end)

    it("mints a new session id at every login, and ends the one the browser had", function()
      login("alice")
      local before = sid()
      login("alice")
      local after = sid()
      assert.is_true(#before == 48 and #after == 48 and before ~= after)
      assert.equal(401, (http(url .. "/app/x", { headers = { "Cookie: tfauth_sid=" .. before } })))
      assert.equal(200, (http(url .. "/app/x", { headers = { "Cookie: tfauth_sid=" .. after } })))
    end)

    it("refreshes once per expiry across both workers, and no concurrent request fails", function()
      h.configure_server { access_ttl = 32 } -- the 30 s skew: refreshed 2 s after login
      assert.equal(200, (login("alice")))
      for round = 1, 2 do
        os.execute("sleep 2.2")
        local out = sh(("seq 60 | xargs -P 30 -I{} curl -s -b %s -w ' %%{http_code}\\n' %s/app/{}"):format(jar, url))
        local workers, n = {}, 0
        for line in out:gmatch("[^\n]+") do
          local code = line:match("^ (%d+)$")
          if code then
            n = n + 1
            assert.equal("200", code)
          else
            workers[assert(line:match('"x%-gate%-worker":"(%d+)"'), line)] = true
          end
        end
        assert.equal(60, n)
        local distinct = 0
        for _ in pairs(workers) do distinct = distinct + 1 end
        assert.equal(2, distinct, "requests reached " .. distinct .. " worker(s)")
        assert.equal(round, count("/api/iam/refresh"), "round " .. round)
      end
    end)

    it("keeps a session and its change stamp for as long as the refresh token lives, across refreshes", function()
      h.configure_server { access_ttl = 31, refresh_ttl = 100 }
      assert.equal(200, (login("alice")))
      local value, stamp = sh(("curl -s -b %s %s/t/ttl"):format(jar, url)):match("(%d+) (%d+)")
      assert.is_true(tonumber(value) > 95 and tonumber(value) <= 100 and stamp == value, value .. " " .. stamp)
      h.configure_server { refresh_ttl = 1800 } -- the next refresh token lives longer
      os.execute("sleep 1.1")
      assert.equal(200, (get("/app/x")))
      assert.equal(1, count("/api/iam/refresh"))
      value, stamp = sh(("curl -s -b %s %s/t/ttl"):format(jar, url)):match("(%d+) (%d+)")
      assert.is_true(tonumber(value) > 1790, value)
      assert.is_true(math.abs(tonumber(stamp) - tonumber(value)) <= 1, value .. " " .. stamp)
    end)

    it("treats a session whose refresh token was revoked as signed out", function()
      local before = metrics(url)["tfauth_refreshes_total{result=failed}"]
      h.configure_server { access_ttl = 31 }
      assert.equal(200, (login("bob")))
      h.configure_server { access_ttl = 300 }
      sh(("curl -s -X POST %s/_test/reset"):format(h.url)) -- the backend forgets all sessions
      os.execute("sleep 1.1")
      assert.equal(401, (get("/app/x")))
      assert.equal(401, (get("/app/x"))) -- and stays so, without asking again
      assert.equal(1, count("/api/iam/refresh"))
      assert.equal(before + 1, metrics(url)["tfauth_refreshes_total{result=failed}"])
    end)
  end)

  describe("identity headers", function()
    local spoofed = {
      "X-Auth-Request-User: mallory", "X-Auth-Request-Email: mallory@example.com", "x-auth-request-roles: admin",
      "X-AUTH-REQUEST-SUBJECT: 0", "X-Auth-Request-Groups: admin", "X-Auth-Request-Access-Token: forged",
      "X-Auth-Request-Preferred-Username: mallory", "X-Forwarded-User: mallory", "X-Forwarded-Email: m@example.com",
      "X-Forwarded-Groups: admin", "X-Forwarded-Preferred-Username: mallory", "X-Forwarded-Access-Token: forged",
    }

    it("gives the upstream who the user is, and Authorization: Bearer", function()
      login("alice")
      local got = upstream(select(3, get("/app/x")))
      assert.equal("alice", got["x-auth-request-user"])
      assert.equal("alice@example.com", got["x-auth-request-email"])
      assert.equal("user", got["x-auth-request-roles"])
      assert.equal(h.users.alice.id, got["x-auth-request-subject"])
      assert.matches("^Bearer eyJ[%w_-]+%.[%w_-]+%.[%w_-]+$", got.authorization)
    end)

    it("sets X-Auth-Request-Email only when the email is verified", function()
      login("bob")
      local got = upstream(select(3, get("/app/x", { headers = { "X-Auth-Request-Email: bob@forged.example" } })))
      assert.equal("bob", got["x-auth-request-user"])
      assert.is_nil(got["x-auth-request-email"])
    end)

    it("removes every identity header the client sent, whatever the case or count", function()
      login("bob")
      local headers = {}
      for i = 1, 120 do headers[i] = "X-Pad-" .. i .. ": x" end -- past ngx.req.get_headers' default of 100
      for _, line in ipairs(spoofed) do headers[#headers + 1] = line end
      headers[#headers + 1] = "X-Auth-Request-User: second-copy"
      local status, _, body = get("/app/x", { headers = headers })
      assert.equal(200, status)
      local got = upstream(body)
      assert.equal("bob", got["x-auth-request-user"])
      assert.equal(h.users.bob.id, got["x-auth-request-subject"])
      assert.equal("user", got["x-auth-request-roles"])
      for name in pairs(got) do
        assert.is_falsy(name:find("^x%-forwarded%-"), name)
        if name:find("^x%-auth%-request%-") then
          assert.truthy(({ ["x-auth-request-user"] = 1, ["x-auth-request-roles"] = 1, ["x-auth-request-subject"] = 1 })[name],
            name)
        end
      end
    end)

    it("auth_request: 204 with the identity for auth_request_set; the snippet overrides what the client sent", function()
      login("alice")
      local status, _, body = get("/ar/x", { headers = spoofed })
      assert.equal(200, status)
      local got = upstream(body)
      assert.equal("alice", got["x-auth-request-user"])
      assert.equal("alice@example.com", got["x-auth-request-email"])
      assert.equal(h.users.alice.id, got["x-auth-request-subject"])
      assert.matches("^Bearer eyJ", got.authorization)
      for name, value in pairs(got) do
        if name:find("^x%-forwarded%-") or name:find("^x%-auth%-request%-") then
          assert.is_falsy(tostring(value):find("mallory") or tostring(value):find("forged") or value == "admin", name)
        end
      end
      jar = os.tmpname()
      login("bob") -- no verified email: the header is empty, not the client's
      got = upstream(select(3, get("/ar/x", { headers = spoofed })))
      assert.equal("bob", got["x-auth-request-user"])
      assert.is_nil(got["x-auth-request-email"])
    end)

    it("auth_request: 401 sends browsers to sign in (error_page), 403 when the rules refuse", function()
      local status, headers = get("/ar/x?a=1", { jar = false, headers = { "Accept: text/html" } })
      assert.equal(302, status)
      assert.equal("/login?rd=%2Far%2Fx%3Fa%3D1", first(headers, "location"))
      assert.equal("no-store", first(headers, "cache-control"))
      -- not a browser's GET: signin() keeps the 401, as the guard answers it
      local body
      for _, opts in ipairs { { headers = { "Accept: application/json" } }, { method = "POST",
        headers = { "Accept: text/html" } }, {} } do
        opts.jar = false
        status, headers, body = get("/ar/x", opts)
        assert.equal(401, status)
        assert.equal('Bearer realm="tfauth"', first(headers, "www-authenticate"))
        assert.is_nil(headers.location)
        assert.same({ error = "unauthenticated" }, cjson.decode(body))
      end
      if has_jwks and issuer then
        status, headers, body = get("/ar/x", { jar = false, headers = { "Authorization: Bearer a.b.c" } })
        assert.equal(401, status)
        assert.equal('Bearer realm="tfauth", error="invalid_token"', first(headers, "www-authenticate"))
        assert.same({ error = "invalid_token" }, cjson.decode(body))
      end
      login("alice")
      assert.equal(403, (get("/ar-admin/x")))
      jar = os.tmpname()
      login("admin")
      local _
      status, _, body = get("/ar-admin/x")
      assert.equal(200, status)
      assert.equal("admin", upstream(body)["x-auth-request-user"])
    end)
  end)

  describe("answers", function()
    it("redirects a browser's GET to the sign-in page with the original URI", function()
      local status, headers = get("/app/x?a=1&b=%2F", { jar = false,
        headers = { "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8" } })
      assert.equal(302, status)
      assert.equal("/login?rd=%2Fapp%2Fx%3Fa%3D1%26b%3D%252F", first(headers, "location"))
      assert.equal("no-store", first(headers, "cache-control"))
    end)

    it("answers APIs 401 with WWW-Authenticate and a JSON error", function()
      for _, opts in ipairs {
        { headers = { "Accept: application/json" } },
        { headers = { "Accept: */*" } },
        { method = "POST", headers = { "Accept: text/html" } },
        { headers = { "Accept: application/json, text/html;q=0.5" } },
      } do
        opts.jar = false
        local status, headers, body = get("/app/x", opts)
        assert.equal(401, status)
        assert.equal('Bearer realm="tfauth"', first(headers, "www-authenticate"))
        assert.equal("no-store", first(headers, "cache-control"))
        assert.matches("^application/json", first(headers, "content-type"))
        assert.same({ error = "unauthenticated" }, cjson.decode(body))
      end
    end)

    it("answers 403 insufficient_scope when the rules refuse", function()
      login("alice")
      local status, headers, body = get("/admin/x")
      assert.equal(403, status)
      assert.equal('Bearer realm="tfauth", error="insufficient_scope"', first(headers, "www-authenticate"))
      assert.equal("no-store", first(headers, "cache-control"))
      assert.same({ error = "insufficient_scope" }, cjson.decode(body))
      assert.equal(403, (get("/editor/x")))
      assert.equal(200, (get("/t/reader/x"))) -- alice holds fndtn-api's reader
      assert.equal(403, (get("/t/nobody/x")))
    end)

    it("lets the admin role through, and client roles", function()
      login("admin")
      assert.equal(200, (get("/admin/x")))
      assert.equal(200, (get("/editor/x")))
      assert.equal(403, (get("/t/nobody/x"))) -- rules that list no role let nobody in
      jar = os.tmpname()
      login("bob") -- no client role of fndtn-api
      assert.equal(403, (get("/t/reader/x")))
    end)
  end)

  describe("sign-in page", function()
    it("is served on GET: no script, CSP, no framing, not cached, rd carried through escaped", function()
      local status, headers, body = http(url .. '/login?rd=%2Fapp%2F%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E')
      assert.equal(200, status)
      assert.matches("^text/html", first(headers, "content-type"))
      assert.equal("DENY", first(headers, "x-frame-options"))
      assert.equal("no-store", first(headers, "cache-control"))
      local csp = first(headers, "content-security-policy")
      assert.matches("default%-src 'none'", csp)
      assert.matches("frame%-ancestors 'none'", csp)
      assert.is_nil(csp:find("script-src", 1, true))
      assert.is_nil(csp:find("unsafe", 1, true))
      local nonce = csp:match("style%-src 'nonce%-(%x+)'")
      assert.matches('<style nonce="' .. nonce .. '">', body, 1, true)
      assert.is_nil(body:lower():find("<script", 1, true))
      assert.matches('<form method="post" action="/login">', body, 1, true)
      assert.matches('name="rd" value="/app/&quot;&gt;&lt;script&gt;alert%(1%)&lt;/script&gt;"', body)
      assert.matches('name="user"', body)
      assert.matches('type="password"', body)
    end)

    it("offers only a local rd", function()
      local _, _, body = http(url .. "/login?rd=https%3A%2F%2Fevil.example%2F")
      assert.matches('name="rd" value="/"', body)
      assert.is_nil(body:find("evil", 1, true))
    end)

    it("shows why a form sign-in failed, from a fixed set, echoing the user name escaped", function()
      local status, headers, body = http(url .. "/login", { headers = { "Accept: text/html" },
        form = { user = '<img src=x onerror="alert(1)">', password = "wrong-pass-1", rd = "/app/x" } })
      assert.equal(401, status)
      assert.is_nil(headers["set-cookie"])
      assert.equal("DENY", first(headers, "x-frame-options"))
      assert.equal("no-store", first(headers, "cache-control"))
      assert.matches('role="alert">Wrong user name or password.<', body)
      assert.matches('value="&lt;img src=x onerror=&quot;alert%(1%)&quot;&gt;"', body)
      assert.is_nil(body:find("<img", 1, true))
      assert.matches('name="rd" value="/app/x"', body)
      assert.is_nil(body:find("wrong-pass-1", 1, true))
    end)

    it("signs in from the form and lands on the page first asked for", function()
      local status, headers = http(url .. "/login", { jar = jar, headers = { "Accept: text/html" },
        form = { user = "alice", password = h.users.alice.password, rd = "/app/first?x=1" } })
      assert.equal(303, status)
      assert.equal("/app/first?x=1", first(headers, "location"))
      assert.equal("no-store", first(headers, "cache-control"))
      assert.equal(200, (get("/app/first?x=1")))
    end)

    it("answers other methods with 405", function()
      assert.equal(405, (http(url .. "/login", { method = "PUT" })))
      assert.equal(405, (http(url .. "/logout")))
      assert.equal(405, (http(url .. "/logout", { method = "DELETE" })))
    end)
  end)

  describe("rd", function()
    -- rd as the browser sends it (form-encoded by curl) -> Location
    local cases = {
      { "/app/x?y=1#top", "/app/x?y=1#top" },
      { "/", "/" },
      { "//evil.example/", "/" },
      { "/\\evil.example/", "/" },
      { "/app\\..\\evil", "/" },
      { "https://evil.example/", "/" },
      { "javascript:alert(1)", "/" },
      { "evil.example", "/" },
      { "/%2F%2Fevil.example", "/" },
      { "/%2f%2fevil.example", "/" },
      { "/%5Cevil.example", "/" },
      { "/app/%5cx", "/" },
      { "/\t/evil.example", "/" },
      { "/app\r\nSet-Cookie: x=1", "/" },
      { "/\127", "/" },
      { "", "/" },
      { "/%252F", "/%252F" }, -- decoded once: %2F is not there, %252F stays what it is
    }
    for _, case in ipairs(cases) do
      local shown = case[1]:gsub("%c", function(c) return ("\\x%02x"):format(c:byte()) end)
      it(("login follows %s to %s"):format(shown, case[2]), function()
        local body = "user=bob&password=" .. h.users.bob.password .. "&rd=" .. case[1]:gsub("[^%w/._~-]",
          function(c) return ("%%%02X"):format(c:byte()) end)
        local status, headers = http(url .. "/login", { jar = jar, body = body,
          headers = { "Host: evil.example", "Content-Type: application/x-www-form-urlencoded" } })
        assert.equal(303, status)
        assert.equal(case[2], first(headers, "location"))
      end)
    end

    it("is sent as the path even where nginx's absolute_redirect is on (gate.md's example), whatever Host says", function()
      local evil = { "Host: evil.example", "Accept: text/html" }
      local status, headers = http(url .. "/t/abs/app/x?a=1", { jar = false, headers = evil })
      assert.equal(302, status)
      assert.equal("/login?rd=%2Ft%2Fabs%2Fapp%2Fx%3Fa%3D1", first(headers, "location"))
      status, headers = http(url .. "/t/abs/login", { jar = jar, headers = { "Host: evil.example" },
        form = { user = "bob", password = h.users.bob.password, rd = "/app/y?b=2" } })
      assert.equal(303, status)
      assert.equal("/app/y?b=2", first(headers, "location"))
      status, headers = http(url .. "/t/abs/logout", { method = "POST", jar = jar, headers = { "Host: evil.example" },
        form = { rd = "/bye" } })
      assert.equal(303, status)
      assert.equal("/bye", first(headers, "location"))
    end)

    it("is decoded once, from the query too, and so for logout", function()
      local status, headers = http(url .. "/login?rd=%2F%2Fevil.example", { jar = jar,
        form = { user = "bob", password = h.users.bob.password } })
      assert.equal(303, status)
      assert.equal("/", first(headers, "location"))
      status, headers = http(url .. "/logout?rd=%2Fapp%2Fbye", { method = "POST", jar = jar })
      assert.equal(303, status)
      assert.equal("/app/bye", first(headers, "location"))
      status, headers = http(url .. "/logout", { form = { rd = "//evil.example" } })
      assert.equal(303, status)
      assert.equal("/", first(headers, "location"))
    end)
  end)

  describe("cross-site requests", function()
    local own
    before_each(function() own = url end)

    it("refuses a login posted from another origin (Origin, Referer, null), before asking the auth API", function()
      for _, header in ipairs { "Origin: http://evil.example", "Referer: http://evil.example/login",
        "Origin: null", "Origin: " .. own .. ".evil.example", "Origin: https://127.0.0.1" .. own:match(":%d+$") } do
        local status, headers, body = http(url .. "/login", { jar = jar, headers = { header },
          form = { user = "alice", password = h.users.alice.password } })
        assert.equal(403, status, header)
        assert.is_nil(headers["set-cookie"], header)
        assert.equal("no-store", first(headers, "cache-control"))
        assert.same({ error = "cross_site_request" }, cjson.decode(body))
      end
      assert.equal(0, count("/api/iam/login"))
      assert.equal(200, (http(url .. "/login", { jar = jar, headers = { "Origin: " .. own },
        form = { user = "alice", password = h.users.alice.password } })))
      assert.equal(200, (http(url .. "/login", { jar = jar, headers = { "Referer: " .. own .. "/login?rd=/" },
        form = { user = "alice", password = h.users.alice.password } })))
    end)

    it("refuses a cross-site logout, and the session lives on", function()
      login("alice")
      assert.equal(403, (http(url .. "/logout", { method = "POST", jar = jar, headers = { "Origin: http://evil.example" } })))
      assert.equal(200, (get("/app/x")))
      assert.equal(0, count("/api/iam/logout"))
    end)

    it("refuses unsafe cookie-authenticated requests from another site; safe ones and same-origin ones pass", function()
      login("alice")
      assert.equal(403, (get("/app/x", { method = "POST", headers = { "Origin: http://evil.example" } })))
      assert.equal(403, (get("/app/x", { method = "DELETE", headers = { "Referer: http://evil.example/" } })))
      assert.equal(403, (get("/app/x", { method = "PUT", headers = { "Origin: null" } })))
      assert.equal(403, (get("/ar/x", { method = "POST", headers = { "Origin: http://evil.example" } })))
      assert.equal(200, (get("/app/x", { headers = { "Origin: http://evil.example" } })))
      assert.equal(200, (get("/app/x", { method = "POST", headers = { "Origin: " .. own } })))
      assert.equal(200, (get("/app/x", { method = "POST" }))) -- neither header: not a browser
      assert.equal(200, (get("/ar/x", { method = "POST", headers = { "Origin: " .. own } })))
    end)
  end)

  describe("bearer tokens", function()
    local tokens
    local function bearer(path, token, opts)
      opts = opts or {}
      opts.headers = opts.headers or {}
      table.insert(opts.headers, "Authorization: Bearer " .. token)
      opts.jar = opts.jar or false
      return get(path, opts)
    end
    before_each(function() tokens = { alice = h.login("alice"), admin = h.login("admin") } end)

    bearer_it("lets a valid access token through with the identity headers", function()
      local status, _, body = bearer("/app/x", tokens.alice.access_token,
        { headers = { "X-Auth-Request-User: mallory" } })
      assert.equal(200, status)
      local got = upstream(body)
      assert.equal("alice", got["x-auth-request-user"])
      assert.equal("alice@example.com", got["x-auth-request-email"])
      assert.equal(h.users.alice.id, got["x-auth-request-subject"])
      assert.equal("Bearer " .. tokens.alice.access_token, got.authorization)
    end)

    bearer_it("checks the rules on every request, cached token or not", function()
      assert.equal(200, (bearer("/app/x", tokens.alice.access_token)))
      assert.equal(403, (bearer("/admin/x", tokens.alice.access_token)))
      local status, headers = bearer("/admin/x", tokens.alice.access_token)
      assert.equal(403, status)
      assert.equal('Bearer realm="tfauth", error="insufficient_scope"', first(headers, "www-authenticate"))
      assert.equal(200, (bearer("/admin/x", tokens.admin.access_token)))
      assert.equal(200, (bearer("/editor/x", tokens.admin.access_token)))
    end)

    bearer_it("refuses ID, refresh, expired, wrong-audience and unsigned tokens with invalid_token", function()
      local claims = h.jwt_claims and h.jwt_claims(tokens.alice.access_token)
        or cjson.decode(sh("/usr/bin/python3 -c 'import sys, base64, json; p = sys.argv[1].split(\".\")[1]; "
          .. "print(base64.urlsafe_b64decode(p + \"=\" * (-len(p) % 4)).decode())' " .. tokens.alice.access_token))
      local function with(changes)
        local c = {}
        for k, v in pairs(claims) do c[k] = v end
        for k, v in pairs(changes) do c[k] = v end
        return c
      end
      local refused = {
        id = tokens.alice.id_token,
        refresh = tokens.alice.refresh_token,
        expired = h.sign { claims = with { exp = os.time() - 120, iat = os.time() - 400 } },
        audience = h.sign { claims = with { aud = "someone-else" } },
        issuer = h.sign { claims = with { iss = "http://evil.example/realms/fndtn" } },
        es256 = h.sign { claims = claims, alg = "ES256" }, -- not in the allowed algorithms
        none = tokens.alice.access_token:match("^[^.]+%.[^.]+%.") .. "",
        garbage = "not-a-token",
      }
      for name, token in pairs(refused) do
        local status, headers, body = bearer("/app/x", token)
        assert.equal(401, status, name)
        assert.equal('Bearer realm="tfauth", error="invalid_token"', first(headers, "www-authenticate"), name)
        assert.equal("no-store", first(headers, "cache-control"))
        assert.same({ error = "invalid_token" }, cjson.decode(body), name)
      end
    end)

    bearer_it("judges a request carrying both by its bearer", function()
      login("admin")
      local status, _, body = bearer("/app/x", tokens.alice.access_token, { jar = jar })
      assert.equal(200, status)
      assert.equal("alice", upstream(body)["x-auth-request-user"])
      assert.equal(401, (bearer("/app/x", tokens.alice.refresh_token, { jar = jar })))
    end)

    bearer_it("keeps a verified token no later than its exp", function()
      local c = cjson.decode(sh("/usr/bin/python3 -c 'import sys, base64, json; p = sys.argv[1].split(\".\")[1]; "
        .. "print(base64.urlsafe_b64decode(p + \"=\" * (-len(p) % 4)).decode())' " .. tokens.alice.access_token))
      -- leeway is 30 s in the example: a token that expires 28 s ago is still good for 2 s
      c.exp = os.time() - 28
      local token = h.sign { claims = c }
      assert.equal(200, (bearer("/app/x", token)))
      os.execute("sleep 3")
      assert.equal(401, (bearer("/app/x", token)))
    end)

    bearer_it("caches by the whole token: the same claims with another signature are refused", function()
      local token = tokens.alice.access_token
      assert.equal(200, (bearer("/app/x", token)))
      local head, sig = token:match("^(.+%.)([^.]+)$")
      local flipped = head .. (sig:sub(1, 1) == "A" and "B" or "A") .. sig:sub(2)
      assert.equal(401, (bearer("/app/x", flipped)))
      assert.equal(401, (bearer("/app/x", head .. sig:sub(1, -3))))
      assert.equal(200, (bearer("/app/x", token)))
    end)

    bearer_it("follows Keycloak's key rotation: a token with the new kid is verified after one refetch", function()
      assert.equal(200, (bearer("/app/x", tokens.alice.access_token)))
      local fetches = count(h.certs_path)
      h.rotate()
      local fresh = h.login("alice").access_token
      assert.equal(200, (bearer("/app/x", fresh)))
      assert.equal(200, (bearer("/app/x", fresh)))
      assert.equal(fetches + 1, count(h.certs_path))
    end)

    bearer_it("does not check the origin of bearer requests", function()
      assert.equal(200, (bearer("/app/x", tokens.alice.access_token,
        { method = "POST", headers = { "Origin: http://evil.example" } })))
    end)

    bearer_it("auth_request takes bearer tokens too", function()
      local status, _, body = bearer("/ar/x", tokens.admin.access_token)
      assert.equal(200, status)
      assert.equal("admin", upstream(body)["x-auth-request-user"])
      assert.equal(200, (bearer("/ar-admin/x", tokens.admin.access_token)))
      assert.equal(403, (bearer("/ar-admin/x", tokens.alice.access_token)))
      -- the snippet's error_page 401 (signin()) keeps an API's 401 and its invalid_token
      local headers
      status, headers = bearer("/ar/x", "a.b.c", { headers = { "Accept: application/json" } })
      assert.equal(401, status)
      assert.equal('Bearer realm="tfauth", error="invalid_token"', headers["www-authenticate"][1])
    end)
  end)

  describe("metrics", function()
    it("counts outcomes, logins, refreshes and API time, summed over both workers", function()
      local before = metrics(url)
      local function delta(now, key) return (now[key] or 0) - (before[key] or 0) end
      h.configure_server { access_ttl = 31 }
      login("alice")
      http(url .. "/login", { form = { user = "alice", password = "wrong-pass-1" } })
      sh(("seq 40 | xargs -P 10 -I{} curl -s -o /dev/null -b %s %s/app/{}"):format(jar, url))
      sh(("seq 10 | xargs -P 10 -I{} curl -s -o /dev/null %s/app/{}"):format(url))
      get("/admin/x")
      os.execute("sleep 1.1")
      get("/app/x") -- refreshes
      local now = metrics(url)
      assert.equal(41, delta(now, 'tfauth_gate_requests_total{outcome=allowed,via=session}'))
      assert.equal(10, delta(now, 'tfauth_gate_requests_total{outcome=unauthenticated,via=none}'))
      assert.equal(1, delta(now, 'tfauth_gate_requests_total{outcome=forbidden,via=session}'))
      assert.equal(1, delta(now, 'tfauth_logins_total{result=ok}'))
      assert.equal(1, delta(now, "tfauth_logins_total{result=failed}"))
      local refreshes = count("/api/iam/refresh") -- 1, or 2 when the 40 took over a second
      assert.is_true(refreshes >= 1)
      assert.equal(refreshes, delta(now, 'tfauth_refreshes_total{result=ok}'))
      assert.equal(2, delta(now, 'tfauth_api_request_duration_seconds_count{operation=login}'))
      assert.equal(2, delta(now, 'tfauth_api_request_duration_seconds_bucket{le=+Inf,operation=login}'))
      assert.equal(refreshes, delta(now, 'tfauth_api_request_duration_seconds_count{operation=refresh}'))
      assert.is_true(delta(now, 'tfauth_api_request_duration_seconds_sum{operation=login}') > 0)
      for _, key in ipairs { "tfauth_jwks_fetches_total{result=ok}", "tfauth_jwks_fetches_total{result=failed}",
        "tfauth_gate_requests_total{outcome=unavailable,via=bearer}" } do
        assert.is_number(now[key], key)
      end
    end)

    bearer_it("counts bearer outcomes and key-set fetches", function()
      local before = metrics(url)
      local token = h.login("alice").access_token
      get("/app/x", { jar = false, headers = { "Authorization: Bearer " .. token } })
      get("/app/x", { jar = false, headers = { "Authorization: Bearer a.b.c" } })
      local now = metrics(url)
      assert.equal(1, now["tfauth_gate_requests_total{outcome=allowed,via=bearer}"]
        - before["tfauth_gate_requests_total{outcome=allowed,via=bearer}"])
      assert.equal(1, now["tfauth_gate_requests_total{outcome=unauthenticated,via=bearer}"]
        - before["tfauth_gate_requests_total{outcome=unauthenticated,via=bearer}"])
      assert.is_true(now["tfauth_jwks_fetches_total{result=ok}"] >= 1)
    end)
  end)

  describe("hostile input", function()
    it("answers 4xx, never 5xx, and writes no password or token to the error log", function()
      login("alice")
      local good = sid()
      local long = ("A"):rep(6000)
      local cases = {
        { headers = { "Authorization: Bearer " .. long .. "." .. long .. "." .. long } }, -- past nginx's buffers
        { headers = { "Authorization: Bearer " .. ("a"):rep(7000) .. ".b.c" } },
        { headers = { "Authorization: Bearer" } },
        { headers = { "Authorization: Bearer    " } },
        { headers = { "Authorization: Bearer a.b" } },
        { headers = { "Authorization: Bearer ..." } },
        { headers = { "Authorization: Bearer eyJ.eyJ.x y" } },
        { headers = { "Authorization: Bearer \xff\xfe.\x80.\x01" } },
        { headers = { "Authorization: Basic YWxpY2U6YWxpY2UtU2VjcmV0LTE=" } },
        { headers = { "Authorization: bearer " .. h.sign { claims = { sub = "x" }, alg = "RS256" } } },
        { headers = { "Cookie: tfauth_sid=" .. ("f"):rep(7000) } },
        { headers = { "Cookie: tfauth_sid=../../etc/passwd" } },
        { headers = { "Cookie: tfauth_sid=" .. ("0"):rep(48) } },
        { headers = { "Cookie: tfauth_sid=" .. good:upper() } },
        { headers = { "Cookie: tfauth_sid=; tfauth_sid=" .. ("1"):rep(48) } },
        { headers = { "Cookie: tfauth_sid=\"" .. good .. "\"" } },
        { headers = { "Cookie: ;;;=;tfauth_sid" } },
        { headers = { "X-Auth-Request-User: admin", "X-Forwarded-Groups: admin" } },
        -- a second Authorization after a valid one must never reach the upstream (nginx: 400)
        { headers = { "Authorization: Bearer " .. h.login("admin").access_token, "Authorization: Bearer forged" } },
        { headers = { "Accept: text/html", "Host: evil.example" } },
      }
      for i, case in ipairs(cases) do
        for _, path in ipairs { "/app/x", "/admin/x", "/ar/x" } do
          local status = http(url .. path, case)
          assert.is_true(status >= 400 and status < 500 or status == 302, ("case %d %s: %d"):format(i, path, status))
        end
      end
      for _, form in ipairs {
        { user = ("u"):rep(100000), password = "alice-Secret-1" },
        { user = "alice", password = ("p"):rep(100000) },
        { ["user[]"] = "alice", password = "alice-Secret-1" },
      } do
        local status = http(url .. "/login", { form = form })
        assert.is_true(status >= 400 and status < 500, "login: " .. status)
      end
      for _, body in ipairs { "{", "[1,2]", '{"user": 5, "password": {}}', '"x"', ("["):rep(5000), "\0\1\2" } do
        local status = http(url .. "/login", { body = body, headers = { "Content-Type: application/json" } })
        assert.is_true(status >= 400 and status < 500, "login " .. body:sub(1, 10) .. ": " .. status)
      end
      local status = http(url .. "/login?user=alice&password=alice-Secret-1&user=bob", { method = "POST",
        body = "user=alice&user=bob&password=alice-Secret-1", headers = { "Content-Type: application/x-www-form-urlencoded" } })
      assert.equal(401, status) -- an ambiguous user is no user: a failed login
      local log = log_of(prefix)
      for user in pairs(h.users) do assert.is_nil(log:find(h.users[user].password, 1, true), "a password in the log") end
      assert.is_nil(log:find("eyJ", 1, true), "a token in the log")
      assert.is_nil(log:find(good, 1, true), "a session id in the log")
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

describe("tfauth.gate without the key set #nginx", function()
  local url, stop

  setup(function()
    if has_jwks then url, stop = h.start_nginx { workers = 2, env = { TFAUTH_ISSUER = "http://127.0.0.1:1/realms/fndtn" } } end
  end)
  teardown(function() if stop then stop() end end)

  local it_jwks = has_jwks and it or pending
  it_jwks("answers 503 to a bearer while Keycloak is unreachable, and sessions still work", function()
    h.reset()
    local token = h.login("alice").access_token
    local status, headers, body = http(url .. "/app/x", { headers = { "Authorization: Bearer " .. token } })
    assert.equal(503, status)
    assert.equal("no-store", first(headers, "cache-control"))
    assert.same({ error = "unavailable" }, cjson.decode(body))
    local jar = os.tmpname()
    assert.equal(200, (http(url .. "/login", { jar = jar,
      form = { user = "alice", password = h.users.alice.password } })))
    assert.equal(200, (http(url .. "/app/x", { jar = jar })))
    os.remove(jar)
    assert.is_true(metrics(url)["tfauth_jwks_fetches_total{result=failed}"] >= 1)
    assert.is_true(metrics(url)["tfauth_gate_requests_total{outcome=unavailable,via=bearer}"] >= 1)
  end)
end)

-- The README's "Protect a service" snippets as printed: the main one (its
-- `location = /_tfauth { ... }` filled with the README's own transport
-- location), with the auth_request one added (its /app/ moved to /ar/), made
-- runnable with placeholders filled in and nothing else changed.
describe("the README's Protect a service snippets #nginx", function()
  local dir, url
  local function block(text, from)
    local start = assert(text:find("```nginx\n", from, true), "no nginx block")
    local stop = assert(text:find("\n```\n", start, true))
    return text:sub(start + 9, stop), stop
  end
  local function replace(s, old, new)
    local i, j = s:find(old, 1, true)
    assert(i, "the README no longer has: " .. old)
    return s:sub(1, i - 1) .. new .. s:sub(j + 1)
  end

  setup(function()
    local readme = assert(io.open(h.root .. "/README.md")):read("*a")
    local transport = readme:match("\n(        location = /_tfauth {            # tfauth's requests.-\n        })\n")
    assert(transport, "the README's /_tfauth location")
    local section = assert(readme:find("## Protect a service", 1, true))
    local main, after = block(readme, section)
    local ar = block(readme, after)
    dir = sh("mktemp -d"):gsub("%s+$", "")
    sh(("mkdir -p %s/logs %s/tmp"):format(dir, dir))
    local port = sh("/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); "
      .. "print(s.getsockname()[1])'"):gsub("%s+$", "")
    url = "http://127.0.0.1:" .. port
    local conf = main
    conf = replace(conf, '"https://api.example.com"', '"' .. h.url .. '"')
    conf = replace(conf, '"<64 hex: openssl rand -hex 32>"', '"' .. ("ab"):rep(32) .. '"')
    if issuer then
      conf = replace(conf, '"https://kc.example/realms/fndtn"', '"' .. issuer .. '"')
    else
      conf = conf:gsub("            bearer = {.-\n            },\n", "")
    end
    conf = replace(conf, "        location = /_tfauth { ... }", transport .. "\n")
    ar = replace(ar, "location /app/ {", "location /ar/ {")
    conf = replace(conf, "    server {\n", ("    upstream app { server unix:%s/app.sock; }\n"
      .. "    server {\n        listen unix:%s/app.sock;\n        location / { content_by_lua_block {\n"
      .. "            ngx.say(require('cjson').encode { headers = ngx.req.get_headers(0) }) } }\n    }\n"
      .. "    server {\n        listen 127.0.0.1:%s;\n%s\n"):format(dir, dir, port, ar))
    conf = replace(conf, "http {\n", ("http {\n    client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;\n"
      .. '    lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;;";\n    lua_package_cpath "%s/build/jit/?.so;;";\n')
      :format(dir, dir, h.root, h.root, h.root))
    conf = ("%sworker_processes 2;\npid %s/nginx.pid;\nerror_log %s/logs/error.log warn;\n"
      .. "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n"
      .. "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\nevents { worker_connections 256; }\n%s")
      :format(sh("id -u"):find("^0") and "user root;\n" or "", dir, dir, conf)
    local f = assert(io.open(dir .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    local out = sh(("env -u LD_PRELOAD nginx -p %s -c %s/nginx.conf 2>&1; echo rc=$?"):format(dir, dir))
    assert(out:find("rc=0", 1, true), out .. sh("cat " .. dir .. "/logs/error.log"))
  end)
  teardown(function()
    if dir then sh(("kill $(cat %s/nginx.pid) 2>/dev/null; sleep 0.2; rm -rf %s"):format(dir, dir)) end
  end)
  before_each(h.reset)

  it("signs in, guards by roles and client roles, and takes bearer tokens, as printed", function()
    local status, headers = http(url .. "/app/x", { headers = { "Accept: text/html" } })
    assert.equal(302, status)
    assert.equal("/login?rd=%2Fapp%2Fx", first(headers, "location"))
    status, headers = http(url .. "/login", { headers = { "Origin: https://app.example.com" },
      form = { user = "alice", password = h.users.alice.password, rd = "/app/x" } })
    assert.equal(303, status)
    assert.equal("/app/x", first(headers, "location"))
    local value = first(headers, "set-cookie"):match("^__Host%-tfauth=(%x+); Path=/; HttpOnly; Secure; SameSite=Lax$")
    assert.truthy(value, first(headers, "set-cookie"))
    local cookie = "Cookie: __Host-tfauth=" .. value
    local _, body
    status, _, body = http(url .. "/app/x", { headers = { cookie, "X-Forwarded-Email: forged@example.com" } })
    assert.equal(200, status)
    local got = cjson.decode(body).headers
    assert.equal("alice", got["x-auth-request-user"])
    assert.is_nil(got["x-forwarded-email"])
    assert.equal(403, (http(url .. "/admin/x", { headers = { cookie } })))
    assert.equal(200, (http(url .. "/reports/x", { headers = { cookie } }))) -- alice: fndtn-api's reader
    -- the auth_request snippet: identity set, the client's copies overridden or emptied
    status, _, body = http(url .. "/ar/x", { headers = { cookie, "X-Auth-Request-User: mallory",
      "X-Forwarded-Email: forged@example.com", "X-Forwarded-Groups: admin" } })
    assert.equal(200, status)
    got = cjson.decode(body).headers
    assert.equal("alice", got["x-auth-request-user"])
    assert.is_nil(got["x-forwarded-email"])
    assert.is_nil(got["x-forwarded-groups"])
    status, headers = http(url .. "/ar/x", { headers = { "Accept: text/html" } })
    assert.equal(302, status)
    assert.equal("/login?rd=%2Far%2Fx", first(headers, "location"))
    status, headers = http(url .. "/ar/x", { headers = { "Accept: application/json" } })
    assert.equal(401, status)
    assert.equal('Bearer realm="tfauth"', first(headers, "www-authenticate"))
    if issuer then
      local token = h.login("admin").access_token
      status, _, body = http(url .. "/admin/x", { headers = { "Authorization: Bearer " .. token } })
      assert.equal(200, status)
      assert.equal("admin", cjson.decode(body).headers["x-auth-request-user"])
    end
    assert.equal(403, (http(url .. "/login", { headers = { "Origin: " .. url },
      form = { user = "alice", password = h.users.alice.password } }))) -- public_origin, not Host
    local _, _, metrics_body = http(url .. "/metrics")
    assert.matches('tfauth_logins_total{result="ok"} 1', metrics_body, 1, true)
  end)
end)
