--- authhook: login, guard and logout for nginx, on tfauth.
--
-- The browser holds only an opaque cookie; the tokens stay server-side, in a
-- session store (tfauth.store: a lua_shared_dict for one node, Redis for
-- many), as tfauth.session's exported state, sealed with AES-256-GCM (the
-- session id is bound to its blob, so a blob moved to another id or changed
-- reads as no session). The guard refreshes before expiry, once per session
-- across all workers and nodes: Keycloak rotates refresh tokens, so two
-- refreshes with the same one would lose the session. A lock in the store
-- (atomic add / SET NX PX, with a TTL in case its holder dies, released
-- only by its owner) elects the refresher; the others keep using the
-- current access token while it is still valid, or wait for the new one.
-- Each worker keeps decoded sessions in an LRU cache, checked against the
-- sealed blob (Redis: one GET) or the shared dict's change stamp (a number),
-- so a guarded request costs one store read, not a decryption.
local tfauth = require "tfauth"
local core = require "tfauth.core"
local stores = require "tfauth.store"
local lrucache = require "resty.lrucache" -- Debian's lua-resty-lrucache (with the lua module)
local json = require("cjson").new()

local authhook = {}

local COOKIE = "tfauth_sid"
local COOKIE_VAR = "cookie_" .. COOKIE
local LOCK_TTL_MS = 10000 -- how long a refresher may hold the lock
local WAIT_STEP = 0.01
local WAIT_MAX = 300      -- steps: 3 s
local CACHE_SIZE = 10000  -- decoded sessions per worker

local client, skew, store, keys, cache

--- In init_by_lua. config: `server_url`, `skew`, `store` (see tfauth.store),
-- `keys` (sealing keys, 64 hex digits each, newest first; required for Redis,
-- where every node must share them; one node may leave them out: a random
-- key is made at start, shared by its workers).
function authhook.init(config)
  client = tfauth.new { server_url = config.server_url }
  skew = config.skew or tfauth.session.DEFAULT_SKEW
  store = stores.new(config.store or { kind = "shared_dict", name = "tfauth_sessions" })
  keys = config.keys and #config.keys > 0 and config.keys or nil
  if not keys then
    assert(config.store == nil or config.store.kind ~= "redis", "authhook: Redis needs keys shared by every node")
    keys = { stores.random_hex(32) }
  end
  core.seal(keys, "") -- checks them now
  cache = assert(lrucache.new(CACHE_SIZE))
end

local function unavailable(err)
  ngx.log(ngx.ERR, "tfauth: session store unavailable: ", err)
  ngx.status = 503
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode { error = "session store unavailable" })
  return ngx.exit(503)
end

-- The session of sid: { blob =, state =, user = }, nil (none), or nil, err.
local function load(sid)
  local key, stamp = "s:" .. sid, nil
  local entry = cache:get(sid)
  if store.stamp then -- the shared dict: a number says whether the cached session still holds
    stamp = store:stamp(key)
    if not stamp then return nil end
    if entry and entry.stamp == stamp then return entry end
  end
  local blob, err = store:get(key)
  if not blob then return nil, err end
  if entry and entry.blob == blob then
    entry.stamp = stamp
    return entry
  end
  local plain, why = core.open(keys, blob, sid)
  if not plain then
    ngx.log(ngx.WARN, "tfauth: refused a stored session (", why, "): treated as none")
    return nil
  end
  local state = json.decode(plain)
  entry = { blob = blob, stamp = stamp, state = state, authorization = "Bearer " .. state.access_token,
    user = tfauth.jwt.claims(state.access_token).preferred_username }
  cache:set(sid, entry)
  return entry
end

-- Kept as long as the refresh token lives (0: Keycloak's "no expiry").
local function save(sid, state)
  local ttl = state.refresh_expires_at and state.refresh_expires_at - ngx.time() or 0
  return store:set("s:" .. sid, core.seal(keys, json.encode(state), sid), ttl > 0 and ttl or 0)
end

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode(body))
  return ngx.exit(status)
end

