-- Many nginx nodes: Redis (tfauth.store's `redis` backend), through
-- Debian's lua-nginx-redis over cosockets: one server (host, port), a
-- master found through Sentinel (sentinels, master_name), or a Redis Cluster
-- (cluster: seed nodes; routed by tfauth.store.cluster). TLS, ACL users and
-- SELECT are the connection's (tfauth.store.connection).
--
-- Keys: prefix .. key, as before, outside Cluster (a rolling upgrade keeps
-- every session). In Cluster the part after the key's first ":" becomes a
-- hash tag (tfauth:s:{sid}, tfauth:lock:{sid}): a session and its lock share
-- a slot, so the scripts that read one and write the other run on one node.
local connection = require "tfauth.store.connection"
local ids = require "tfauth.ids"

local Redis = { __name = "tfauth.store.redis" }
Redis.__index = Redis

local null = ngx.null

-- Compare-and-delete: a lock is released only by its owner.
local UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

-- SET under a lock held by ARGV[3] (and XX when ARGV[4] is "1"): 1 written, 0 not.
local SET_LOCKED = [[
if redis.call('get', KEYS[2]) ~= ARGV[3] then return 0 end
local args = { 'set', KEYS[1], ARGV[1] }
if tonumber(ARGV[2]) > 0 then args[#args + 1] = 'EX'; args[#args + 1] = ARGV[2] end
if ARGV[4] == '1' then args[#args + 1] = 'XX' end
if redis.call(unpack(args)) then return 1 end
return 0]]

-- DEL under a lock held by ARGV[1]: 1 done, 0 the lock is not held.
local DELETE_LOCKED = [[
if redis.call('get', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1])
return 1]]

-- The stored name of key.
function Redis:key(key)
  if not self.cluster then return self.prefix .. key end
  local head, rest = key:match("^([^:]*:)(.+)$")
  if not head then return self.prefix .. "{" .. key .. "}" end
  return self.prefix .. head .. "{" .. rest .. "}"
end

-- What a failover looks like while it lasts: the command did not run (or
-- running it twice is harmless), so it may be tried again.
local PASSING = { connect = true, readonly = true, moved = true }

-- Runs f(red) where key lives: f's result, or nil, err, kind. With
-- failover_wait_ms, an error of a failover in progress is retried (every
-- 0.2 s) until a master answers or that time has passed: the request waits
-- out the failover instead of failing.
function Redis:run(key, f)
  local stored = self:key(key)
  local res, err, kind = self.router:run(stored, f)
  if not (res == nil and err) or self.failover_wait_ms == 0 or not PASSING[kind] then return res, err, kind end
  local deadline = ngx.now() + self.failover_wait_ms / 1000
  repeat
    ngx.sleep(0.2)
    res, err, kind = self.router:run(stored, f)
    ngx.update_time()
  until not (res == nil and err) or not PASSING[kind] or ngx.now() >= deadline
  return res, err, kind
end

-- After a write: WAIT for wait_replicas replicas when configured.
local function replicated(self, red, res, err)
  if not res or res == null or self.wait_replicas == 0 then return res, err end
  -- the socket waits longer than WAIT itself, so WAIT's own answer comes back
  red:set_timeout(self.wait_timeout_ms + self.timeout_ms)
  local acked, werr = red:wait(self.wait_replicas, self.wait_timeout_ms)
  red:set_timeout(self.timeout_ms)
  if not acked then return acked, werr end
  if acked < self.wait_replicas then
    return false, ("NOREPLICAS WAIT: the write reached %d of %d replicas"):format(acked, self.wait_replicas)
  end
  return res
end

function Redis:get(key)
  local value, err, kind = self:run(key, function(red) return red:get(self:key(key)) end)
  if value == null then return nil end
  return value, err, kind
end

--- key = value for ttl seconds (0: no expiry); options as the shared dict's
-- (exists: SET ... XX; lock and token: a script that checks the lock first).
-- true, false (not written), or nil, err, kind.
function Redis:set(key, value, ttl, options)
  ttl = ttl and ttl > 0 and math.ceil(ttl) or 0
  options = options or {}
  local stored = self:key(key)
  local res, err, kind = self:run(key, function(red)
    local out, rerr
    if options.lock then
      out, rerr = red:eval(SET_LOCKED, 2, stored, self:key(options.lock), value, ttl, options.token,
        options.exists and "1" or "0")
      if out == 0 then return null end
    elseif ttl > 0 then
      if options.exists then out, rerr = red:set(stored, value, "EX", ttl, "XX")
      else out, rerr = red:set(stored, value, "EX", ttl) end
    elseif options.exists then
      out, rerr = red:set(stored, value, "XX")
    else
      out, rerr = red:set(stored, value)
    end
    return replicated(self, red, out, rerr)
  end)
  if res == nil and err then return nil, err, kind end
  return res ~= null
end

--- Deletes key; options.lock and options.token: only while that lock is held (false otherwise).
function Redis:delete(key, options)
  local stored = self:key(key)
  local res, err, kind = self:run(key, function(red)
    if options and options.lock then
      local out, rerr = red:eval(DELETE_LOCKED, 2, stored, self:key(options.lock), options.token)
      if out == 0 then return null end
      return out, rerr
    end
    return red:del(stored)
  end)
  if res == nil and err then return nil, err, kind end
  return res ~= null
end

function Redis:lock(key, ttl_ms)
  local token = ids.random_hex(16)
  local res, err, kind = self:run(key, function(red)
    local out, serr = red:set(self:key(key), token, "NX", "PX", math.ceil(ttl_ms))
    if out ~= null then return out, serr end
    -- held: by us, when a first try of this call ran before its connection failed?
    local holder, gerr = red:get(self:key(key))
    if holder == token then return "OK" end
    if holder == false then return holder, gerr end
    return null
  end)
  if res == nil and err then return nil, err, kind end
  if res == null then return false end
  return token
end

function Redis:unlock(key, token)
  local res, err, kind = self:run(key, function(red) return red:eval(UNLOCK, 1, self:key(key), token) end)
  if res == nil and err then return nil, err, kind end
  return true
end

function Redis:incr(key)
  return self:run(key, function(red) return red:incr(self:key(key)) end)
end

-- ZADD first, as a command of its own: a script's writes are not refused
-- by maxmemory the way a command's are (Redis 7 lets an unflagged script's
-- ZADD through), and an index that grows past maxmemory is a full store too.
function Redis:add_member(index_key, member, score, ttl)
  ttl = ttl and ttl > 0 and math.ceil(ttl) or 0
  local stored = self:key(index_key)
  local res, err, kind = self:run(index_key, function(red)
    local added, aerr = red:zadd(stored, score, member)
    if not added then return added, aerr end
    if ttl == 0 then return true end
    local dropped, derr = red:zremrangebyscore(stored, "-inf", "(" .. (ngx.time() - ttl))
    if not dropped then return dropped, derr end
    return red:expire(stored, ttl)
  end)
  if res == nil and err then return nil, err, kind end
  return true
end

function Redis:members(index_key)
  local res, err, kind = self:run(index_key, function(red)
    return red:zrange(self:key(index_key), 0, -1, "WITHSCORES")
  end)
  if not res then return nil, err, kind end
  local out = {}
  for i = 1, #res, 2 do out[#out + 1] = { member = res[i], score = tonumber(res[i + 1]) } end
  return out
end

function Redis:remove_member(index_key, member)
  local res, err, kind = self:run(index_key, function(red) return red:zrem(self:key(index_key), member) end)
  if res == nil and err then return nil, err, kind end
  return true
end

---------------------------------------------------------------------------
-- One server: the node is fixed.
local Single = {}
Single.__index = Single

function Single:run(_, f)
  return connection.run(self.options, self.node, f)
end

local stores_made = 0

return function(config)
  stores_made = stores_made + 1
  local options = {
    pool_id = stores_made,
    tls = config.tls, username = config.username, password = config.password, database = config.database or 0,
    timeout_ms = config.timeout_ms or 1000, connect_timeout_ms = config.connect_timeout_ms,
    pool_size = config.pool_size or 32, keepalive_ms = config.keepalive_ms or 60000,
  }
  local self = setmetatable({
    prefix = config.prefix or "tfauth:", cluster = config.cluster ~= nil,
    wait_replicas = config.wait_replicas or 0, wait_timeout_ms = config.wait_timeout_ms or options.timeout_ms,
    timeout_ms = options.timeout_ms, failover_wait_ms = config.failover_wait_ms or 0,
  }, Redis)
  if config.sentinels then
    self.router = require("tfauth.store.sentinel").new(config, options)
  elseif config.cluster then
    self.router = require("tfauth.store.cluster").new(config, options)
  else
    self.router = setmetatable({ options = options,
      node = { host = config.host or "127.0.0.1", port = config.port or 6379 } }, Single)
  end
  return self
end
