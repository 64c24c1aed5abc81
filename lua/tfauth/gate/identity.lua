--- Identity: what a token's claims say about its holder, the rules that
-- judge it, and bearer tokens verified locally and cached per worker until
-- their `exp`.
-- @module tfauth.gate.identity
local tfauth = require "tfauth"
local runtime = require "tfauth.runtime"
local metrics = require "tfauth.gate.metrics"

local identity = {}

-- %c: the C locale's control characters, 0-31 and 127 (nginx never sets a
-- locale); one class test a byte, where a bracket set is parsed at each.
local function header_safe(v)
  if type(v) == "string" and v ~= "" and not v:find("%c") then return v end
end

-- A realm role the header and the rules may name: a string without a comma
-- (the header joins them with commas).
local function is_role(v) return type(v) == "string" and not v:find(",", 1, true) end

-- The token's realm roles that are roles (is_role): its own list when every
-- entry is one (no new table), else those entries.
local function realm_roles(claims)
  local realm = type(claims.realm_access) == "table" and claims.realm_access.roles or nil
  if type(realm) ~= "table" then return {} end
  for i = 1, #realm do
    if not is_role(realm[i]) then
      local names = {}
      for _, role in ipairs(realm) do
        if is_role(role) then names[#names + 1] = role end
      end
      return names
    end
  end
  return realm
end

--- The identity of a token's claims: { user, email (only when verified),
-- sub, roles (comma-separated), realm_roles (list), resource_access (the
-- claim's table, or nil), authorization (the header that hands the token
-- on), exp }. Made for every first sight of a token and kept in the
-- verified-token cache: it reuses the tables the claims' decoding made and
-- makes no role sets (rules look a role up in the lists; a user holds a
-- few), so that each cache entry holds few objects for the collector to
-- mark (docs/performance.md, sixth pass).
function identity.of(claims, authorization)
  local names = realm_roles(claims)
  return {
    user = header_safe(claims.preferred_username),
    email = claims.email_verified == true and header_safe(claims.email) or nil,
    sub = header_safe(claims.sub),
    roles = header_safe(table.concat(names, ",")),
    realm_roles = names,
    resource_access = type(claims.resource_access) == "table" and claims.resource_access or nil,
    authorization = authorization,
    exp = tonumber(claims.exp),
  }
end

local function holds(list, role)
  for i = 1, #list do
    if list[i] == role then return true end
  end
  return false
end

-- The roles who holds for client: the claim's list, or nil.
local function client_roles(who, client)
  local access = who.resource_access and who.resource_access[client]
  local roles = type(access) == "table" and access.roles or nil
  return type(roles) == "table" and roles or nil
end

-- What a rule that lists nothing iterates over: no table made per request.
local NONE = setmetatable({}, { __newindex = function() error("tfauth.gate: NONE is read-only", 2) end })

--- Whether rules let who in. rules: nil (any valid user) or { roles = {...},
-- client_roles = { [client] = {...} } }: any one listed role lets in; rules
-- that list none let nobody in.
function identity.allowed_by(rules, who)
  if rules == nil then return true end
  if type(rules) ~= "table" then error("tfauth.gate: rules must be a table", 3) end
  for key in pairs(rules) do
    if key ~= "roles" and key ~= "client_roles" then error("tfauth.gate: unknown rule " .. tostring(key), 3) end
  end
  for _, role in ipairs(rules.roles or NONE) do
    if holds(who.realm_roles, role) then return true end
  end
  for client, roles in pairs(rules.client_roles or NONE) do
    local held = client_roles(who, client)
    if held then
      for _, role in ipairs(roles) do
        if holds(held, role) then return true end
      end
    end
  end
  return false
end

--- Errors that say the auth API or the key set could not be reached.
identity.TRANSIENT = { network = true, timeout = true, tls = true }