--- POST /login, form or JSON `user`, `password`: sets the session cookie.
function authhook.login()
  ngx.req.read_body()
  local args = ngx.req.get_post_args()
  if next(args) == nil then args = json.decode(ngx.req.get_body_data() or "{}") end
  local ok, s = pcall(client.session, client, { user = args.user, password = args.password }, { skew = skew })
  if not ok then
    local err = s
    local status = err.kind == "http" and err.status == 401 and 401 or err.kind == "argument" and 400 or 502
    ngx.log(ngx.WARN, "tfauth login failed: ", tostring(err))
    return reply(status, { error = err.kind, message = err.message })
  end
  local sid = stores.random_hex(24)
  local saved, err = save(sid, s:export())
  if not saved then return unavailable(err) end
  ngx.header["Set-Cookie"] = COOKIE .. "=" .. sid .. "; Path=/; HttpOnly; SameSite=Lax"
  return reply(200, { user = s:claims().preferred_username })
end

-- Refreshes under the lock; returns the entry to use, nil, or nil, err.
local function refresh_locked(sid, entry)
  local s = client:session(entry.state, { skew = skew })
  local ok, err = pcall(s.refresh, s)
  if ok then
    local saved, serr = save(sid, s:export())
    if not saved then return nil, serr end
    store:incr("refreshes")
    return load(sid)
  end
  if err.expired then -- the refresh token was refused: the session is over
    store:delete("s:" .. sid)
    return nil
  end
  ngx.log(ngx.ERR, "tfauth refresh failed: ", tostring(err))
  if entry.state.expires_at > ngx.time() then return entry end
  return nil
end

-- Refreshes once across workers and nodes; returns the entry to use, nil
-- (no session any more), or nil, err (the store is unreachable). Whoever
-- takes the lock refreshes; the others use the current token while it is
-- valid, else wait for the new one, and take the lock themselves if it is
-- freed without a new session (its holder failed, or died and its TTL ran out).
local function refresh(sid, entry)
  local lock = "lock:" .. sid
  for _ = 1, WAIT_MAX do
    local token, err = store:lock(lock, LOCK_TTL_MS)
    if token == nil then return nil, err end
    if token then
      -- Another holder may have refreshed between our read and our lock:
      -- refreshing again with the old (rotated) refresh token would end the
      -- session. Read again under the lock.
      local current, lerr = load(sid)
      local result, rerr = current, lerr
      if current and current.blob == entry.blob then result, rerr = refresh_locked(sid, current) end
      store:unlock(lock, token)
      return result, rerr
    end
    if entry.state.expires_at > ngx.time() then return entry end
    ngx.sleep(WAIT_STEP)
    local current, lerr = load(sid)
    if not current then return nil, lerr end
    if current.blob ~= entry.blob then return current end
  end
  return nil
end

--- access_by_lua: lets valid sessions through, with `Authorization: Bearer`
-- for the application and the user's name in `$tfauth_user` (the location
-- declares it: `set $tfauth_user "";`); 401 without a session, 503 when the
-- store cannot be reached.
function authhook.guard()
  local sid = ngx.var[COOKIE_VAR]
  local entry, err
  if sid then entry, err = load(sid) end
  if entry and entry.state.expires_at - skew <= ngx.time() then entry, err = refresh(sid, entry) end
  if err then return unavailable(err) end
  if not entry then return reply(401, { error = "unauthenticated" }) end
  ngx.req.set_header("Authorization", entry.authorization) -- made once per session, not per request
  ngx.var.tfauth_user = entry.user
end

--- POST /logout: ends the session at the server and in the store (for every node).
function authhook.logout()
  local sid = ngx.var[COOKIE_VAR]
  local entry, err
  if sid then entry, err = load(sid) end
  if err then return unavailable(err) end
  if entry then
    local ok, lerr = pcall(function() client:session(entry.state):logout() end)
    if not ok then ngx.log(ngx.WARN, "tfauth logout: ", tostring(lerr)) end
    store:delete("s:" .. sid)
    cache:delete(sid)
  end
  ngx.header["Set-Cookie"] = COOKIE .. "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
  return reply(200, { logged_out = entry ~= nil })
end

--- For tests and sizing: the refreshes made so far.
function authhook.refreshes()
  return store:get("refreshes") or 0
end

return authhook
