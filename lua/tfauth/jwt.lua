--- A JWT's claims, decoded but **not verified**.
--
-- `claims(token)` base64url-decodes the payload and parses it as JSON. It
-- does **not** check the signature, the issuer, the audience or the expiry:
-- the claims are only as trustworthy as the channel the token came from. Use
-- them to read `exp`, `sub` and the like from tokens the FNDTN server just
-- gave you over TLS; never to decide whom to trust.
-- @module tfauth.jwt
local core = require "tfauth.core"

local jwt = {}

--- The payload of a JWT as a table, unverified.
-- Integral numbers are integers (`exp`, `iat`, ...).
-- @tparam string token a JWT (`header.payload.signature`)
-- @treturn table the claims
-- @raise an `argument` error (field `token`) when the token is not a JWT
-- with a base64url JSON-object payload; the message never quotes the token.
function jwt.claims(token)
  return core.jwt_claims(token)
end

return jwt
