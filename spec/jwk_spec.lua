-- tfauth.jwt.keyset: keys and key sets from a JWKS (src/jwk.c), the algorithm
-- names (EdDSA and the fully-specified Ed25519) and which keys take which, the
-- RSA size limits, and verify's arguments.
local cjson = require "cjson"
local tfauth = require "tfauth"
local safe = require "tfauth.safe"
local helper = require "spec.helper"
local jose = require "spec.support.jose"
local jwt = tfauth.jwt

local ISS = jose.ISS
local b64, unb64, xor, split, join = jose.b64, jose.unb64, jose.xor, jose.split, jose.join
local mint, jwks_of, all_keys, refused = jose.mint, jose.jwks_of, jose.all_keys, jose.refused
local OPTS, opts = jose.OPTS, jose.opts

describe("jwt.keyset", function()
  it("takes JSON text or the decoded table; counts, lists kids, prints", function()
    local set = jwks_of("rsa", "p256", "ed")
    for _, keys in ipairs { jwt.keyset(set), jwt.keyset(cjson.encode(set)) } do
      assert.equal(3, keys:count())
      assert.equal(3, #keys)
      assert.same({ "rsa", "p256", "ed" }, keys:kids())
      assert.equal("tfauth.keyset (3 keys)", tostring(keys))
    end
  end)

  it("accepts keys with use sig, key_ops verify, and a fitting alg; kids once each", function()
    local m = mint()
    local k1 = cjson.decode(cjson.encode(m.jwks.rsa))
    k1.use, k1.alg, k1.key_ops = "sig", "RS256", { "verify" }
    local k2 = cjson.decode(cjson.encode(m.jwks.rsa2))
    k2.kid = "rsa"
    local keys = jwt.keyset { keys = { k1, k2 } }
    assert.equal(2, keys:count())
    assert.same({ "rsa" }, keys:kids())
  end)

  local function variant(name, change)
    local k = cjson.decode(cjson.encode(mint().jwks[name]))
    change(k)
    return k
  end

  local rejections = {
    { "an RSA key under 2048 bits", function() return mint().jwks.small end, "2048" },
    { "a curve it does not know (secp256k1)", function() return mint().jwks.k1 end, "curve" },
    { "a point not on the curve", function()
      return variant("p256", function(k)
        local y = unb64(k.y)
        k.y = b64(y:sub(1, 31) .. string.char(xor(y:byte(32), 1)))
      end)
    end, "curve" },
    { "use enc", function() return variant("rsa", function(k) k.use = "enc" end) end, "use" },
    { "key_ops without verify", function() return variant("rsa", function(k) k.key_ops = { "encrypt" } end) end,
      "key_ops" },
    { "an alg that does not fit its type", function() return variant("rsa", function(k) k.alg = "ES256" end) end,
      "alg" },
    { "an alg it never accepts", function() return variant("rsa", function(k) k.alg = "HS256" end) end, "alg" },
    { "an alg for encryption", function() return variant("rsa", function(k) k.alg = "RSA-OAEP" end) end, "alg" },
    { "a symmetric key", function() return { kty = "oct", k = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ", kid = "h" } end,
      "kty" },
    { "an EC x of the wrong length", function()
      return variant("p256", function(k) k.x = b64("\0" .. unb64(k.x)) end)
    end, "size" },
    { "an Ed448 key", function() return variant("ed", function(k) k.crv = "Ed448" end) end, "Ed25519" },
    { "an RSA n that is not base64url", function() return variant("rsa", function(k) k.n = k.n .. "=" end) end,
      "base64url" },
    { "an even RSA modulus", function()
      return variant("rsa", function(k)
        local n = unb64(k.n)
        k.n = b64(n:sub(1, -2) .. string.char(n:byte(-1) - n:byte(-1) % 2))
      end)
    end, "RSA" },
    { "a kid that is not a string", function() return variant("rsa", function(k) k.kid = 5 end) end, "string" },
  }
  for _, case in ipairs(rejections) do
    it("skips " .. case[1] .. "; a set of only such keys is an argument error", function()
      local bad = case[2]()
      local err = helper.error_of(jwt.keyset, { keys = { bad } })
      assert.equal("argument", err.kind)
      assert.equal("jwks", err.field)
      assert.matches(case[3], err.message, 1, true)
      local keys = jwt.keyset { keys = { bad, mint().jwks.p384 } }
      assert.equal(1, keys:count())
      assert.same({ "p384" }, keys:kids())
    end)
  end

  it("a key skipped from the set cannot verify its tokens: kid_missing", function()
    local keys = jwt.keyset { keys = { variant("rsa", function(k) k.use = "enc" end), mint().jwks.rsa2 } }
    assert.is_true(refused("key", mint().tokens.RS256, keys).kid_missing)
  end)

  it("refuses what is not a JWKS, naming the field", function()
    for _, bad in ipairs { 42, true, "not json", "[1]", '{"keys":"x"}', '{"keys":[]}', {}, { keys = {} },
                           '{"kty":"RSA"}', ("x"):rep(1024 * 1024 + 1) } do
      local err = helper.error_of(jwt.keyset, bad)
      assert.equal("argument", err.kind)
      assert.equal("jwks", err.field)
      assert.equal("jwt.keyset", err.operation)
    end
    local none, err = safe.jwt.keyset("not json")
    assert.is_nil(none)
    assert.equal("jwks", err.field)
    assert.equal(1, safe.jwt.keyset(jwks_of("ed")):count())
  end)

  it("frees its keys when collected", function()
    for _ = 1, 5 do jwt.keyset(jwks_of("rsa", "p256", "ed")) end
    collectgarbage()
    collectgarbage()
    assert.equal(ISS, jwt.verify(mint().tokens.EdDSA, all_keys(), opts { algorithms = { "EdDSA" } }).iss)
  end)
end)

describe("jwt.verify arguments", function()
  local function argerror(field, ...)
    local err = helper.error_of(jwt.verify, ...)
    assert.equal("argument", err.kind)
    assert.equal(field, err.field, tostring(err))
    assert.equal("jwt.verify", err.operation)
    return err
  end

  it("are checked before the token, each naming its field", function()
    local t = mint().tokens.RS256
    argerror("token", nil, all_keys(), OPTS)
    argerror("token", 42, all_keys(), OPTS)
    argerror("keyset", t, jwks_of("rsa"), OPTS)
    argerror("keyset", t, nil, OPTS)
    argerror("opts", t, all_keys(), "RS256")
    argerror("issuer", t, all_keys(), nil)
    argerror("issuer", t, all_keys(), {})
    argerror("issuer", t, all_keys(), opts { issuer = "" })
    argerror("issuer", t, all_keys(), opts { issuer = true })
    argerror("audience", t, all_keys(), opts { audience = {} })
    argerror("audience", t, all_keys(), opts { audience = 5 })
    argerror("audience", t, all_keys(), opts { audience = { "a", 5 } })
    argerror("types", t, all_keys(), opts { types = "Bearer" })
    argerror("types", t, all_keys(), opts { types = {} })
    argerror("leeway", t, all_keys(), opts { leeway = -1 })
    argerror("leeway", t, all_keys(), opts { leeway = "30" })
    argerror("leeway", t, all_keys(), opts { leeway = 1 / 0 })
    argerror("now", t, all_keys(), opts { now = 0 / 0 })
    argerror("now", t, all_keys(), opts { now = "today" })
    argerror("audiance", t, all_keys(), opts { audiance = "fndtn-api" })
  end)

  it("never accepts none or HS* in the allow-list, nor unknown names", function()
    local t = mint().tokens.RS256
    for _, list in ipairs { { "none" }, { "RS256", "HS256" }, { "HS384" }, { "HS512" }, { "RS1" }, {}, { "rs256" },
                            "RS256" } do
      argerror("algorithms", t, all_keys(), opts { algorithms = list })
    end
    local none, err = safe.jwt.verify(t, all_keys(), opts { algorithms = { "none" } })
    assert.is_nil(none)
    assert.equal("algorithms", err.field)
  end)

  it("safe.jwt.verify returns claims and header, or nil and the error", function()
    local c, h = safe.jwt.verify(mint().tokens.RS256, all_keys(), OPTS)
    assert.equal(ISS, c.iss)
    assert.equal("RS256", h.alg)
    local none, err = safe.jwt.verify(mint().tokens.expired, all_keys(), OPTS)
    assert.is_nil(none)
    assert.equal("expired", err.reason)
    assert.is_true(tfauth.is_error(err))
    assert.equal(ISS, safe.jwt.claims(mint().tokens.expired).iss)
  end)
end)

describe("the algorithm names EdDSA and Ed25519", function()
  local BOTH = { "EdDSA", "Ed25519" }
  local function ed_keys(alg)
    return jwt.keyset { keys = { jose.variant("ed", function(k) k.alg = alg end) } }
  end

  it("takes each name only when algorithms lists it; list both to take both", function()
    local t = mint().tokens
    assert.equal("Ed25519", select(2, jwt.verify(t.Ed25519, all_keys(), opts { algorithms = { "Ed25519" } })).alg)
    refused("algorithm", t.Ed25519, all_keys(), opts { algorithms = { "EdDSA" } })
    refused("algorithm", t.EdDSA, all_keys(), opts { algorithms = { "Ed25519" } })
    refused("algorithm", t.Ed25519, all_keys(), opts { algorithms = "nil" })
    for _, name in ipairs { "EdDSA", "Ed25519", "EdDSA_no_kid", "Ed25519_no_kid" } do
      local keys = jwt.keyset(jwks_of("rsa", "ed", "ed2"))
      assert.equal(ISS, jwt.verify(t[name], keys, opts { algorithms = BOTH }).iss)
    end
  end)

  it("binds Ed25519 to OKP Ed25519 keys, as EdDSA", function()
    local o = opts { algorithms = { "Ed25519", "RS256", "ES256" } }
    local _, p, s = split(mint().tokens.Ed25519)
    for _, kid in ipairs { "rsa", "p256" } do
      local err = refused("key", join(b64(cjson.encode { alg = "Ed25519", kid = kid }), p, s), all_keys(), o)
      assert.is_nil(err.kid_missing)
    end
    -- without a kid, only Ed25519 keys are tried, and each of them
    refused("key", mint().tokens.Ed25519_no_kid, jwt.keyset(jwks_of("rsa", "p256")), o)
    refused("signature", mint().tokens.Ed25519_no_kid, jwt.keyset(jwks_of("rsa", "ed")), o)
    assert.equal(ISS, jwt.verify(mint().tokens.Ed25519_no_kid, jwt.keyset(jwks_of("ed", "rsa", "ed2")), o).iss)
  end)

  it("a JWK whose alg is one of the names verifies tokens of that name only; without alg, either", function()
    local t, o = mint().tokens, opts { algorithms = BOTH }
    assert.equal(ISS, jwt.verify(t.Ed25519, ed_keys("Ed25519"), o).iss)
    assert.is_nil(refused("key", t.EdDSA, ed_keys("Ed25519"), o).kid_missing)
    assert.equal(ISS, jwt.verify(t.EdDSA, ed_keys("EdDSA"), o).iss)
    assert.is_nil(refused("key", t.Ed25519, ed_keys("EdDSA"), o).kid_missing)
    local plain = jwt.keyset(jwks_of("ed"))
    assert.equal(ISS, jwt.verify(t.EdDSA, plain, o).iss)
    assert.equal(ISS, jwt.verify(t.Ed25519, plain, o).iss)
  end)

  it("a JWK naming Ed25519 on a key of another type is left out", function()
    for _, name in ipairs { "rsa", "p256" } do
      local bad = jose.variant(name, function(k) k.alg = "Ed25519" end)
      local err = helper.error_of(jwt.keyset, { keys = { bad } })
      assert.equal("jwks", err.field)
      assert.matches("alg", err.message, 1, true)
      assert.same({ "ed" }, jwt.keyset({ keys = { bad, mint().jwks.ed } }):kids())
    end
  end)

  it("matches names exactly", function()
    for _, list in ipairs { { "ed25519" }, { "ED25519" }, { "EDDSA" }, { "Ed448" } } do
      local err = helper.error_of(jwt.verify, mint().tokens.Ed25519, all_keys(), opts { algorithms = list })
      assert.equal("algorithms", err.field)
      assert.matches("Ed25519", err.message, 1, true) -- the message lists the names it knows
    end
    local _, p, s = split(mint().tokens.Ed25519)
    refused("algorithm", join(b64('{"alg":"ed25519","kid":"ed"}'), p, s), all_keys(), opts { algorithms = BOTH })
    local err = helper.error_of(jwt.keyset, { keys = { jose.variant("ed", function(k) k.alg = "ed25519" end) } })
    assert.matches("alg", err.message, 1, true)
  end)
end)

describe("RSA key sizes", function()
  local f = assert(io.open("spec/fixtures/rsa8192.json", "rb"))
  local FIXTURE = cjson.decode(f:read("*a")) -- a real 8192-bit key and a token it signed
  f:close()

  -- An odd 8200-bit n (random bytes, not a real modulus: it is measured, and
  -- left out, before OpenSSL ever sees it).
  local function huge()
    local bytes = { string.char(0x80 + math.random(0, 127)) }
    for i = 2, 1025 do bytes[i] = string.char(math.random(0, 255)) end
    bytes[1025] = string.char(math.random(0, 127) * 2 + 1)
    return { kty = "RSA", kid = "huge", e = "AQAB", n = b64(table.concat(bytes)) }
  end

  it("keeps a real 8192-bit key, which verifies its tokens", function()
    local keys = jwt.keyset { keys = { FIXTURE.jwk } }
    assert.equal(1366, #FIXTURE.jwk.n)
    assert.same({ "rsa8192" }, keys:kids())
    local c = jwt.verify(FIXTURE.token, keys, opts { now = FIXTURE.now })
    assert.equal(ISS, c.iss)
    refused("expired", FIXTURE.token, keys, OPTS)
  end)

  it("leaves out a modulus over 8192 bits; a token naming it is refused as key", function()
    local big = huge()
    assert.equal(1367, #big.n)
    local err = helper.error_of(jwt.keyset, { keys = { big } })
    assert.equal("jwks", err.field)
    assert.matches("over 8192 bits", err.message, 1, true)
    local keys = jwt.keyset { keys = { big, mint().jwks.rsa } }
    assert.same({ "rsa" }, keys:kids())
    local _, p, s = split(mint().tokens.RS256)
    local token = join(b64(cjson.encode { alg = "RS256", kid = "huge" }), p, s)
    err = refused("key", token, keys)
    assert.is_true(err.kid_missing)
    assert.equal("huge", err.kid)
    -- the real modulus with one more bit on top (n + 2^8192: 8193 bits)
    local n = unb64(FIXTURE.jwk.n)
    local bigger = jose.variant("rsa", function(k) k.kid, k.n = "bigger", b64("\1" .. n) end)
    assert.matches("over 8192 bits", helper.error_of(jwt.keyset, { keys = { bigger } }).message, 1, true)
  end)
end)
