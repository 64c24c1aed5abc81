-- tfauth.gate on real nginx: bearer tokens, verified against the realm's key set, and the gate without it.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local sh, http, count, metrics = h.sh, h.http, h.count, h.metrics
local first = support.first
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
  end)
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
