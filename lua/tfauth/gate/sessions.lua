--- Sessions: sealed in the store, decoded once per worker, refreshed once
-- across every worker and node, bounded in number and time.
--
-- Keycloak rotates refresh tokens: two refreshes with the same one would
-- lose the session. A lock in the store (`lock:<sid>`) elects the
-- refresher; the others use the current token while it is valid or wait
-- for the new one. Logout takes the same lock, and a refresh saves only
-- while it holds the lock and the session still exists: a logout during a
-- refresh wins, and the refresher then logs its new tokens out at the auth
-- API too. Each worker keeps decoded sessions in an LRU cache, checked
-- against the store's change stamp, so a guarded request costs one store
-- read, not a decryption.
--
-- Bounds (`session = { max_per_user, idle_timeout, max_lifetime }`): a
-- session is stored for the least of what its refresh token has left, its
-- idle timeout (renewed while it is used) and its lifetime since sign-in;
-- a user holds at most max_per_user sessions (a new sign-in ends the oldest).
-- @module tfauth.gate.sessions
local tfauth = require "tfauth"
local seal = require "tfauth.seal"
local stores = require "tfauth.store"
local ids = require "tfauth.ids"
local metrics = require "tfauth.gate.metrics"
local identity = require "tfauth.gate.identity"

local sessions = {}

local LOCK_TTL_MS = 10000   -- how long a refresher may hold the lock
local WAIT_STEP = 0.01      -- seconds between looks while another holds the lock
local WAIT_STEPS = 300      -- 3 s
local TOUCH_EVERY = 900     -- at most, seconds between two renewals of the idle timeout

--- The defaults of `session`: sessions per user, seconds idle, seconds since sign-in.
sessions.DEFAULTS = { max_per_user = 10, idle_timeout = 8 * 3600, max_lifetime = 7 * 86400 }

local function store_key(sid) return "s:" .. sid end
local function lock_key(sid) return "lock:" .. sid end
local function index_key(sub) return "u:" .. sub end

--- The session of sid: { blob =, stamp =, state =, identity =, key =, stamp_name = }, nil (none),
-- or nil, err (the store could not be read).
function sessions.get(state, sid)
  local entry, stamp = state.sessions:get(sid), nil
  -- A cached entry keeps its keys: no two ~50-byte strings made (and
  -- hashed) on every request.
  local key = entry and entry.key or store_key(sid)
  if state.store.stamp then -- the shared dict: a number says whether the cached session still holds
    stamp = state.store:stamp(key, entry and entry.stamp_name)
    if not stamp then return nil end
    if entry and entry.stamp == stamp then return entry end
  end
  local blob, err = state.store:get(key)
  if not blob then return nil, err end
  if entry and entry.blob == blob then
    entry.stamp = stamp
    return entry
  end
  -- Opened and decoded inside the C core: the plaintext (same-shape JSON
  -- of a few KB) never becomes a Lua string for LuaJIT to intern.
  local tokens, why = seal.open_json(state.keys, blob, sid)
  if type(tokens) ~= "table" then
    ngx.log(ngx.WARN, "tfauth: refused a stored session (", why or "not an object", "): treated as none")
    return nil
  end
  local ok, claims = pcall(tfauth.jwt.claims, tokens.access_token) -- from the auth API, over its transport
  if not ok then return nil end
  entry = { blob = blob, stamp = stamp, state = tokens, key = key,
    stamp_name = state.store.stamp_name and state.store:stamp_name(key),
    identity = identity.of(claims, "Bearer " .. tokens.access_token) }
  state.sessions:set(sid, entry)
  return entry
end
local get = sessions.get

-- Seconds the stored session may still live: the least of its refresh
-- token's, its idle timeout and its lifetime since sign-in (a refresh
-- token without expiry, Keycloak's 0, is bounded by the other two).
local function time_left(state, tokens)
  local now, policy = ngx.time(), state.session
  local ends = tokens.created_at + policy.max_lifetime
  if (tokens.refresh_expires_at or 0) > 0 then ends = math.min(ends, tokens.refresh_expires_at) end
  return math.min(ends - now, policy.idle_timeout)
