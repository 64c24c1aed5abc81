--- Random identifiers: session ids, nonces, lock tokens and sealing keys.
--
-- Every id tfauth makes is read from the kernel's generator (`/dev/urandom`),
-- never from `math.random`: an id that can be guessed is a session that can
-- be taken.
--
--    local sid = require("tfauth.ids").random_hex(24) -- 48 hex digits
-- @module tfauth.ids
local ids = {}

--- `n` random bytes from `/dev/urandom`, as `2 * n` lowercase hexadecimal digits.
-- @tparam integer n how many bytes (16 for a lock token, 24 for a session id, 32 for a key)
-- @treturn string the hexadecimal digits
function ids.random_hex(n)
  local source = assert(io.open("/dev/urandom", "rb"))
  local bytes = source:read(n)
  source:close()
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

return ids
