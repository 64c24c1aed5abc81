--- The nginx auth gate: sessions or verified bearer tokens in front of a service.
--
-- In `init_by_lua`:
--
--    require("tfauth.gate").init {
--      server_url = "https://api.example.com",                 -- the FNDTN auth API
--      store = { kind = "shared_dict", name = "tfauth_sessions" }, -- or { kind = "redis", host =, port = }
--      keys = { "<64 hex>" },                                  -- sealing keys, newest first
--      cookie = { secure = true, same_site = "Lax" },
--      bearer = { issuer = "https://kc.example/realms/fndtn", audience = "fndtn-api" },
--      shared_dict = "tfauth_gate",                            -- JWKS, metrics
--    }
--
-- then `guard(rules)` in `access_by_lua`, `auth_request(rules)`, `signin()`,
-- `login()`, `logout()` and `metrics()` in `content_by_lua` (see the README's "Protect a
-- service" and `examples/nginx/nginx.conf`).
--
-- **Two ways in.** A session cookie: `login()` keeps the tokens server-side,
-- in a `tfauth.store` (a `lua_shared_dict` for one node, Redis for many),
-- sealed with AES-256-GCM and the session id bound in; the browser holds only
-- an opaque id. The guard refreshes before expiry, once per session across
-- every worker and node (Keycloak rotates refresh tokens: two refreshes with
-- the same one would lose the session): a lock in the store elects the
-- refresher, the others use the current token while it is valid or wait for
-- the new one. Each worker keeps decoded sessions in an LRU cache, checked
-- against the store's change stamp, so a guarded request costs one store
-- read, not a decryption. Or `Authorization: Bearer <access token>`, verified
-- locally against the realm's JWKS (`tfauth.jwks`, `types = {"Bearer"}`); a
-- request carrying both is judged by its bearer.
--
-- **Verified-token cache.** Per worker, at most 10,000 tokens, keyed by the
-- whole token, each kept no later than its `exp`: the hot path runs no RSA
-- for a token it has already verified. Rules are checked on every request.
-- A key removed from the JWKS does not evict tokens already verified with
-- it, and logout does not end bearer tokens: both stay valid until `exp`.
-- @module tfauth.gate
local tfauth = require "tfauth"
local core = require "tfauth.core"
local stores = require "tfauth.store"
local lrucache = require "resty.lrucache" -- Debian's lua-resty-lrucache (with the lua module)
local json = require("cjson").new()

local gate = {}

local LOCK_TTL_MS = 10000   -- how long a refresher may hold the lock
local WAIT_STEP = 0.01
local WAIT_MAX = 300        -- steps: 3 s
local SESSIONS_CACHED = 10000 -- decoded sessions per worker
local TOKENS_CACHED = 10000   -- verified bearer tokens per worker
local SID_PATTERN = "^" .. ("%x"):rep(48) .. "$"

-- What init made: the checked config and the worker's state.
local C

-- ------------------------------------------------------------------------
-- Configuration, checked at init.

-- A string, not the Error table: nginx prints only strings from init_by_lua.
local function refuse(field, message)
  error(tostring(core.argument_error("gate.init", field, message)), 0)
end

local function check_type(field, value, wanted)
  if type(value) ~= wanted then refuse(field, ("expected a %s, got %s"):format(wanted, type(value))) end
end

local function has_control(s) return s:find("[%z\1-\31\127]") ~= nil end

local function string_list(field, value, allow_empty)
  check_type(field, value, "table")
  local out, n = {}, 0
  for _ in pairs(value) do n = n + 1 end
  for i, v in ipairs(value) do
    if type(v) ~= "string" then refuse(field, ("item %d: expected a string, got %s"):format(i, type(v))) end
    out[i] = v
  end
  if #out ~= n then refuse(field, "expected a list of strings") end
  if n == 0 and not allow_empty then refuse(field, "expected a non-empty list") end
  return out
end

local TOP = { server_url = "string", store = "table", keys = "table", skew = "number", cookie = "table",
  bearer = "table", login_url = "string", shared_dict = "string", public_origin = "string",
  nginx_location = "string" }
local COOKIE = { secure = "boolean", same_site = "string", path = "string", domain = "string", name = "string" }
local BEARER = { issuer = "string", audience = true, algorithms = "table", leeway = "number", jwks_url = "string",
  ttl = "number", min_refresh_interval = "number", tls = "table", timeout_ms = "number",
  connect_timeout_ms = "number" }
local STORE = { kind = "string", name = "string", host = "string", port = "number", password = "string",
  prefix = "string", timeout_ms = "number", pool_size = "number", keepalive_ms = "number" }
local SAME_SITE = { strict = "Strict", lax = "Lax" }

local function check_section(prefix, t, spec)
  for key, value in pairs(t) do
    local wanted = spec[key]
    if not wanted then refuse(prefix .. tostring(key), "is not a known key") end
    if wanted ~= true then check_type(prefix .. key, value, wanted) end
  end
end

-- "https://Host:443" -> "https://host"; nil when not an origin.
local function origin_of(url)
  if type(url) ~= "string" then return nil end
  local scheme, host, rest = url:match("^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  scheme, host = scheme:lower(), host:lower()
  if host:find("@", 1, true) then return nil end
  if scheme == "https" then host = host:gsub(":443$", "") elseif scheme == "http" then host = host:gsub(":80$", "") end
  return scheme .. "://" .. host, rest
end

local function check_cookie(cookie)
  cookie = cookie or {}
  check_section("cookie.", cookie, COOKIE)
  local out = { secure = cookie.secure ~= false, path = cookie.path or "/", domain = cookie.domain }
  local same_site = cookie.same_site or "Lax"
  if same_site:lower() == "none" then
    refuse("cookie.same_site", '"None" is refused: it sends the session cookie on cross-site requests')
  end
  out.same_site = SAME_SITE[same_site:lower()] or refuse("cookie.same_site", 'expected "Strict" or "Lax"')
  if out.path:sub(1, 1) ~= "/" or out.path:find("[;,%s]") or has_control(out.path) then
    refuse("cookie.path", "expected a path starting with /, without ; , or spaces")
  end
  if out.domain and (out.domain == "" or out.domain:find("[^%w.-]")) then
    refuse("cookie.domain", "expected a domain name")
  end
  if cookie.name then
    if not cookie.name:find("^[%w!#$%%&'*+%-.^_`|~]+$") then
      refuse("cookie.name", "expected a cookie name (token characters)")
    end
    out.name = cookie.name
  elseif out.secure and out.path == "/" and not out.domain then
    out.name = "__Host-tfauth" -- a sibling subdomain or a plain-http attacker cannot plant it
  else
    out.name = "tfauth_sid"
  end
  local attributes = "; Path=" .. out.path .. (out.domain and "; Domain=" .. out.domain or "") .. "; HttpOnly"
    .. (out.secure and "; Secure" or "") .. "; SameSite=" .. out.same_site
  out.attributes = attributes
  out.var = "cookie_" .. out.name
  return out
end

local function check_bearer(bearer)
  check_section("bearer.", bearer, BEARER)
  if not bearer.issuer or not origin_of(bearer.issuer) then
    refuse("bearer.issuer", "required: the realm's issuer URL")
  end
  local audience = bearer.audience
  if audience == nil then
    refuse("bearer.audience", "required: a string, a list of strings, or false (explicitly unchecked)")
  elseif audience == false then
    audience = nil
  elseif type(audience) == "table" then
    audience = string_list("bearer.audience", audience)
  elseif type(audience) ~= "string" or audience == "" then
    refuse("bearer.audience", "expected a string, a list of strings, or false")
  end
  if bearer.algorithms then string_list("bearer.algorithms", bearer.algorithms) end
  for _, key in ipairs { "leeway", "ttl", "min_refresh_interval", "timeout_ms", "connect_timeout_ms" } do
    if bearer[key] and bearer[key] < 0 then refuse("bearer." .. key, "expected a number >= 0") end
  end
  return {
    issuer = bearer.issuer, url = bearer.jwks_url, ttl = bearer.ttl, min_refresh_interval = bearer.min_refresh_interval,
    tls = bearer.tls, timeout_ms = bearer.timeout_ms, connect_timeout_ms = bearer.connect_timeout_ms,
    verify = { audience = audience, algorithms = bearer.algorithms or { "RS256" }, types = { "Bearer" },
      leeway = bearer.leeway or 0 },
  }
end

local function check_store(store)
  store = store or { kind = "shared_dict", name = "tfauth_sessions" }
  check_section("store.", store, STORE)
  if store.kind ~= "shared_dict" and store.kind ~= "redis" then
    refuse("store.kind", 'expected "shared_dict" or "redis"')
  end
  if store.kind == "shared_dict" and not ngx.shared[store.name or ""] then
    refuse("store.name", "no lua_shared_dict named " .. tostring(store.name))
  end
  return stores.new(store)
end

local function check_keys_list(config)
  if config.keys == nil or #config.keys == 0 and next(config.keys) == nil then
    if config.store and config.store.kind == "redis" then
      refuse("keys", "Redis needs sealing keys shared by every node (openssl rand -hex 32)")
    end
    return { stores.random_hex(32) } -- one node: made at start, shared by its workers
  end
  local keys = string_list("keys", config.keys)
  for i, key in ipairs(keys) do
    if not key:find("^" .. ("%x"):rep(64) .. "$") then refuse("keys", ("item %d: expected 64 hex digits"):format(i)) end
  end
  core.seal(keys, "") -- the core checks them too
  return keys
end

-- ------------------------------------------------------------------------
-- Metrics, in the shared dict: summed over every worker by construction.
-- Every series is created at init (safe_add: never evicts anything) and then
-- only incremented in place; a series found missing was evicted by another
-- writer with `set`, and is said so in the error log.

local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }
local OPERATIONS = { "login", "refresh", "logout" }
local FAMILIES = {
  { name = "tfauth_gate_requests_total", type = "counter", help = "Requests judged by the gate.",
    labels = { { "outcome", { "allowed", "unauthenticated", "forbidden", "unavailable" } },
      { "via", { "session", "bearer", "none" } } } },
  { name = "tfauth_logins_total", type = "counter", help = "Sign-ins through the gate.",
    labels = { { "result", { "ok", "failed" } } } },
  { name = "tfauth_refreshes_total", type = "counter", help = "Session refreshes at the auth API.",
    labels = { { "result", { "ok", "failed" } } } },
  { name = "tfauth_jwks_fetches_total", type = "counter", help = "Fetches of the realm's key set.",
    labels = { { "result", { "ok", "failed" } } } },
}
local HISTOGRAM = "tfauth_api_request_duration_seconds"

local function series_of(family)
  local out = { "" }
  for _, label in ipairs(family.labels) do
    local next_out = {}
    for _, prefix in ipairs(out) do
      for _, value in ipairs(label[2]) do
        next_out[#next_out + 1] = prefix .. (prefix == "" and "" or ",") .. label[1] .. '="' .. value .. '"'
      end
    end
    out = next_out
  end
  for i, labels in ipairs(out) do out[i] = family.name .. "{" .. labels .. "}" end
  return out
end

local function bucket_key(operation, i)
  return HISTOGRAM .. '_bucket{operation="' .. operation .. '",le="' .. (BUCKETS[i] and tostring(BUCKETS[i]) or "+Inf")
    .. '"}'
end

local function all_series()
  local out = {}
  for _, family in ipairs(FAMILIES) do
    for _, key in ipairs(series_of(family)) do out[#out + 1] = key end
  end
  for _, operation in ipairs(OPERATIONS) do
    for i = 1, #BUCKETS + 1 do out[#out + 1] = bucket_key(operation, i) end
    out[#out + 1] = HISTOGRAM .. '_sum{operation="' .. operation .. '"}'
    out[#out + 1] = HISTOGRAM .. '_count{operation="' .. operation .. '"}'
  end
  return out
end

local function create_metrics(dict)
  for _, key in ipairs(all_series()) do
    local ok, err = dict:safe_add("m:" .. key, 0)
    if not ok and err ~= "exists" then
      refuse("shared_dict", "lua_shared_dict too small for the metrics (" .. tostring(err) .. ")")
    end
  end
end

-- series name -> its key in the dict, made once per name
local DICT_KEY = setmetatable({}, { __index = function(t, name)
  local key = "m:" .. name
  t[name] = key
  return key
end })

local function count(key, n)
  local dict = C.dict
  local value, err = dict:incr(DICT_KEY[key], n or 1)
  if value then return end
  if err == "not found" then
    ngx.log(ngx.ERR, "tfauth: metric ", key, " was evicted from lua_shared_dict ", C.dict_name,
      " (another writer used set on a full dict): give it more memory")
    local ok, aerr = dict:safe_add("m:" .. key, n or 1)
    if not ok and aerr ~= "exists" then ngx.log(ngx.ERR, "tfauth: metric ", key, " lost: ", aerr) end
    return
  end
  ngx.log(ngx.ERR, "tfauth: metric ", key, ": ", err)
end

local function observe(operation, seconds)
  local slot = #BUCKETS + 1
  for i, le in ipairs(BUCKETS) do
    if seconds <= le then slot = i break end
  end
  count(bucket_key(operation, slot)) -- stored per bucket; metrics() makes them cumulative
  count(HISTOGRAM .. '_sum{operation="' .. operation .. '"}', seconds)
  count(HISTOGRAM .. '_count{operation="' .. operation .. '"}')
end

-- Runs f(...) under pcall, timing it as an auth API operation.
local function timed(operation, f, ...)
  ngx.update_time()
  local started = ngx.now()
  local ok, result = pcall(f, ...)
  ngx.update_time()
  observe(operation, ngx.now() - started)
  return ok, result
end

-- The hot path's series names, made once.
local OUTCOME_KEYS = {}
for _, result in ipairs(FAMILIES[1].labels[1][2]) do
  OUTCOME_KEYS[result] = {}
  for _, via in ipairs(FAMILIES[1].labels[2][2]) do
    OUTCOME_KEYS[result][via] = 'tfauth_gate_requests_total{outcome="' .. result .. '",via="' .. via .. '"}'
  end
end

local function outcome(result, via)
  count(OUTCOME_KEYS[result][via])
end

-- ------------------------------------------------------------------------

--- Sets the gate up; in `init_by_lua`. Every key and value is checked: an
-- unknown key or a wrong type raises an error naming it (`tfauth: gate.init:
-- argument 'cookie.same_site': ...`, the text of an `argument` error), so nginx
-- does not start and says why in its error log.
-- @tparam table config
-- `server_url` (required: the FNDTN auth API),
-- `store` (`{ kind = "shared_dict", name = "tfauth_sessions" }`, the default, or
-- `{ kind = "redis", host =, port =, password =, prefix =, timeout_ms =, pool_size =, keepalive_ms = }`),
-- `keys` (sealing keys, 64 hex digits each, newest first; required for Redis, where every node shares them;
-- one node may leave them out: a key is made at start),
-- `skew` (seconds before expiry at which a session refreshes; 30),
-- `cookie = { secure = true, same_site = "Lax" (or "Strict"; "None" is refused), path = "/", domain = nil,
-- name = nil }` (the name is `__Host-tfauth` when secure, on `/` and without a domain, else `tfauth_sid`),
-- `bearer = { issuer =, audience = (required: a string, a list, or false), algorithms = { "RS256" },
-- leeway = 0, jwks_url =, ttl =, min_refresh_interval =, tls =, timeout_ms =, connect_timeout_ms = }`
-- (absent: `Authorization: Bearer` is not accepted),
-- `login_url` (where browsers without a session go; `/login`, the built-in page),
-- `public_origin` (`https://app.example.com` behind a TLS-terminating proxy: the origin cross-site
-- checks compare with; default the scheme and `Host` nginx sees),
-- `shared_dict` (`tfauth_gate`: the key set, metrics), `nginx_location` (`/_tfauth`).
-- @raise a message naming the key
function gate.init(config)
  if type(config) ~= "table" then refuse("config", "expected a table, got " .. type(config)) end
  check_section("", config, TOP)
  if not config.server_url then refuse("server_url", "required: the FNDTN auth API's URL") end
  local state = { dict_name = config.shared_dict or "tfauth_gate" }
  state.dict = ngx.shared[state.dict_name]
  if not state.dict then
    refuse("shared_dict", "no lua_shared_dict named " .. state.dict_name .. " (declare it: lua_shared_dict "
      .. state.dict_name .. " 1m;)")
  end
  if config.skew ~= nil and config.skew < 0 then refuse("skew", "expected a number >= 0") end
  state.skew = config.skew or tfauth.session.DEFAULT_SKEW
  state.cookie = check_cookie(config.cookie)
  state.login_url = config.login_url or "/login"
  if has_control(state.login_url) or not (state.login_url:find("^/[^/\\]") or state.login_url == "/"
      or origin_of(state.login_url)) then
    refuse("login_url", "expected a local path or an http(s) URL")
  end
  state.login_sep = state.login_url:find("?", 1, true) and "&" or "?"
  if config.public_origin then
    local origin, rest = origin_of(config.public_origin)
    if not origin or (rest ~= "" and rest ~= "/") then
      refuse("public_origin", "expected scheme://host[:port], without a path")
    end
    state.public_origin = origin
  end
  state.keys = check_keys_list(config)
  state.store = check_store(config.store)
  local ok, client = pcall(tfauth.new, { server_url = config.server_url, nginx_location = config.nginx_location })
  if not ok then
    refuse(client.field or "server_url", (tostring(client.message or client):gsub("^argument '[^']*': ", "")))
  end
  state.client = client
  state.sessions = assert(lrucache.new(SESSIONS_CACHED))
  if config.bearer ~= nil then
    state.bearer = check_bearer(config.bearer)
    state.tokens = assert(lrucache.new(TOKENS_CACHED))
  end
  create_metrics(state.dict)
  C = state
  if state.bearer then
    local b = state.bearer
    local jok, jwks = pcall(function()
      return require("tfauth.jwks").new {
        issuer = b.issuer, url = b.url, ttl = b.ttl, min_refresh_interval = b.min_refresh_interval, tls = b.tls,
        timeout_ms = b.timeout_ms, connect_timeout_ms = b.connect_timeout_ms, shared_dict = state.dict_name,
        nginx_location = config.nginx_location,
        on_fetch = function(result) count('tfauth_jwks_fetches_total{result="' .. result .. '"}') end,
      }
    end)
    if not jok then
      C = nil
      if core.is_error(jwks) then
        local field = jwks.field == "url" and "jwks_url" or jwks.field or "issuer"
        refuse("bearer." .. field, (tostring(jwks.message):gsub("^argument '[^']*': ", "")))
      end
      error(tostring(jwks), 0)
    end
    state.jwks = jwks
  end
end

local function configured()
  if not C then error("tfauth.gate: call require('tfauth.gate').init{...} in init_by_lua first", 2) end
  return C
end

-- ------------------------------------------------------------------------
-- Answers.

local function no_store()
  ngx.header["Cache-Control"] = "no-store"
end

-- Sends a JSON answer and ends the request.
local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  no_store()
  ngx.print(json.encode(body))
  return ngx.exit(ngx.HTTP_OK)
end

local function unavailable(what, err)
  ngx.log(ngx.ERR, "tfauth: ", what, " unavailable: ", tostring(err))
  return reply(503, { error = "unavailable" })
end

-- The q of each media range of an Accept header.
local function prefers_html(accept)
  if type(accept) ~= "string" then return false end
  local html, other = nil, 0
  for range in accept:gmatch("[^,]+") do
    local media = range:match("^%s*([^;%s]+)") or ""
    local q = tonumber(range:match(";%s*[qQ]%s*=%s*([%d.]+)")) or 1
    if media:lower() == "text/html" then html = math.max(html or 0, q) elseif q > other then other = q end
  end
  return html ~= nil and html > 0 and html >= other
end

-- The request's own origin: public_origin, else the scheme and Host nginx sees.
local function own_origin()
  if C.public_origin then return C.public_origin end
  return (origin_of(ngx.var.scheme .. "://" .. (ngx.var.http_host or ngx.var.host or "")))
end

-- Whether a browser says this request came from another site: Origin (or,
-- without one, Referer) names an origin other than ours, or is "null".
local function cross_site()
  local origin = ngx.var.http_origin
  if origin == nil then
    local referer = ngx.var.http_referer
    if referer == nil then return false end -- not a browser
    origin = referer
  end
  if origin == "null" then return true end
  local theirs = origin_of(origin)
  return theirs == nil or theirs ~= own_origin()
end

local SAFE_METHODS = { GET = true, HEAD = true, OPTIONS = true }

-- ------------------------------------------------------------------------
-- Identity: what a token's claims say about its holder.

local function header_safe(v)
  if type(v) == "string" and v ~= "" and not has_control(v) then return v end
end

local function set_of(list)
  local set = {}
  if type(list) == "table" then
    for _, v in ipairs(list) do if type(v) == "string" then set[v] = true end end
  end
  return set
end

local function identity_of(claims, token)
  local realm = type(claims.realm_access) == "table" and claims.realm_access.roles or nil
  local names = {}
  if type(realm) == "table" then
    for _, role in ipairs(realm) do
      if type(role) == "string" and not role:find(",", 1, true) then names[#names + 1] = role end
    end
  end
  local clients = {}
  if type(claims.resource_access) == "table" then
    for client, access in pairs(claims.resource_access) do
      if type(access) == "table" then clients[client] = set_of(access.roles) end
    end
  end
  return {
    user = header_safe(claims.preferred_username),
    email = claims.email_verified == true and header_safe(claims.email) or nil,
    sub = header_safe(claims.sub),
    roles = header_safe(table.concat(names, ",")),
    realm = set_of(names), clients = clients,
    authorization = "Bearer " .. token,
    exp = tonumber(claims.exp),
  }
end

-- rules: nil (any valid user) or { roles = {...}, client_roles = { [client] = {...} } }:
-- any one listed role lets in; rules that list none let nobody in.
local function allowed_by(rules, identity)
  if rules == nil then return true end
  if type(rules) ~= "table" then error("tfauth.gate: rules must be a table", 3) end
  for key in pairs(rules) do
    if key ~= "roles" and key ~= "client_roles" then error("tfauth.gate: unknown rule " .. tostring(key), 3) end
  end
  for _, role in ipairs(rules.roles or {}) do
    if identity.realm[role] then return true end
  end
  for client, roles in pairs(rules.client_roles or {}) do
    local held = identity.clients[client]
    if held then
      for _, role in ipairs(roles) do
        if held[role] then return true end
      end
    end
  end
  return false
end

-- ------------------------------------------------------------------------
-- Sessions: sealed in the store, decoded once per worker.

-- The session of sid: { blob =, state =, identity = }, nil (none), or nil, err.
local function load(sid)
  local key, stamp = "s:" .. sid, nil
  local entry = C.sessions:get(sid)
  if C.store.stamp then -- the shared dict: a number says whether the cached session still holds
    stamp = C.store:stamp(key)
    if not stamp then return nil end
    if entry and entry.stamp == stamp then return entry end
  end
  local blob, err = C.store:get(key)
  if not blob then return nil, err end
  if entry and entry.blob == blob then
    entry.stamp = stamp
    return entry
  end
  local plain, why = core.open(C.keys, blob, sid)
  if not plain then
    ngx.log(ngx.WARN, "tfauth: refused a stored session (", why, "): treated as none")
    return nil
  end
  local state = json.decode(plain)
  local ok, claims = pcall(tfauth.jwt.claims, state.access_token) -- from the auth API, over its transport
  if not ok then return nil end
  entry = { blob = blob, stamp = stamp, state = state, identity = identity_of(claims, state.access_token) }
  C.sessions:set(sid, entry)
  return entry
end

-- Kept as long as the refresh token lives (0: Keycloak's "no expiry").
local function save(sid, state)
  local ttl = state.refresh_expires_at and state.refresh_expires_at - ngx.time() or 0
  return C.store:set("s:" .. sid, core.seal(C.keys, json.encode(state), sid), ttl > 0 and ttl or 0)
end

local TRANSIENT = { network = true, timeout = true, tls = true }

-- Refreshes under the lock; returns the entry to use, nil, or nil, err.
local function refresh_locked(sid, entry)
  local s = C.client:session(entry.state, { skew = C.skew })
  local ok, err = timed("refresh", s.refresh, s)
  if ok then
    count('tfauth_refreshes_total{result="ok"}')
    local saved, serr = save(sid, s:export())
    if not saved then return nil, serr end
    return load(sid)
  end
  count('tfauth_refreshes_total{result="failed"}')
  if type(err) == "table" and err.expired then -- the refresh token was refused: the session is over
    C.store:delete("s:" .. sid)
    return nil
  end
  ngx.log(ngx.ERR, "tfauth: refresh failed: ", tostring(err))
  if entry.state.expires_at > ngx.time() then return entry end
  if type(err) == "table" and TRANSIENT[err.kind] then return nil, "auth API: " .. tostring(err) end
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
    local token, err = C.store:lock(lock, LOCK_TTL_MS)
    if token == nil then return nil, err end
    if token then
      -- Another holder may have refreshed between our read and our lock:
      -- refreshing again with the old (rotated) refresh token would end the
      -- session. Read again under the lock.
      local current, lerr = load(sid)
      local result, rerr = current, lerr
      if current and current.blob == entry.blob then result, rerr = refresh_locked(sid, current) end
      C.store:unlock(lock, token)
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

local function session_id()
  local sid = ngx.var[C.cookie.var]
  if sid and sid:find(SID_PATTERN) then return sid end
end

-- The valid session of this request: entry, nil, or nil, err.
local function current_session()
  local sid = session_id()
  if not sid then return nil end
  local entry, err = load(sid)
  if entry and entry.state.expires_at - C.skew <= ngx.time() then entry, err = refresh(sid, entry) end
  return entry, err, sid
end

-- ------------------------------------------------------------------------
-- Bearer tokens: verified locally, cached per worker until exp.

-- identity, or nil, "refused" | "unavailable", why
local function verify_bearer(token)
  local identity = C.tokens:get(token)
  if identity then
    if identity.exp and identity.exp > ngx.now() then return identity end
    C.tokens:delete(token)
  end
  -- The shape (three base64url segments, 16 KiB at most) is the C core's to
  -- check: tfauth.jwks refuses a malformed token before any fetch.
  local ok, claims = pcall(C.jwks.verify, C.jwks, token, C.bearer.verify)
  if not ok then
    local err = claims
    if core.is_error(err) and TRANSIENT[err.kind] then return nil, "unavailable", tostring(err) end
    if not (core.is_error(err) and err.kind == "token") then
      ngx.log(ngx.ERR, "tfauth: bearer verification failed: ", tostring(err))
    end
    return nil, "refused", core.is_error(err) and (err.reason or err.kind) or "error"
  end
  identity = identity_of(claims, token)
  local ttl = (identity.exp or 0) - ngx.now()
  if ttl > 0 then C.tokens:set(token, identity, ttl) end
  return identity
end

-- ------------------------------------------------------------------------
-- The judgement shared by guard and auth_request.

local FORWARDED = { ["x-forwarded-user"] = true, ["x-forwarded-email"] = true, ["x-forwarded-groups"] = true,
  ["x-forwarded-preferred-username"] = true, ["x-forwarded-access-token"] = true }

-- Removes what the client sent under an identity header's name (or one that
-- an upstream would read as one: X_Auth_Request_User when underscores pass).
local X = ("x"):byte()
local function scrub()
  for name in pairs(ngx.req.get_headers(0)) do -- lower-cased names; 0: all of them, not the first 100
    if name:byte(1) == X then -- most headers are not x-*: no copy made for them
      local n = name:gsub("_", "-")
      if n:sub(1, 15) == "x-auth-request-" or FORWARDED[n] then ngx.req.clear_header(name) end
    end
  end
end

-- outcome ("allowed" | "unauthenticated" | "forbidden" | "unavailable"),
-- via ("session" | "bearer" | "none"), identity or detail, and why (unavailable)
local function judge(rules)
  local authorization = ngx.var.http_authorization
  if C.bearer and authorization then
    -- The hot path reads the token without a pattern over it (a pattern
    -- costs ~20 instructions a byte: 25k for a Keycloak-sized token): nginx
    -- trims the value, so "Bearer <token>" is the usual shape. Anything else
    -- goes through the patterns; a token with inner whitespace is malformed
    -- ("": refused as such).
    local scheme, token
    if authorization:byte(7) == 32 and authorization:byte(8) ~= 32 and authorization:sub(1, 6):lower() == "bearer" then
      scheme, token = "bearer", authorization:sub(8)
    else
      local _, last
      _, last, scheme = authorization:find("^%s*(%S+)")
      token = scheme and select(3, authorization:find("^%s*(%S*)%s*$", last + 1)) or ""
    end
    if scheme and scheme:lower() == "bearer" then
      local identity, failure, why = verify_bearer(token)
      if not identity then
        if failure == "unavailable" then return "unavailable", "bearer", "key set", why end
        return "unauthenticated", "bearer", "invalid_token"
      end
      if not allowed_by(rules, identity) then return "forbidden", "bearer", "insufficient_scope" end
      return "allowed", "bearer", identity
    end
  end
  local entry, err = current_session()
  if err then return "unavailable", "session", "session store", err end
  if not entry then return "unauthenticated", "none" end
  local method = ngx.var.request_method -- the main request's, in auth_request's subrequest too
  if not SAFE_METHODS[method] and cross_site() then return "forbidden", "session", "cross_site_request" end
  if not allowed_by(rules, entry.identity) then return "forbidden", "session", "insufficient_scope" end
  return "allowed", "session", entry.identity
end

local IDENTITY_HEADERS = { { "X-Auth-Request-User", "user" }, { "X-Auth-Request-Email", "email" },
  { "X-Auth-Request-Roles", "roles" }, { "X-Auth-Request-Subject", "sub" }, { "Authorization", "authorization" } }

local function www_authenticate(error_code)
  local value = 'Bearer realm="tfauth"'
  if error_code then value = value .. ', error="' .. error_code .. '"' end
  ngx.header["WWW-Authenticate"] = value
end

local function refusal(result, detail, why, for_auth_request)
  if result == "unavailable" then return unavailable(detail, why) end
  if result == "forbidden" then
    if detail == "insufficient_scope" then www_authenticate("insufficient_scope") end
    return reply(403, { error = detail })
  end
  -- unauthenticated
  if not for_auth_request and ngx.var.request_method == "GET" and prefers_html(ngx.var.http_accept) then
    no_store()
    return ngx.redirect(C.login_url .. C.login_sep .. "rd=" .. ngx.escape_uri(ngx.var.request_uri), 302)
  end
  www_authenticate(detail)
  return reply(401, { error = detail or "unauthenticated" })
end

--- Guards a location, in `access_by_lua`. Removes every identity header the
-- client sent (`X-Auth-Request-*`, oauth2-proxy's `X-Forwarded-User`, `-Email`,
-- `-Groups`, `-Preferred-Username`, `-Access-Token`), then judges the request
-- by its bearer token, or else its session cookie. Allowed: the request goes on
-- with `Authorization: Bearer <access token>`, `X-Auth-Request-User`
-- (preferred_username), `X-Auth-Request-Email` (only when `email_verified`),
-- `X-Auth-Request-Roles` (realm roles, comma-separated), `X-Auth-Request-Subject`
-- (sub). Else: 302 to `login_url?rd=...` for a `GET` that prefers `text/html`,
-- 401 with `WWW-Authenticate: Bearer realm="tfauth"` (and `error="invalid_token"`
-- when a bearer was refused) and JSON `{"error": ...}`; 403 (`insufficient_scope`,
-- or `cross_site_request` for a cookie-authenticated unsafe request from another
-- origin); 503 when the session store or the key set is unavailable.
-- @tparam[opt] table rules `roles` (realm roles), `client_roles = { [client] = {...} }`:
-- a request passes when it holds any one role listed; rules listing none let nobody in;
-- no rules: any valid user
function gate.guard(rules)
  configured()
  scrub()
  local result, via, identity, why = judge(rules)
  outcome(result, via)
  if result ~= "allowed" then return refusal(result, identity, why) end
  for _, h in ipairs(IDENTITY_HEADERS) do
    local value = identity[h[2]]
    -- A bearer request already carries its Authorization: setting it again
    -- would have nginx scan the whole token (~16k instructions) for nothing.
    if value and not (via == "bearer" and h[1] == "Authorization" and value == ngx.var.http_authorization) then
      ngx.req.set_header(h[1], value)
    end
  end
end

--- For nginx's `auth_request`, in the `content_by_lua` of the internal
-- location it names: 204 with the identity headers (`X-Auth-Request-User`,
-- `-Email`, `-Roles`, `-Subject`, `Authorization`) for `auth_request_set`,
-- 401 or 403 (nginx turns any other status, the 503 of an unavailable store,
-- into 500). The subrequest cannot remove the client's headers from the main
-- request: set every identity header with `proxy_set_header` from the
-- `auth_request_set` variables (see the README).
-- @tparam[opt] table rules as `guard`'s
function gate.auth_request(rules)
  configured()
  local result, via, identity, why = judge(rules)
  outcome(result, via)
  if result ~= "allowed" then return refusal(result, identity, why, true) end
  for _, h in ipairs(IDENTITY_HEADERS) do
    if identity[h[2]] then ngx.header[h[1]] = identity[h[2]] end
  end
  no_store()
  ngx.status = 204
  return ngx.exit(ngx.HTTP_NO_CONTENT)
end

--- For `error_page 401 = @signin` in a location guarded by `auth_request`, in
-- the named location's `content_by_lua`: the guard's own answer to someone
-- unauthenticated. A `GET` whose `Accept` prefers `text/html` is redirected
-- (302) to `login_url?rd=<the original request URI, percent-encoded>`; anything
-- else keeps the 401, with the `WWW-Authenticate` that `auth_request()` sent
-- (nginx copies it onto the answer) and a JSON body `{"error": ...}`.
function gate.signin()
  configured()
  local challenge = ngx.header["WWW-Authenticate"]
  local detail = type(challenge) == "string" and challenge:find('error="invalid_token"', 1, true) and "invalid_token"
    or nil
  return refusal("unauthenticated", detail)
end

-- ------------------------------------------------------------------------
-- rd: followed only to a local path.

--- Where a decoded `rd` may send the browser: rd itself when it is a local
-- path (one leading `/`, second character neither `/` nor `\`, no backslash,
-- no control character, no `%2F`/`%5C` in any case), else `/`.
-- @param rd the decoded value, or nil
-- @treturn string
function gate.local_path(rd)
  if type(rd) ~= "string" or rd:sub(1, 1) ~= "/" then return "/" end
  local second = rd:sub(2, 2)
  if second == "/" or second == "\\" or rd:find("\\", 1, true) or has_control(rd) or rd:find("%%2[fF]")
      or rd:find("%%5[cC]") then
    return "/"
  end
  return rd
end

local function set_cookie(value)
  ngx.header["Set-Cookie"] = C.cookie.name .. "=" .. value .. C.cookie.attributes
end

local function expire_cookie()
  local c = C.cookie
  ngx.header["Set-Cookie"] = c.name .. "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" .. c.attributes
end

-- ------------------------------------------------------------------------
-- The sign-in page.

local function escape_html(s)
  return (tostring(s or ""):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end

-- Why a sign-in failed: only these, never text from the request.
local REASONS = {
  invalid = "Wrong user name or password.",
  missing = "Enter your user name and password.",
  unavailable = "Signing in is not possible right now. Try again in a moment.",
  cross_site = "This sign-in form was sent from another site. Sign in from this page.",
}

-- Nothing but the page's own style (by a nonce made per answer), and the
-- form posted to this origin; no script at all, no framing.
local CSP = "default-src 'none'; style-src 'nonce-%s'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

local PAGE = [[<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style nonce="{nonce}">
body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }
main { max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: 8px;
  box-shadow: 0 1px 4px rgba(0,0,0,.15); }
h1 { font-size: 1.4rem; margin-top: 0; }
label { display: block; margin-top: 1rem; font-size: .9rem; }
input { box-sizing: border-box; width: 100%; padding: .5rem; margin-top: .25rem; font-size: 1rem; }
button { margin-top: 1.5rem; width: 100%; padding: .6rem; font-size: 1rem; }
.error { color: #a40000; background: #fdecec; padding: .5rem; border-radius: 4px; }
</style>
</head>
<body>
<main>
<h1>Sign in</h1>
{alert}<form method="post" action="{action}">
<input type="hidden" name="rd" value="{rd}">
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" required autofocus value="{user}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
]]

local function page(status, reason, rd, user)
  local alert = reason and ('<p class="error" role="alert">' .. escape_html(REASONS[reason]) .. "</p>\n") or ""
  ngx.status = status
  ngx.header["Content-Type"] = "text/html; charset=utf-8"
  local nonce = stores.random_hex(16)
  ngx.header["Content-Security-Policy"] = CSP:format(nonce)
  ngx.header["X-Frame-Options"] = "DENY"
  ngx.header["X-Content-Type-Options"] = "nosniff"
  ngx.header["Referrer-Policy"] = "same-origin"
  no_store()
  local fields = { alert = alert, action = escape_html(ngx.var.uri), rd = escape_html(rd or "/"),
    user = escape_html(user), nonce = nonce }
  ngx.print((PAGE:gsub("{(%a+)}", fields)))
  return ngx.exit(ngx.HTTP_OK)
end

-- The POST's fields (form or JSON), and whether it came from a form.
local function posted()
  ngx.req.read_body()
  local content_type = (ngx.var.content_type or ""):lower()
  local body = ngx.req.get_body_data()
  -- `curl -d '{"user": ...}'` labels a JSON body as a form: a body that is
  -- a JSON object is read as one whatever its label (no form field starts with "{").
  if content_type:find("^application/x%-www%-form%-urlencoded") and not (body and body:find("^%s*{")) then
    return ngx.req.get_post_args(100), true
  end
  if not body or body == "" then return {}, false end
  local ok, args = pcall(json.decode, body)
  if ok and type(args) == "table" then return args, false end
  return nil, false
end

local function text(v) if type(v) == "string" then return v end end

local function end_session(sid, entry)
  if entry then
    local ok, err = timed("logout", function() C.client:session(entry.state):logout() end)
    if not ok then ngx.log(ngx.WARN, "tfauth: logout at the auth API failed: ", tostring(err)) end
  end
  C.sessions:delete(sid)
  return C.store:delete("s:" .. sid)
end

-- A sign-in without a user or password failed like a wrong one: 401 (gate.md: "a failed login answers 401").
local LOGIN_STATUS = { invalid = 401, missing = 401, unavailable = 503, cross_site = 403 }
local LOGIN_ERROR = { invalid = "invalid_credentials", missing = "invalid_request", unavailable = "unavailable",
  cross_site = "cross_site_request" }

local function login_post()
  local args, from_form = posted()
  local rd = args and text(args.rd) or text(ngx.req.get_uri_args(100).rd)
  local as_page = from_form and (prefers_html(ngx.var.http_accept) or args and args.rd ~= nil)
  local function failed(reason, user)
    if reason ~= "cross_site" then count('tfauth_logins_total{result="failed"}') end
    if as_page then return page(LOGIN_STATUS[reason], reason, rd, user) end
    return reply(LOGIN_STATUS[reason], { error = LOGIN_ERROR[reason] })
  end
  if cross_site() then return failed("cross_site") end
  local user, password = args and text(args.user), args and text(args.password)
  if not user or not password or user == "" or password == "" then return failed("missing", user) end
  local ok, s = timed("login", C.client.session, C.client, { user = user, password = password }, { skew = C.skew })
  if not ok then
    local err = s
    ngx.log(ngx.WARN, "tfauth: login failed: ", tostring(err)) -- tfauth errors never hold the password
    if core.is_error(err) and TRANSIENT[err.kind] then return failed("unavailable", user) end
    if core.is_error(err) and (err.kind == "http" and err.status >= 500) then return failed("unavailable", user) end
    return failed("invalid", user)
  end
  local old = session_id()
  if old then -- a new id every login: a planted or earlier session is ended
    local entry = load(old)
    end_session(old, entry)
  end
  local sid = stores.random_hex(24)
  local saved, err = save(sid, s:export())
  if not saved then
    count('tfauth_logins_total{result="failed"}')
    return unavailable("session store", err)
  end
  count('tfauth_logins_total{result="ok"}')
  set_cookie(sid)
  if rd then
    no_store()
    return ngx.redirect(gate.local_path(rd), 303)
  end
  return reply(200, { user = s:claims().preferred_username })
end

--- The login location, in `content_by_lua`. `GET`: the built-in sign-in page
-- (server-rendered, no JavaScript; carries `rd`; `Content-Security-Policy`,
-- `X-Frame-Options: DENY`, `Cache-Control: no-store`). `POST` (form or JSON
-- `user`, `password`, optional `rd`): signs in at the auth API; on success a new
-- session id in the cookie (`HttpOnly`, `Secure` unless `cookie.secure = false`,
-- `SameSite`, `Path`) and 303 to `rd` when given (a local path, else `/`), or
-- 200 JSON `{"user": ...}`. Failures: 401 (wrong or missing credentials),
-- 403 (posted from another origin: `Origin`, or `Referer`, names another one),
-- 503 (auth API or store unavailable), as the page again with the reason for a
-- form sent from it, else JSON `{"error": ...}`; no cookie is set.
-- Other methods: 405.
function gate.login()
  configured()
  local method = ngx.req.get_method()
  if method == "GET" or method == "HEAD" then
    return page(200, nil, gate.local_path(text(ngx.req.get_uri_args(100).rd)))
  end
  if method ~= "POST" then
    ngx.header["Allow"] = "GET, HEAD, POST"
    return reply(405, { error = "method_not_allowed" })
  end
  return login_post()
end

--- The logout location, in `content_by_lua`: `POST` only (else 405). Refused
-- with 403 when posted from another origin. Ends the session at the auth API
-- and in the store (on every node), expires the cookie (same name, `Path`,
-- `Domain` and attributes), and answers 200 JSON `{"logged_out": true|false}`,
-- or 303 to `rd` when given (a local path, else `/`). Bearer tokens and the
-- verified-token cache are untouched: they stay valid until their `exp`.
function gate.logout()
  configured()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return reply(405, { error = "method_not_allowed" })
  end
  if cross_site() then return reply(403, { error = "cross_site_request" }) end
  local args = posted() or {}
  local rd = text(args.rd) or text(ngx.req.get_uri_args(100).rd)
  local sid = session_id()
  local entry, err
  if sid then
    entry, err = load(sid)
    if err then return unavailable("session store", err) end
    local _, derr = end_session(sid, entry)
    if derr then return unavailable("session store", derr) end
  end
  expire_cookie()
  if rd then
    no_store()
    return ngx.redirect(gate.local_path(rd), 303)
  end
  return reply(200, { logged_out = entry ~= nil })
end

--- The metrics location, in `content_by_lua`: Prometheus text format 0.0.4,
-- summed over every worker (they live in the shared dict):
-- `tfauth_gate_requests_total{outcome, via}`, `tfauth_logins_total{result}`,
-- `tfauth_refreshes_total{result}`, `tfauth_jwks_fetches_total{result}` and the
-- histogram `tfauth_api_request_duration_seconds{operation}` (login, refresh,
-- logout). Serve it to loopback only (`allow 127.0.0.1; deny all;`).
function gate.metrics()
  configured()
  local dict, out = C.dict, {}
  local function value(key) return dict:get("m:" .. key) or 0 end
  for _, family in ipairs(FAMILIES) do
    out[#out + 1] = "# HELP " .. family.name .. " " .. family.help
    out[#out + 1] = "# TYPE " .. family.name .. " " .. family.type
    for _, key in ipairs(series_of(family)) do out[#out + 1] = key .. " " .. value(key) end
  end
  out[#out + 1] = "# HELP " .. HISTOGRAM .. " Time taken by the auth API's operations, as the gate saw it."
  out[#out + 1] = "# TYPE " .. HISTOGRAM .. " histogram"
  for _, operation in ipairs(OPERATIONS) do
    local cumulative = 0
    for i = 1, #BUCKETS + 1 do
      cumulative = cumulative + value(bucket_key(operation, i))
      out[#out + 1] = bucket_key(operation, i) .. " " .. cumulative
    end
    local label = '{operation="' .. operation .. '"}'
    out[#out + 1] = HISTOGRAM .. "_sum" .. label .. " " .. string.format("%.6f", value(HISTOGRAM .. "_sum" .. label))
    out[#out + 1] = HISTOGRAM .. "_count" .. label .. " " .. value(HISTOGRAM .. "_count" .. label)
  end
  ngx.header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
  no_store()
  ngx.print(table.concat(out, "\n"), "\n")
  return ngx.exit(ngx.HTTP_OK)
end

return gate
