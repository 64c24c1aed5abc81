-- tfauth.gate on real nginx: sessions: sign-in behind an opaque cookie, refresh once across workers,
-- the change stamp, revoked sessions.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local sh, http, count, metrics = h.sh, h.http, h.count, h.metrics
local first = support.first

support.suite("tfauth.gate #nginx", function(t)
  describe("sessions", function()
    it("signs in behind an opaque cookie, guards the application, signs out", function()
      local status, headers, body = t.login("alice")
      assert.equal(200, status)
      assert.same({ user = "alice" }, cjson.decode(body))
      assert.equal("no-store", first(headers, "cache-control"))
      local cookie = first(headers, "set-cookie")
      assert.matches("^tfauth_sid=%x+; Path=/; HttpOnly; SameSite=Lax$", cookie)
      assert.is_nil(sh("cat " .. t.jar):find("eyJ", 1, true), "no token in the browser's cookies")
      local app_status, _, app_body = t.get("/app/x")
      assert.equal(200, app_status)
      assert.equal("alice", t.upstream(app_body)["x-auth-request-user"])
      assert.equal(401, (t.get("/app/x", { jar = false })))
      status, headers, body = http(t.url .. "/logout", { method = "POST", jar = t.jar })
      assert.equal(200, status)
      assert.same({ logged_out = true }, cjson.decode(body))
      assert.equal("no-store", first(headers, "cache-control"))
      assert.matches("^tfauth_sid=; Max%-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax$",
        first(headers, "set-cookie"))
      assert.equal(1, count("/api/iam/logout"))
      assert.equal(401, (t.get("/app/x")))
    end)

    it("refuses wrong credentials with 401 and sets no cookie", function()
      local status, headers, body = http(t.url .. "/login", { form = { user = "alice", password = "nope-nope-1" } })
      assert.equal(401, status)
      assert.is_nil(headers["set-cookie"])
      assert.same({ error = "invalid_credentials" }, cjson.decode(body))
      status, headers, body = http(t.url .. "/login", { body = cjson.encode { user = "alice", password = "nope-nope-1" },
        headers = { "Content-Type: application/json" } })
      assert.equal(401, status)
      assert.is_nil(headers["set-cookie"])
      assert.same({ error = "invalid_credentials" }, cjson.decode(body))
      -- without a password (or with an empty one) too: a failed login is 401, never a cookie
      for _, form in ipairs { { user = "alice" }, { user = "alice", password = "" }, { password = "alice-Secret-1" } } do
        status, headers = http(t.url .. "/login", { form = form })
        assert.equal(401, status)
        assert.is_nil(headers["set-cookie"])
      end
    end)

    it("signs in with a JSON body too", function()
      local status, _, body = http(t.url .. "/login", { jar = t.jar, headers = { "Content-Type: application/json" },
        body = cjson.encode { user = "bob", password = h.users.bob.password } })
      assert.equal(200, status)
      assert.same({ user = "bob" }, cjson.decode(body))
      -- labelled as a form (curl -d's default): still read as JSON
      status, _, body = http(t.url .. "/login", { headers = { "Content-Type: application/x-www-form-urlencoded" },
        body = cjson.encode { user = "alice", password = h.users.alice.password, rd = "/app/j" } })
      assert.equal(303, status, body)
      assert.equal("bob", t.upstream(select(3, t.get("/app/x")))["x-auth-request-user"])
    end)

    it("mints a new session id at every login, and ends the one the browser had", function()
      t.login("alice")
      local before = t.sid()
      t.login("alice")
      local after = t.sid()
      assert.is_true(#before == 48 and #after == 48 and before ~= after)
      assert.equal(401, (http(t.url .. "/app/x", { headers = { "Cookie: tfauth_sid=" .. before } })))
      assert.equal(200, (http(t.url .. "/app/x", { headers = { "Cookie: tfauth_sid=" .. after } })))
    end)

    it("refreshes once per expiry across both workers, and no concurrent request fails", function()
      -- the 30 s skew: refreshed 4 s after login, and again 4 s after that
      -- (a round of 60 requests on a loaded machine may take 2 s: no second
      -- refresh falls into one round)
      h.configure_server { access_ttl = 34 }
      assert.equal(200, (t.login("alice")))
      for round = 1, 2 do
        os.execute("sleep 4.2")
        local out = sh(("seq 60 | xargs -P 30 -I{} curl -s -b %s -w ' %%{http_code}\\n' %s/app/{}"):format(t.jar, t.url))
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
      assert.equal(200, (t.login("alice")))
      local value, stamp = sh(("curl -s -b %s %s/t/ttl"):format(t.jar, t.url)):match("(%d+) (%d+)")
      assert.is_true(tonumber(value) > 95 and tonumber(value) <= 100 and stamp == value, value .. " " .. stamp)
      h.configure_server { refresh_ttl = 1800 } -- the next refresh token lives longer
      os.execute("sleep 1.1")
      assert.equal(200, (t.get("/app/x")))
      assert.equal(1, count("/api/iam/refresh"))
      value, stamp = sh(("curl -s -b %s %s/t/ttl"):format(t.jar, t.url)):match("(%d+) (%d+)")
      assert.is_true(tonumber(value) > 1790, value)
      assert.is_true(math.abs(tonumber(stamp) - tonumber(value)) <= 1, value .. " " .. stamp)
    end)

    it("treats a session whose refresh token was revoked as signed out", function()
      local before = metrics(t.url)["tfauth_refreshes_total{result=failed}"]
      h.configure_server { access_ttl = 31 }
      assert.equal(200, (t.login("bob")))
      h.configure_server { access_ttl = 300 }
      sh(("curl -s -X POST %s/_test/reset"):format(h.url)) -- the backend forgets all sessions
      os.execute("sleep 1.1")
      assert.equal(401, (t.get("/app/x")))
      assert.equal(401, (t.get("/app/x"))) -- and stays so, without asking again
      assert.equal(1, count("/api/iam/refresh"))
      assert.equal(before + 1, metrics(t.url)["tfauth_refreshes_total{result=failed}"])
    end)
  end)
end)
