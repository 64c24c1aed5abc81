-- tfauth.gate on real nginx: bearer tokens, verified against the realm's key set, and the gate without it.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local sh, http, count, metrics = h.sh, h.http, h.count, h.metrics
local first, log_of = support.first, support.log_of
local has_jwks = support.has_jwks
local bearer_it = support.issuer and it or pending

support.suite("tfauth.gate #nginx", function(t)
  describe("bearer tokens", function()
    local tokens
    local function bearer(path, token, opts)
      opts = opts or {}
      opts.headers = opts.headers or {}
      table.insert(opts.headers, "Authorization: Bearer " .. token)
      opts.jar = opts.jar or false
      return t.get(path, opts)
    end
    before_each(function() tokens = { alice = h.login("alice"), admin = h.login("admin") } end)
    local function claims_of(token) -- decoded by Python, not by what is tested
      return cjson.decode(sh("/usr/bin/python3 -c 'import sys, base64, json; p = sys.argv[1].split(\".\")[1]; "
        .. "print(base64.urlsafe_b64decode(p + \"=\" * (-len(p) % 4)).decode())' " .. token))
    end

    bearer_it("lets a valid access token through with the identity headers", function()
      local status, _, body = bearer("/app/x", tokens.alice.access_token,
        { headers = { "X-Auth-Request-User: mallory" } })
      assert.equal(200, status)
      local got = t.upstream(body)
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

    bearer_it("reads roles of odd shapes as before: a comma inside a role, entries that are not strings", function()
      local claims = claims_of(tokens.alice.access_token)
      local function signed(realm_roles, resource_access)
        local c = {}
        for k, v in pairs(claims) do c[k] = v end
        c.jti = c.jti and (c.jti .. "-" .. #realm_roles .. tostring(resource_access ~= nil))
        c.realm_access, c.resource_access = { roles = realm_roles }, resource_access
        return h.sign { claims = c }
      end
      -- "auditor,admin" is neither role (the header joins roles with commas), 7 is none
      local odd = signed({ "auditor,admin", 7, "user" }, { ["fndtn-api"] = { roles = { 1, "reader" } }, other = "x" })
      local status, _, body = bearer("/app/x", odd)
      assert.equal(200, status)
      assert.equal("user", t.upstream(body)["x-auth-request-roles"])
      for _ = 1, 2 do -- first sight, then the cached identity
        assert.equal(403, (bearer("/admin/x", odd)))
        assert.equal(200, (bearer("/t/reader/x", odd))) -- fndtn-api's reader, beside the number 1
        assert.equal(403, (bearer("/editor/x", odd)))
      end
      -- a realm role alone lets /t/reader/ in; resource_access that is not an object gives no client role
      local auditor = signed({ "auditor" }, "junk")
      for _ = 1, 2 do
        assert.equal(200, (bearer("/t/reader/x", auditor)))
        assert.equal(403, (bearer("/editor/x", auditor)))
      end
      status, _, body = bearer("/app/x", signed({}, nil))
      assert.equal(200, status)
      assert.is_nil(t.upstream(body)["x-auth-request-roles"])
    end)

    bearer_it("refuses ID, refresh, expired, wrong-audience and unsigned tokens with invalid_token", function()
      local claims = claims_of(tokens.alice.access_token)
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

    local function with(claims, changes)
      local c = {}
      for k, v in pairs(claims) do c[k] = v end
      for k, v in pairs(changes) do c[k] = v end
      return c
    end

    bearer_it("takes RFC 9068 access tokens (header typ at+jwt) and Keycloak's; refuses ID and refresh tokens", function()
      local claims = claims_of(tokens.alice.access_token)
      local plain = with(claims, {})
      plain.typ = nil
      for _, typ in ipairs { "at+jwt", "AT+JWT", "application/at+jwt" } do
        assert.equal(200, (bearer("/app/x", h.sign { claims = plain, header = { typ = typ } })), typ)
      end
      assert.equal(200, (bearer("/app/x", tokens.alice.access_token))) -- header JWT, claim Bearer
      local before = metrics(t.url)
      local id_like = with(claims_of(tokens.alice.id_token), { aud = "fndtn-api" }) -- even for this audience
      for name, token in pairs {
        id = h.sign { claims = id_like }, refresh = h.sign { claims = with(claims, { typ = "Refresh" }) },
        standard_id = h.sign { claims = plain }, -- header JWT, no typ claim
        no_header_typ = h.sign { claims = plain, header = { typ = h.null or cjson.null } },
        text = h.sign { claims = plain, header = { typ = "text/at+jwt" } },
      } do
        assert.equal(401, (bearer("/app/x", token)), name)
      end
      assert.equal(5, metrics(t.url)["tfauth_gate_bearer_refused_total{reason=type}"]
        - before["tfauth_gate_bearer_refused_total{reason=type}"])
    end)

    bearer_it("judges a request carrying both by its bearer", function()
      t.login("admin")
      local status, _, body = bearer("/app/x", tokens.alice.access_token, { jar = t.jar })
      assert.equal(200, status)
      assert.equal("alice", t.upstream(body)["x-auth-request-user"])
      assert.equal(401, (bearer("/app/x", tokens.alice.refresh_token, { jar = t.jar })))
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
      assert.equal("admin", t.upstream(body)["x-auth-request-user"])
      assert.equal(200, (bearer("/ar-admin/x", tokens.admin.access_token)))
      assert.equal(403, (bearer("/ar-admin/x", tokens.alice.access_token)))
      -- the snippet's error_page 401 (signin()) keeps an API's 401 and its invalid_token
      local headers
      status, headers = bearer("/ar/x", "a.b.c", { headers = { "Accept: application/json" } })
      assert.equal(401, status)
      assert.equal('Bearer realm="tfauth", error="invalid_token"', headers["www-authenticate"][1])
    end)

    -- These two refuse tokens of an unknown kid, and so fetch the key set:
    -- after the rotation spec, whose one refetch must not be rate-limited.
    bearer_it("logs every refused token at info (reason, kid, alg, iss) and counts it by reason", function()
      local claims = claims_of(tokens.alice.access_token)
      local head, sig = tokens.alice.access_token:match("^(.+%.)([^.]+)$")
      local cases = {
        { "malformed", "not-a-token" },
        { "algorithm", h.sign { claims = claims, alg = "ES256" } },
        { "key", h.sign { claims = claims, header = { kid = "no-such-key" } } },
        { "signature", head .. (sig:sub(1, 1) == "A" and "B" or "A") .. sig:sub(2) },
        { "expired", h.sign { claims = with(claims, { exp = os.time() - 120, iat = os.time() - 400 }) } },
        { "not_yet_valid", h.sign { claims = with(claims, { nbf = os.time() + 600 }) } },
        { "issuer", h.sign { claims = with(claims, { iss = "http://evil.example/realms/fndtn" }) } },
        { "type", h.sign { claims = with(claims, { typ = "ID" }) } },
        { "audience", h.sign { claims = with(claims, { aud = "someone-else" }) } },
      }
      local before, mark = metrics(t.url), #log_of(t.prefix)
      for _, case in ipairs(cases) do assert.equal(401, (bearer("/app/x", case[2])), case[1]) end
      local now = metrics(t.url)
      local log = log_of(t.prefix):sub(mark + 1)
      local claims_read = { expired = true, not_yet_valid = true, issuer = true, type = true, audience = true }
      for _, case in ipairs(cases) do
        local reason = case[1]
        local series = "tfauth_gate_bearer_refused_total{reason=" .. reason .. "}"
        assert.equal(1, now[series] - before[series], reason)
        local lines = support.lines_with(log, "tfauth: bearer token refused: reason=" .. reason .. " ")
        assert.equal(1, #lines, reason)
        assert.matches("[info]", lines[1], 1, true)
        if reason ~= "malformed" then
          assert.matches('alg="' .. (reason == "algorithm" and "ES256" or "RS256") .. '"', lines[1], 1, true)
          assert.matches(' kid="[^"]+"', lines[1])
        end
        local iss = claims_read[reason] and (reason == "issuer" and "http://evil.example/realms/fndtn" or claims.iss)
        if iss then
          assert.matches(' iss="' .. iss .. '"', lines[1], 1, true)
        else
          assert.matches(" iss=-", lines[1], 1, true)
        end
      end
      for _, case in ipairs(cases) do
        local signature = case[2]:match("([^.]+)$")
        assert.is_nil(log:find(signature, 1, true), "a token's signature in the log: " .. case[1])
      end
      assert.is_nil(log:find(claims.sub, 1, true), "another claim in the log")
      for name in pairs(claims_read) do assert.is_number(now["tfauth_gate_bearer_refused_total{reason=" .. name .. "}"]) end
      assert.is_number(now["tfauth_gate_bearer_refused_total{reason=error}"])
    end)

    bearer_it("logs a hostile kid escaped and cut to 64 characters", function()
      local claims = claims_of(tokens.alice.access_token)
      local kid = 'evil"\n' .. "\r\n2026/01/01 [emerg] forged " .. ("k"):rep(100)
      assert.equal(401, (bearer("/app/x", h.sign { claims = claims, header = { kid = kid } })))
      local lines = support.lines_with(log_of(t.prefix), "tfauth: bearer token refused: reason=key ")
      local logged = lines[#lines]:match(' kid="(.-)" alg=')
      assert.equal(64, #logged)
      assert.equal('evil\\x22\\x0a\\x0d\\x0a2026/01/01 [emerg] forged ' .. ("k"):rep(18), logged)
      assert.is_nil(logged:find("[%z\1-\31\127]"))
      assert.is_nil(log_of(t.prefix):find("k" .. ("k"):rep(64), 1, true))
    end)
  end)
end, { TFAUTH_LOG_LEVEL = "info" })

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
