--- Session stores for nginx: where the auth hook keeps sealed sessions.
--
-- Two backends with one interface: `shared_dict` (one nginx node: a
-- `lua_shared_dict`, shared by its workers) and `redis` (many nodes: Debian's
-- lua-nginx-redis, `require "nginx.redis"`, over cosockets with its
-- connection pool). Every method returns its result, or `nil, err` when the
-- store could not be reached; an absent key is `nil` without `err`.
--
-- A store may also have `stamp(key)`: a cheap marker that changes whenever
-- the value does (the shared dict keeps a counter beside each value), so a
-- reader that cached the decoded value need not read the value itself.
--
--    local store = require("tfauth.store").new { kind = "redis", host = "127.0.0.1", port = 6379 }
-- @module tfauth.store
local store = {}

--- n random bytes from /dev/urandom, as hexadecimal (lock tokens, session ids).
function store.random_hex(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(n)
  f:close()
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Compare-and-delete: a lock is released only by its owner.
local UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

---------------------------------------------------------------------------
-- One node: a lua_shared_dict.
local Dict = { __name = "tfauth.store.shared_dict" }
Dict.__index = Dict

function Dict:get(key)
  local value, err = self.dict:get(key)
  if value == nil and err then return nil, err end
  return value
end

function Dict:set(key, value, ttl)
  local ok, err = self.dict:set(key, value, ttl or 0)
  if not ok then return nil, err end
  self.dict:incr("~" .. key, 1, 0)
  self.dict:expire("~" .. key, ttl or 0) -- the stamp lives exactly as long as the value
  return true
end

function Dict:delete(key)
  self.dict:delete(key)
  self.dict:delete("~" .. key)
  return true
end

function Dict:stamp(key)
  return self.dict:get("~" .. key)
end

function Dict:lock(key, ttl_ms)
  local token = store.random_hex(16)
  local ok, err = self.dict:add(key, token, ttl_ms / 1000)
  if ok then return token end
  if err == "exists" then return false end
  return nil, err
end

function Dict:unlock(key, token)
  if self.dict:get(key) == token then self.dict:delete(key) end -- no yield between: atomic in the worker
  return true
end

function Dict:incr(key)
  return self.dict:incr(key, 1, 0)
end

---------------------------------------------------------------------------
-- Many nodes: Redis, through lua-resty-redis over cosockets.
local Redis = { __name = "tfauth.store.redis" }
Redis.__index = Redis

-- Runs f(red) on a pooled connection; returns f's result, or nil, err.
local function with_redis(self, f)
  local red = self.driver:new()
  red:set_timeout(self.timeout_ms) -- connect, send and read (set_timeouts logs an error before connect)
  local ok, err = red:connect(self.host, self.port)
  if not ok then return nil, "redis " .. self.host .. ":" .. self.port .. ": " .. tostring(err) end
  if self.password and red:get_reused_times() == 0 then
    ok, err = red:auth(self.password)
    if not ok then return nil, "redis auth: " .. tostring(err) end
  end
  local res, ferr = f(red)
  if res == nil and ferr then
    red:close()
    return nil, "redis: " .. tostring(ferr)
  end
  red:set_keepalive(self.keepalive_ms, self.pool_size)
  return res
end

function Redis:get(key)
  local value, err = with_redis(self, function(red) return red:get(self.prefix .. key) end)
  if value == ngx.null then return nil end
  return value, err
end

function Redis:set(key, value, ttl)
  return with_redis(self, function(red)
    if ttl and ttl > 0 then return red:set(self.prefix .. key, value, "EX", math.ceil(ttl)) end
    return red:set(self.prefix .. key, value)
  end)
end

function Redis:delete(key)
  return with_redis(self, function(red) return red:del(self.prefix .. key) end)
end

function Redis:lock(key, ttl_ms)
  local token = store.random_hex(16)
  local res, err = with_redis(self, function(red)
    return red:set(self.prefix .. key, token, "NX", "PX", math.ceil(ttl_ms))
  end)
  if res == nil then return nil, err end
  if res == ngx.null then return false end
  return token
end

function Redis:unlock(key, token)
  return with_redis(self, function(red) return red:eval(UNLOCK, 1, self.prefix .. key, token) end)
end

function Redis:incr(key)
  return with_redis(self, function(red) return red:incr(self.prefix .. key) end)
end

---------------------------------------------------------------------------

--- A store.
-- @tparam table config `kind = "shared_dict"` with `name` (the lua_shared_dict), or
-- `kind = "redis"` with `host` (127.0.0.1), `port` (6379), `password`, `prefix`
-- ("tfauth:"), `timeout_ms` (1000), `pool_size` (32), `keepalive_ms` (60000)
-- @return the store
function store.new(config)
  if config.kind == "shared_dict" then
    return setmetatable({ dict = assert(ngx.shared[config.name], "no lua_shared_dict " .. tostring(config.name)) },
      Dict)
  elseif config.kind == "redis" then
    return setmetatable({
      driver = require "nginx.redis",
      host = config.host or "127.0.0.1", port = config.port or 6379, password = config.password,
      prefix = config.prefix or "tfauth:", timeout_ms = config.timeout_ms or 1000,
      pool_size = config.pool_size or 32, keepalive_ms = config.keepalive_ms or 60000,
    }, Redis)
  end
  error("tfauth.store: kind must be \"shared_dict\" or \"redis\"", 2)
end

return store
