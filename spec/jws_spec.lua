-- tfauth.jwt.verify: JWS verification in the C core (src/jws.c, src/jwk.c) of
-- tokens and keys from libraries that are not tfauth's (python3-jwcrypto and
-- python3-cryptography, through spec/support/jose.lua and mint.py), and of the
-- RFCs' published examples; each refusal is checked for its reason, and for
-- not carrying any piece of the token. Claims and typ: jws_claims_spec.lua;
-- keysets and algorithm names: jwk_spec.lua.
local cjson = require "cjson"
local tfauth = require "tfauth"
local helper = require "spec.helper"
local jose = require "spec.support.jose"
local jwt = tfauth.jwt

local ISS, NOW = jose.ISS, jose.NOW
local b64, unb64, xor, split, join = jose.b64, jose.unb64, jose.xor, jose.split, jose.join
local mint, jwks_of, all_keys, refused = jose.mint, jose.jwks_of, jose.all_keys, jose.refused
local OPTS, opts = jose.OPTS, jose.opts
local request = jose.request
local ALPHA = jose.ALPHA

describe("jwt.verify", function()
  describe("tokens minted by python3-jwcrypto", function()
    for _, alg in ipairs { "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
                           "Ed25519" } do
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
      for _, alg in ipairs { "RS256", "ES256", "EdDSA", "Ed25519" } do
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


  describe("signatures refused before (a keyset remembers its last 64)", function()
    local function flipped(token, i) -- the token with bit i % 8 of its signature's byte i flipped
      local h, p, s = split(token)
      local sig = unb64(s)
      return join(h, p, b64(sig:sub(1, i - 1) .. string.char(xor(sig:byte(i), 2 ^ (i % 8))) .. sig:sub(i + 1)))
    end

    it("a bad signature sent again is refused again, the same way", function()
      local keys = jwt.keyset(jwks_of("rsa", "rsa2", "p256"))
      for _, case in ipairs { { "RS256", OPTS }, { "ES256", opts { algorithms = { "ES256" } } } } do
        local bad = flipped(mint().tokens[case[1]], 5)
        local first = refused("signature", bad, keys, case[2])
        for _ = 1, 3 do
          local again = helper.error_of(jwt.verify, bad, keys, case[2])
          assert.same({ first.reason, first.kid, first.alg, tostring(first) },
            { again.reason, again.kid, again.alg, tostring(again) })
        end
      end
    end)

    it("the good signature over the same header and payload still verifies", function()
      local keys = jwt.keyset(jwks_of("rsa", "rsa2"))
      for _, name in ipairs { "RS256", "no_kid" } do -- no_kid: every RSA key of the set is tried
        local good = mint().tokens[name]
        for _ = 1, 2 do refused("signature", flipped(good, 9), keys) end
        assert.equal(ISS, jwt.verify(good, keys, OPTS).iss)
      end
    end)

    it("is the keyset's own: another set whose key of that kid signed it accepts the token", function()
      local token = mint().tokens.kid_other_key -- kid "rsa", signed by rsa2's key
      local before = jwt.keyset(jwks_of("rsa"))
      for _ = 1, 2 do refused("signature", token, before) end
      local after = jwt.keyset { keys = { jose.variant("rsa2", function(k) k.kid = "rsa" end) } }
      assert.equal(ISS, jwt.verify(token, after, OPTS).iss)
      refused("signature", token, before)
    end)

    it("many distinct bad signatures: each still refused, good tokens still verify", function()
      local keys = jwt.keyset(jwks_of("rsa", "p256"))
      local good, seen = mint().tokens.RS256, {}
      for i = 1, 200 do
        local bad = flipped(good, 1 + i % 256)
        seen[#seen + 1] = bad
        assert.equal("signature", helper.error_of(jwt.verify, bad, keys, OPTS).reason)
      end
      for i = 1, #seen, 7 do assert.equal("signature", helper.error_of(jwt.verify, seen[i], keys, OPTS).reason) end
      assert.equal(ISS, jwt.verify(good, keys, OPTS).iss)
      assert.equal(ISS, jwt.verify(mint().tokens.ES256, keys, opts { algorithms = { "ES256" } }).iss)
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

    it("verifies in place after skip bytes (the gate's \"Bearer <token>\"), the same checks on what follows", function()
      local core = require "tfauth.core"
      local token = good()
      local c = core.jwt_verify("Bearer " .. token, all_keys(), OPTS, 7)
      assert.equal(ISS, c.iss)
      assert.equal(ISS, core.jwt_verify(token, all_keys(), OPTS, 0).iss)
      local h, p, s = split(token)
      for _, bad in ipairs { "Bearer  " .. token, "Bearer " .. token .. " ", "Bearer " .. join(h, p, s .. "=") } do
        local err = helper.error_of(core.jwt_verify, bad, all_keys(), OPTS, 7)
        assert.equal("malformed", err.reason)
        jose.assert_no_leak(err, token)
      end
      local other = (s:sub(1, 1) == "A" and "B" or "A") .. s:sub(2)
      assert.equal("signature", helper.error_of(core.jwt_verify, "Bearer " .. join(h, p, other), all_keys(), OPTS, 7).reason)
      for _, skip in ipairs { -1, 1.5, #token + 1, "7" } do
        local err = helper.error_of(core.jwt_verify, token, all_keys(), OPTS, skip)
        assert.equal("argument", err.kind)
        assert.equal("skip", err.field)
      end
    end)

    it("the gate's entry returns a refusal, and remembers a keyset's last header by its text", function()
      local core = require "tfauth.core"
      local keys = jwt.keyset(jwks_of(request.tokens.RS256.key, request.tokens.ES256.key))
      local token, es = mint().tokens.RS256, mint().tokens.ES256
      local h, p, s = split(token)
      local c = core.jwt_check("Bearer " .. token, keys, OPTS, 7)
      assert.same(jwt.verify(token, keys, OPTS), c)
      -- another token with the same header: the remembered one is used, and
      -- what the header says still holds (alg, kid, the options' allow-list)
      local other = (s:sub(1, 1) == "A" and "B" or "A") .. s:sub(2)
      local none, err = core.jwt_check(join(h, p, other), keys, OPTS)
      assert.is_nil(none)
      assert.same({ "signature", "RS256", request.tokens.RS256.key },
        { err.reason, err.alg, err.kid })
      err = select(2, core.jwt_check(token, keys, opts { algorithms = { "ES256" } }))
      assert.equal("algorithm", err.reason)
      -- another header replaces it; the first is read afresh after
      assert.equal(ISS, core.jwt_check(es, keys, opts { algorithms = { "ES256" } }).iss)
      assert.same(c, core.jwt_check(token, keys, OPTS))
      -- a header refused by its own content is not remembered
      local crit = b64(cjson.encode { alg = "RS256", kid = request.tokens.RS256.key, crit = { "exp" } })
      for _ = 1, 2 do assert.equal("malformed", select(2, core.jwt_check(join(crit, p, s), keys, OPTS)).reason) end
      -- argument errors are still raised
      assert.equal("opts", helper.error_of(core.jwt_check, token, keys, 5).field)
    end)

    it("the gate's lean entry returns a refusal's reason and kid_missing only, the claims as before", function()
      local core = require "tfauth.core"
      local function pack(...) return { n = select("#", ...), ... } end
      local keys = jwt.keyset(jwks_of(request.tokens.RS256.key, request.tokens.ES256.key))
      local token = mint().tokens.RS256
      local h, p, s = split(token)
      assert.same(jwt.verify(token, keys, OPTS), (core.jwt_check("Bearer " .. token, keys, OPTS, 7, true)))
      local other = (s:sub(1, 1) == "A" and "B" or "A") .. s:sub(2)
      local unknown = b64(cjson.encode { alg = "RS256", kid = "not-in-the-set" })
      local expired = mint().tokens.expired
      for _, case in ipairs {
        { "signature", false, join(h, p, other) }, -- twice: the second from the refused-signature memory
        { "signature", false, join(h, p, other) },
        { "key", true, join(unknown, p, s) },
        { "algorithm", false, mint().tokens.ES256 },
        { "malformed", false, join(h, p, s .. "=") },
        { "malformed", false, "a.b" },
        { "expired", false, expired },
        { "issuer", false, mint().tokens.other_iss },
        { "audience", false, mint().tokens.no_aud },
        { "malformed", false, mint().tokens.crit },
        { "malformed", false, join(b64("[1]"), p, s) }, -- a header that is JSON but no object
      } do
        assert.same({ n = 3, nil, case[1], case[2] }, pack(core.jwt_check(case[3], keys, OPTS, 0, true)), case[1])
        -- the same refusal as the full entry's
        local err = select(2, core.jwt_check(case[3], keys, OPTS))
        assert.equal(case[1], err.reason)
        assert.equal(case[2], err.kid_missing == true)
      end
      -- argument errors are still raised
      assert.equal("opts", helper.error_of(core.jwt_check, token, keys, 5, 0, true).field)
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
