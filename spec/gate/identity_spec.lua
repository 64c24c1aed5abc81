-- tfauth.gate on real nginx: identity headers, auth_request, and the answers to the unauthenticated and the forbidden.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local first = support.first
local issuer, has_jwks = support.issuer, support.has_jwks

support.suite("tfauth.gate #nginx", function(t)
  describe("identity headers", function()
    local spoofed = {
      "X-Auth-Request-User: mallory", "X-Auth-Request-Email: mallory@example.com", "x-auth-request-roles: admin",
      "X-AUTH-REQUEST-SUBJECT: 0", "X-Auth-Request-Groups: admin", "X-Auth-Request-Access-Token: forged",
      "X-Auth-Request-Preferred-Username: mallory", "X-Forwarded-User: mallory", "X-Forwarded-Email: m@example.com",
      "X-Forwarded-Groups: admin", "X-Forwarded-Preferred-Username: mallory", "X-Forwarded-Access-Token: forged",
    }

    it("gives the upstream who the user is, and Authorization: Bearer", function()
      t.login("alice")
      local got = t.upstream(select(3, t.get("/app/x")))
      assert.equal("alice", got["x-auth-request-user"])
      assert.equal("alice@example.com", got["x-auth-request-email"])
      assert.equal("user", got["x-auth-request-roles"])
      assert.equal(h.users.alice.id, got["x-auth-request-subject"])
      assert.matches("^Bearer eyJ[%w_-]+%.[%w_-]+%.[%w_-]+$", got.authorization)
    end)

    it("sets X-Auth-Request-Email only when the email is verified", function()
      t.login("bob")
      local got = t.upstream(select(3, t.get("/app/x", { headers = { "X-Auth-Request-Email: bob@forged.example" } })))
      assert.equal("bob", got["x-auth-request-user"])
      assert.is_nil(got["x-auth-request-email"])
    end)

    it("removes every identity header the client sent, whatever the case or count", function()
      t.login("bob")
      local headers = {}
      for i = 1, 120 do headers[i] = "X-Pad-" .. i .. ": x" end -- past ngx.req.get_headers' default of 100
      for _, line in ipairs(spoofed) do headers[#headers + 1] = line end
      headers[#headers + 1] = "X-Auth-Request-User: second-copy"
      local status, _, body = t.get("/app/x", { headers = headers })
      assert.equal(200, status)
      local got = t.upstream(body)
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

    it("auth_request: 204 with the identity for auth_request_set; docs/gate.md's snippet overrides the client's", function()
      t.login("alice")
      local status, _, body = t.get("/ar/x", { headers = spoofed })
      assert.equal(200, status)
      local got = t.upstream(body)
      assert.equal("alice", got["x-auth-request-user"])
      assert.equal("alice@example.com", got["x-auth-request-email"])
      assert.equal(h.users.alice.id, got["x-auth-request-subject"])
      assert.matches("^Bearer eyJ", got.authorization)
      for name, value in pairs(got) do
        if name:find("^x%-forwarded%-") or name:find("^x%-auth%-request%-") then
          assert.is_falsy(tostring(value):find("mallory") or tostring(value):find("forged") or value == "admin", name)
        end
      end
      t.jar = os.tmpname()
      t.login("bob") -- no verified email: the header is empty, not the client's
      got = t.upstream(select(3, t.get("/ar/x", { headers = spoofed })))
      assert.equal("bob", got["x-auth-request-user"])
      assert.is_nil(got["x-auth-request-email"])
    end)

    it("auth_request: 401 sends browsers to sign in (error_page), 403 when the rules refuse", function()
      local status, headers = t.get("/ar/x?a=1", { jar = false, headers = { "Accept: text/html" } })
      assert.equal(302, status)
      assert.equal("/login?rd=%2Far%2Fx%3Fa%3D1", first(headers, "location"))
      assert.equal("no-store", first(headers, "cache-control"))
      -- not a browser's GET: signin() keeps the 401, as the guard answers it
      local body
      for _, opts in ipairs { { headers = { "Accept: application/json" } }, { method = "POST",
        headers = { "Accept: text/html" } }, {} } do
        opts.jar = false
        status, headers, body = t.get("/ar/x", opts)
        assert.equal(401, status)
        assert.equal('Bearer realm="tfauth"', first(headers, "www-authenticate"))
        assert.is_nil(headers.location)
        assert.same({ error = "unauthenticated" }, cjson.decode(body))
      end
      if has_jwks and issuer then
        status, headers, body = t.get("/ar/x", { jar = false, headers = { "Authorization: Bearer a.b.c" } })
        assert.equal(401, status)
        assert.equal('Bearer realm="tfauth", error="invalid_token"', first(headers, "www-authenticate"))
        assert.same({ error = "invalid_token" }, cjson.decode(body))
      end
      t.login("alice")
      assert.equal(403, (t.get("/ar-admin/x")))
      t.jar = os.tmpname()
      t.login("admin")
      local _
      status, _, body = t.get("/ar-admin/x")
      assert.equal(200, status)
      assert.equal("admin", t.upstream(body)["x-auth-request-user"])
    end)
  end)

  describe("answers", function()
    it("redirects a browser's GET to the sign-in page with the original URI", function()
      local status, headers = t.get("/app/x?a=1&b=%2F", { jar = false,
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
        local status, headers, body = t.get("/app/x", opts)
        assert.equal(401, status)
        assert.equal('Bearer realm="tfauth"', first(headers, "www-authenticate"))
        assert.equal("no-store", first(headers, "cache-control"))
        assert.matches("^application/json", first(headers, "content-type"))
        assert.same({ error = "unauthenticated" }, cjson.decode(body))
      end
    end)

    it("answers 403 insufficient_scope when the rules refuse", function()
      t.login("alice")
      local status, headers, body = t.get("/admin/x")
      assert.equal(403, status)
      assert.equal('Bearer realm="tfauth", error="insufficient_scope"', first(headers, "www-authenticate"))
      assert.equal("no-store", first(headers, "cache-control"))
      assert.same({ error = "insufficient_scope" }, cjson.decode(body))
      assert.equal(403, (t.get("/editor/x")))
      assert.equal(200, (t.get("/t/reader/x"))) -- alice holds fndtn-api's reader
      assert.equal(403, (t.get("/t/nobody/x")))
    end)

    it("lets the admin role through, and client roles", function()
      t.login("admin")
      assert.equal(200, (t.get("/admin/x")))
      assert.equal(200, (t.get("/editor/x")))
      assert.equal(403, (t.get("/t/nobody/x"))) -- rules that list no role let nobody in
      t.jar = os.tmpname()
      t.login("bob") -- no client role of fndtn-api
      assert.equal(403, (t.get("/t/reader/x")))
    end)
  end)
end)
