--- Session stores for nginx: where the gate keeps sealed sessions.
--
-- Two backends with one interface: `shared_dict` (one nginx node: a
-- `lua_shared_dict`, shared by its workers; `tfauth.store.shared_dict`) and
-- `redis` (many nodes: Debian's lua-nginx-redis over cosockets with its
-- connection pool; one server, Sentinel or Cluster, with TLS and ACL users;
-- `tfauth.store.redis`). Every method returns its result, or `nil, err, kind`
-- when the store could not do it: an error reply from Redis (READONLY,
-- WRONGTYPE, MOVED, OOM...) is such an error, named in `err`, never an
-- absent key. An absent key is `nil` without `err`.
--
-- `kind` is one of a fixed set: `connect`, `timeout`, `auth`, `tls`,
-- `readonly`, `oom`, `moved`, `other`. A full store (a shared dict without
-- room, Redis's OOM) gives an `err` for which `store.full(err)` is true: the
-- shared dict's `err` is exactly `store.FULL` ("no memory"). No write
-- evicts anything.
--
-- The shared dict also has `stamp(key[, name])` (a counter that changes
-- whenever the value does, so a reader that cached the decoded value need
-- not read it again; `stamp_name(key)` is the name it lives under, for a
-- reader that keeps it), `free_bytes()` and `capacity()`.
--
-- Why `tfauth.jwks` keeps its own two small stores (`Local`, `Shared`)
-- rather than this one: it also runs outside nginx (plain Lua, where no
-- store of this module can exist), its values are per node by design (a key
-- set is fetched by each node; putting it in Redis would make every node
-- depend on Redis to verify a token), and it needs a non-blocking "is the
-- lock held" probe that Redis would turn into a network round trip.
--
--    local store = require("tfauth.store").new { kind = "redis", host = "127.0.0.1", port = 6379 }
-- @module tfauth.store
local check = require "tfauth.store.check"
local ids = require "tfauth.ids"

local store = {}

--- The error of a full shared dict ("no memory"); `store.full(err)` also knows Redis's OOM.
store.FULL = "no memory"

--- The kinds of error a store reports (`on_error`'s argument), in a fixed order.
store.ERROR_KINDS = { "connect", "timeout", "auth", "tls", "readonly", "oom", "moved", "other" }

--- The operations timed (`on_duration`'s first argument).
store.OPERATIONS = { "get", "set", "delete", "lock" }

--- Every key a store's configuration may have, by kind, as sorted paths
-- (`tls.verify`; a list's items as `sentinels.host`): `store.KEYS.redis`.
store.KEYS = check.KEYS

--- Deprecated: use `tfauth.ids.random_hex`.
store.random_hex = ids.random_hex

--- Whether err says the store is full (a shared dict without room, or Redis's OOM).
-- @tparam string err an error returned by a store method
-- @treturn boolean
function store.full(err)
  return type(err) == "string" and (err == store.FULL or err:find(": OOM ", 1, true) ~= nil)
end

--- Checks a store's configuration (every key, nested lists included) without
-- connecting; raises a tfauth argument error (`err.field` the key's whole path,
-- lists indexed `[n]`: `store.tls.verify`, `store.sentinels[2].port`).
-- @tparam table config as for `new`
-- @tparam[opt="tfauth.store"] string where the operation named in the error (the gate: "gate.init")
-- @tparam[opt="store"] string field the config's own path
-- @treturn table config
function store.check(config, where, field)
  return check.config(config, where, field)
end

-- What each method counts as, for on_duration.
local OPERATION_OF = {
  get = "get", members = "get", set = "set", incr = "set", add_member = "set", remove_member = "set",
  delete = "delete", lock = "lock", unlock = "lock",
}

-- A proxy whose methods report their duration and their errors' kinds.
local function observed(backend, observer, timed)
  local on_error, on_duration = observer.on_error, observer.on_duration
  local proxy = setmetatable({}, { __index = backend })
  for method, operation in pairs(OPERATION_OF) do
    local inner = backend[method]
    proxy[method] = function(_, ...)
      local started
      if timed and on_duration then
        ngx.update_time()
        started = ngx.now()
      end
      local res, err, kind = inner(backend, ...)
      if started then
        ngx.update_time()
        on_duration(operation, ngx.now() - started)
      end
      if res == nil and err and on_error then on_error(kind or "other", err) end
      return res, err, kind
    end
  end
  return proxy
end

--- A store.
-- @tparam table config `kind = "shared_dict"` with `name` (the lua_shared_dict), or
-- `kind = "redis"` with `host` (127.0.0.1), `port` (6379), `username` (an ACL
-- user), `password`, `database` (0), `prefix` ("tfauth:"), `timeout_ms` (1000),
-- `connect_timeout_ms` (`timeout_ms`), `pool_size` (32), `keepalive_ms` (60000),
-- `tls` (`{ verify = true, server_name =, cert =, key = }`: cert and key are PEM
-- files; the CAs are nginx's `lua_ssl_trusted_certificate`), `wait_replicas` (0:
-- writes wait for that many replicas, `WAIT n wait_timeout_ms`), `failover_wait_ms` (0:
-- an operation that meets a failover in progress is retried for that long), and instead of
-- host and port either `sentinels` (`{ { host =, port = }, ... }`) with
-- `master_name`, `sentinel_username`, `sentinel_password`, or `cluster`
-- (seed nodes `{ { host =, port = }, ... }`). Checked by `store.check` (raises).
-- @tparam[opt] table observer `on_error(kind, err)` called for every error (kind in
-- `store.ERROR_KINDS`); `on_duration(operation, seconds)` (operation in
-- `store.OPERATIONS`) after every Redis operation (the shared dict's take
-- microseconds and are not timed)
-- @return the store: `get(key)`, `set(key, value, ttl, options)`, `delete(key, options)`,
-- `lock(key, ttl_ms)`, `unlock(key, token)`, `incr(key)`, `add_member(index, member, score, ttl)`,
-- `members(index)`, `remove_member(index, member)`; the shared dict also `stamp(key[, name])`, `stamp_name(key)`,
-- `free_bytes()`, `capacity()`
function store.new(config, observer)
  check.config(config)
  local backend
  if config.kind == "shared_dict" then
    backend = require("tfauth.store.shared_dict")(config)
  else
    backend = require("tfauth.store.redis")(config)
  end
  if observer and (observer.on_error or observer.on_duration) then
    return observed(backend, observer, config.kind == "redis")
  end
  return backend
end

return store
