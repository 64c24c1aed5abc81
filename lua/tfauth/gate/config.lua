--- The gate's configuration, checked at init: every key and value.
--
-- Each `check_*` takes one section of what `gate.init` was given and returns
-- its checked, normalised form (defaults filled in); a wrong key or value
-- raises a string naming it (`tfauth: gate.init: argument 'cookie.same_site':
-- ...`). A string, not the Error table: nginx prints only strings raised in
-- `init_by_lua`, and `level 0` keeps tfauth's own frames out of the message.
-- @module tfauth.gate.config
local tfauth = require "tfauth"
local stores = require "tfauth.store"
local ids = require "tfauth.ids"
local seal = require "tfauth.seal"

local config = {}

--- Raises the argument error naming `field`.
function config.refuse(field, message)
  error(tostring(tfauth.argument_error("gate.init", field, message)), 0)
end
local refuse = config.refuse

local function check_type(field, value, wanted)
  if type(value) ~= wanted then refuse(field, ("expected a %s, got %s"):format(wanted, type(value))) end
end

--- Whether s holds a control character (NUL to US, and DEL).
function config.has_control(s) return s:find("[%z\1-\31\127]") ~= nil end
local has_control = config.has_control

--- A copy of a list of strings, refused unless it is one.
function config.string_list(field, value, allow_empty)
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
local string_list = config.string_list

local TOP = { server_url = "string", store = "table", keys = "table", skew = "number", cookie = "table",
  bearer = "table", login_url = "string", shared_dict = "string", public_origin = "string",
  nginx_location = "string", pass_access_token = "boolean", handoff = "string", identity_handoff = "string",
  session = "table" }
config.TOP = TOP -- tfauth.gate.options adds its own keys

local COOKIE = { secure = "boolean", same_site = "string", path = "string", domain = "string", name = "string" }
local BEARER = { issuer = "string", audience = true, algorithms = "table", leeway = "number", jwks_url = "string",
  ttl = "number", min_refresh_interval = "number", tls = "table", timeout_ms = "number",
  connect_timeout_ms = "number", types = true }
local SAME_SITE = { strict = "Strict", lax = "Lax" }

--- Refuses a key of t that spec does not name, or a value of the wrong type
-- (spec: key -> type name, or true for any type checked elsewhere).
function config.check_section(prefix, t, spec)
  for key, value in pairs(t) do
    local wanted = spec[key]
    if not wanted then refuse(prefix .. tostring(key), "is not a known key") end
    if wanted ~= true then check_type(prefix .. key, value, wanted) end
  end
end
local check_section = config.check_section

