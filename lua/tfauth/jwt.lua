--- JWTs: claims decoded (**not verified**), and JWS verification.
--
-- `claims(token)` base64url-decodes the payload and parses it as JSON. It
-- does **not** check the signature, the issuer, the audience or the expiry:
-- the claims are only as trustworthy as the channel the token came from. Use
-- them to read `exp`, `sub` and the like from tokens the FNDTN server just
-- gave you over TLS; never to decide whom to trust.
--
-- To decide whom to trust, verify: `keyset(jwks)` turns the realm's public
-- keys (Keycloak's `<issuer>/protocol/openid-connect/certs`) into a keyset,
-- once; `verify(token, keys, opts)` checks a token against it, in the C core
-- on OpenSSL's libcrypto:
--
--    local jwt = require "tfauth.jwt"
--    local keys = jwt.keyset(jwks_json)        -- once, and again when the realm rotates keys
--    local claims, header = jwt.verify(token, keys, {
--      issuer = "https://kc.example/realms/fndtn",
--      audience = "fndtn-api", types = { "at+jwt", "Bearer" },
--    })
--
-- Nothing in the token is trusted to choose how it is checked: its `kid`
-- only selects among the keyset's keys, its `alg` must be in `algorithms`,
-- and `jku`, `jwk`, `x5u`, `x5c` headers are never read. A refusal raises
-- an `Error` of kind `token` with a `reason`: `malformed`, `algorithm`,
-- `key` (with `kid_missing = true` when the token's `kid` is not in the
-- set), `signature`, `expired`, `not_yet_valid`, `issuer`, `audience` or
-- `type`. It also names what the token claimed, for an operator to read:
-- `kid` and `alg` from its header once that was read, `iss` once the claims
-- were (each only when a string). No message ever holds the token, its
-- signature or any other part of it.
-- `tfauth.safe.jwt` has the same functions returning `nil, err`.
-- @module tfauth.jwt
local core = require "tfauth.core"

local jwt = {}

--- The payload of a JWT as a table, **unverified**.
-- Integral numbers are integers (`exp`, `iat`, ...). Never use these claims
-- to decide whom to trust: see `verify`.
-- @tparam string token a JWT (`header.payload.signature`)
-- @treturn table the claims
-- @raise an `argument` error (field `token`) when the token is not a JWT
-- with a base64url JSON-object payload; the message never quotes the token.
function jwt.claims(token)
  return core.jwt_claims(token)
end

--- A keyset: the usable public keys of a JWKS, ready for `verify`.
-- Accepted keys: `kty` RSA (`n`, `e`, at least 2048 bits), EC (`crv` P-256,
-- P-384 or P-521, `x`, `y`, the point on the curve), OKP (`crv` Ed25519,
-- `x`). A key whose `use` is present and not `sig`, whose `key_ops` lack
-- `verify`, whose `alg` is not one `verify` accepts or does not fit its type,
-- whose RSA modulus is over 8192 bits (measured before OpenSSL builds it:
-- larger keys cost most of a second of CPU each), or that OpenSSL refuses,
-- is skipped; a token naming a skipped key by `kid` is refused with reason
-- `key`. A key with an `alg` verifies tokens of that `alg` only (`EdDSA` and
-- `Ed25519` included: a key with either verifies that name only; without
-- `alg`, an Ed25519 key verifies both). Make it once per JWKS, not per token.
--
-- The keyset has methods `kids()` (the list of its keys' `kid`s) and
-- `count()`; `#keys` is the count too (Lua 5.2+ and LuaJIT), and
-- `tostring(keys)` says how many keys it holds.
-- @tparam string|table jwks the JWKS as JSON text, or decoded: `{ keys = { ... } }`
-- @return the keyset (userdata)
-- @raise an `argument` error (field `jwks`) when it is not a JWKS or holds no usable key
function jwt.keyset(jwks)
  return core.jwt_keyset(jwks)
end

--- Verifies a JWS-signed JWT and returns its claims and header.
-- Checks, in order: the shape (three unpadded base64url segments, at most
-- 16 KiB), the header (a JSON object, no `crit`), `alg` in `algorithms`, a
-- key of the set (by `kid` when the token names one; else each key that fits
-- `alg`), the signature, then the claims: `exp` (required), `nbf` and `iat`
-- (when present; `iat` in the future is refused), each with `leeway`; `iss`
-- equal to `issuer`; `aud` (a string or a list) holding one of `audience`;
-- the token's type (see `types`).
-- @tparam string token the compact JWS
-- @param keys a keyset from `keyset`
-- @tparam table opts
--   `issuer` (required: the exact expected `iss`, or `false` to skip the check),
--   `audience` (string or list; nil: unchecked),
--   `algorithms` (allow-list, default `{ "RS256" }`; from RS256/384/512,
--   PS256/384/512, ES256/384/512, EdDSA, Ed25519, matched exactly: `EdDSA`
--   and `Ed25519` (the fully-specified name for the same signature) are two
--   names, list both to take both; `none` and HS* are an `argument` error),
--   `types` (the token types taken: a token passes when its header's `typ`
--   is one of them, compared as RFC 7515 §4.1.9 says (ignoring case, with or
--   without `application/`: `at+jwt`, `AT+JWT` and `application/at+jwt` are
--   one), or when its header's `typ` is absent or `JWT` and its `typ` claim is
--   one of them (compared exactly). So `{ "at+jwt", "Bearer" }` takes RFC 9068
--   access tokens and Keycloak's, and refuses Keycloak's ID and refresh tokens
--   (claim `ID`, `Refresh`) and a standard ID token (header `JWT` or none, no
--   `typ` claim). nil or `false`: unchecked),
--   `leeway` (seconds of clock skew on `exp`/`nbf`/`iat`, default 0),
--   `now` (seconds since the epoch, default the current time).
--   Unknown option names are an `argument` error.
-- @treturn table the claims (integral numbers as integers)
-- @treturn table the header
-- @raise an `Error` of kind `token` with `reason` when the token is refused;
-- an `argument` error naming the field for bad arguments or options
function jwt.verify(token, keys, opts)
  return core.jwt_verify(token, keys, opts)
end

return jwt
