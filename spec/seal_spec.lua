-- core.seal / core.open: AES-256-GCM for sessions at rest, with key rotation
-- and a context (the session id) bound to each blob.
local core = require "tfauth.core"

local K1 = ("11"):rep(32)
local K2 = ("ab"):rep(32)
local K3 = ("0f"):rep(32)

describe("seal", function()
  it("round-trips, and hides the plaintext", function()
    local secret = '{"access_token":"eyJhbGciOi.secret-value"}'
    local blob = core.seal({ K1 }, secret, "sid-1")
    assert.is_nil(blob:find("secret-value", 1, true))
    assert.is_nil(blob:find("eyJ", 1, true))
    assert.equal(#secret + 33, #blob) -- version, key id, nonce, tag
    assert.equal(secret, core.open({ K1 }, blob, "sid-1"))
    assert.equal("", core.open({ K1 }, core.seal({ K1 }, "")))
  end)

  it("uses a fresh nonce each time", function()
    assert.are_not.equal(core.seal({ K1 }, "same"), core.seal({ K1 }, "same"))
  end)

  it("refuses a blob changed anywhere", function()
    local blob = core.seal({ K1 }, "the session state", "sid-1")
    for i = 1, #blob do
      local changed = blob:sub(1, i - 1) .. string.char((blob:byte(i) + 1) % 256) .. blob:sub(i + 1)
      local plain, why = core.open({ K1 }, changed, "sid-1")
      assert.is_nil(plain, "byte " .. i)
      assert.is_string(why)
    end
    assert.is_nil(core.open({ K1 }, blob:sub(1, -2), "sid-1"))
    assert.is_nil(core.open({ K1 }, "", "sid-1"))
  end)

  it("refuses a blob under another context (a transplanted session)", function()
    local blob = core.seal({ K1 }, "state", "sid-1")
    local plain, why = core.open({ K1 }, blob, "sid-2")
    assert.is_nil(plain)
    assert.matches("another context", why)
  end)

  it("rotates: the newest key seals, every listed key opens", function()
    local old = core.seal({ K1 }, "sealed with the old key")
    assert.equal("sealed with the old key", core.open({ K2, K1 }, old))
    local new = core.seal({ K2, K1 }, "sealed with the new key")
    assert.equal("sealed with the new key", core.open({ K2 }, new))
    local plain, why = core.open({ K2 }, old)
    assert.is_nil(plain)
    assert.matches("not in the list", why)
    assert.is_nil(core.open({ K3 }, new))
  end)

  it("refuses bad keys with argument errors", function()
    for _, keys in ipairs { "k", {}, { "short" }, { ("zz"):rep(32) }, { 42 } } do
      local ok, err = pcall(core.seal, keys, "x")
      assert.is_false(ok)
      assert.equal("argument", err.kind)
      assert.equal("keys", err.field)
      ok, err = pcall(core.open, keys, "x")
      assert.is_false(ok)
      assert.equal("keys", err.field)
    end
  end)
end)

describe("tfauth.seal", function()
  local seal = require "tfauth.seal"
  local cjson = require "cjson"
  local state = { access_token = "eyJhbGciOi.a.b", expires_at = 1700000000, roles = { "a", "b" },
                  nested = { deep = { ok = true } }, name = "Zoë" }

  it("seals and opens strings as core.seal and core.open do", function()
    local blob = seal.seal({ K1 }, "plain text", "sid-1")
    assert.equal("plain text", seal.open({ K1 }, blob, "sid-1"))
    assert.equal("plain text", core.open({ K1 }, blob, "sid-1"))
    local plain, why = seal.open({ K1 }, blob, "sid-2")
    assert.is_nil(plain)
    assert.matches("another context", why)
  end)

  it("round-trips a value as JSON, integers staying integers", function()
    local blob = seal.seal_json({ K2, K1 }, state, "sid-1")
    assert.is_nil(blob:find("eyJ", 1, true))
    local back = seal.open_json({ K1, K2 }, blob, "sid-1")
    assert.same(state, back)
    assert.equal("1700000000", tostring(back.expires_at)) -- not 1.7e+09
  end)

  it("writes a different text each time (a salt in front), which only open_json reads back", function()
    local a, b = seal.seal_json({ K1 }, state), seal.seal_json({ K1 }, state)
    local text_a, text_b = seal.open({ K1 }, a), seal.open({ K1 }, b)
    assert.are_not.equal(text_a, text_b)
    assert.matches('^%["[%w_-]+",{', text_a)
    assert.same(state, seal.open_json({ K1 }, a))
  end)

  it("opens a JSON object that seal sealed as text (sessions written before seal_json)", function()
    local blob = seal.seal({ K1 }, cjson.encode(state), "sid-1")
    assert.same(state, seal.open_json({ K1 }, blob, "sid-1"))
  end)

  it("answers nil and why for a bad blob or one that is not JSON, and raises for bad keys", function()
    local value, why = seal.open_json({ K1 }, "nonsense", "sid")
    assert.is_nil(value)
    assert.equal("not a sealed blob", why)
    value, why = seal.open_json({ K1 }, seal.seal_json({ K1 }, state, "sid-1"), "sid-2")
    assert.is_nil(value)
    assert.matches("another context", why)
    value, why = seal.open_json({ K1 }, seal.seal({ K1 }, '{"a":'))
    assert.is_nil(value)
    assert.equal("not JSON", why)
    local ok, err = pcall(seal.open_json, { "short" }, "x")
    assert.is_false(ok)
    assert.equal("keys", err.field)
  end)

  it("refuses a value JSON cannot hold, naming the field", function()
    local ok, err = pcall(seal.seal_json, { K1 }, { f = print })
    assert.is_false(ok)
    assert.equal("argument", err.kind)
    assert.equal("value", err.field)
    ok, err = pcall(seal.seal_json, { "short" }, {})
    assert.is_false(ok)
    assert.equal("keys", err.field)
  end)
end)
