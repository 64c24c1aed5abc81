--- Random identifiers: session ids, lock tokens, nonces.
-- @module tfauth.ids
local ids = {}

--- n random bytes from /dev/urandom, as 2n hexadecimal digits.
-- @int n
-- @treturn string
function ids.random_hex(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(n)
  f:close()
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

return ids
