-- What the C core reads as JSON, through its one decoder (src/json.c), which
-- hands lua-cjson each text wrapped in whitespace so that LuaJIT does not
-- chain same-shape texts (docs/performance.md): the semantics are lua-cjson's
-- as they were, shown here through jwt.claims (a payload decoded from a C
-- buffer) and a mapped answer.
local cjson = require "cjson"
local core = require "tfauth.core"

local ALPHA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    for j = 1, 2 + (b and 1 or 0) + (c and 1 or 0) do
      local v = math.floor(n / 2 ^ (18 - 6 * (j - 1))) % 64
      out[#out + 1] = ALPHA:sub(v + 1, v + 1)
    end
  end
  return table.concat(out)
end

local function claims(text)
  local ok, result = pcall(core.jwt_claims, "eyJhbGciOiJub25lIn0." .. b64(text) .. ".sig")
  if ok then return result end
  assert.equal("argument", result.kind)
  return nil
end

local function nested(depth) return '{"d":' .. ("["):rep(depth) .. ("]"):rep(depth) .. "}" end

describe("JSON as the C core reads it", function()
  it("takes the last of repeated member names", function()
    assert.equal(2, claims('{"a":1,"a":2}').a)
  end)

  it("reads integers as integers, beyond 2^53 as the nearest double, 1e400 as infinity", function()
    local c = claims('{"i":300,"f":1.5,"big":9007199254740993,"neg":-9007199254740993,"inf":1e400}')
    assert.equal("300", tostring(c.i))
    assert.equal(1.5, c.f)
    assert.equal(2 ^ 53, c.big)
    assert.equal(-2 ^ 53, c.neg)
    assert.equal(math.huge, c.inf)
  end)

  it("keeps NUL bytes and invalid UTF-8 inside strings, and stops at a raw NUL after the value", function()
    assert.equal("a\0b", claims('{"s":"a\\u0000b"}').s)
    assert.equal("\255\254", claims('{"s":"\255\254"}').s)
    assert.equal(1, claims('{"k\\u0000":1}')["k\0"])
    assert.equal(1, claims('{"a":1}\0garbage').a)
    assert.is_nil(claims('\0{"a":1}'))
  end)

  it("nests 63 arrays deep in an object, not 64", function()
    assert.is_table(claims(nested(63)))
    assert.is_nil(claims(nested(64)))
  end)

  it("refuses what is not one JSON value: cut short, NaN, Infinity, hex, two values", function()
    for _, text in ipairs { '{"a":1', '{"a":tru', '{"a":"x', '{"a":NaN}', '{"a":Infinity}', '{"a":0x10}',
      "{} {}", '{"a":"\\ud800"}' } do
      assert.is_nil(claims(text), text)
    end
    assert.equal(1, claims('{"a":1}\n\t ').a)
  end)

  it("reads null as cjson.null", function()
    assert.equal(cjson.null, claims('{"a":null}').a)
    assert.same({ 1, cjson.null, 3 }, claims('{"a":[1,null,3]}').a)
  end)

  it("decodes an answer the same way (client:map)", function()
    local c = core.new { server_url = "http://127.0.0.1:9" }
    local ok, err = pcall(c.map, c, c:prepare("login", { user = "alice", password = "alice-Secret-1" }), 400, {},
      '{"error":"a","error":"invalid_grant","n":9007199254740993}')
    c:close()
    assert.is_false(ok)
    assert.equal("invalid_grant", err.error)
    assert.equal(2 ^ 53, err.json.n)
  end)
end)
