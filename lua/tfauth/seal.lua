--- Sealing data at rest: AES-256-GCM, with key rotation and a context bound
-- to each blob (for a session kept in a store, its id).
--
--    local seal = require "tfauth.seal"
--    local keys = { new_key_hex, old_key_hex }     -- 64 hex digits each, newest first
--    local blob = seal.seal_json(keys, state, sid) -- store the blob under sid
--    local state, why = seal.open_json(keys, blob, sid)
--
-- The newest key seals, any listed key opens: rotate by putting a new key
-- first and dropping the old one once nothing it sealed is still kept. A
-- blob that was changed, sealed with a key not in the list, or copied under
-- another context does not open: `open` and `open_json` return `nil` and
-- why (never raising for a bad blob). Bad keys raise an `argument` error
-- (field `keys`).
--
-- Use the JSON forms for anything that holds tokens: `open_json` decodes in
-- the C core, from the opened bytes, without making the plaintext a Lua
-- string, and `seal_json` writes a salted text (`[salt, value]`). Under
-- LuaJIT every string is interned, and same-shape texts (token sets that
-- differ in the middle) would share one hash chain, making each new one
-- slower than the last.
--
-- The blob is `version (1) | key id (4) | nonce (12) | ciphertext | tag (16)`.
-- @module tfauth.seal
local core = require "tfauth.core"

local seal = {}

--- Seals a string.
-- @tparam {string,...} keys 1 to 16 keys of 64 hexadecimal digits, newest first
-- @tparam string plaintext at most 16 MiB
-- @tparam[opt=""] string aad the context the blob is bound to (a session id)
-- @treturn string the blob (33 bytes longer than the plaintext)
-- @raise an `argument` error for bad keys or a plaintext over 16 MiB
function seal.seal(keys, plaintext, aad)
  return core.seal(keys, plaintext, aad)
end

--- Opens a blob that `seal` made.
-- @tparam {string,...} keys the keys, newest first
-- @tparam string blob
-- @tparam[opt=""] string aad the context it was sealed for
-- @treturn[1] string the plaintext
-- @treturn[2] nil
-- @treturn[2] string why: `not a sealed blob`, `sealed with a key not in the
-- list`, or `changed, or sealed for another context`
-- @raise an `argument` error for bad keys
function seal.open(keys, blob, aad)
  return core.open(keys, blob, aad)
end

--- Seals a value as JSON (a table of strings, numbers, booleans, tables).
-- @tparam {string,...} keys the keys, newest first
-- @param value what to seal
-- @tparam[opt=""] string aad the context the blob is bound to
-- @treturn string the blob
-- @raise an `argument` error for bad keys, or (field `value`) for a value
-- JSON cannot hold (a function, a table too deep) or over 16 MiB as JSON
function seal.seal_json(keys, value, aad)
  return core.seal_json(keys, value, aad)
end

--- Opens a blob that `seal_json` made (or that `seal` made of a JSON text)
-- and decodes it. Integral numbers are integers (Lua 5.3+); JSON's `null`
-- inside is `cjson.null`.
-- @tparam {string,...} keys the keys, newest first
-- @tparam string blob
-- @tparam[opt=""] string aad the context it was sealed for
-- @return[1] the value (a table for what the gate seals)
-- @treturn[2] nil
-- @treturn[2] string why: as `open`, or `not JSON`
-- @raise an `argument` error for bad keys
function seal.open_json(keys, blob, aad)
  return core.open_json(keys, blob, aad)
end

return seal