end

--- Stores the tokens of sid (with `created_at` and `seen_at`). options as the
-- store's set (`exists`, `lock`, `token`). true, false (not written: the
-- session is gone, or over), or nil, err.
function sessions.save(state, sid, tokens, options)
  tokens.created_at = tokens.created_at or ngx.time()
  tokens.seen_at = ngx.time()
  local ttl = time_left(state, tokens)
  if ttl <= 0 then return false end
  return state.store:set(store_key(sid), seal.seal_json(state.keys, tokens, sid), ttl, options)
end
local save = sessions.save

-- The tokens a session restored from the auth API's answer keeps: what
-- the client exports, and the gate's own fields.
local function carried(exported, previous)
  exported.created_at, exported.sub = previous.created_at, previous.sub
  return exported
end

-- Refreshes under the lock; returns the entry to use, nil, or nil, err.
local function refresh_locked(state, sid, entry, lock_token)
  local s = state.client:session(entry.state, { skew = state.skew })
  local ok, err = metrics.timed(state, "refresh", s.refresh, s)
  if ok then
    metrics.result(state, "tfauth_refreshes_total", "ok")
    local saved, save_err = save(state, sid, carried(s:export(), entry.state),
      { exists = true, lock = lock_key(sid), token = lock_token })
    if saved == nil then return nil, save_err end
    if not saved then -- ended meanwhile (a logout, the per-user bound): the new tokens end too
      ngx.log(ngx.INFO, "tfauth: a session ended during its refresh: its new tokens are logged out")
      metrics.timed(state, "logout", s.logout, s)
      return nil
    end
    return get(state, sid)
  end
  metrics.result(state, "tfauth_refreshes_total", "failed")
  if type(err) == "table" and err.expired then -- the refresh token was refused: the session is over
    state.store:delete(store_key(sid))
    return nil
  end
  ngx.log(ngx.ERR, "tfauth: refresh failed: ", tostring(err))
  if entry.state.expires_at > ngx.time() then return entry end
  if type(err) == "table" and identity.TRANSIENT[err.kind] then return nil, "auth API: " .. tostring(err) end
  return nil
end

-- Renews the idle timeout of a session in use (rewritten under its lock,
-- only if unchanged and still there); the entry to use.
local function touched(state, sid, entry)
  local lock_token = state.store:lock(lock_key(sid), LOCK_TTL_MS)
  if not lock_token then return entry end -- held: whoever holds it saves the session anyway
  local current = get(state, sid)
  if current and current.blob == entry.blob then
    save(state, sid, entry.state, { exists = true, lock = lock_key(sid), token = lock_token })
  end
  state.store:unlock(lock_key(sid), lock_token)
  return get(state, sid) or entry
end

--- Refreshes once across workers and nodes; returns the entry to use, nil
-- (no session any more), or nil, err (the store is unreachable). Whoever
-- takes the lock refreshes; the others use the current token while it is
-- valid, else wait for the new one, and take the lock themselves if it is
-- freed without a new session (its holder failed, or died and its TTL ran out).
function sessions.refresh(state, sid, entry)
  for _ = 1, WAIT_STEPS do
    local lock_token, err = state.store:lock(lock_key(sid), LOCK_TTL_MS)
    if lock_token == nil then return nil, err end
    if lock_token then
      -- Another holder may have refreshed between our read and our lock:
      -- refreshing again with the old (rotated) refresh token would end the
      -- session. Read again under the lock.
      local current, read_err = get(state, sid)
      local result, result_err = current, read_err
      if current and current.blob == entry.blob then
        result, result_err = refresh_locked(state, sid, current, lock_token)
      end
      state.store:unlock(lock_key(sid), lock_token)
      return result, result_err
    end
    if entry.state.expires_at > ngx.time() then return entry end
    ngx.sleep(WAIT_STEP)
    local current, read_err = get(state, sid)
    if not current then return nil, read_err end
    if current.blob ~= entry.blob then return current end
  end
  return nil
