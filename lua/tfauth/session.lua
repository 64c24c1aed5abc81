--- A token session that refreshes itself.
--
--    local s <close> = client:session { user = "alice", password = pw }
--    local token = s:access_token()   -- valid: refreshed first when it expires within `skew`
--
-- Built on any client (the libcurl one, or a transport written in Lua): it
-- calls only `login`, `refresh` and `logout`. Keycloak rotates refresh
-- tokens, so a session never refreshes twice at once: within one Lua state,
-- coroutines that ask together wait for the one refresh in flight.
-- @module tfauth.session
local core = require "tfauth.core"
local jwt = require "tfauth.jwt"
local runtime = require "tfauth.runtime"

local Error = core.Error
local is_error = core.is_error

local session = {}

--- Seconds before expiry at which `access_token` refreshes first.
session.DEFAULT_SKEW = 30

--- The fields `export` writes and a session can be restored from.
session.FIELDS = { "access_token", "refresh_token", "expires_at", "refresh_expires_at", "token_type",
  "scope", "session_state", "id_token" }

local Session = { __name = "tfauth.session" }
Session.__index = Session

local argument = core.argument_error

-- While another coroutine refreshes: in nginx sleep a moment, else yield
-- to whoever drives the coroutines.
local function default_wait()
  if runtime.can_sleep() then return ngx.sleep(0.002) end
  if runtime.yieldable() then return coroutine.yield() end
  error(Error.new("argument", "a refresh is in flight in another coroutine, and this one cannot wait (not yieldable)",
    { operation = "refresh" }))
end

-- pcall that a coroutine may yield across. Lua 5.2+ and LuaJIT have one;
-- plain Lua 5.1's cannot (a transport that yields mid-refresh would fail),
-- so there f runs in a coroutine of its own whose yields are passed on.
local pcall_yieldable = pcall
if _VERSION == "Lua 5.1" and not rawget(_G, "jit") then
  local function resumed(co, ok, ...)
    if not ok then return false, ... end
    if coroutine.status(co) == "dead" then return true, ... end
    return resumed(co, coroutine.resume(co, coroutine.yield(...)))
  end
  pcall_yieldable = function(f, ...)
    local co = coroutine.create(function(...) return f(...) end) -- f may be a C function
    return resumed(co, coroutine.resume(co, ...))
  end
end

local function check_options(options)
  if options == nil then return {} end
  if type(options) ~= "table" then error(argument("session", "options", "expected a table, got " .. type(options))) end
  for key, value in pairs(options) do
    if key == "skew" then
      if type(value) ~= "number" or value < 0 then error(argument("session", "skew", "expected a number >= 0")) end
    elseif key == "clock" or key == "wait" or key == "on_refresh" then
      if type(value) ~= "function" then error(argument("session", key, "expected a function")) end
    else
      error(argument("session", tostring(key), "is not a known session option"))
    end
  end
  return options
end

-- Takes the tokens a TokenOpenID (or an exported state) holds.
function Session:_take(tokens)
  local t = {}
  for _, field in ipairs(session.FIELDS) do t[field] = tokens[field] end
  if type(t.access_token) ~= "string" or type(t.refresh_token) ~= "string" then
    error(argument("session", "tokens", "need access_token and refresh_token strings"))
  end
  if t.expires_at == nil then -- a bare TokenOpenID from elsewhere: the token itself says
    local ok, claims = pcall(jwt.claims, t.access_token)
    if ok and type(claims.exp) == "number" then
      t.expires_at = claims.exp
    else
      t.expires_at = self._now() + (tonumber(tokens.expires_in) or 0)
    end
  end
  self._tokens = t
end

--- A session on `client`.
-- @param client a tfauth client (or any object with `login`, `refresh`, `logout` methods)
-- @tparam table source `{ user =, password =, remember_me = }` to log in now, or the
-- tokens of an existing login: a TokenOpenID or what `export` returned
-- @tparam[opt] table options `skew` (seconds, default 30), `clock` (function returning
-- seconds, default `os.time`), `wait` (function called while another coroutine refreshes),
-- `on_refresh` (function(session) after each refresh, to store the new state)
-- @treturn Session
-- @raise the login's error, or an `argument` error
function session.new(client, source, options)
  options = check_options(options)
  if type(source) ~= "table" then error(argument("session", "source", "expected a table, got " .. type(source))) end
  local self = setmetatable({
    client = client,
    state = "active",
    _skew = options.skew or session.DEFAULT_SKEW,
    _now = options.clock or os.time,
    _wait = options.wait or default_wait,
    _on_refresh = options.on_refresh,
  }, Session)
  if source.refresh_token ~= nil or source.access_token ~= nil then
    self:_take(source)
    if source.state == "expired" or source.state == "closed" then self.state = source.state end
  else
    self:_take(client:login(source))
  end
  return self
end

local function expired_error(self, op)
  local cause = self._error or { kind = "http", message = "its refresh token was rejected" } -- restored expired
  return Error.new(cause.kind, "session expired (log in again): " .. cause.message, {
    operation = op, status = cause.status, error = cause.error, error_description = cause.error_description,
    expired = true,
  })
end

local function check_usable(self, op)
  if self.state == "expired" then error(expired_error(self, op)) end
  if self.state == "closed" then error(argument(op, "session", "the session is logged out")) end
end

--- Refreshes now (single-flight). A refresh token the server rejects
-- (`invalid_grant`) ends the session: it becomes `expired`.
-- @raise the refresh's error
function Session:refresh()
  check_usable(self, "refresh")
  if self._refreshing then
    repeat self._wait() until not self._refreshing
    check_usable(self, "refresh")
    return self
  end
  self._refreshing = true
  local ok, result = pcall_yieldable(self.client.refresh, self.client,
    { refresh_token = self._tokens.refresh_token })
  self._refreshing = false
  if not ok then
    if is_error(result) and result.status == 400 and result.error == "invalid_grant" then
      self.state, self._error = "expired", result
      error(expired_error(self, "refresh"))
    end
    error(result, 0)
  end
  self:_take(result)
  if self._on_refresh then self._on_refresh(self) end
  return self
end

--- A valid access token, refreshed first when it expires within `skew` seconds.
-- @treturn string
function Session:access_token()
  check_usable(self, "access_token")
  if self._refreshing or self._tokens.expires_at - self._skew <= self._now() then self:refresh() end
  return self._tokens.access_token
end

--- Seconds until the access token expires (by the session's clock).
function Session:expires_in()
  return self._tokens.expires_at - self._now()
end

--- The claims of the current access token, **unverified** (see `tfauth.jwt`).
function Session:claims()
  check_usable(self, "claims")
  return jwt.claims(self._tokens.access_token)
end

--- Logs out and forgets the tokens. Idempotent: later calls do nothing.
-- @raise the logout's error (the session then stays as it was)
function Session:logout()
  if self.state == "closed" then return end
  if self.state == "active" then self.client:logout { refresh_token = self._tokens.refresh_token } end
  self.state, self._tokens = "closed", {}
end

--- The state as a plain table (to keep in a store and give back to
-- `session.new`). It holds the tokens: keep it as you would a password.
function Session:export()
  local state = { state = self.state }
  for _, field in ipairs(session.FIELDS) do state[field] = self._tokens[field] end
  return state
end

function Session:__tostring()
  if self.state ~= "active" then return ("tfauth.session (%s)"):format(self.state) end
  return ("tfauth.session (active, access token valid %d s)"):format(self:expires_in())
end

-- `local s <close> = ...` logs out at the end of the scope; errors are dropped.
function Session:__close()
  pcall(self.logout, self)
end

session.Session = Session
return session
