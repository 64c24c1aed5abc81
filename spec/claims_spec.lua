-- The gate's claims (core.jwt_check with names: src/claims.c reads them with
-- jansson) against lua-cjson's (jwt.verify): for tokens signed by
-- python3-cryptography whose payloads hold what JSON parsers disagree on,
-- the same acceptance or refusal, the same values of every claim asked for
-- and checked, and proof of which reader ran: jansson's table holds only
-- those claims, lua-cjson's (the fallback) every one.
local cjson = require "cjson"
local core = require "tfauth.core"
local tfauth = require "tfauth"
local helper = require "spec.helper"

local ISS, AUD = "https://kc.example/realms/claims", "fndtn-api"
local NOW = os.time()
local NAMES = { "preferred_username", "email", "email_verified", "sub", "realm_access", "resource_access" }
local CHECKED = { "exp", "nbf", "iat", "iss", "aud", "typ" }
local OPTS = { issuer = ISS, audience = AUD, types = { "Bearer" }, now = NOW }

local BASE = ('"exp":%d,"iat":%d,"iss":"%s","aud":"%s","typ":"Bearer","jti":"j-1"'):format(NOW + 600, NOW - 5, ISS, AUD)
local function object(rest) return "{" .. BASE .. (rest and "," .. rest or "") .. "}" end
local function nested(depth) return ("["):rep(depth) .. ("]"):rep(depth) end

-- name -> payload bytes, and whether jansson reads it (else lua-cjson does)
local CASES = {
  keycloak = { object('"sub":"7d0c5a8e","preferred_username":"alice","email":"a@acme.example","email_verified":true,'
    .. '"realm_access":{"roles":["user","admin"]},"resource_access":{"fndtn-api":{"roles":["reader"]}},"sid":"s-1"'), true },
  repeated = { object '"sub":"first","sub":"second","realm_access":{"roles":["a"]},"realm_access":{"roles":["b"]}', true },
  numbers = { object('"sub":9007199254740993,"preferred_username":-0,"email":1.5e3,"email_verified":1,'
    .. '"realm_access":{"roles":[1e-400,300,1.0,-12345678901234567890,0.1]}'), true },
  escapes = { object '"sub":"a\\u0000b","preferred_username":"\\u00e9\\ud83d\\ude00\\/\\"\\\\","email":"\\t"', true },
  nulls = { object '"email":null,"realm_access":null,"resource_access":{"x":null},"email_verified":false', true },
  empty = { object '"realm_access":{},"resource_access":{"a":{"roles":[]}}', true },
  aud_list = { "{" .. BASE:gsub('"aud":"fndtn%-api"', '"aud":["other","fndtn-api"]') .. "}", true },
  spaced = { " \n\t" .. object '"sub" : "s" ' .. " \r\n", true },
  depth_64 = { object('"realm_access":' .. nested(63)), true },
  -- lua-cjson's to read (jansson refuses them, or would read what lua-cjson refuses)
  depth_65 = { object('"realm_access":' .. nested(64)), false },
  invalid_utf8 = { object '"sub":"\255\254","preferred_username":"\192\128"', false },
  raw_control = { object '"sub":"a\tb"', false },
  nul_key = { object '"sub\\u0000":"not sub","sub":"sub"', false }, -- jansson 2.14: no NUL in a key
  lone_surrogate = { object '"sub":"\\ud800"', false },
  after_nul = { object '"sub":"s"' .. "\0garbage", false },
  huge = { object '"sub":"s","email":1e400', false },
  exp_huge = { '{"exp":1e400,"iss":"' .. ISS .. '","aud":"' .. AUD .. '","typ":"Bearer","jti":"j"}', false },
  array = { "[" .. object() .. "]", false },
  cut = { object():sub(1, -2), false },
}

local function hex(s) return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end)) end

local minted, keys
local function mint()
  if minted then return minted end
  local request = { keys = { rsa = { kty = "RSA", size = 2048 } }, tokens = {} }
  for name, case in pairs(CASES) do
    request.tokens[name] = { key = "rsa", alg = "RS256", raw = true, payload_hex = hex(case[1]) }
  end
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(cjson.encode(request))
  f:close()
  local out = helper.sh("/usr/bin/python3 spec/support/mint.py < " .. tmp)
  os.remove(tmp)
  minted = cjson.decode(out)
  keys = tfauth.jwt.keyset { keys = { minted.jwks.rsa } }
  return minted
end

-- Equal, numbers by value and (Lua 5.3+) by subtype, tables member by member.
local function assert_same_value(a, b, where)
  assert.equal(type(a), type(b), where)
  if type(a) == "table" then
    for k, v in pairs(a) do assert_same_value(v, b[k], where .. "." .. tostring(k)) end
    for k in pairs(b) do assert.is_not_nil(a[k], where .. "." .. tostring(k)) end
  elseif type(a) == "number" and a ~= a then
    assert.is_true(b ~= b, where)
  else
    assert.equal(a, b, where)
    if math.type and type(a) == "number" then assert.equal(math.type(a), math.type(b), where) end
  end
end

describe("the gate's claims (jansson) against lua-cjson's", function()
  for name, case in pairs(CASES) do
    it(name .. (case[2] and ": read by jansson, the same values" or ": left to lua-cjson, the same answer"), function()
      local token = mint().tokens[name]
      local ok, full = pcall(tfauth.jwt.verify, token, keys, OPTS)
      if case[2] then assert.is_true(ok, tostring(full)) end -- what jansson reads, lua-cjson takes too
      for round = 1, 2 do
        local claims, err = core.jwt_check(token, keys, OPTS, 0, NAMES)
        if not ok then
          assert.is_nil(claims)
          assert.equal(full.reason, err.reason, name)
          assert.equal(tostring(full), tostring(err))
        else
          assert.is_table(claims, tostring(err))
          for _, list in ipairs { NAMES, CHECKED } do
            for _, claim in ipairs(list) do assert_same_value(full[claim], claims[claim], name .. "." .. claim) end
          end
          -- which reader ran: jansson keeps what was asked for, lua-cjson everything
          if case[2] then assert.is_nil(claims.jti, name .. " round " .. round) else assert.equal(full.jti, claims.jti) end
        end
      end
    end)
  end

  it("a verified token is read the same whether names are given or not, and names must be strings", function()
    local token = mint().tokens.keycloak
    local all, err = core.jwt_check(token, keys, OPTS)
    assert.is_table(all, tostring(err))
    assert.equal("s-1", all.sid)
    assert.is_nil(core.jwt_check(token, keys, OPTS, 0, NAMES).sid)
    for _, bad in ipairs { {}, { 1 }, { "" }, "sub" } do
      local bad_err = helper.error_of(core.jwt_check, token, keys, OPTS, 0, bad)
      assert.equal("argument", bad_err.kind)
      assert.equal("names", bad_err.field)
    end
  end)
end)
