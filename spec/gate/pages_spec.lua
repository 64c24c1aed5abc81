-- tfauth.gate on real nginx: the sign-in page and rd.
local h = require "spec.helper"
local support = require "spec.gate.support"

local http = h.http
local first = support.first

support.suite("tfauth.gate #nginx", function(t)
  describe("sign-in page", function()
    it("is served on GET: no script, CSP, no framing, not cached, rd carried through escaped", function()
      local status, headers, body = http(t.url .. '/login?rd=%2Fapp%2F%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E')
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
      local _, _, body = http(t.url .. "/login?rd=https%3A%2F%2Fevil.example%2F")
      assert.matches('name="rd" value="/"', body)
      assert.is_nil(body:find("evil", 1, true))
    end)

    it("shows why a form sign-in failed, from a fixed set, echoing the user name escaped", function()
      local status, headers, body = http(t.url .. "/login", { headers = { "Accept: text/html" },
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
      local status, headers = http(t.url .. "/login", { jar = t.jar, headers = { "Accept: text/html" },
        form = { user = "alice", password = h.users.alice.password, rd = "/app/first?x=1" } })
      assert.equal(303, status)
      assert.equal("/app/first?x=1", first(headers, "location"))
      assert.equal("no-store", first(headers, "cache-control"))
      assert.equal(200, (t.get("/app/first?x=1")))
    end)

    it("answers other methods with 405", function()
      assert.equal(405, (http(t.url .. "/login", { method = "PUT" })))
      assert.equal(405, (http(t.url .. "/logout")))
      assert.equal(405, (http(t.url .. "/logout", { method = "DELETE" })))
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
        local status, headers = http(t.url .. "/login", { jar = t.jar, body = body,
          headers = { "Host: evil.example", "Content-Type: application/x-www-form-urlencoded" } })
        assert.equal(303, status)
        assert.equal(case[2], first(headers, "location"))
      end)
    end

    it("is sent as the path even where nginx's absolute_redirect on (its default), whatever Host says", function()
      local evil = { "Host: evil.example", "Accept: text/html" }
      local status, headers = http(t.url .. "/t/abs/app/x?a=1", { jar = false, headers = evil })
      assert.equal(302, status)
      assert.equal("/login?rd=%2Ft%2Fabs%2Fapp%2Fx%3Fa%3D1", first(headers, "location"))
      status, headers = http(t.url .. "/t/abs/login", { jar = t.jar, headers = { "Host: evil.example" },
        form = { user = "bob", password = h.users.bob.password, rd = "/app/y?b=2" } })
      assert.equal(303, status)
      assert.equal("/app/y?b=2", first(headers, "location"))
      status, headers = http(t.url .. "/t/abs/logout", { method = "POST", jar = t.jar, headers = { "Host: evil.example" },
        form = { rd = "/bye" } })
      assert.equal(303, status)
      assert.equal("/bye", first(headers, "location"))
    end)

    it("is decoded once, from the query too, and so for logout", function()
      local status, headers = http(t.url .. "/login?rd=%2F%2Fevil.example", { jar = t.jar,
        form = { user = "bob", password = h.users.bob.password } })
      assert.equal(303, status)
      assert.equal("/", first(headers, "location"))
      status, headers = http(t.url .. "/logout?rd=%2Fapp%2Fbye", { method = "POST", jar = t.jar })
      assert.equal(303, status)
      assert.equal("/app/bye", first(headers, "location"))
      status, headers = http(t.url .. "/logout", { form = { rd = "//evil.example" } })
      assert.equal(303, status)
      assert.equal("/", first(headers, "location"))
    end)
  end)
end)