end

--- The valid session of sid: entry, nil, or nil, err; refreshed first when
-- it expires within skew, its idle timeout renewed now and then.
function sessions.current(state, sid)
  local entry, err = get(state, sid)
  if not entry then return nil, err end
  if entry.state.expires_at - state.skew <= ngx.time() then return sessions.refresh(state, sid, entry) end
  local seen_at = entry.state.seen_at
  if seen_at and ngx.time() - seen_at >= math.min(TOUCH_EVERY, state.session.idle_timeout / 4) then
    return touched(state, sid, entry)
  end
  return entry
end

-- Takes sid's lock, waiting (at most 3 s) while a refresh holds it: the
-- token, or nil when it could not be had.
local function lock_for_logout(state, sid)
  for _ = 1, WAIT_STEPS do
    local lock_token, err = state.store:lock(lock_key(sid), LOCK_TTL_MS)
    if lock_token or lock_token == nil and err then return lock_token end
    ngx.sleep(WAIT_STEP)
  end
end

--- Ends sid: under its lock (a refresh in flight finishes first, and its
-- new tokens are the ones logged out), at the auth API and in the store.
-- The entry ended (false when there was none), or nil, err (the store).
function sessions.finish(state, sid)
  local lock_token = lock_for_logout(state, sid)
  local entry, err = get(state, sid)
  if err then
    if lock_token then state.store:unlock(lock_key(sid), lock_token) end
    return nil, err
  end
  if entry then
    local ok, logout_err = metrics.timed(state, "logout", function() state.client:session(entry.state):logout() end)
    if not ok then ngx.log(ngx.WARN, "tfauth: logout at the auth API failed: ", tostring(logout_err)) end
    if entry.state.sub then state.store:remove_member(index_key(entry.state.sub), sid) end
  end
  state.sessions:delete(sid)
  local deleted, delete_err = state.store:delete(store_key(sid))
  if lock_token then state.store:unlock(lock_key(sid), lock_token) end
  if deleted == nil then return nil, delete_err end
  return entry or false
end

-- Ends the user's oldest sessions beyond max_per_user (sessions already
-- gone leave the index as they are found).
local function bound_per_user(state, sub, sid)
  local index = index_key(sub)
  state.store:add_member(index, sid, ngx.now(), state.session.max_lifetime)
  local members = state.store:members(index) or {}
  local live = {}
  for _, m in ipairs(members) do
    if m.member == sid or state.store:get(store_key(m.member)) then
      live[#live + 1] = m.member
    else
      state.store:remove_member(index, m.member)
    end
  end
  for i = 1, #live - state.session.max_per_user do
    if live[i] ~= sid then
      ngx.log(ngx.INFO, "tfauth: a user's sessions are over session.max_per_user: the oldest ends")
      sessions.finish(state, live[i])
    end
  end
end

-- The log line of a full store: which one, and how big.
local function full_store_line(state)
  local store = state.store
  if store.capacity then
    return ("tfauth: session store full: lua_shared_dict %s (%d bytes, %d free): sign-in refused; "
      .. "give it more memory (docs/sessions.md, sizing)")
      :format(state.store_name, store:capacity(), store:free_bytes())
  end
  return "tfauth: session store full: Redis answered OOM (maxmemory): sign-in refused; see docs/redis.md, sizing"
end

--- A new session for the signed-in tokens exported (s:export()): its id,
-- or nil, err ("full" when the store has no room: logged here).
function sessions.start(state, exported, claims)
  local sid = ids.random_hex(24)
  exported.sub = type(claims.sub) == "string" and claims.sub or nil
  local saved, err = save(state, sid, exported)
  if not saved then
    if stores.full(err) then
      ngx.log(ngx.ERR, full_store_line(state))
      return nil, "full"
    end
    return nil, err or "the session's lifetime is over at once (session.max_lifetime)"
  end
  if exported.sub then bound_per_user(state, exported.sub, sid) end
  return sid
end

return sessions
