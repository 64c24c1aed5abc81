--- Sessions: sealed in the store, decoded once per worker, refreshed once
-- across every worker and node.
--
-- Keycloak rotates refresh tokens: two refreshes with the same one would
-- lose the session. A lock in the store elects the refresher; the others use
-- the current token while it is valid or wait for the new one. Each worker
-- keeps decoded sessions in an LRU cache, checked against the store's change
-- stamp, so a guarded request costs one store read, not a decryption.
-- @module tfauth.gate.sessions
local tfauth = require "tfauth"
local core = require "tfauth.core"
local metrics = require "tfauth.gate.metrics"
local identity = require "tfauth.gate.identity"
local json = require("cjson").new()

local sessions = {}

local LOCK_TTL_MS = 10000   -- how long a refresher may hold the lock
local WAIT_STEP = 0.01      -- seconds between looks while another refreshes
local WAIT_STEPS = 300      -- 3 s

local function store_key(sid) return "s:" .. sid end

--- The session of sid: { blob =, stamp =, state =, identity = }, nil (none),
-- or nil, err (the store could not be read).
function sessions.get(state, sid)
  local key, stamp = store_key(sid), nil
  local entry = state.sessions:get(sid)
  if state.store.stamp then -- the shared dict: a number says whether the cached session still holds
    stamp = state.store:stamp(key)
    if not stamp then return nil end
    if entry and entry.stamp == stamp then return entry end
  end
  local blob, err = state.store:get(key)
  if not blob then return nil, err end
  if entry and entry.blob == blob then
    entry.stamp = stamp
    return entry
  end
  local plain, why = core.open(state.keys, blob, sid)
  if not plain then
    ngx.log(ngx.WARN, "tfauth: refused a stored session (", why, "): treated as none")
    return nil
  end
  local tokens = json.decode(plain)
  local ok, claims = pcall(tfauth.jwt.claims, tokens.access_token) -- from the auth API, over its transport
  if not ok then return nil end
  entry = { blob = blob, stamp = stamp, state = tokens,
    identity = identity.of(claims, "Bearer " .. tokens.access_token) }
  state.sessions:set(sid, entry)
  return entry
end
local get = sessions.get

--- Stores the tokens of sid, kept as long as the refresh token lives (0:
-- Keycloak's "no expiry"). true, or nil, err.
function sessions.save(state, sid, tokens)
  local ttl = tokens.refresh_expires_at and tokens.refresh_expires_at - ngx.time() or 0
  return state.store:set(store_key(sid), core.seal(state.keys, json.encode(tokens), sid), ttl > 0 and ttl or 0)
end
local save = sessions.save

-- Refreshes under the lock; returns the entry to use, nil, or nil, err.
local function refresh_locked(state, sid, entry)
  local s = state.client:session(entry.state, { skew = state.skew })
  local ok, err = metrics.timed(state, "refresh", s.refresh, s)
  if ok then
    metrics.result(state, "tfauth_refreshes_total", "ok")
    local saved, save_err = save(state, sid, s:export())
    if not saved then return nil, save_err end
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

--- Refreshes once across workers and nodes; returns the entry to use, nil
-- (no session any more), or nil, err (the store is unreachable). Whoever
-- takes the lock refreshes; the others use the current token while it is
-- valid, else wait for the new one, and take the lock themselves if it is
-- freed without a new session (its holder failed, or died and its TTL ran out).
function sessions.refresh(state, sid, entry)
  local lock = "lock:" .. sid
  for _ = 1, WAIT_STEPS do
    local token, err = state.store:lock(lock, LOCK_TTL_MS)
    if token == nil then return nil, err end
    if token then
      -- Another holder may have refreshed between our read and our lock:
      -- refreshing again with the old (rotated) refresh token would end the
      -- session. Read again under the lock.
      local current, read_err = get(state, sid)
      local result, result_err = current, read_err
      if current and current.blob == entry.blob then result, result_err = refresh_locked(state, sid, current) end
      state.store:unlock(lock, token)
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
-- it expires within skew.
function sessions.current(state, sid)
  local entry, err = get(state, sid)
  if entry and entry.state.expires_at - state.skew <= ngx.time() then
    entry, err = sessions.refresh(state, sid, entry)
  end
  return entry, err
end

--- Ends sid: at the auth API (when its entry is known) and in the store.
-- true, or nil, err (the store).
function sessions.finish(state, sid, entry)
  if entry then
    local ok, err = metrics.timed(state, "logout", function() state.client:session(entry.state):logout() end)
    if not ok then ngx.log(ngx.WARN, "tfauth: logout at the auth API failed: ", tostring(err)) end
  end
  state.sessions:delete(sid)
  return state.store:delete(store_key(sid))
end

return sessions