--- Where the token of an Authorization header whose scheme is Bearer is:
-- text, skip (the token is text after its first skip bytes), or nil
-- (another scheme); "", 0 for a bearer whose token is malformed by its spacing.
function identity.bearer_token(authorization)
  -- The hot path reads the token in place: no pattern over it (~20
  -- instructions a byte) and no `sub` (a second long string for LuaJIT to
  -- intern, whose bytes a client chooses). nginx trims the value, so
  -- "Bearer <token>" is the usual shape. Anything else goes through the
  -- patterns; a token with inner whitespace is malformed.
  if authorization:byte(7) == 32 and authorization:byte(8) ~= 32 and authorization:sub(1, 6):lower() == "bearer" then
    return authorization, 7
  end
  local _, last, scheme = authorization:find("^%s*(%S+)")
  if not scheme or scheme:lower() ~= "bearer" then return nil end
  return select(3, authorization:find("^%s*(%S*)%s*$", last + 1)) or "", 0
end

--- The cached identity of an Authorization header whose token was verified
-- before and has not expired, or nil. Keyed by the header as nginx gives it:
-- no new string is made from the token on this path.
function identity.cached(state, authorization)
  local who = state.tokens:get(authorization)
  if not who then return nil end
  if who.exp and who.exp > ngx.now() then return who end
  state.tokens:delete(authorization)
end

-- What a refusal may quote of a token (its header's kid and alg, the iss
-- claim): every byte outside printable ASCII, `"` and `\` as \xHH, at most
-- 64 characters, so that a hostile token can neither forge log lines nor
-- fill the log.
local LOGGED_MAX = 64
local function loggable(value)
  if type(value) ~= "string" then return "-" end
  local out, length = {}, 0
  for i = 1, #value do
    local byte = value:byte(i)
    local piece = (byte < 32 or byte > 126 or byte == 34 or byte == 92) and ("\\x%02x"):format(byte)
      or string.char(byte)
    if length + #piece > LOGGED_MAX then break end
    out[#out + 1], length = piece, length + #piece
  end
  return '"' .. table.concat(out) .. '"'
end

-- One count per refused token, by its reason (the C core's fixed set, else
-- "error"), and when logged (info lines are), one line: what the token
-- claimed to be, never the token, its signature or its other claims.
local function refused(state, err, logged)
  local is_token = tfauth.is_error(err) and err.kind == "token"
  local reason = is_token and err.reason or "error"
  metrics.bearer_refused(state, reason)
  if not logged then return reason end -- at the usual warn, formatting it is waste
  ngx.log(ngx.INFO, "tfauth: bearer token refused: reason=", reason, " kid=", loggable(is_token and err.kid),
    " alg=", loggable(is_token and err.alg), " iss=", loggable(is_token and err.iss))
  return reason
end

--- The identity of a bearer token, text after its first skip bytes
-- (`bearer_token`'s answer; verified, then cached under its Authorization
-- header until its exp), or nil, "refused" | "unavailable", why.
function identity.of_bearer(state, text, skip, authorization)
  -- The shape (three base64url segments, 16 KiB at most) is the C core's to
  -- check: tfauth.jwks refuses a malformed token before any fetch.
  -- A refusal comes back as a value (no error raised and caught per
  -- refused token); an unreachable key set or a bug is raised. When no
  -- info line will be logged, only its reason (lean: no error object, its
  -- message and fields made: ~4,000 instructions off each refused token).
  local logged = runtime.logs(ngx.INFO)
  local ok, claims, err = pcall(state.jwks._check_in, state.jwks, text, skip, state.bearer.verify, not logged)
  if not ok then
    err = claims
    if tfauth.is_error(err) and identity.TRANSIENT[err.kind] then return nil, "unavailable", tostring(err) end
    if not (tfauth.is_error(err) and err.kind == "token") then -- a malformed token is refused before a fetch
      ngx.log(ngx.ERR, "tfauth: bearer verification failed: ", tostring(err))
    end
    return nil, "refused", refused(state, err, logged)
  end
  if not claims then
    if logged then return nil, "refused", refused(state, err, true) end
    metrics.bearer_refused(state, err) -- lean: err is the reason
    return nil, "refused", err
  end
  local who = identity.of(claims, authorization)
  local ttl = (who.exp or 0) - ngx.now()
  if ttl > 0 then state.tokens:set(authorization, who, ttl) end
  return who
end

return identity
