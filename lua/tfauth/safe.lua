--- The same API as `tfauth`, returning `nil, err` instead of raising.
--
--    local safe = require "tfauth.safe"
--    local tokens, err = safe.login { user = "alice", password = pw }
--    if not tokens then print(err.kind, err.status, err.message) end
--
-- Every module function and operation name of `tfauth` is here, and
-- `safe.new{...}` gives a client whose methods (the operations, `session`,
-- `close`, `is_open`) do the same. Only `tfauth.Error`s become return
-- values: misuse that is a bug in the calling code (a method called on
-- something that is not a client, say) still raises.
-- @module tfauth.safe
local tfauth = require "tfauth"

local is_error = tfauth.is_error

local function returning(ok, ...)
  if ok then return ... end
  local err = ...
  if is_error(err) then return nil, err end
  error(err, 0)
end

local function safely(f)
  return function(...) return returning(pcall(f, ...)) end
end

local safe = {
  _VERSION = tfauth._VERSION,
  version = tfauth.version,
  Error = tfauth.Error,
  is_error = is_error,
  kinds = tfauth.kinds,
  operations = tfauth.operations,
}

-- A safe client wraps a client: same methods, nil, err on failure.
local SafeClient = { __name = "tfauth.safe.client" }
local methods = {}
SafeClient.__index = methods

for name in pairs(tfauth.operations) do
  methods[name] = function(self, params, overrides)
    if getmetatable(self) ~= SafeClient then
      error("tfauth.safe: " .. name .. " must be called as client:" .. name .. "{...}", 2)
    end
    return returning(pcall(self.client[name], self.client, params, overrides))
  end
end

function methods:session(source, options)
  return returning(pcall(self.client.session, self.client, source, options))
end
function methods:close() return self.client:close() end
function methods:is_open() return self.client:is_open() end
SafeClient.__close = function(self) self.client:close() end
SafeClient.__tostring = function(self) return "tfauth.safe." .. tostring(self.client):gsub("^tfauth%.", "") end

local function wrap(client) return setmetatable({ client = client }, SafeClient) end

--- A client whose methods return `nil, err`.
-- @tparam table config as for `tfauth.new`
-- @return the client, or `nil, err`
function safe.new(config)
  local client, err = returning(pcall(tfauth.new, config))
  if not client then return nil, err end
  return wrap(client)
end

--- Configures the default client (as `tfauth.configure`).
-- @tparam table config
-- @return a safe wrapper of the new default client, or `nil, err`
function safe.configure(config)
  local client, err = returning(pcall(tfauth.configure, config))
  if not client then return nil, err end
  return wrap(client)
end

for name in pairs(tfauth.operations) do
  safe[name] = safely(tfauth[name])
end

--- `tfauth.jwt`'s functions, returning `nil, err` instead of raising:
-- `safe.jwt.claims(token)`, `safe.jwt.keyset(jwks)`,
-- `safe.jwt.verify(token, keys, opts)` (-> claims, header, or nil, err;
-- the same `opts`, `types` included; `err.kind` is `token`, `err.reason`
-- says why and `err.kid`, `err.alg`, `err.iss` what the token claimed, when
-- the token is refused).
safe.jwt = {
  claims = safely(tfauth.jwt.claims),
  keyset = safely(tfauth.jwt.keyset),
  verify = safely(tfauth.jwt.verify),
}

--- `tfauth.jwks` returning `nil, err` instead of raising:
-- `safe.jwks.new{...}` gives a jwks (or `nil, err`) whose `verify(token, opts)`
-- (the same `opts`, `types` included) and `keyset()` return `nil, err` on failure.
safe.jwks = {}
local SafeJwks = { __name = "tfauth.safe.jwks" }
SafeJwks.__index = {
  verify = function(self, token, opts) return returning(pcall(self.jwks.verify, self.jwks, token, opts)) end,
  keyset = function(self) return returning(pcall(self.jwks.keyset, self.jwks)) end,
}
SafeJwks.__tostring = function(self) return "tfauth.safe." .. tostring(self.jwks):gsub("^tfauth%.", "") end

function safe.jwks.new(config)
  local j, err = returning(pcall(require("tfauth.jwks").new, config))
  if not j then return nil, err end
  return setmetatable({ jwks = j }, SafeJwks)
end

return safe
