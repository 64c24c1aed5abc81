-- jose.lua: what the JWS specs share (spec/jws_spec.lua, spec/jws_claims_spec.lua,
-- spec/jwk_spec.lua): base64url for their own surgery on tokens, and keys and
-- tokens made by libraries that are not tfauth's (python3-jwcrypto and
-- python3-cryptography, through spec/support/mint.py), minted once per file.
local cjson = require "cjson"
local tfauth = require "tfauth"
local safe = require "tfauth.safe"
local helper = require "spec.helper"
local luassert = require "luassert" -- busted's assert, which a required module does not see

local jose = {}

-- Minting takes seconds (RSA keys): the JWS spec files of one run share one,
-- kept in with-backend.sh's temporary folder with the `now` its tokens were
-- made for, and reused while that is less than two minutes old.
local certs = os.getenv("TFAUTH_TEST_CERTS")
local CACHE = certs and (certs .. "/../jose-minted.json")
local function cached()
  local f = CACHE and io.open(CACHE, "rb")
  if not f then return nil end
  local ok, v = pcall(cjson.decode, f:read("*a"))
  f:close()
  if ok and type(v) == "table" and type(v.now) == "number" and math.abs(os.time() - v.now) < 120 then return v end
  return nil
end
local cache = cached()

local NOW = cache and math.floor(cache.now) or os.time()
local ISS = "https://kc.example/realms/fndtn"
jose.NOW, jose.ISS = NOW, ISS

-- ---- base64url -----------------------------------------------------------------
local ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
jose.ALPHA = ALPHA
function jose.b64(s)
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
function jose.unb64(s)
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
function jose.xor(a, b)
  local r, bit = 0, 1
  for _ = 1, 8 do
    if a % 2 ~= b % 2 then r = r + bit end
    a, b, bit = math.floor(a / 2), math.floor(b / 2), bit * 2
  end
  return r
end
function jose.split(token)
  return token:match("^([^.]*)%.([^.]*)%.([^.]*)$")
end
function jose.join(h, p, s) return h .. "." .. p .. "." .. s end

-- ---- keys and tokens -------------------------------------------------------------
-- A claim set with `extra` merged in; a member given as jose.ABSENT is left out
-- (cjson.null would send it as JSON null).
local ABSENT = {}
jose.ABSENT = ABSENT
local function claims(extra)
  local c = { iss = ISS, sub = "7d0c5a8e", exp = NOW + 600, iat = NOW - 10, typ = "Bearer",
              aud = { "fndtn-api", "account" }, azp = "fndtn-web", preferred_username = "alice",
              realm_access = { roles = { "user" } } }
  for k, v in pairs(extra or {}) do
    if v == ABSENT then c[k] = nil else c[k] = v end
  end
  return c
end
jose.claims = claims

-- The claims' JSON with exp twice: first, then last.
local function repeated_exp(first, last)
  local c = claims()
  c.exp = nil
  return '{"exp":' .. first .. "," .. cjson.encode(c):sub(2, -2) .. ',"exp":' .. last .. "}"
end

-- A token of key "rsa" (RS256, minted by python3-jwcrypto) whose header has typ
-- `header_typ` (nil: none) and whose claims have typ `claim_typ` (nil: none).
local function typed(header_typ, claim_typ)
  return { key = "rsa", alg = "RS256", header = { typ = header_typ }, claims = claims { typ = claim_typ or ABSENT } }
end

