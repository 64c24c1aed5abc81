--- tfauth: the FNDTN authentication API client.
-- A thin face over the C core (`tfauth.core`): the default client and the
-- module-level functions that use it. Everything else is the core's.
local core = require "tfauth.core"
local session = require "tfauth.session"

local tfauth = {
  _VERSION = "tfauth " .. core.version,
  version = core.version,
  Error = core.Error,
  is_error = core.is_error,
  kinds = core.kinds,
  operations = core.operations,
  session = session,
  jwt = require "tfauth.jwt",
}

--- client:session(source[, options]): a self-refreshing token session
-- (see `tfauth.session`).
function core.client_methods.session(client, source, options)
  return session.new(client, source, options)
end

--- A new client. See lua-api.md for the configuration fields.
function tfauth.new(config)
  return core.new(config, "new")
end

local default_client -- created by configure, or from the environment at first use

--- Sets the configuration of the default client the module functions use.
-- The previous default client, if any, is closed.
function tfauth.configure(config)
  local client = core.new(config, "configure")
  if default_client then default_client:close() end
  default_client = client
  return client
end

--- The default client (created from TOANFNDTN_SERVER_URL and
-- TOANFNDTN_BEARER when `configure` was never called).
function tfauth.default_client()
  if not default_client then default_client = core.new(nil, "configure") end
  return default_client
end

-- tfauth.login{...} and friends, one per operation name and alias.
for name in pairs(core.operations) do
  tfauth[name] = function(params, overrides)
    local client = tfauth.default_client()
    return client[name](client, params, overrides)
  end
end

return tfauth
