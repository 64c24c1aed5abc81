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
