-- tfauth.jwt.keyset / tfauth.jwt.verify: JWS verification in the C core.
-- Tokens and keys come from libraries that are not tfauth's (python3-jwcrypto
-- and python3-cryptography, through spec/support/mint.py), and from the
-- RFCs' published examples; each refusal is checked for its reason, and for
-- not carrying any piece of the token.
local cjson = require "cjson"
local tfauth = require "tfauth"
local safe = require "tfauth.safe"
local helper = require "spec.helper"
local jwt = tfauth.jwt

local NOW = os.time()
local ISS = "https://kc.example/realms/fndtn"

-- ---- base64url, for the specs' own surgery on tokens ------------------------
local ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
    for j = 1, chars do
      local v = math.floor(n / 2 ^ (18 - 6 * (j - 1))) % 64
      out[#out + 1] = ALPHA:sub(v + 1, v + 1)
    end
  end
  return table.concat(out)
end
local function unb64(s)
  local out, acc, bits = {}, 0, 0
  for ch in s:gmatch(".") do
    acc = acc * 64 + (ALPHA:find(ch, 1, true) - 1)
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      out[#out + 1] = string.char(math.floor(acc / 2 ^ bits) % 256)
      acc = acc % 2 ^ bits
    end
  end
  return table.concat(out)
end
-- Bitwise xor of two bytes, in arithmetic (the specs run on Lua 5.1/LuaJIT too).
local function xor(a, b)
  local r, bit = 0, 1
  for _ = 1, 8 do
    if a % 2 ~= b % 2 then r = r + bit end
    a, b, bit = math.floor(a / 2), math.floor(b / 2), bit * 2
  end
  return r
end
local function split(token)
  return token:match("^([^.]*)%.([^.]*)%.([^.]*)$")
end
local function join(h, p, s) return h .. "." .. p .. "." .. s end

-- ---- keys and tokens, minted once for the whole file -------------------------
local function claims(extra)
  local c = { iss = ISS, sub = "7d0c5a8e", exp = NOW + 600, iat = NOW - 10, typ = "Bearer",
              aud = { "fndtn-api", "account" }, azp = "fndtn-web", preferred_username = "alice",
              realm_access = { roles = { "user" } } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

-- The claims' JSON with exp twice: first, then last.
local function repeated_exp(first, last)
  local c = claims()
  c.exp = nil
  return '{"exp":' .. first .. "," .. cjson.encode(c):sub(2, -2) .. ',"exp":' .. last .. "}"
end

local request = {
  keys = {
    rsa = { kty = "RSA", size = 2048 }, rsa2 = { kty = "RSA", size = 2048 },
    rsa3072 = { kty = "RSA", size = 3072 }, small = { kty = "RSA", size = 1024 },
    p256 = { kty = "EC", crv = "P-256" }, p384 = { kty = "EC", crv = "P-384" },
    p521 = { kty = "EC", crv = "P-521" }, ed = { kty = "OKP", crv = "Ed25519" },
    k1 = { kty = "EC", crv = "secp256k1" }, evil = { kty = "RSA", size = 2048 },
  },
  tokens = {
    RS256 = { key = "rsa", alg = "RS256", claims = claims() },
    RS384 = { key = "rsa3072", alg = "RS384", claims = claims() },
    RS512 = { key = "rsa", alg = "RS512", claims = claims() },
    PS256 = { key = "rsa", alg = "PS256", claims = claims() },
    PS384 = { key = "rsa2", alg = "PS384", claims = claims() },
    PS512 = { key = "rsa3072", alg = "PS512", claims = claims() },
    ES256 = { key = "p256", alg = "ES256", claims = claims() },
    ES384 = { key = "p384", alg = "ES384", claims = claims() },
    ES512 = { key = "p521", alg = "ES512", claims = claims() },
    EdDSA = { key = "ed", alg = "EdDSA", claims = claims() },
    no_kid = { key = "rsa2", alg = "RS256", kid = cjson.null, claims = claims() },
    es384_no_kid = { key = "p384", alg = "ES384", kid = cjson.null, claims = claims() },
    id_token = { key = "rsa", alg = "RS256", claims = claims { typ = "ID", aud = "fndtn-web" } },
    refresh_typ = { key = "rsa", alg = "RS256", claims = claims { typ = "Refresh" } },
    no_typ = { key = "rsa", alg = "RS256", claims = claims { typ = cjson.null } },
    aud_string = { key = "rsa", alg = "RS256", claims = claims { aud = "fndtn-api" } },
    no_aud = { key = "rsa", alg = "RS256", claims = claims { aud = cjson.null } },
    expired = { key = "rsa", alg = "RS256", claims = claims { exp = NOW - 5, iat = NOW - 700 } },
    no_exp = { key = "rsa", alg = "RS256", claims = claims { exp = cjson.null } },
    string_exp = { key = "rsa", alg = "RS256", claims = claims { exp = tostring(NOW + 600) } },
    nbf_future = { key = "rsa", alg = "RS256", claims = claims { nbf = NOW + 20 } },
    iat_future = { key = "rsa", alg = "RS256", claims = claims { iat = NOW + 20 } },
    other_iss = { key = "rsa", alg = "RS256", claims = claims { iss = "https://kc.example/realms/other" } },
    prefix_iss = { key = "rsa", alg = "RS256", claims = claims { iss = "https://kc.example/realms/fnd" } },
    longer_iss = { key = "rsa", alg = "RS256", claims = claims { iss = ISS .. "/" } },
    no_iss = { key = "rsa", alg = "RS256", claims = claims { iss = cjson.null } },
    big_numbers = { key = "rsa", alg = "RS256", claims = claims { n = 300, f = 1.5, deep = { x = 7 } } },
    over_16k = { key = "rsa", alg = "RS256", claims = claims { pad = ("x"):rep(12000) } },
    under_16k = { key = "rsa", alg = "RS256", claims = claims { pad = ("x"):rep(11000) } },
    -- attacks, framed by hand and signed with python3-cryptography
    alg_none = { alg = "none", raw = true, kid = "rsa", claims = claims() },
    alg_none_caps = { alg = "None", raw = true, kid = "rsa", claims = claims() },
    hs256_pem = { key = "rsa", alg = "HS256", raw = true, hmac_key = "pem", claims = claims() },
    es256_der = { key = "p256", alg = "ES256", der = true, claims = claims() },
    kid_other_key = { key = "rsa2", alg = "RS256", kid = "rsa", raw = true, claims = claims() },
    unknown_kid = { key = "evil", alg = "RS256", claims = claims() },
    crit = { key = "rsa", alg = "RS256", raw = true, header = { crit = { "exp" }, exp = 1 }, claims = claims() },
    crit_empty = { key = "rsa", alg = "RS256", raw = true, header = { crit = {} }, claims = claims() },
    rs_with_ec = { key = "p256", alg = "ES256", kid = "rsa", raw = true, claims = claims() },
    -- exactly at the 16 KiB cap, and one byte over it (a claim "pad" sized by mint.py)
    at_16k = { key = "rsa", alg = "RS256", raw = true, length = 16384, claims = claims() },
    over_16k_by_one = { key = "rsa", alg = "RS256", raw = true, length = 16385, claims = claims() },
    -- repeated member names, framed by hand: the last one counts
    dup_alg_rs256_last = { key = "rsa", alg = "RS256", raw = true,
                           header_json = '{"alg":"none","kid":"rsa","alg":"RS256"}', claims = claims() },
    dup_alg_none_last = { key = "rsa", alg = "RS256", raw = true,
                          header_json = '{"alg":"RS256","kid":"rsa","alg":"none"}', claims = claims() },
    dup_exp_future_last = { key = "rsa", alg = "RS256", raw = true, payload_json = repeated_exp(NOW - 100, NOW + 600) },
    dup_exp_past_last = { key = "rsa", alg = "RS256", raw = true, payload_json = repeated_exp(NOW + 600, NOW - 100) },
  },
}

local minted, mint_error
local function mint()
  if minted then return minted end
  assert(not mint_error, mint_error) -- minting once is slow enough: no retries
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(cjson.encode(request))
  f:close()
  local out = helper.sh("/usr/bin/python3 spec/support/mint.py < " .. tmp)
  os.remove(tmp)
  if out:sub(1, 1) ~= "{" then
    mint_error = "spec/support/mint.py failed: " .. out
    error(mint_error)
  end
  minted = cjson.decode(out)
  return minted
end

local function jwks_of(...)
  local keys = {}
  for _, name in ipairs { ... } do keys[#keys + 1] = assert(mint().jwks[name], name) end
  return { keys = keys }
end

local OPTS = { issuer = ISS, audience = "fndtn-api", algorithms = { "RS256" }, types = { "Bearer" }, now = NOW }
local function opts(extra)
  local o = {}
  for k, v in pairs(OPTS) do o[k] = v end
  for k, v in pairs(extra or {}) do
    if v == "nil" then o[k] = nil else o[k] = v end
  end
  return o
end

local ALL -- keyset of every good key
local function all_keys()
  ALL = ALL or jwt.keyset(jwks_of("rsa", "rsa2", "rsa3072", "p256", "p384", "p521", "ed"))
  return ALL
end

-- Every string an error carries, and its tostring, holds no piece of the token:
-- none of its segments, and none of 12-character runs taken all along it.
local function assert_no_leak(err, token)
  local strings = helper.strings(err)
  strings[#strings + 1] = tostring(err)
  local h, p, s = split(token)
  for _, str in ipairs(strings) do
    for _, seg in ipairs { h or "", p or "", s or "" } do
      if #seg >= 4 then assert.is_nil(str:find(seg, 1, true), "a token segment leaked: " .. str) end
    end
    for i = 1, #token - 11, math.max(7, math.floor(#token / 64)) do
      assert.is_nil(str:find(token:sub(i, i + 11), 1, true), "a piece of the token leaked: " .. str)
    end
  end
end

-- Verifies expecting a refusal; checks kind, operation and reason; returns the error.
local function refused(reason, token, keys, o)
  local err = helper.error_of(jwt.verify, token, keys or all_keys(), o or OPTS)
  assert.equal("token", err.kind, tostring(err))
  assert.equal("jwt.verify", err.operation)
  assert.equal(reason, err.reason, tostring(err))
  assert_no_leak(err, token)
  local none, serr = safe.jwt.verify(token, keys or all_keys(), o or OPTS)
  assert.is_nil(none)
  assert.equal(reason, serr.reason)
  return err
end

describe("jwt.verify", function()
  describe("tokens minted by python3-jwcrypto", function()
    for _, alg in ipairs { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA" } do
      it("verifies " .. alg .. " and returns the claims and the header", function()
        local token = mint().tokens[alg]
        local c, h = jwt.verify(token, all_keys(), opts { algorithms = { alg } })
        assert.equal(ISS, c.iss)
        assert.equal(NOW + 600, c.exp)
        assert.same({ "fndtn-api", "account" }, c.aud)
        assert.same({ "user" }, c.realm_access.roles)
        assert.equal(alg, h.alg)
        assert.equal(request.tokens[alg].key, h.kid)
        if math.type then assert.equal("integer", math.type(c.exp)) end
      end)
    end

    it("accepts only RS256 by default", function()
      assert.equal(ISS, jwt.verify(mint().tokens.RS256, all_keys(), opts { algorithms = "nil" }).iss)
      refused("algorithm", mint().tokens.ES256, all_keys(), opts { algorithms = "nil" })
      refused("algorithm", mint().tokens.PS256, all_keys(), opts { algorithms = "nil" })
      refused("algorithm", mint().tokens.RS384, all_keys(), opts { algorithms = { "RS256", "ES256" } })
    end)

    it("keeps integers as integers, other numbers as they are", function()
      local c = jwt.verify(mint().tokens.big_numbers, all_keys(), OPTS)
      assert.equal(300, c.n)
      assert.equal(1.5, c.f)
      assert.equal(7, c.deep.x)
      if math.type then
        assert.equal("integer", math.type(c.n))
        assert.equal("integer", math.type(c.deep.x))
      end
    end)

    it("without a kid, tries each key that fits the algorithm", function()
      local c, h = jwt.verify(mint().tokens.no_kid, all_keys(), OPTS)
      assert.equal(ISS, c.iss)
      assert.is_nil(h.kid)
    end)

    it("checks an access token the way the gate does, and refuses an ID token", function()
      local keys = jwt.keyset(cjson.encode(jwks_of("rsa")))
      assert.equal("alice", jwt.verify(mint().tokens.RS256, keys, OPTS).preferred_username)
      refused("type", mint().tokens.id_token, keys, OPTS)
      refused("type", mint().tokens.refresh_typ, keys, OPTS)
      refused("type", mint().tokens.no_typ, keys, OPTS)
      -- the ID token passes where ID tokens are wanted
      assert.equal("ID", jwt.verify(mint().tokens.id_token, keys,
        opts { types = { "ID" }, audience = "fndtn-web" }).typ)
    end)
  end)

  describe("the published examples", function()
    local A2 = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
      .. "c19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5"
      .. "jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN"
      .. "9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywl"
      .. "VmtVrBp0igcN_IoypGlUPQGe77Rw"
    local A2_KEY = { kty = "RSA", e = "AQAB", n = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw"
      .. "-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS"
      .. "5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"
      .. "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ" }
    local A3 = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
      .. "c19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
    local A3_KEY = { kty = "EC", crv = "P-256", x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                     y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }
    local A4 = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR"
      .. "6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    local A4_KEY = { kty = "OKP", crv = "Ed25519", x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" }
    local BEFORE = 1300819380 - 60 -- the examples' exp is 1300819380 (March 2011)

    it("RFC 7515 A.2 (RS256) verifies, with its claims exactly", function()
      local c, h = jwt.verify(A2, jwt.keyset { keys = { A2_KEY } }, { issuer = "joe", now = BEFORE })
      assert.same({ iss = "joe", exp = 1300819380, ["http://example.com/is_root"] = true }, c)
      assert.same({ alg = "RS256" }, h)
      refused("expired", A2, jwt.keyset { keys = { A2_KEY } }, { issuer = "joe" }) -- today
      refused("issuer", A2, jwt.keyset { keys = { A2_KEY } }, { issuer = "jo", now = BEFORE })
    end)

    it("RFC 7515 A.3 (ES256) verifies", function()
      local keys = jwt.keyset { keys = { A3_KEY } }
      local c = jwt.verify(A3, keys, { issuer = "joe", now = BEFORE, algorithms = { "ES256" } })
      assert.equal(true, c["http://example.com/is_root"])
      refused("algorithm", A3, keys, { issuer = "joe", now = BEFORE }) -- RS256 only, by default
      refused("expired", A3, keys, { issuer = "joe", now = 1300819380, algorithms = { "ES256" } })
      assert.equal("joe", jwt.verify(A3, keys, { issuer = "joe", now = 1300819380, leeway = 1,
                                                 algorithms = { "ES256" } }).iss)
    end)

    it("RFC 8037 A.4 (Ed25519): a good signature over a payload that is not a JSON object is malformed", function()
      local keys = jwt.keyset { keys = { A4_KEY } }
      local err = refused("malformed", A4, keys, { issuer = false, algorithms = { "EdDSA" } })
      assert.matches("payload", err.message)
      -- the same token with one signature bit flipped fails earlier, on the signature
      local h, p, s = split(A4)
      local sig = unb64(s)
      sig = string.char(xor(sig:byte(1), 1)) .. sig:sub(2)
      refused("signature", join(h, p, b64(sig)), keys, { issuer = false, algorithms = { "EdDSA" } })
    end)

    it("the A.2 key does not verify the A.3 token, nor the other way round", function()
      local both = jwt.keyset { keys = { A2_KEY, A3_KEY } }
      local swapped_a2 = join(select(1, split(A3)), select(2, split(A3)), select(3, split(A2)))
      refused("signature", swapped_a2, both, { issuer = "joe", now = BEFORE, algorithms = { "ES256" } })
      local swapped_a3 = join(select(1, split(A2)), select(2, split(A2)), select(3, split(A3)))
      refused("signature", swapped_a3, both, { issuer = "joe", now = BEFORE })
    end)
  end)

  describe("the classic attacks", function()
    it("alg none (any spelling) is refused as algorithm", function()
      refused("algorithm", mint().tokens.alg_none)
      refused("algorithm", mint().tokens.alg_none_caps)
      refused("algorithm", mint().tokens.alg_none, all_keys(), opts { algorithms = { "RS256", "ES256", "EdDSA" } })
    end)

    it("HS256 keyed with the RSA public key (PEM) is refused", function()
      refused("algorithm", mint().tokens.hs256_pem)
    end)

    it("ECDSA with r = s = 0 is refused", function()
      local h, p = split(mint().tokens.ES256)
      local o = opts { algorithms = { "ES256" } }
      refused("signature", join(h, p, b64(("\0"):rep(64))), all_keys(), o)
      -- r = 0 or s = 0 alone too, and r = s = n's byte length of 0xff (out of range)
      local _, _, s = split(mint().tokens.ES256)
      local sig = unb64(s)
      refused("signature", join(h, p, b64(("\0"):rep(32) .. sig:sub(33))), all_keys(), o)
      refused("signature", join(h, p, b64(sig:sub(1, 32) .. ("\0"):rep(32))), all_keys(), o)
      refused("signature", join(h, p, b64(("\255"):rep(64))), all_keys(), o)
    end)

    it("a DER-encoded ECDSA signature is refused, though it is the right signature", function()
      refused("signature", mint().tokens.es256_der, all_keys(), opts { algorithms = { "ES256" } })
    end)

    it("ECDSA signatures of any other length are refused", function()
      local h, p, s = split(mint().tokens.ES256)
      local sig = unb64(s)
      local o = opts { algorithms = { "ES256" } }
      refused("signature", join(h, p, b64(sig .. "\0")), all_keys(), o)
      refused("signature", join(h, p, b64(sig:sub(1, 63))), all_keys(), o)
      refused("signature", join(h, p, b64("\0" .. sig)), all_keys(), o)
    end)

    it("a kid naming one key, signed by another, is refused", function()
      refused("signature", mint().tokens.kid_other_key)
    end)

    it("a kid not in the set is refused as key, with kid_missing", function()
      local err = refused("key", mint().tokens.unknown_kid)
      assert.is_true(err.kid_missing)
    end)

    it("a kid naming a key of another type is refused as key, not kid_missing", function()
      local err = refused("key", mint().tokens.rs_with_ec, all_keys(), opts { algorithms = { "ES256" } })
      assert.is_nil(err.kid_missing)
    end)

    it("binds each algorithm to its key type and curve exactly", function()
      local o = opts { algorithms = { "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA" } }
      -- a header naming a key of the set whose curve or type is not the alg's: key, not kid_missing
      for _, case in ipairs {
        { "ES256", "p384" }, { "ES256", "p521" }, { "ES384", "p256" }, { "ES512", "p384" },
        { "EdDSA", "p256" }, { "ES256", "ed" }, { "RS256", "ed" }, { "PS256", "p256" }, { "EdDSA", "rsa" },
      } do
        local alg, kid = case[1], case[2]
        local _, p, s = split(mint().tokens[alg])
        local err = refused("key", join(b64(cjson.encode { alg = alg, kid = kid }), p, s), all_keys(), o)
        assert.is_nil(err.kid_missing, alg .. " with " .. kid)
      end
      -- without a kid, only keys of the alg's own curve are tried
      local no_kid = mint().tokens.es384_no_kid
      refused("key", no_kid, jwt.keyset(jwks_of("p256", "p521", "ed", "rsa")), o)
      assert.equal(ISS, jwt.verify(no_kid, jwt.keyset(jwks_of("p256", "p384", "p521")), o).iss)
    end)

    it("a key whose JWK names an alg verifies only that alg", function()
      local k = cjson.decode(cjson.encode(mint().jwks.rsa))
      k.alg = "RS256"
      local keys = jwt.keyset { keys = { k } }
      assert.equal(ISS, jwt.verify(mint().tokens.RS256, keys, OPTS).iss)
      local o = opts { algorithms = { "RS256", "RS512", "PS256" } }
      assert.is_nil(refused("key", mint().tokens.RS512, keys, o).kid_missing)
      refused("key", mint().tokens.PS256, keys, o)
    end)

    it("never takes a key from the token: embedded jwk, jku, x5u, x5c are ignored", function()
      -- Headers naming the attacker's key, signed by it: still checked against the set only.
      local m = mint()
      local _, p, s = split(m.tokens.unknown_kid) -- signed by the evil key
      local evil_cert = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
      for _, extra in ipairs {
        { jwk = m.jwks.evil }, { jwk = m.jwks.evil, kid = cjson.null }, { jku = "https://attacker.example/jwks.json" },
        { x5u = "https://attacker.example/cert.pem" }, { x5c = { evil_cert } },
      } do
        local header = { alg = "RS256", kid = "evil" }
        for k, v in pairs(extra) do header[k] = v end
        if header.kid == cjson.null then header.kid = nil end
        local token = join(b64(cjson.encode(header)), p, s)
        local err = refused(header.kid and "key" or "signature", token)
        if header.kid then assert.is_true(err.kid_missing) end
      end
      -- and even with a kid of the set, the set's key is what checks it
      local token = join(b64(cjson.encode { alg = "RS256", kid = "rsa", jwk = m.jwks.evil }), p, s)
      refused("signature", token)
    end)

    it("a crit header is refused, known names or not, empty or not", function()
      refused("malformed", mint().tokens.crit)
      refused("malformed", mint().tokens.crit_empty)
    end)

    it("a tampered payload is refused", function()
      local h, p, s = split(mint().tokens.RS256)
      local c = cjson.decode(unb64(p))
      c.realm_access.roles = { "user", "admin" }
      refused("signature", join(h, b64(cjson.encode(c)), s))
      -- a tampered header too
      refused("signature", join(b64('{"alg":"RS256","kid":"rsa","x":1}'), p, s))
    end)

    it("a single bit flipped anywhere in the signature is refused", function()
      for _, alg in ipairs { "RS256", "ES256", "EdDSA" } do
        local h, p, s = split(mint().tokens[alg])
        local sig = unb64(s)
        local o = opts { algorithms = { alg } }
        refused("signature", join(h, p, b64(string.char(xor(sig:byte(1), 128)) .. sig:sub(2))), all_keys(), o)
        -- 24 more bytes across the signature, a different bit in each (reason only: the
        -- leak check above is per shape, and the refusals here differ by one bit)
        for i = 2, #sig, math.max(1, math.floor(#sig / 24)) do
          local flipped = sig:sub(1, i - 1) .. string.char(xor(sig:byte(i), 2 ^ (i % 8))) .. sig:sub(i + 1)
          local err = helper.error_of(jwt.verify, join(h, p, b64(flipped)), all_keys(), o)
          assert.equal("signature", err.reason)
        end
      end
    end)

    it("RS256 under another RSA key of the set is refused; the right key of the set is found by kid", function()
      local keys = jwt.keyset(jwks_of("rsa2", "rsa"))
      assert.equal(ISS, jwt.verify(mint().tokens.RS256, keys, OPTS).iss)
      refused("signature", mint().tokens.kid_other_key, keys)
    end)
  end)

  describe("claims", function()
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

  describe("repeated member names", function()
    it("in the header, the last one counts", function()
      local c, h = jwt.verify(mint().tokens.dup_alg_rs256_last, all_keys(), OPTS)
      assert.equal(ISS, c.iss)
      assert.equal("RS256", h.alg)
      refused("algorithm", mint().tokens.dup_alg_none_last)
    end)

    it("in the claims, the last one counts", function()
      local c = jwt.verify(mint().tokens.dup_exp_future_last, all_keys(), OPTS)
      assert.equal(NOW + 600, c.exp)
      refused("expired", mint().tokens.dup_exp_past_last)
    end)
  end)

  describe("shapes", function()
    local function good() return mint().tokens.RS256 end

    it("refuses anything but three segments", function()
      local h, p, s = split(good())
      for _, t in ipairs { h .. "." .. p, join(h, p, s) .. ".", join(h, p, s) .. "." .. s, h, "", "..", h .. ".." .. s,
                           "." .. p .. "." .. s, h .. ".." } do
        refused("malformed", t)
      end
      -- an empty signature is a shape JWS allows (for alg none): it fails as the signature
      refused("signature", h .. "." .. p .. ".")
    end)

    it("refuses padding, standard base64 and whitespace anywhere", function()
      local h, p, s = split(good())
      refused("malformed", join(h .. "=", p, s))
      refused("malformed", join(h, p, s .. "=="))
      refused("malformed", join(h, p:sub(1, 4) .. "/" .. p:sub(6), s))
      refused("malformed", join(h, p, s:sub(1, 4) .. "+" .. s:sub(6)))
      refused("malformed", join(h, p, s) .. "\n")
      refused("malformed", " " .. join(h, p, s))
      refused("malformed", join(h, p:sub(1, 10) .. " " .. p:sub(11), s))
      refused("malformed", join(h, p, s:sub(1, 20) .. "\t" .. s:sub(21)))
      refused("malformed", join(h, p, s .. "\0"))
    end)

    it("refuses a segment that is not the one spelling of its bytes", function()
      -- 256 bytes of RSA signature end on 4 spare bits: any of them set is another spelling
      local h, p, s = split(good())
      local last = s:sub(-1)
      local i = ALPHA:find(last, 1, true)
      refused("malformed", join(h, p, s:sub(1, -2) .. ALPHA:sub(i + 1, i + 1)))
    end)

    it("refuses a header that is not a JSON object, or has no alg", function()
      local _, p, s = split(good())
      for _, header in ipairs { "not json", "[1,2]", '"RS256"', "{", '{"alg":"RS256"', "", '{"kid":"rsa"}',
                                '{"alg":256}', '{"alg":"RS256","kid":7}' } do
        refused("malformed", join(b64(header), p, s))
      end
    end)

    it("takes a token of exactly 16 KiB (16384 bytes) and refuses one byte more", function()
      local at, over = mint().tokens.at_16k, mint().tokens.over_16k_by_one
      assert.equal(16384, #at)
      assert.equal(16385, #over)
      assert.equal(ISS, jwt.verify(at, all_keys(), OPTS).iss)
      refused("malformed", over)
    end)

    it("refuses tokens over 16 KiB; one just under verifies", function()
      local big, under = mint().tokens.over_16k, mint().tokens.under_16k
      assert.is_true(#big > 16384)
      assert.is_true(#under <= 16384 and #under > 15000)
      refused("malformed", big)
      assert.equal(11000, #jwt.verify(under, all_keys(), OPTS).pad)
    end)
  end)
end)

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
