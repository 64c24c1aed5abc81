-- tfauth.jwks against the reference backend, which signs as Keycloak does
-- (PyJWT + cryptography, not our code) and counts every request to its
-- discovery and certs endpoints.
local cjson = require "cjson"
local tfauth = require "tfauth"
local jwks = require "tfauth.jwks"
local safe = require "tfauth.safe"
local h = require "spec.helper"

local count, error_of = h.count, h.error_of
local CERTS, DISCOVERY = h.certs_path, h.discovery_path
local ACCESS = { audience = "fndtn-api", types = { "Bearer" } }

local function sleep(seconds) os.execute("sleep " .. seconds) end

local function random_kid()
  local t = {}
  for i = 1, 16 do t[i] = string.char(math.random(97, 122)) end
  return table.concat(t)
end

-- A jwks on the backend's realm, counting its fetches by outcome.
local function realm(config)
  config = config or {}
  local fetches = { ok = 0, failed = 0 }
  config.on_fetch = function(result) fetches[result] = fetches[result] + 1 end
  if config.issuer == nil and config.url == nil then config.issuer = h.issuer end
  return jwks.new(config), fetches
end

local function access_token(name) return h.login(name or "alice").access_token end

-- Verifying fails for want of a key set: a network error, not the token's fault.
local function refused(keys, token)
  local err = error_of(keys.verify, keys, token or access_token(), ACCESS)
  assert.equal("network", err.kind, err.message)
  assert.equal("jwks.fetch", err.operation)
  assert.is_true(err.retryable)
  return err
end

