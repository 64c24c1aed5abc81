-- tfauth.jwt.verify: the claims (exp, nbf, iat, iss, aud), the token's type
-- (the header's typ, RFC 9068's at+jwt, or Keycloak's typ claim), and what a
-- refusal tells about the token (kid, alg, iss) without holding any of it.
local cjson = require "cjson"
local tfauth = require "tfauth"
local safe = require "tfauth.safe"
local jose = require "spec.support.jose"
local jwt = tfauth.jwt

local ISS, NOW = jose.ISS, jose.NOW
local b64, unb64, xor, split, join = jose.b64, jose.unb64, jose.xor, jose.split, jose.join
local mint, jwks_of, all_keys, refused = jose.mint, jose.jwks_of, jose.all_keys, jose.refused
local OPTS, opts = jose.OPTS, jose.opts

describe("jwt.verify claims", function()
  it("refuses an expired token, and honours leeway", function()
    local t = mint().tokens.expired
    refused("expired", t)
    refused("expired", t, all_keys(), opts { leeway = 5 }) -- exp == now - leeway: expired
    assert.equal(ISS, jwt.verify(t, all_keys(), opts { leeway = 6 }).iss)
    assert.equal(ISS, jwt.verify(t, all_keys(), opts { now = NOW - 6 }).iss)
    -- by default, now is the current time
    refused("expired", t, all_keys(), opts { now = "nil" })
  end)

  it("requires exp, as a number", function()
    refused("expired", mint().tokens.no_exp)
    refused("expired", mint().tokens.string_exp)
  end)

  it("refuses a token not yet valid (nbf), and iat in the future, within leeway", function()
    refused("not_yet_valid", mint().tokens.nbf_future)
    refused("not_yet_valid", mint().tokens.iat_future)
    assert.equal(ISS, jwt.verify(mint().tokens.nbf_future, all_keys(), opts { leeway = 30 }).iss)
    assert.equal(ISS, jwt.verify(mint().tokens.iat_future, all_keys(), opts { leeway = 30 }).iss)
    assert.equal(ISS, jwt.verify(mint().tokens.nbf_future, all_keys(), opts { now = NOW + 25 }).iss)
  end)

  it("requires iss to equal the issuer exactly: another, a prefix, a longer one, none", function()
    refused("issuer", mint().tokens.other_iss)
    refused("issuer", mint().tokens.prefix_iss)
    refused("issuer", mint().tokens.longer_iss)
    refused("issuer", mint().tokens.no_iss)
    refused("issuer", mint().tokens.RS256, all_keys(), opts { issuer = ISS:sub(1, -2) })
    refused("issuer", mint().tokens.RS256, all_keys(), opts { issuer = ISS:upper() })
    assert.equal("https://kc.example/realms/other",
      jwt.verify(mint().tokens.other_iss, all_keys(), opts { issuer = false }).iss)
  end)

  it("checks aud, a string or a list, against one audience or a list", function()
    local t = mint().tokens
    assert.equal(ISS, jwt.verify(t.aud_string, all_keys(), OPTS).iss)
    assert.equal(ISS, jwt.verify(t.RS256, all_keys(), opts { audience = { "other", "account" } }).iss)
    assert.equal(ISS, jwt.verify(t.aud_string, all_keys(), opts { audience = { "x", "fndtn-api" } }).iss)
    refused("audience", t.RS256, all_keys(), opts { audience = "fndtn" })
    refused("audience", t.aud_string, all_keys(), opts { audience = { "fndtn-api2", "account" } })
    refused("audience", t.no_aud)
    refused("audience", t.id_token, all_keys(), opts { types = { "ID" } })
    assert.equal(ISS, jwt.verify(t.no_aud, all_keys(), opts { audience = "nil" }).iss)
  end)

  it("leaves typ unchecked when no types are given", function()
    assert.equal("ID", jwt.verify(mint().tokens.id_token, all_keys(), opts { types = "nil", audience = false }).typ)
  end)
end)

describe("jwt.verify types", function()
  local ACCESS = { "at+jwt", "Bearer" } -- what the gate asks for: RFC 9068 and Keycloak access tokens
  local function passes(name, types)
    local o = opts { types = types or ACCESS }
    local c, h = jwt.verify(mint().tokens[name], all_keys(), o)
    assert.equal(ISS, c.iss)
    for _ = 1, 2 do -- the gate's entry, its header memo empty or filled: the same claims
      assert.same(c, (require "tfauth.core").jwt_check(mint().tokens[name], all_keys(), o))
    end
    return c, h
  end

  it("takes an RFC 9068 access token by its header typ, spelled as RFC 7515 §4.1.9 allows", function()
    for _, name in ipairs { "at_jwt", "at_jwt_media", "at_jwt_caps", "at_jwt_media_caps" } do
      local c, h = passes(name)
      assert.is_nil(c.typ)
      assert.is_string(h.typ)
      -- the list's own spelling does not matter either
      passes(name, { "application/at+jwt" })
      passes(name, { "AT+JWT" })
      passes(name, { "Application/At+Jwt" })
    end
  end)

  it("refuses a header typ that is another media type, or not in the list", function()
    refused("type", mint().tokens.text_at_jwt, all_keys(), opts { types = ACCESS })
    passes("text_at_jwt", { "text/at+jwt" })
    -- the header says at+jwt, and at+jwt is not asked for: the claim does not save it
    refused("type", mint().tokens.at_jwt, all_keys(), opts { types = { "Bearer" } })
    refused("type", mint().tokens.at_jwt_claim_bearer, all_keys(), opts { types = { "Bearer" } })
    refused("type", mint().tokens.at_jwt_caps, all_keys(), opts { types = { "application/jwt", "Bearer" } })
    -- a typ that is not a string is no type at all
    refused("type", mint().tokens.typ_number, all_keys(), opts { types = ACCESS })
  end)

  it("takes a header typ in the list whatever the claim says", function()
    assert.equal("Bearer", passes("at_jwt_claim_bearer").typ)
    assert.equal("ID", passes("at_jwt_claim_id").typ)
  end)

  it("takes Keycloak's access token by its typ claim, when the header says JWT or nothing", function()
    for _, name in ipairs { "RS256", "jwt_bearer", "jwt_media_bearer" } do
      assert.equal("Bearer", passes(name).typ)
      assert.equal("Bearer", passes(name, { "Bearer" }).typ)
    end
    assert.equal("at+jwt", passes("claim_at_jwt").typ)
  end)

  it("compares the claim exactly, as before: Keycloak's ID and refresh tokens, and other spellings, are refused", function()
    local t = mint().tokens
    for _, name in ipairs { "id_token", "refresh_typ", "jwt_id", "jwt_refresh", "claim_bearer_lower" } do
      refused("type", t[name], all_keys(), opts { types = ACCESS, audience = false })
      refused("type", t[name], all_keys(), opts { types = { "Bearer" }, audience = false })
    end
    assert.equal("ID", jwt.verify(t.jwt_id, all_keys(), opts { types = { "ID" } }).typ)
  end)

  it("refuses a standard ID token (header JWT or none, no typ claim), and a typ claim of null", function()
    for _, name in ipairs { "jwt_no_claim", "neither", "no_typ" } do
      refused("type", mint().tokens[name], all_keys(), opts { types = ACCESS })
    end
    -- JWT itself, when listed, is a type like any other
    passes("jwt_no_claim", { "JWT" })
  end)

  it("leaves typ unchecked when types is nil or false", function()
    for _, name in ipairs { "jwt_no_claim", "neither", "at_jwt", "text_at_jwt", "typ_number", "jwt_refresh" } do
      assert.equal(ISS, jwt.verify(mint().tokens[name], all_keys(), opts { types = "nil" }).iss)
      assert.equal(ISS, jwt.verify(mint().tokens[name], all_keys(), opts { types = false }).iss)
    end
  end)
end)

describe("jwt.verify refusals", function()
  it("name the header's kid and alg once the header is read, and the claims' iss once they are", function()
    local t = mint().tokens
    local err = refused("expired", t.expired)
    assert.same({ "rsa", "RS256", ISS }, { err.kid, err.alg, err.iss })
    err = refused("type", t.at_jwt, all_keys(), opts { types = { "Bearer" } })
    assert.same({ "rsa", "RS256", ISS }, { err.kid, err.alg, err.iss })
    err = refused("issuer", t.other_iss)
    assert.equal("https://kc.example/realms/other", err.iss)
    -- before the claims are read: kid and alg only
    err = refused("key", t.unknown_kid)
    assert.same({ "evil", "RS256" }, { err.kid, err.alg })
    assert.is_nil(err.iss)
    err = refused("algorithm", t.ES256)
    assert.same({ "p256", "ES256" }, { err.kid, err.alg })
    err = refused("algorithm", t.alg_none)
    assert.same({ "rsa", "none" }, { err.kid, err.alg })
    local h, p, s = split(t.RS256)
    local sig = unb64(s)
    err = refused("signature", join(h, p, b64(string.char(xor(sig:byte(1), 1)) .. sig:sub(2))))
    assert.same({ "rsa", "RS256" }, { err.kid, err.alg })
    assert.is_nil(err.iss)
  end)

  it("carry strings only, and nothing before the header is read", function()
    local t = mint().tokens
    local err = refused("issuer", t.number_iss)
    assert.same({ "rsa", "RS256" }, { err.kid, err.alg })
    assert.is_nil(err.iss)
    err = refused("issuer", t.no_iss)
    assert.is_nil(err.iss)
    local _, p, s = split(t.RS256)
    err = refused("malformed", join(b64('{"alg":"RS256","kid":7}'), p, s))
    assert.is_nil(err.kid)
    assert.equal("RS256", err.alg)
    err = refused("malformed", join(b64('{"alg":256,"kid":"rsa"}'), p, s))
    assert.is_nil(err.alg)
    for _, token in ipairs { "a.b", "not a token", t.over_16k, join(b64("not json"), p, s) } do
      err = refused("malformed", token)
      assert.is_nil(err.kid)
      assert.is_nil(err.alg)
      assert.is_nil(err.iss)
    end
  end)

  it("keep kid_missing beside the kid", function()
    local err = refused("key", mint().tokens.unknown_kid)
    assert.is_true(err.kid_missing)
    assert.equal("evil", err.kid)
  end)
end)

describe("a token verified by the gate's rules", function()
  it("checks an access token the way the gate does, and refuses an ID token", function()
    local keys = jwt.keyset(cjson.encode(jwks_of("rsa")))
    assert.equal("alice", jwt.verify(mint().tokens.RS256, keys, OPTS).preferred_username)
    refused("type", mint().tokens.id_token, keys, OPTS)
    refused("type", mint().tokens.refresh_typ, keys, OPTS)
    refused("type", mint().tokens.no_typ, keys, OPTS)
    -- the ID token passes where ID tokens are wanted
    assert.equal("ID", jwt.verify(mint().tokens.id_token, keys,
      opts { types = { "ID" }, audience = "fndtn-web" }).typ)
    -- and through tfauth.safe
    local c = safe.jwt.verify(mint().tokens.at_jwt, keys, opts { types = { "at+jwt", "Bearer" } })
    assert.equal(ISS, c.iss)
  end)
end)