jose.request = {
  keys = {
    rsa = { kty = "RSA", size = 2048 }, rsa2 = { kty = "RSA", size = 2048 },
    rsa3072 = { kty = "RSA", size = 3072 }, small = { kty = "RSA", size = 1024 },
    p256 = { kty = "EC", crv = "P-256" }, p384 = { kty = "EC", crv = "P-384" },
    p521 = { kty = "EC", crv = "P-521" }, ed = { kty = "OKP", crv = "Ed25519" },
    ed2 = { kty = "OKP", crv = "Ed25519" },
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
    -- the fully-specified name: python3-jwcrypto does not know it, so framed by
    -- hand and signed with python3-cryptography's Ed25519
    Ed25519 = { key = "ed", alg = "Ed25519", raw = true, claims = claims() },
    Ed25519_no_kid = { key = "ed2", alg = "Ed25519", raw = true, kid = cjson.null, claims = claims() },
    EdDSA_no_kid = { key = "ed2", alg = "EdDSA", raw = true, kid = cjson.null, claims = claims() },
    no_kid = { key = "rsa2", alg = "RS256", kid = cjson.null, claims = claims() },
    es384_no_kid = { key = "p384", alg = "ES384", kid = cjson.null, claims = claims() },
    id_token = { key = "rsa", alg = "RS256", claims = claims { typ = "ID", aud = "fndtn-web" } },
    refresh_typ = { key = "rsa", alg = "RS256", claims = claims { typ = "Refresh" } },
    no_typ = { key = "rsa", alg = "RS256", claims = claims { typ = cjson.null } },
    -- typ in the header (RFC 9068's at+jwt, spelled three ways), in the claims, both, neither
    at_jwt = typed("at+jwt"),
    at_jwt_media = typed("application/at+jwt"),
    at_jwt_caps = typed("AT+JWT"),
    at_jwt_media_caps = typed("Application/AT+JWT"),
    at_jwt_claim_bearer = typed("at+jwt", "Bearer"),
    at_jwt_claim_id = typed("at+jwt", "ID"),
    text_at_jwt = typed("text/at+jwt"),
    jwt_bearer = typed("JWT", "Bearer"),
    jwt_media_bearer = typed("application/jwt", "Bearer"),
    jwt_id = typed("JWT", "ID"),
    jwt_refresh = typed("JWT", "Refresh"),
    jwt_no_claim = typed("JWT"),
    neither = typed(nil),
    claim_bearer_lower = typed(nil, "bearer"),
    claim_at_jwt = typed(nil, "at+jwt"),
    typ_number = { key = "rsa", alg = "RS256", raw = true, header = { typ = 5 }, claims = claims() },
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
    number_iss = { key = "rsa", alg = "RS256", claims = claims { iss = 42 } },
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
--- Every key (public JWKs, `kid` = the key's name) and token of jose.request.
function jose.mint()
  if minted then return minted end
  if cache then
    minted = cache.minted
    return minted
  end
  assert(not mint_error, mint_error) -- minting once is slow enough: no retries
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(cjson.encode(jose.request))
  f:close()
  local out = helper.sh("/usr/bin/python3 spec/support/mint.py < " .. tmp)
  os.remove(tmp)
  if out:sub(1, 1) ~= "{" then
    mint_error = "spec/support/mint.py failed: " .. out
    error(mint_error)
  end
  minted = cjson.decode(out)
  if CACHE then -- written whole, then renamed: a reader never sees half of it
    f = assert(io.open(CACHE .. ".new", "wb"))
    f:write(cjson.encode { now = NOW, minted = minted })
    f:close()
    assert(os.rename(CACHE .. ".new", CACHE))
  end
  return minted
end

function jose.jwks_of(...)
  local keys = {}
  for _, name in ipairs { ... } do keys[#keys + 1] = assert(jose.mint().jwks[name], name) end
  return { keys = keys }
end

-- A deep copy of the minted JWK `name`, changed by `change`.
function jose.variant(name, change)
  local k = cjson.decode(cjson.encode(jose.mint().jwks[name]))
  change(k)
  return k
end

jose.OPTS = { issuer = ISS, audience = "fndtn-api", algorithms = { "RS256" }, types = { "Bearer" }, now = NOW }
-- OPTS with `extra` merged in; "nil" removes an option.
function jose.opts(extra)
  local o = {}
  for k, v in pairs(jose.OPTS) do o[k] = v end
  for k, v in pairs(extra or {}) do
    if v == "nil" then o[k] = nil else o[k] = v end
  end
  return o
end

local all
--- The keyset of every good key.
function jose.all_keys()
  all = all or tfauth.jwt.keyset(jose.jwks_of("rsa", "rsa2", "rsa3072", "p256", "p384", "p521", "ed"))
  return all
end

-- What a refusal may hold besides its reason: what the token claims (kid, alg,
-- iss), never any other part of it.
local ERROR_FIELDS = { kind = true, message = true, operation = true, retryable = true, reason = true,
                       kid_missing = true, kid = true, alg = true, iss = true }

-- Every string an error carries, and its tostring, holds no piece of the token:
-- none of its segments, and none of 12-character runs taken all along it.
function jose.assert_no_leak(err, token)
  for k in pairs(err) do luassert.is_true(ERROR_FIELDS[k], "unexpected field " .. tostring(k)) end
  local strings = helper.strings(err)
  strings[#strings + 1] = tostring(err)
  local h, p, s = jose.split(token)
  for _, str in ipairs(strings) do
    for _, seg in ipairs { h or "", p or "", s or "" } do
      if #seg >= 4 then luassert.is_nil(str:find(seg, 1, true), "a token segment leaked: " .. str) end
    end
    for i = 1, #token - 11, math.max(7, math.floor(#token / 64)) do
      luassert.is_nil(str:find(token:sub(i, i + 11), 1, true), "a piece of the token leaked: " .. str)
    end
  end
end

-- The fields of an error worth comparing (its message and what it names).
local function error_fields(err)
  return { message = tostring(err), kind = err.kind, reason = err.reason, kid = err.kid, alg = err.alg,
    iss = err.iss, kid_missing = err.kid_missing }
end

--- Verifies expecting a refusal; checks kind, operation and reason, the same
-- through tfauth.safe, and the same error returned by the gate's entry
-- (core.jwt_check) whether the keyset's header memo holds another header,
-- this token's, or none; returns the error.
function jose.refused(reason, token, keys, o)
  keys, o = keys or jose.all_keys(), o or jose.OPTS
  local err = helper.error_of(tfauth.jwt.verify, token, keys, o)
  luassert.equal("token", err.kind)
  luassert.equal("jwt.verify", err.operation)
  luassert.equal(reason, err.reason, tostring(err))
  jose.assert_no_leak(err, token)
  local none, serr = safe.jwt.verify(token, keys, o)
  luassert.is_nil(none)
  luassert.equal(reason, serr.reason)
  local core = require "tfauth.core"
  for _ = 1, 2 do -- the first call may fill the memo, the second may read it
    local none_claims, cerr = core.jwt_check(token, keys, o)
    luassert.is_nil(none_claims)
    luassert.same(error_fields(err), error_fields(cerr))
  end
  return err
end

return jose
