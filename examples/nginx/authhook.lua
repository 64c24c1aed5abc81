--- authhook: login, guard and logout for nginx, on tfauth.
--
-- The browser holds only an opaque cookie; the tokens stay server-side, in a
-- lua_shared_dict, as tfauth.session's exported state. The guard refreshes
-- before expiry, once per session across all workers: Keycloak rotates
-- refresh tokens, so two workers refreshing with the same one would lose the
-- session. A lock in the shared dict (atomic `add`, with a TTL in case its
-- holder dies) elects the refresher; the others keep using the current
-- access token while it is still valid, or wait for the new one.
--
-- The dict holds each session as JSON ("s:<sid>") and a version number
-- ("v:<sid>", bumped on every store); each worker keeps the decoded session
-- per version in an LRU cache, so a guarded request costs one dict lookup of
-- a number, not a JSON decode.
local tfauth = require "tfauth"
local lrucache = require "resty.lrucache" -- Debian's lua-resty-lrucache (with the lua module)
local json = require("cjson").new()

local authhook = {}

local DICT = "tfauth_sessions"
local COOKIE = "tfauth_sid"
local LOCK_TTL = 10   -- seconds a refresher may hold the lock
local WAIT_STEP = 0.01
local WAIT_MAX = 300  -- steps: 3 s

local CACHE_SIZE = 10000 -- decoded sessions per worker

local client, skew, cache

--- In init_by_lua: the client (nginx transport in request phases) and the skew.
function authhook.init(config)
  client = tfauth.new { server_url = config.server_url }
  skew = config.skew or tfauth.session.DEFAULT_SKEW
  cache = assert(lrucache.new(CACHE_SIZE))
end

local function dict() return ngx.shared[DICT] end

-- The session of sid: { state =, user = } decoded once per version, or nil.
local function load(sid)
  local version = dict():get("v:" .. sid)
  if not version then return nil end
  local entry = cache:get(sid)
  if entry and entry.version == version then return entry end
  local value = dict():get("s:" .. sid)
  if not value then return nil end
  local state = json.decode(value)
  entry = { version = version, state = state, user = tfauth.jwt.claims(state.access_token).preferred_username }
  cache:set(sid, entry)
  return entry
end

-- Kept as long as the refresh token lives (0: Keycloak's "no expiry").
local function store(sid, state)
  local ttl = state.refresh_expires_at and state.refresh_expires_at - ngx.time() or 0
  ttl = ttl > 0 and ttl or 0
  dict():set("s:" .. sid, json.encode(state), ttl)
  dict():incr("v:" .. sid, 1, 0, ttl)
end

local function forget(sid)
  dict():delete("s:" .. sid)
  dict():delete("v:" .. sid)
  cache:delete(sid)
end

local function new_sid()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(24)
  f:close()
  return (bytes:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
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
  local sid = new_sid()
  store(sid, s:export())
  ngx.header["Set-Cookie"] = COOKIE .. "=" .. sid .. "; Path=/; HttpOnly; SameSite=Lax"
  return reply(200, { user = s:claims().preferred_username })
end

-- Refreshes once across workers; returns the session entry to use, or nil.
local function refresh(sid, entry)
  local lock = "lock:" .. sid
  if dict():add(lock, ngx.worker.pid(), LOCK_TTL) then
    local s = client:session(entry.state, { skew = skew })
    local ok, err = pcall(s.refresh, s)
    local result = entry
    if ok then
      store(sid, s:export())
      dict():incr("refreshes", 1, 0)
      result = load(sid)
    elseif err.expired then
      forget(sid)
      result = nil
    else
      ngx.log(ngx.ERR, "tfauth refresh failed: ", tostring(err))
      if entry.state.expires_at <= ngx.time() then result = nil end
    end
    dict():delete(lock)
    return result
  end
  -- Another worker (or coroutine) refreshes: the current token may still do.
  if entry.state.expires_at > ngx.time() then return entry end
  for _ = 1, WAIT_MAX do
    ngx.sleep(WAIT_STEP)
    local current = load(sid)
    if not current then return nil end
    if current.version ~= entry.version then return current end
    if not dict():get(lock) then return nil end -- it failed
  end
  return nil
end

--- access_by_lua: lets valid sessions through, with `Authorization: Bearer`
-- and `X-User` for the application; 401 otherwise.
function authhook.guard()
  local sid = ngx.var["cookie_" .. COOKIE]
  local entry = sid and load(sid)
  if entry and entry.state.expires_at - skew <= ngx.time() then entry = refresh(sid, entry) end
  if not entry then return reply(401, { error = "unauthenticated" }) end
  ngx.req.set_header("Authorization", "Bearer " .. entry.state.access_token)
  ngx.req.set_header("X-User", entry.user)
end

--- POST /logout: ends the session at the server and here.
function authhook.logout()
  local sid = ngx.var["cookie_" .. COOKIE]
  local entry = sid and load(sid)
  if entry then
    local ok, err = pcall(function() client:session(entry.state):logout() end)
    if not ok then ngx.log(ngx.WARN, "tfauth logout: ", tostring(err)) end
    forget(sid)
  end
  ngx.header["Set-Cookie"] = COOKIE .. "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
  return reply(200, { logged_out = entry ~= nil })
end

return authhook
