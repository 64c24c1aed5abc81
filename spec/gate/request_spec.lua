-- tfauth.gate on real nginx: cross-site requests and hostile input.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local http, count = h.http, h.count
local first, log_of = support.first, support.log_of

support.suite("tfauth.gate #nginx", function(t)
  describe("cross-site requests", function()
    local own
    before_each(function() own = t.url end)

    it("refuses a login posted from another origin (Origin, Referer, null), before asking the auth API", function()
      for _, header in ipairs { "Origin: http://evil.example", "Referer: http://evil.example/login",
        "Origin: null", "Origin: " .. own .. ".evil.example", "Origin: https://127.0.0.1" .. own:match(":%d+$") } do
        local status, headers, body = http(t.url .. "/login", { jar = t.jar, headers = { header },
          form = { user = "alice", password = h.users.alice.password } })
        assert.equal(403, status, header)
        assert.is_nil(headers["set-cookie"], header)
        assert.equal("no-store", first(headers, "cache-control"))
        assert.same({ error = "cross_site_request" }, cjson.decode(body))
      end
      assert.equal(0, count("/api/iam/login"))
      assert.equal(200, (http(t.url .. "/login", { jar = t.jar, headers = { "Origin: " .. own },
        form = { user = "alice", password = h.users.alice.password } })))
      assert.equal(200, (http(t.url .. "/login", { jar = t.jar, headers = { "Referer: " .. own .. "/login?rd=/" },
        form = { user = "alice", password = h.users.alice.password } })))
    end)

    it("refuses a cross-site logout, and the session lives on", function()
      t.login("alice")
      assert.equal(403, (http(t.url .. "/logout", { method = "POST", jar = t.jar, headers = { "Origin: http://evil.example" } })))
      assert.equal(200, (t.get("/app/x")))
      assert.equal(0, count("/api/iam/logout"))
    end)

    it("refuses unsafe cookie-authenticated requests from another site; safe ones and same-origin ones pass", function()
      t.login("alice")
      assert.equal(403, (t.get("/app/x", { method = "POST", headers = { "Origin: http://evil.example" } })))
      assert.equal(403, (t.get("/app/x", { method = "DELETE", headers = { "Referer: http://evil.example/" } })))
      assert.equal(403, (t.get("/app/x", { method = "PUT", headers = { "Origin: null" } })))
      assert.equal(403, (t.get("/ar/x", { method = "POST", headers = { "Origin: http://evil.example" } })))
      assert.equal(200, (t.get("/app/x", { headers = { "Origin: http://evil.example" } })))
      assert.equal(200, (t.get("/app/x", { method = "POST", headers = { "Origin: " .. own } })))
      assert.equal(200, (t.get("/app/x", { method = "POST" }))) -- neither header: not a browser
      assert.equal(200, (t.get("/ar/x", { method = "POST", headers = { "Origin: " .. own } })))
    end)
  end)

  describe("a failed login", function()
    it("logs the status and the error kind, never the auth API's text", function()
      local mark = #log_of(t.prefix)
      local echoed = "the password p&lt;w&gt; you sent was wrong: detail-text-XYZ"
      h.script { path = "/api/iam/login", status = 401, body = cjson.encode { detail = echoed } }
      assert.equal(401, (http(t.url .. "/login", { form = { user = "alice", password = "p<w>" } })))
      h.script { path = "/api/iam/login", status = 500, body = "<html>upstream p%3Cw%3E detail-text-XYZ</html>",
        content_type = "text/html" }
      assert.equal(503, (http(t.url .. "/login", { form = { user = "alice", password = "p<w>" } })))
      local log = log_of(t.prefix):sub(mark + 1)
      assert.equal(1, #support.lines_with(log, "tfauth: login failed: status 401, kind http"))
      assert.equal(2, #support.lines_with(log, "tfauth: login failed: status ")) -- the 500: as the transport saw it
      assert.is_nil(log:find("detail-text-XYZ", 1, true))
      assert.is_nil(log:find("p<w>", 1, true))
    end)
  end)

  describe("hostile input", function()
    it("answers 4xx, never 5xx, and writes no password or token to the error log", function()
      t.login("alice")
      local good = t.sid()
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
          local status = http(t.url .. path, case)
          assert.is_true(status >= 400 and status < 500 or status == 302, ("case %d %s: %d"):format(i, path, status))
        end
      end
      for _, form in ipairs {
        { user = ("u"):rep(100000), password = "alice-Secret-1" },
        { user = "alice", password = ("p"):rep(100000) },
        { ["user[]"] = "alice", password = "alice-Secret-1" },
      } do
        local status = http(t.url .. "/login", { form = form })
        assert.is_true(status >= 400 and status < 500, "login: " .. status)
      end
      for _, body in ipairs { "{", "[1,2]", '{"user": 5, "password": {}}', '"x"', ("["):rep(5000), "\0\1\2" } do
        local status = http(t.url .. "/login", { body = body, headers = { "Content-Type: application/json" } })
        assert.is_true(status >= 400 and status < 500, "login " .. body:sub(1, 10) .. ": " .. status)
      end
      local status = http(t.url .. "/login?user=alice&password=alice-Secret-1&user=bob", { method = "POST",
        body = "user=alice&user=bob&password=alice-Secret-1", headers = { "Content-Type: application/x-www-form-urlencoded" } })
      assert.equal(401, status) -- an ambiguous user is no user: a failed login
      local log = log_of(t.prefix)
      for user in pairs(h.users) do assert.is_nil(log:find(h.users[user].password, 1, true), "a password in the log") end
      assert.is_nil(log:find("eyJ", 1, true), "a token in the log")
      assert.is_nil(log:find(good, 1, true), "a session id in the log")
    end)
  end)
end)
