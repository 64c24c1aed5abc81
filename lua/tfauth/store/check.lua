-- The store's configuration, checked key by key (tfauth.store.check).
--
-- Every key of every nested table is known here; an unknown key, a wrong
-- type or an impossible value is an argument error whose field is the key's
-- whole path, lists indexed Lua's way: `store.tls.verify`,
-- `store.sentinels[2].port`. Nothing is connected to while checking.
local core = require "tfauth.core"

local check = {}

local function refuse(where, field, message)
  error(core.argument_error(where, field, message), 0)
end

-- What each key of a section must be: a Lua type, or a function(value, field, ctx).
local function string_key(value, field, ctx)
  if type(value) ~= "string" then refuse(ctx.where, field, "expected a string, got " .. type(value)) end
  if value == "" or value:find("[%z\1-\31\127]") then
    refuse(ctx.where, field, "expected a non-empty string without control characters")
  end
end

local function integer_key(low, high)
  return function(value, field, ctx)
    if type(value) ~= "number" or value ~= math.floor(value) or value < low or value > high then
      refuse(ctx.where, field, ("expected an integer from %d to %d"):format(low, high))
    end
  end
end

local function positive_key(value, field, ctx)
  if type(value) ~= "number" or value ~= value or value <= 0 or value == math.huge then
    refuse(ctx.where, field, "expected a number > 0")
  end
end

local function boolean_key(value, field, ctx)
  if type(value) ~= "boolean" then refuse(ctx.where, field, "expected a boolean, got " .. type(value)) end
end

local function readable_key(value, field, ctx)
  string_key(value, field, ctx)
  local file = io.open(value, "rb")
  if not file then refuse(ctx.where, field, "cannot read the file " .. value) end
  file:close()
end

local section

local function table_of(spec)
  return function(value, field, ctx) section(value, field, spec, ctx) end
end

local function list_of(spec)
  return function(value, field, ctx)
    if type(value) ~= "table" then refuse(ctx.where, field, "expected a list of tables, got " .. type(value)) end
    local n = 0
    for _ in pairs(value) do n = n + 1 end
    if n == 0 or n ~= #value then refuse(ctx.where, field, "expected a non-empty list") end
    for i, item in ipairs(value) do section(item, ("%s[%d]"):format(field, i), spec, ctx) end
  end
end

function section(value, field, spec, ctx)
  if type(value) ~= "table" then refuse(ctx.where, field, "expected a table, got " .. type(value)) end
  for key, item in pairs(value) do
    local wanted = spec[key]
    local path = field .. "." .. tostring(key)
    if not wanted then
      refuse(ctx.where, path, "is not a known key" .. (ctx.kind and " of a " .. ctx.kind .. " store" or ""))
    end
    wanted(item, path, ctx)
  end
end

local PORT = integer_key(1, 65535)
local NODE = { host = string_key, port = PORT }
local TLS = { verify = boolean_key, server_name = string_key, cert = readable_key, key = readable_key }

local SPECS = {
  shared_dict = { kind = string_key, name = string_key },
  redis = {
    kind = string_key, host = string_key, port = PORT, username = string_key, password = string_key,
    database = integer_key(0, 65535), prefix = string_key, timeout_ms = positive_key,
    connect_timeout_ms = positive_key, pool_size = integer_key(1, 100000), keepalive_ms = integer_key(0, 86400000),
    tls = table_of(TLS), sentinels = list_of(NODE), master_name = string_key, sentinel_username = string_key,
    sentinel_password = string_key, cluster = list_of(NODE), wait_replicas = integer_key(0, 100),
    wait_timeout_ms = positive_key, failover_wait_ms = integer_key(0, 60000),
  },
}

-- Every key's path by kind (tls.verify; a list's items as sentinels.host),
-- sorted: for the documentation's reference and its check.
check.KEYS = {}
for kind, spec in pairs(SPECS) do
  local paths = {}
  for key in pairs(spec) do
    local nested = key == "tls" and TLS or (key == "sentinels" or key == "cluster") and NODE or nil
    if nested then
      for sub in pairs(nested) do paths[#paths + 1] = key .. "." .. sub end
    else
      paths[#paths + 1] = key
    end
  end
  table.sort(paths)
  check.KEYS[kind] = paths
end

-- Rules between keys, once each key is known to be well-formed.
local function redis_rules(config, field, where)
  local function exclusive(a, b)
    if config[a] ~= nil and config[b] ~= nil then
      refuse(where, field .. "." .. b, ("cannot be used with %s.%s"):format(field, a))
    end
  end
  exclusive("sentinels", "cluster")
  exclusive("sentinels", "host")
  exclusive("sentinels", "port")
  exclusive("cluster", "host")
  exclusive("cluster", "port")
  if config.sentinels and not config.master_name then
    refuse(where, field .. ".master_name", "required with sentinels: the name the sentinels monitor")
  end
  for _, key in ipairs { "master_name", "sentinel_username", "sentinel_password" } do
    if config[key] and not config.sentinels then refuse(where, field .. "." .. key, "only with sentinels") end
  end
  if config.username and not config.password then
    refuse(where, field .. ".password", "required with username (AUTH username password)")
  end
  if config.sentinel_username and not config.sentinel_password then
    refuse(where, field .. ".sentinel_password", "required with sentinel_username")
  end
  local tls = config.tls
  if tls and (tls.cert == nil) ~= (tls.key == nil) then
    refuse(where, field .. ".tls." .. (tls.cert and "key" or "cert"), "the client certificate needs both cert and key")
  end
  if config.cluster then
    if config.prefix and config.prefix:find("{", 1, true) then
      refuse(where, field .. ".prefix", "cannot hold { with cluster: the store's hash tags route the keys")
    end
    if tls and tls.verify ~= false and not tls.server_name then
      refuse(where, field .. ".tls.server_name", "required with cluster and tls: nodes are announced by IP")
    end
    if config.database and config.database ~= 0 then
      refuse(where, field .. ".database", "must be 0 with cluster (Redis Cluster has one database)")
    end
  end
end

--- Checks a store's configuration; raises an argument error naming the field.
-- @tparam table config the store's table
-- @tparam[opt="tfauth.store"] string where the operation named in errors (the gate: "gate.init")
-- @tparam[opt="store"] string field the path of the table itself
function check.config(config, where, field)
  where, field = where or "tfauth.store", field or "store"
  if type(config) ~= "table" then refuse(where, field, "expected a table, got " .. type(config)) end
  local kind = config.kind
  if not SPECS[kind] then refuse(where, field .. ".kind", 'expected "shared_dict" or "redis"') end
  section(config, field, SPECS[kind], { where = where, kind = kind })
  if kind == "shared_dict" then
    if not config.name then refuse(where, field .. ".name", "required: the lua_shared_dict's name") end
    if ngx and ngx.shared and not ngx.shared[config.name] then
      refuse(where, field .. ".name", "no lua_shared_dict named " .. config.name .. " (declare it: lua_shared_dict "
        .. config.name .. " 10m;)")
    end
  else
    redis_rules(config, field, where)
  end
  return config
end

return check