--- "https://Host:443/x" -> "https://host", "/x"; nil when url is not an origin.
function config.origin_of(url)
  if type(url) ~= "string" then return nil end
  local scheme, host, rest = url:match("^(%a[%w+.-]*)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  scheme, host = scheme:lower(), host:lower()
  if host:find("@", 1, true) then return nil end
  if scheme == "https" then host = host:gsub(":443$", "") elseif scheme == "http" then host = host:gsub(":80$", "") end
  return scheme .. "://" .. host, rest
end
local origin_of = config.origin_of

-- The cookie's name: `__Host-tfauth` when secure, on `/` and without a
-- domain (a sibling subdomain or a plain-http attacker cannot plant it).
local function cookie_name(cookie, checked)
  if cookie.name then
    if not cookie.name:find("^[%w!#$%%&'*+%-.^_`|~]+$") then
      refuse("cookie.name", "expected a cookie name (token characters)")
    end
    return cookie.name
  end
  if checked.secure and checked.path == "/" and not checked.domain then return "__Host-tfauth" end
  return "tfauth_sid"
end

--- The cookie section: { name, needle, secure, path, domain, same_site, attributes }.
function config.check_cookie(cookie)
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
  out.name = cookie_name(cookie, out)
  out.needle = out.name .. "=" -- what request.find_cookie looks for
  out.attributes = "; Path=" .. out.path .. (out.domain and "; Domain=" .. out.domain or "") .. "; HttpOnly"
    .. (out.secure and "; Secure" or "") .. "; SameSite=" .. out.same_site
  return out
end

local function check_audience(audience)
  if audience == nil then
    refuse("bearer.audience", "required: a string, a list of strings, or false (explicitly unchecked)")
  elseif audience == false then
    return nil
  elseif type(audience) == "table" then
    return string_list("bearer.audience", audience)
  elseif type(audience) ~= "string" or audience == "" then
    refuse("bearer.audience", "expected a string, a list of strings, or false")
  end
  return audience
end

-- bearer.types: which kinds of token are access tokens (issue 15.1).
-- RFC 9068's header `typ` "at+jwt" and Keycloak's `typ` claim "Bearer" by
-- default; `false` turns the check off (then the realm's ID and refresh
-- tokens pass too, when their audience does).
local DEFAULT_TYPES = { "at+jwt", "Bearer" }

local function check_types(types)
  if types == nil then return DEFAULT_TYPES end
  if types == false then return nil end
  if types == true or type(types) ~= "table" then
    refuse("bearer.types", "expected a list of token types, or false (unchecked)")
  end
  local list = string_list("bearer.types", types)
  for i, name in ipairs(list) do
    if name == "" or has_control(name) then refuse("bearer.types", ("item %d: expected a token type"):format(i)) end
  end
  return list
end

--- The bearer section: { jwks = tfauth.jwks's config, verify = its verify options }.
function config.check_bearer(bearer)
  check_section("bearer.", bearer, BEARER)
  if not bearer.issuer or not origin_of(bearer.issuer) then
    refuse("bearer.issuer", "required: the realm's issuer URL")
  end
  local audience = check_audience(bearer.audience)
  if bearer.algorithms then string_list("bearer.algorithms", bearer.algorithms) end
  for _, key in ipairs { "leeway", "ttl", "min_refresh_interval", "timeout_ms", "connect_timeout_ms" } do
    if bearer[key] and bearer[key] < 0 then refuse("bearer." .. key, "expected a number >= 0") end
  end
  return {
    jwks = { issuer = bearer.issuer, url = bearer.jwks_url, ttl = bearer.ttl,
      min_refresh_interval = bearer.min_refresh_interval, tls = bearer.tls, timeout_ms = bearer.timeout_ms,
      connect_timeout_ms = bearer.connect_timeout_ms },
    -- Complete here (issuer included), so that jwks:verify uses this table
    -- as it is instead of copying it on every request.
    verify = { issuer = bearer.issuer, audience = audience, algorithms = bearer.algorithms or { "RS256" },
      types = check_types(bearer.types), leeway = bearer.leeway or 0 },
  }
end

--- The session store, checked (every key, nested lists included) and made
-- (default: the shared dict `tfauth_sessions`); observer: the metrics'
-- `on_error(kind)` and `on_duration(operation, seconds)`.
function config.check_store(store, observer)
  store = store or { kind = "shared_dict", name = "tfauth_sessions" }
  local ok, err = pcall(stores.check, store, "gate.init", "store")
  if not ok then
    if tfauth.is_error(err) then refuse(err.field, err.problem or err.message) end
    error(err, 0)
  end
  return stores.new(store, observer)
end

--- The sealing keys: the configured ones (64 hex digits each, newest first),
-- or one made at start when one node has none.
function config.check_keys(cfg)
  if cfg.keys == nil or #cfg.keys == 0 and next(cfg.keys) == nil then
    if cfg.store and cfg.store.kind == "redis" then
      refuse("keys", "Redis needs sealing keys shared by every node (openssl rand -hex 32)")
    end
    return { ids.random_hex(32) } -- one node: made at start, shared by its workers
  end
  local keys = string_list("keys", cfg.keys)
  for i, key in ipairs(keys) do
    if not key:find("^" .. ("%x"):rep(64) .. "$") then refuse("keys", ("item %d: expected 64 hex digits"):format(i)) end
  end
  seal.seal(keys, "") -- the core checks them too
  return keys
end

--- login_url: a local path or an http(s) URL; returns it and the separator
-- that appends `rd` to it.
function config.check_login_url(login_url)
  login_url = login_url or "/login"
  if has_control(login_url) or not (login_url:find("^/[^/\\]") or login_url == "/" or origin_of(login_url)) then
    refuse("login_url", "expected a local path or an http(s) URL")
  end
  return login_url, login_url:find("?", 1, true) and "&" or "?"
end

--- public_origin, normalised (scheme://host[:port]).
function config.check_public_origin(public_origin)
  if public_origin == nil then return nil end
  local origin, rest = origin_of(public_origin)
  if not origin or (rest ~= "" and rest ~= "/") then
    refuse("public_origin", "expected scheme://host[:port], without a path")
  end
  return origin
end

local SESSION = { max_per_user = "number", idle_timeout = "number", max_lifetime = "number" }

--- The session section: { max_per_user, idle_timeout, max_lifetime }, defaults filled in.
function config.check_session(session, defaults)
  session = session or {}
  check_section("session.", session, SESSION)
  local out = {}
  for key, default in pairs(defaults) do
    local value = session[key]
    if value ~= nil and (value < 1 or value ~= math.floor(value)) then
      refuse("session." .. key, "expected a whole number >= 1")
    end
    out[key] = value or default
  end
  return out
end

--- handoff or identity_handoff (field): "headers" (the default) or "variables".
function config.check_handoff(handoff, field)
  if handoff == nil then return "headers" end
  if handoff ~= "headers" and handoff ~= "variables" then refuse(field, 'expected "headers" or "variables"') end
  return handoff
end

--- The top level: known keys and types, server_url present, skew >= 0.
function config.check_top(cfg)
  if type(cfg) ~= "table" then refuse("config", "expected a table, got " .. type(cfg)) end
  check_section("", cfg, TOP)
  if not cfg.server_url then refuse("server_url", "required: the FNDTN auth API's URL") end
  if cfg.skew ~= nil and cfg.skew < 0 then refuse("skew", "expected a number >= 0") end
end

return config