describe("tfauth.jwks", function()
  before_each(h.reset)

  describe("with the backend's tokens", function()
    it("verifies an access token from a real login, the keys found by discovery", function()
      local keys = realm()
      local claims, header = keys:verify(access_token("admin"), ACCESS)
      assert.equal(h.issuer, claims.iss)
      assert.equal("admin", claims.preferred_username)
      assert.equal("Bearer", claims.typ)
      assert.equal("fndtn-web", claims.azp)
      assert.same({ "user", "admin" }, claims.realm_access.roles)
      assert.same({ "reader", "editor" }, claims.resource_access["fndtn-api"].roles)
      assert.equal("RS256", header.alg)
      assert.equal(1, count(DISCOVERY))
      assert.equal(1, count(CERTS))
      assert.equal(h.jwks().keys[1].kid, header.kid)
    end)

    it("fetches at first use, not when made", function()
      realm()
      assert.equal(0, count(CERTS))
      assert.equal(0, count(DISCOVERY))
    end)

    it("checks iss against the configured issuer by default, and takes an explicit one", function()
      local token = access_token()
      local err = error_of(realm { url = h.issuer .. "/protocol/openid-connect/certs" }.verify,
        realm { url = h.issuer .. "/protocol/openid-connect/certs" }, token, ACCESS)
      assert.equal("argument", err.kind) -- url alone: no issuer to default to
      assert.equal("issuer", err.field)
      local keys = realm { issuer = h.issuer .. "x" , url = h.issuer .. "/protocol/openid-connect/certs" }
      err = error_of(keys.verify, keys, token, ACCESS)
      assert.equal("token", err.kind)
      assert.equal("issuer", err.reason)
      assert.equal("alice", keys:verify(token, { issuer = h.issuer, audience = "fndtn-api" }).preferred_username)
    end)

    it("refuses the ID token where an access token is required, and the HS256 refresh token", function()
      local tokens = h.login("alice")
      local keys = realm()
      local err = error_of(keys.verify, keys, tokens.id_token, { types = { "Bearer" } })
      assert.equal("token", err.kind)
      assert.equal("type", err.reason)
      assert.equal("ID", keys:verify(tokens.id_token, { audience = "fndtn-web", types = { "ID" } }).typ)
      err = error_of(keys.verify, keys, tokens.refresh_token, ACCESS)
      assert.equal("token", err.kind)
      assert.equal("algorithm", err.reason)
      assert.equal(1, count(CERTS))
    end)

    it("verifies ES256 and EdDSA tokens the backend signs with its other realm keys", function()
      local keys = realm()
      for _, alg in ipairs { "ES256", "EdDSA" } do
        local token = h.sign { alg = alg, claims = { iss = h.issuer, sub = "x", exp = os.time() + 60 } }
        assert.equal("x", keys:verify(token, { algorithms = { alg } }).sub)
        local err = error_of(keys.verify, keys, token, {}) -- default algorithms: RS256 only
        assert.equal("algorithm", err.reason)
      end
      assert.equal(1, count(CERTS))
    end)

    it("refuses an expired token, and a token signed by a key the realm never had", function()
      local keys = realm()
      local expired = h.sign { claims = { iss = h.issuer, exp = os.time() - 10 } }
      assert.equal("expired", error_of(keys.verify, keys, expired, {}).reason)
      local kid = h.rotate()
      local forged = h.sign { kid = kid, claims = { iss = h.issuer, exp = os.time() + 60 } }
      h.reset() -- that key leaves the realm: as if it had never been the realm's
      local err = error_of(keys.verify, keys, forged, {})
      assert.equal("token", err.kind)
      assert.is_true(err.kid_missing)
      assert.equal("key", err.reason)
    end)
  end)

  describe("key rotation", function()
    it("verifies tokens of a new key after exactly one refetch, and the old key's tokens still", function()
      local keys = realm { min_refresh_interval = 0 }
      local before = access_token()
      keys:verify(before, ACCESS)
      assert.equal(1, count(CERTS))
      local kid = h.rotate()
      local after = access_token()
      local _, header = keys:verify(after, ACCESS)
      assert.equal(kid, header.kid)
      assert.equal(2, count(CERTS))
      keys:verify(before, ACCESS) -- the old key is still listed
      keys:verify(access_token(), ACCESS)
      assert.equal(2, count(CERTS))
      assert.equal(1, count(DISCOVERY)) -- discovery once: its jwks_uri is kept
    end)

    it("lists the new key in the set it returns", function()
      local keys = realm { min_refresh_interval = 0 }
      assert.equal(3, #keys:keyset():kids()) -- RS256, ES256, EdDSA; the RSA-OAEP "enc" key is skipped
      local kid = h.rotate()
      keys:verify(access_token(), ACCESS)
      local kids = keys:keyset():kids()
      assert.equal(4, #kids)
      local found = false
      for _, k in ipairs(kids) do found = found or k == kid end
      assert.is_true(found)
    end)
  end)

  describe("refetch limit", function()
    it("lets a flood of unknown kids cause at most one fetch per min_refresh_interval", function()
      local keys = realm { min_refresh_interval = 60 }
      keys:verify(access_token(), ACCESS)
      for _ = 1, 50 do
        local token = h.sign { header = { kid = random_kid() }, claims = { iss = h.issuer, exp = os.time() + 60 } }
        local err = error_of(keys.verify, keys, token, {})
        assert.equal("token", err.kind)
        assert.equal("key", err.reason)
        assert.is_true(err.kid_missing)
      end
      assert.equal(2, count(CERTS)) -- the first fetch, and one for the first unknown kid
      -- Within the interval even a genuine new key waits: no fetch.
      h.rotate()
      assert.equal("key", error_of(keys.verify, keys, access_token(), ACCESS).reason)
      assert.equal(2, count(CERTS))
    end)

    it("fetches once for a fresh jwks fed only unknown kids: its first fetch serves the first miss", function()
      local keys = realm()
      for _ = 1, 20 do
        local token = h.sign { header = { kid = random_kid() }, claims = { iss = h.issuer, exp = os.time() + 60 } }
        assert.is_true(error_of(keys.verify, keys, token, {}).kid_missing)
      end
      assert.equal(1, count(CERTS))
    end)

    it("allows the next fetch for an unknown kid once the interval has passed", function()
      local keys = realm { min_refresh_interval = 1 }
      keys:verify(access_token(), ACCESS)
      local unknown = h.sign { header = { kid = random_kid() }, claims = { iss = h.issuer, exp = os.time() + 60 } }
      error_of(keys.verify, keys, unknown, {})
      error_of(keys.verify, keys, unknown, {})
      assert.equal(2, count(CERTS))
      h.rotate()
      sleep(1.2)
      keys:verify(access_token(), ACCESS)
      assert.equal(3, count(CERTS))
    end)

    it("does not refetch for a token without kid or with an unusable one", function()
      local keys = realm { min_refresh_interval = 0 }
      keys:verify(access_token(), ACCESS)
      local no_kid = h.sign { header = { kid = cjson.null }, claims = { iss = h.issuer, exp = os.time() + 60 } }
      assert.equal("alice", keys:verify(access_token(), ACCESS).preferred_username)
      assert.equal(h.issuer, keys:verify(no_kid, {}).iss) -- without kid: each RS256 key is tried
      assert.equal(1, count(CERTS))
    end)
  end)

  describe("ttl", function()
    it("fetches the set again once it is ttl seconds old, not before", function()
      local keys = realm { ttl = 1 }
      local token = access_token()
      for _ = 1, 5 do keys:verify(token, ACCESS) end
      assert.equal(1, count(CERTS))
      sleep(1.2)
      keys:verify(token, ACCESS)
      keys:verify(token, ACCESS)
      assert.equal(2, count(CERTS))
      assert.equal(1, count(DISCOVERY))
    end)

    it("keeps the last good set when a fetch fails, and backs off", function()
      local keys, fetches = realm { ttl = 1 }
      local token = access_token()
      keys:verify(token, ACCESS)
      h.script { path = CERTS, status = 500, body = '{"error":"unknown_error"}', times = 10 }
      sleep(1.2)
      for _ = 1, 10 do assert.equal("alice", keys:verify(token, ACCESS).preferred_username) end
      assert.equal(2, count(CERTS)) -- one failed fetch; the next waits out its backoff
      assert.same({ ok = 1, failed = 1 }, fetches)
    end)
  end)

  describe("failed fetches", function()
    it("with no set at all, refuse as network, not token; requests do not each fetch", function()
      local keys, fetches = realm { url = "http://127.0.0.1:1" .. CERTS, issuer = h.issuer }
      local token = access_token()
      for _ = 1, 20 do
        local err = refused(keys, token)
        if err.cause then assert.equal("network", err.cause.kind) end
      end
      assert.same({ ok = 0, failed = 1 }, fetches)
      sleep(1.2) -- the first backoff is 1 s
      refused(keys, token)
      assert.same({ ok = 0, failed = 2 }, fetches)
    end)

    it("backs off after scripted 500s, then recovers", function()
      local keys, fetches = realm()
      h.script { path = CERTS, status = 500, body = "{}", times = 2 }
      local token = access_token()
      local err = refused(keys, token)
      assert.equal("http", err.cause.kind)
      assert.equal(500, err.cause.status)
      assert.equal(500, err.status)
      for _ = 1, 10 do refused(keys, token) end
      assert.equal(1, count(CERTS))
      sleep(1.2)
      refused(keys, token) -- the second 500; the backoff doubles
      assert.equal(2, count(CERTS))
      sleep(2.2)
      assert.equal("alice", keys:verify(token, ACCESS).preferred_username)
      assert.same({ ok = 1, failed = 2 }, fetches)
    end)

    it("honours timeout_ms: a JWKS slower than it leaves no set, an error of kind timeout", function()
      local keys, fetches = realm { timeout_ms = 300 }
      local token = access_token()
      h.script { path = CERTS, delay_ms = 5000, times = 1 }
      local started = os.time()
      local err = error_of(keys.verify, keys, token, ACCESS)
      assert.equal("timeout", err.kind, err.message)
      assert.equal("jwks.fetch", err.operation)
      assert.equal("timeout", err.cause.kind)
      assert.is_true(os.time() - started < 4, "the fetch was not cut at timeout_ms")
      assert.same({ ok = 0, failed = 1 }, fetches)
    end)

    it("fails a fetch whose answer is not 2xx, not JSON, over 1 MiB, or holds no usable key", function()
      local cases = {
        { answer = { status = 404, body = '{"error":"not found"}' }, kind = "http" },
        { answer = { status = 200, body = "<html>certs</html>", content_type = "text/html" }, kind = "response" },
        { answer = { status = 200, body = '{"keys":[' .. string.rep('{"kty":"oct","k":"AAAA"},', 45000)
          .. '{"kty":"oct","k":"AAAA"}]}' }, kind = "response" },
        { answer = { status = 200, body = '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}' }, kind = "response" },
        { answer = { status = 200, body = '{"keys":[]}' }, kind = "response" },
      }
      assert.is_true(#cases[3].answer.body > 1048576)
      for i, case in ipairs(cases) do
        h.reset()
        case.answer.path = CERTS
        h.script(case.answer)
        local keys = realm()
        local err = refused(keys)
        assert.equal(case.kind, err.cause.kind, "case " .. i)
        assert.equal(1, count(CERTS), "case " .. i)
        -- the last good set is kept: here there is none, so it stays unavailable
      end
    end)

    it("takes a JWKS of exactly 1 MiB, and fails one byte over it", function()
      local text = cjson.encode(h.jwks())
      local exact = text .. (" "):rep(1048576 - #text) -- JSON allows trailing whitespace
      assert.equal(1048576, #exact)
      local token = access_token()
      h.script { path = CERTS, body = exact }
      assert.equal("alice", realm():verify(token, ACCESS).preferred_username)
      h.script { path = CERTS, body = exact .. " " }
      local err = refused(realm(), token)
      assert.equal("response", err.cause.kind)
      assert.matches("larger than max_response_bytes", err.cause.message, 1, true)
    end)

    it("keeps the last good set when the new one holds no usable key", function()
      local keys = realm { ttl = 1 }
      local token = access_token()
      keys:verify(token, ACCESS)
      h.script { path = CERTS, body = '{"keys":[{"kty":"RSA","use":"enc","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}]}' }
      sleep(1.2)
      keys:verify(token, ACCESS)
      assert.equal(2, count(CERTS))
      assert.equal(3, #keys:keyset():kids())
    end)

    it("refuses discovery whose issuer is not the configured one (a prefix included)", function()
      for _, wrong in ipairs { "http://127.0.0.1:1/realms/fndtn", h.issuer .. "/", h.issuer:sub(1, -2) } do
        h.reset()
        h.script { path = DISCOVERY,
          body = cjson.encode { issuer = wrong, jwks_uri = h.issuer .. "/protocol/openid-connect/certs" } }
        local err = refused((realm()))
        assert.equal("response", err.cause.kind)
        assert.equal("jwks.discovery", err.cause.operation)
        assert.matches("issuer", err.message)
        assert.equal(0, count(CERTS))
      end
    end)

    it("refuses discovery without a jwks_uri", function()
      h.script { path = DISCOVERY, body = cjson.encode { issuer = h.issuer } }
      assert.matches("jwks_uri", refused((realm())).message)
    end)
  end)

  describe("TLS", function()
    local ca = os.getenv("TFAUTH_TEST_CERTS") .. "/ca.pem"

    it("fetches over https with the given CA, discovery's jwks_uri https too", function()
      local keys = realm { issuer = h.tls_issuer, tls = { ca_file = ca } }
      local claims = keys:verify(access_token(), { issuer = h.issuer, audience = "fndtn-api" })
      assert.equal("alice", claims.preferred_username)
      local on = {}
      for _, req in ipairs(h.requests()) do
        local key = req.listener .. " " .. req.path
        on[key] = (on[key] or 0) + 1
      end
      assert.same({ ["main /api/iam/login"] = 1, ["tls " .. DISCOVERY] = 1, ["tls " .. CERTS] = 1 }, on)
    end)

    it("refuses an untrusted certificate (as tls, under a network error: no set)", function()
      local keys = realm { issuer = h.tls_issuer }
      local err = refused(keys)
      assert.equal("tls", err.cause.kind)
      local wronghost = realm { url = os.getenv("TFAUTH_TEST_WRONGHOST_URL") .. CERTS, issuer = h.issuer,
        tls = { ca_file = ca } }
      assert.equal("tls", refused(wronghost).cause.kind)
    end)

    it("refuses an http jwks_uri from an https issuer", function()
      h.script { path = DISCOVERY, listener = "tls",
        body = cjson.encode { issuer = h.tls_issuer, jwks_uri = h.issuer .. "/protocol/openid-connect/certs" } }
      local err = refused((realm { issuer = h.tls_issuer, tls = { ca_file = ca } }))
      assert.matches("https", err.message)
      assert.equal(0, count(CERTS))
    end)
  end)

  describe("arguments", function()
    it("refuses bad configuration, naming the field", function()
      local cases = {
        { {}, "issuer" },
        { { issuer = 1 }, "issuer" },
        { { issuer = "kc.example/realms/x" }, "issuer" },
        { { url = "ftp://kc.example/certs" }, "url" },
        { { issuer = h.issuer, ttl = 0 }, "ttl" },
        { { issuer = h.issuer, ttl = "1" }, "ttl" },
        { { issuer = h.issuer, min_refresh_interval = -1 }, "min_refresh_interval" },
        { { issuer = h.issuer, on_fetch = "x" }, "on_fetch" },
        { { issuer = h.issuer, shared_dict = "d" }, "shared_dict" }, -- not inside nginx
        { { issuer = h.issuer, tls = { verify = "yes" } }, "tls.verify" },
        { { issuer = h.issuer, timeout_ms = 0 }, "timeout_ms" },
        { { issuer = h.issuer, transport = "carrier pigeon" }, "transport" },
        { { issuer = h.issuer, jwks_uri = "x" }, "jwks_uri" },
      }
      for _, case in ipairs(cases) do
        local err = error_of(jwks.new, case[1])
        assert.equal("argument", err.kind)
        assert.equal(case[2], err.field)
        assert.equal("jwks.new", err.operation)
      end
      assert.equal("config", error_of(jwks.new, nil).field)
      assert.equal(0, #h.requests())
    end)

    it("refuses bad verify arguments and malformed tokens before any fetch", function()
      local keys = realm()
      local token = access_token()
      h.reset()
      assert.equal("token", error_of(keys.verify, keys, 42, ACCESS).field)
      assert.equal("algorithms", error_of(keys.verify, keys, token, { algorithms = { "HS256" } }).field)
      assert.equal("opts", error_of(keys.verify, keys, token, "fndtn-api").field)
      assert.equal("malformed", error_of(keys.verify, keys, "a.b", ACCESS).reason)
      assert.equal("algorithm", error_of(keys.verify, keys, token, { algorithms = { "ES256" } }).reason)
      assert.equal(0, #h.requests())
    end)

    it("never puts the token in an error", function()
      local keys = realm { url = "http://127.0.0.1:1" .. CERTS, issuer = h.issuer }
      local token = access_token()
      local err = error_of(keys.verify, keys, token, ACCESS)
      for _, s in ipairs(h.strings(err)) do
        assert.is_nil(s:find(token:match("^[^.]+%.[^.]+"), 1, true))
        assert.is_nil(s:find(token:match("[^.]+$"), 1, true))
      end
    end)
  end)

  describe("tfauth.safe.jwks", function()
    it("returns nil, err where jwks raises", function()
      local keys = assert(safe.jwks.new { issuer = h.issuer })
      assert.matches("^tfauth%.safe%.jwks", tostring(keys))
      local claims = keys:verify(access_token(), ACCESS)
      assert.equal("alice", claims.preferred_username)
      local none, err = keys:verify(h.login("alice").id_token, ACCESS)
      assert.is_nil(none)
      assert.equal("token", err.kind)
      assert.is_true(tfauth.is_error(err))
      local bad
      bad, err = safe.jwks.new { ttl = 1 }
      assert.is_nil(bad)
      assert.equal("issuer", err.field)
      local down = safe.jwks.new { url = "http://127.0.0.1:1" .. CERTS }
      none, err = down:keyset()
      assert.is_nil(none)
      assert.equal("network", err.kind)
    end)
  end)
end)
