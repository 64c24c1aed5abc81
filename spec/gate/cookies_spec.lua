-- tfauth.gate on real nginx: the session cookie read as RFC 6265 §4.2.1 says
-- (pairs split on `;` only, names exact), a planted duplicate refused, and the
-- gate's cookie kept from the upstream (guard and auth_request).
local h = require "spec.helper"
local support = require "spec.gate.support"

local http = h.http
local first, log_of = support.first, support.log_of

support.suite("tfauth.gate #nginx", function(t)
  local NAME = "tfauth_sid" -- the example's name: plain http on loopback

  -- a session id for user, signed in with a jar of its own
  local function sid_of(user)
    local jar = t.jar
    t.jar = os.tmpname()
    t.login(user)
    local sid = t.sid()
    os.remove(t.jar)
    t.jar = jar
    assert.matches("^%x+$", sid)
    return sid
  end

  -- status, the upstream's headers (nil when refused), the answer's headers
  local function with_cookie(path, cookie, more)
    local headers = { "Cookie: " .. cookie }
    for _, line in ipairs(more or {}) do headers[#headers + 1] = line end
    local status, answer, body = http(t.url .. path, { headers = headers })
    return status, status == 200 and t.upstream(body) or nil, answer
  end

  describe("the session cookie", function()
    local victim, attacker
    before_each(function() victim, attacker = sid_of("alice"), sid_of("admin") end)

    it("is a pair split on ; only: a name after , is part of another cookie's value", function()
      for _, path in ipairs { "/app/x", "/ar/x" } do
        local status = with_cookie(path, "pref=x," .. NAME .. "=" .. attacker)
        assert.equal(401, status, path)
        local got
        status, got = with_cookie(path, "pref=x," .. NAME .. "=" .. attacker .. "; " .. NAME .. "=" .. victim)
        assert.equal(200, status, path)
        assert.equal("alice", got["x-auth-request-user"], path)
        assert.equal("pref=x," .. NAME .. "=" .. attacker, got.cookie, path) -- pref's value, passed on as it came
        status = with_cookie(path, NAME .. "=" .. victim .. ",pref=" .. attacker)
        assert.equal(401, status, path) -- the value runs to the `;`: not a session id
      end
    end)

    it("has its name compared exactly, case and all", function()
      for _, name in ipairs { NAME:upper(), "Tfauth_Sid", " " .. NAME .. " ", NAME .. "x", "x" .. NAME } do
        assert.equal(401, (with_cookie("/app/x", name .. "=" .. victim)), name)
      end
      local status, got = with_cookie("/app/x", NAME:upper() .. "=" .. attacker .. "; " .. NAME .. "=" .. victim)
      assert.equal(200, status)
      assert.equal("alice", got["x-auth-request-user"])
      assert.equal(NAME:upper() .. "=" .. attacker, got.cookie) -- another cookie: passed on
    end)

    it("twice is no session, neither the first nor the last, logged at info; the browser is told to clear cookies",
      function()
        for _, cookie in ipairs { NAME .. "=" .. victim .. "; " .. NAME .. "=" .. attacker,
          NAME .. "=" .. attacker .. "; a=1; " .. NAME .. "=" .. victim, NAME .. "=" .. victim .. "; " .. NAME .. "=" .. victim,
          NAME .. "=; " .. NAME .. "=" .. victim } do
          for _, path in ipairs { "/app/x", "/ar/x" } do
            local status, _, headers = with_cookie(path, cookie)
            assert.equal(401, status, path .. " " .. cookie)
            assert.equal('Bearer realm="tfauth"', first(headers, "www-authenticate"))
            status, _, headers = with_cookie(path, cookie, { "Accept: text/html" })
            assert.equal(302, status)
            assert.equal("/login?rd=" .. path:gsub("/", "%%2F") .. "&cookies=duplicate", first(headers, "location"))
          end
        end
        local message = "Clear this site&#39;s cookies"
        local _, _, page = http(t.url .. "/login?rd=%2Fapp%2Fx&cookies=duplicate")
        assert.matches(message, page, 1, true)
        assert.matches('name="rd" value="/app/x"', page, 1, true)
        -- a duplicate on the login page's own path is seen there too
        _, _, page = http(t.url .. "/login", { headers = { "Cookie: " .. NAME .. "=" .. victim .. "; " .. NAME .. "=1" } })
        assert.matches(message, page, 1, true)
        _, _, page = http(t.url .. "/login", { headers = { "Cookie: " .. NAME .. "=" .. victim } })
        assert.is_nil(page:find(message, 1, true))
        local log = log_of(t.prefix)
        local logged = support.lines_with(log, "tfauth: more than one " .. NAME .. " cookie in the request: no session")
        assert.is_true(#logged >= 8)
        for _, line in ipairs(logged) do assert.matches("[info]", line, 1, true) end
        assert.is_nil(log:find(victim, 1, true), "a session id in the log")
        assert.is_nil(log:find(attacker, 1, true), "a session id in the log")
      end)
  end)

  describe("the upstream", function()
    local sid
    before_each(function() sid = sid_of("alice") end)

    it("never receives the gate's cookie; every other pair goes through byte for byte (guard and auth_request)",
      function()
        local others = { "a=1", 'quoted="x y"', "enc=%3B%20", "pref=x,y", "empty=", "_ga=GA1.2.3" }
        local cases = {
          { NAME .. "=" .. sid .. "; " .. table.concat(others, "; "), table.concat(others, "; ") },
          { table.concat(others, "; ") .. "; " .. NAME .. "=" .. sid, table.concat(others, "; ") },
          { "a=1;   " .. NAME .. "=" .. sid .. "  ;  b=2", "a=1; b=2" }, -- joined as browsers join pairs
          { "a=1;" .. NAME .. "=" .. sid .. ";b=2", "a=1; b=2" },
          { NAME:upper() .. "=keep; " .. NAME .. "=" .. sid, NAME:upper() .. "=keep" },
        }
        for _, path in ipairs { "/app/x", "/ar/x" } do
          for _, case in ipairs(cases) do
            local status, got = with_cookie(path, case[1])
            assert.equal(200, status, path .. " " .. case[1])
            assert.equal("alice", got["x-auth-request-user"])
            assert.equal(case[2], got.cookie, path .. " " .. case[1])
          end
          -- the gate's cookie alone: no Cookie header at all
          local status, got = with_cookie(path, NAME .. "=" .. sid)
          assert.equal(200, status)
          assert.is_nil(got.cookie, path)
          -- two Cookie lines (as HTTP/2 sends them): one header, without the gate's
          status, got = with_cookie(path, "a=1", { "Cookie: " .. NAME .. "=" .. sid, "Cookie: b=2" })
          assert.equal(200, status)
          assert.equal("a=1; b=2", got.cookie, path)
        end
      end)

    local bearer_it = support.issuer and it or pending
    bearer_it("does not receive it beside a bearer token either", function()
      local token = h.login("admin").access_token
      for _, path in ipairs { "/app/x", "/ar/x" } do
        local status, got = with_cookie(path, "a=1; " .. NAME .. "=" .. sid, { "Authorization: Bearer " .. token })
        assert.equal(200, status)
        assert.equal("admin", got["x-auth-request-user"])
        assert.equal("a=1", got.cookie, path)
      end
    end)
  end)
end, { TFAUTH_LOG_LEVEL = "info" })
