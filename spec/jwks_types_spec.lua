-- tfauth.jwks with the types and algorithm names of current providers: RFC 9068
-- access tokens (typ at+jwt in the header) beside Keycloak's (typ claim Bearer),
-- and the fully-specified name Ed25519, on tokens the reference backend signs
-- (PyJWT + cryptography, not our code) with its realm keys.
local tfauth = require "tfauth"
local jwks = require "tfauth.jwks"
local h = require "spec.helper"

local count, error_of = h.count, h.error_of
local CERTS = h.certs_path
local ACCESS = { audience = "fndtn-api", types = { "Bearer" } }

local function realm() return jwks.new { issuer = h.issuer } end

describe("tfauth.jwks types and algorithm names", function()
  before_each(h.reset)

  it("passes types through: RFC 9068's header typ and Keycloak's claim both, ID tokens refused", function()
    local keys = realm()
    local GATE = { audience = "fndtn-api", types = { "at+jwt", "Bearer" } }
    local tokens = h.login("alice")
    assert.equal("Bearer", keys:verify(tokens.access_token, GATE).typ) -- header typ JWT, claim Bearer
    local claims = { iss = h.issuer, sub = "x", aud = "fndtn-api", exp = os.time() + 60 }
    for _, typ in ipairs { "at+jwt", "application/at+jwt", "AT+JWT" } do
      assert.equal("x", keys:verify(h.sign { claims = claims, header = { typ = typ } }, GATE).sub)
    end
    local err = error_of(keys.verify, keys, h.sign { claims = claims, header = { typ = "at+jwt" } }, ACCESS)
    assert.equal("type", err.reason) -- at+jwt not asked for
    err = error_of(keys.verify, keys, tokens.id_token, { audience = "fndtn-web", types = GATE.types })
    assert.equal("type", err.reason)
    -- a standard provider's ID token: header JWT, no typ claim
    assert.equal("type", error_of(keys.verify, keys, h.sign { claims = claims }, GATE).reason)
    assert.equal("x", keys:verify(h.sign { claims = claims }, { audience = "fndtn-api", types = false }).sub)
    assert.equal("types", error_of(keys.verify, keys, tokens.access_token, { types = "Bearer" }).field)
    assert.equal(1, count(CERTS))
    -- what the refusal names: the header's kid and alg, the claims' iss
    assert.same({ h.jwks().keys[1].kid, "RS256", h.issuer }, { err.kid, err.alg, err.iss })
  end)

  it("binds the name Ed25519 to a JWK's alg: the realm's OKP key says EdDSA", function()
    local keys = realm()
    -- the backend's EdDSA key signs; the header calls it Ed25519, the fully-specified name
    local claims = { iss = h.issuer, sub = "x", exp = os.time() + 60 }
    local token = h.sign { alg = "EdDSA", header = { alg = "Ed25519" }, claims = claims }
    local err = error_of(keys.verify, keys, token, { algorithms = { "EdDSA" } })
    assert.equal("algorithm", err.reason)
    err = error_of(keys.verify, keys, token, { algorithms = { "EdDSA", "Ed25519" } })
    assert.equal("key", err.reason) -- the JWK's alg is EdDSA: it verifies EdDSA tokens only
    assert.is_nil(err.kid_missing)
    assert.equal("Ed25519", err.alg)
    assert.equal(1, count(CERTS))
    local okp
    for _, k in ipairs(h.jwks().keys) do if k.kty == "OKP" then okp = k end end
    assert.equal("EdDSA", okp.alg)
    okp.alg = nil -- the same key without alg verifies either name
    assert.equal("x", tfauth.jwt.verify(token, tfauth.jwt.keyset { keys = { okp } },
      { issuer = h.issuer, algorithms = { "Ed25519" } }).sub)
  end)
end)
