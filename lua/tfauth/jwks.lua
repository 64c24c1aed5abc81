--- Keys from the network: a realm's JWKS, fetched, cached and refreshed safely.
--
--    local jwks = require("tfauth.jwks").new {
--      issuer = "https://kc.example/realms/fndtn",  -- discovery: <issuer>/.well-known/openid-configuration
--      -- or url = "https://kc.example/realms/fndtn/protocol/openid-connect/certs"
--    }
--    local claims, header = jwks:verify(token, { audience = "fndtn-api", types = { "at+jwt", "Bearer" } })
--
-- The set is fetched at first use and again once it is `ttl` seconds old.
-- A token whose `kid` is not in the set (Keycloak rotated its key) causes
-- one fetch and a second try; unknown kids cause at most one fetch per
-- `min_refresh_interval`, so a stream of tokens with made-up kids never
-- becomes a stream of requests to Keycloak. Every fetch is single-flight. A
-- failed fetch keeps the last good set and backs off (1 s, doubling, at most
-- `MAX_BACKOFF`): with Keycloak down, requests do not each cause a fetch.
-- With no set at all, `verify` raises an error of kind `network` (or
-- `timeout`), never `token`: the service is unavailable, the token is not
-- known to be bad.
--
-- A fetch fails when the answer is not 2xx, is over 1 MiB, is not a JSON
-- object or holds no usable key; with `issuer`, when discovery's `issuer`
-- is not exactly the configured one, or its `jwks_uri` is not https while
-- the issuer is. Discovery is done once; its `jwks_uri` is kept.
--
-- Plain Lua fetches with libcurl, with the TLS options and timeouts given
-- (as a client's). Inside nginx, in request phases (rewrite, access,
-- content), it fetches through nginx (a subrequest to the internal location
-- of `tfauth.openresty`, `/_tfauth` by default): non-blocking, with that
-- location's TLS settings and timeouts; elsewhere (init, timers) libcurl.
-- With `shared_dict`, the set (its JSON), its age and a lock live in that
-- `lua_shared_dict`: one worker fetches, the others use the current set, or
-- wait for the fetch (briefly: at most the fetch's time limit) when they have
-- none or a token's kid is missing. Writes to the dict never evict other
-- entries (`safe_set`); a dict too small for the set is logged.
--
-- Tokens already verified stay verified: a key removed from the JWKS does
-- not undo what a caller cached (the gate's verified-token cache keeps
-- entries no longer than their `exp`).
-- @module tfauth.jwks
local core = require "tfauth.core"
local openresty = require "tfauth.openresty"
local runtime = require "tfauth.runtime"

local Error = core.Error
local is_error = core.is_error
local argument = core.argument_error
local clock = core.clock

local jwks = {
  --- Seconds before the set is fetched again (3600).
  DEFAULT_TTL = 3600,
  --- At most one fetch per this many seconds for unknown kids (10).
  DEFAULT_MIN_REFRESH_INTERVAL = 10,
  --- The largest JWKS or discovery document accepted, in bytes (1 MiB).
  MAX_BYTES = 1048576,
  --- The longest wait, in seconds, before trying again after failed fetches (60).
  MAX_BACKOFF = 60,
}

local CONFIG_KEYS = {
  issuer = true, url = true, ttl = true, min_refresh_interval = true, tls = true, timeout_ms = true,
  connect_timeout_ms = true, shared_dict = true, on_fetch = true, transport = true, nginx_location = true,
}
local DEFAULT_TIMEOUT_MS = 30000 -- a client's default

local function refuse(field, message) error(argument("jwks.new", field, message), 3) end

local function check_url(config, field)
  local value = config[field]
  if value == nil then return nil end
  if type(value) ~= "string" then refuse(field, "expected a string, got " .. type(value)) end
  if not value:match("^https?://[^/?#%s]+") or value:find("[%c%s]") then
    refuse(field, "must be an http:// or https:// URL with a host")
  end
  return value
end

local function check_number(config, field, default, min_exclusive)
  local value = config[field]
  if value == nil then return default end
  if type(value) ~= "number" or value ~= value or value == math.huge
    or (min_exclusive and value <= 0) or value < 0 then
    refuse(field, min_exclusive and "expected a number of seconds > 0" or "expected a number of seconds >= 0")
  end
  return value
end

---------------------------------------------------------------------------
-- Where the state lives: this Lua state, or a lua_shared_dict for every
-- worker. get/set/delete of the named fields; a lock with a lifetime.
local Local = {}
Local.__index = Local

function Local:get(k) return self.t[k] end
function Local:set(k, v) self.t[k] = v; return true end
function Local:delete(k) self.t[k] = nil end
function Local:lock(ttl)
  local now = clock()
  if self.t.lock and self.t.lock > now then return nil end
  self.t.lock = now + ttl
  return self.t.lock
end
function Local:unlock(owner) if self.t.lock == owner then self.t.lock = nil end end
function Local:locked() return self.t.lock ~= nil and self.t.lock > clock() end

local Shared = {}
Shared.__index = Shared

local function log(level, message)
  local ngx = runtime.nginx()
  if ngx and ngx.log then ngx.log(ngx[level], "tfauth.jwks: ", message) end
end

function Shared:get(k) return (self.dict:get(self.prefix .. k)) end
function Shared:set(k, v)
  -- safe_set: a full dict refuses rather than evicting the gate's counters or locks.
  local ok, err = self.dict:safe_set(self.prefix .. k, v)
  if not ok then log("ERR", ("cannot keep %s in shared dict %s: %s"):format(k, self.name, tostring(err))) end
  return ok, err
end
function Shared:delete(k) self.dict:delete(self.prefix .. k) end
-- Returns the lock's owner mark (for unlock), or nil when another holds it.
function Shared:lock(ttl)
  self.serial = (self.serial or 0) + 1
  local owner = ("%s:%d"):format(ngx.worker.pid(), self.serial)
  local ok, err = self.dict:safe_add(self.prefix .. "lock", owner, ttl)
  if ok then return owner end
  if err == "exists" then return nil end
  log("ERR", ("cannot take the fetch lock in shared dict %s (%s): fetching unlocked"):format(self.name, tostring(err)))
  return owner
end
-- Only the owner releases: a lock that outlived its ttl may be another's now.
function Shared:unlock(owner)
  if self.dict:get(self.prefix .. "lock") == owner then self.dict:delete(self.prefix .. "lock") end
end
function Shared:locked() return self.dict:get(self.prefix .. "lock") ~= nil end

---------------------------------------------------------------------------
local Jwks = { __name = "tfauth.jwks" }
Jwks.__index = Jwks

--- A JWKS from a realm.
-- @tparam table config
--   `issuer` (the realm's issuer: its keys are found by discovery, and
--   `verify` checks `iss` against it by default) and/or `url` (the JWKS
--   itself; discovery is then skipped): one is required;
--   `ttl` (seconds, default 3600), `min_refresh_interval` (seconds, default 10),
--   `tls`, `timeout_ms`, `connect_timeout_ms` (as a client's, for libcurl),
--   `shared_dict` (inside nginx: the name of a `lua_shared_dict` that shares
--   the set across workers), `on_fetch` (`function(result, err)`, called after
--   each fetch this worker makes, `result` "ok" or "failed"; errors it raises
--   are ignored), `transport` ("auto", "nginx" or "curl", as a client's) and
--   `nginx_location` (default `/_tfauth`).
--   Unknown keys are refused. Nothing is fetched here.
-- @treturn Jwks
-- @raise an `argument` error naming the field
function jwks.new(config)
  if type(config) ~= "table" then refuse("config", "expected a table, got " .. type(config)) end
  for key in pairs(config) do
    if not CONFIG_KEYS[key] then refuse(tostring(key), "is not a jwks option") end
  end
  local issuer, url = check_url(config, "issuer"), check_url(config, "url")
  if not issuer and not url then refuse("issuer", "is required (or url: the JWKS itself)") end
  local self = setmetatable({
    issuer = issuer,
    url = url,
    ttl = check_number(config, "ttl", jwks.DEFAULT_TTL, true),
    min_refresh_interval = check_number(config, "min_refresh_interval", jwks.DEFAULT_MIN_REFRESH_INTERVAL),
    transport = config.transport or "auto",
    location = config.nginx_location or runtime.DEFAULT_LOCATION,
    on_fetch = config.on_fetch,
  }, Jwks)
  if not runtime.TRANSPORTS[self.transport] then refuse("transport", 'must be "auto", "nginx" or "curl"') end
  if type(self.location) ~= "string" or self.location:sub(1, 1) ~= "/" then
    refuse("nginx_location", "must be a location path starting with /")
  end
  if self.on_fetch ~= nil and type(self.on_fetch) ~= "function" then
    refuse("on_fetch", "expected a function, got " .. type(self.on_fetch))
  end
  local source = url or issuer
  local dict_name = config.shared_dict
  if dict_name ~= nil then
    local ngx = runtime.nginx()
    if type(dict_name) ~= "string" then refuse("shared_dict", "expected a string, got " .. type(dict_name)) end
    if not (ngx and ngx.shared) then refuse("shared_dict", "works only inside nginx (lua_shared_dict)") end
    if not ngx.shared[dict_name] then refuse("shared_dict", "no lua_shared_dict named '" .. dict_name .. "'") end
    self.store = setmetatable({ dict = ngx.shared[dict_name], name = dict_name,
      prefix = "tfauth.jwks:" .. source .. ":" }, Shared)
  else
    self.store = setmetatable({ t = {} }, Local)
  end
  local timeout = config.timeout_ms or DEFAULT_TIMEOUT_MS
  self.client = core.new({
    server_url = source:match("^https?://[^/?#]+"),
    tls = config.tls, timeout_ms = config.timeout_ms, connect_timeout_ms = config.connect_timeout_ms,
    max_response_bytes = jwks.MAX_BYTES,
  }, "jwks.new")
  -- A fetch is discovery then the JWKS: the lock outlives both time limits.
  self.lock_ttl = (type(timeout) == "number" and timeout or DEFAULT_TIMEOUT_MS) * 2 / 1000 + 1
  return self
end

local function check_self(self, method)
  if getmetatable(self) ~= Jwks then error("tfauth.jwks: call it as jwks:" .. method .. "(...)", 3) end
end

-- ---- fetching ---------------------------------------------------------------

-- One GET of a JSON object (decoded, and the body as sent), through nginx or libcurl.
function Jwks:_get(url, name)
  if runtime.uses_nginx(self.transport) then return openresty.fetch(self.client, self.location, url, name) end
  return self.client:fetch(url, name)
end

local function bad_answer(operation, message)
  error(Error.new("response", message, { operation = operation, retryable = true }), 0)
end

-- The JWKS URL: given, kept from an earlier discovery, or discovered now.
function Jwks:_jwks_uri()
  local uri = self.url or self.store:get("uri")
  if uri then return uri end
  local doc = self:_get(self.issuer:gsub("/$", "") .. "/.well-known/openid-configuration", "jwks.discovery")
  if doc.issuer ~= self.issuer then
    bad_answer("jwks.discovery", "the discovery document's issuer is not the configured issuer")
  end
  uri = doc.jwks_uri
  if type(uri) ~= "string" or not uri:match("^https?://[^/?#%s]+") then
    bad_answer("jwks.discovery", "the discovery document has no http(s) jwks_uri")
  end
  if self.issuer:match("^https://") and not uri:match("^https://") then
    bad_answer("jwks.discovery", "the discovery document's jwks_uri is not https while the issuer is")
  end
  self.store:set("uri", uri)
  return uri
end

-- Fetches the set; returns its JSON text and keyset, or raises.
function Jwks:_download()
  local _, body = self:_get(self:_jwks_uri(), "jwks.fetch")
  local ok, keys = pcall(core.jwt_keyset, body)
  if not ok then
    bad_answer("jwks.fetch", "the JWKS holds no usable key" ..
      (is_error(keys) and keys.message and (" (" .. keys.message .. ")") or ""))
  end
  return body, keys
end

function Jwks:_notify(result, err)
  if self.on_fetch then pcall(self.on_fetch, result, err) end
end

-- Takes a set another worker fetched (shared_dict), when there is a newer one.
function Jwks:_load()
  local version = self.store:get("version")
  if version == nil or version == self.version then return end
  local body = self.store:get("body")
  local ok, keys = body ~= nil, nil
  if ok then ok, keys = pcall(core.jwt_keyset, body) end
  if ok then self.keys = keys end -- else: keep ours (the dict could not hold the set)
  self.version = version
end

-- Whether a fetch is due now. kid_miss: the version of the set a token's kid
-- was missing from (nil: no miss, only the first fetch and the ttl count).
function Jwks:_due(kid_miss)
  local store, now = self.store, clock()
  local retry_at = store:get("retry_at")
  if retry_at and now < retry_at then return false end -- backing off after a failed fetch
  if not self.keys then return true end
  if kid_miss then
    if self.version ~= kid_miss then return false end -- a newer set came meanwhile: try it
    -- Counted from the last fetch a miss caused: a key rotated in just after
    -- the first fetch is still picked up at once.
    local last = store:get("miss_fetch")
    return last == nil or now - last >= self.min_refresh_interval
  end
  local fetched = store:get("fetched")
  return fetched == nil or now - fetched >= self.ttl
end

-- One fetch, the lock held: the outcome recorded for every worker.
function Jwks:_fetch(kid_miss)
  local store, now = self.store, clock()
  if kid_miss then store:set("miss_fetch", now) end
  local ok, body, keys = pcall(self._download, self)
  if ok then
    local version = (store:get("version") or 0) + 1
    if not store:set("body", body) then store:delete("body") end
    store:set("fetched", clock()) -- when the set arrived: the ttl counts from here
    store:set("failures", 0)
    store:delete("retry_at")
    store:set("version", version)
    self.keys, self.version, self.error = keys, version, nil
    self:_notify("ok")
    return
  end
  local err = body
  if not is_error(err) then err = Error.new("network", tostring(err), { operation = "jwks.fetch" }) end
  local failures = (store:get("failures") or 0) + 1
  store:set("failures", failures)
  store:set("retry_at", now + math.min(2 ^ (failures - 1), jwks.MAX_BACKOFF))
  store:set("error_kind", err.kind)
  store:set("error_message", tostring(err.message))
  self.error = err
  self:_notify("failed", err)
end

-- Waits (in nginx) while another coroutine or worker fetches, at most the
-- lock's lifetime.
function Jwks:_wait()
  if not runtime.can_sleep() then return end
  local deadline = clock() + self.lock_ttl
  while self.store:locked() and clock() < deadline do ngx.sleep(0.005) end
end

-- Fetches when due, single-flight. With another fetch in flight, a caller
-- with a usable set goes on with it; one without (or with a kid miss) waits.
function Jwks:_refresh(kid_miss)
  self:_load()
  if not self:_due(kid_miss) then
    -- Not ours to fetch, but one may be in flight (it counts as this miss's
    -- fetch): wait for it rather than refuse a key it is bringing.
    if (kid_miss or not self.keys) and self.store:locked() then
      self:_wait()
      self:_load()
    end
    return
  end
  local owner = self.store:lock(self.lock_ttl)
  if not owner then
    if self.keys and not kid_miss then return end
    self:_wait()
    return self:_load()
  end
  local ok, err = pcall(function()
    self:_load() -- another worker may have finished just before the lock was ours
    if self:_due(kid_miss) then self:_fetch(kid_miss) end
  end)
  self.store:unlock(owner)
  if not ok then error(err, 0) end
end

-- The error for "no key set": the service is unavailable, not the token bad.
function Jwks:_unavailable()
  local err = self.error
  local kind = err and err.kind or self.store:get("error_kind")
  local message = err and err.message or self.store:get("error_message")
  return Error.new(kind == "timeout" and "timeout" or "network",
    "no key set: the JWKS could not be fetched" .. (message and (": " .. message) or ""),
    { operation = "jwks.fetch", retryable = true, cause = err, status = err and err.status })
end

-- ---- verifying -----------------------------------------------------------------

-- A keyset that holds no key anyone would sign with here: the arguments and
-- the token's shape are checked against it before any fetch, so bad input
-- is refused without I/O. (RFC 8037's public Ed25519 key; its private key
-- is published, which is harmless: passing here only means going on.)
local precheck_keys
local function precheck(token, opts, skip)
  precheck_keys = precheck_keys or core.jwt_keyset {
    keys = { { kty = "OKP", crv = "Ed25519", kid = "tfauth.jwks: no key",
      x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" } },
  }
  local ok, err = pcall(core.jwt_verify, token, precheck_keys, opts, skip)
  if ok or not is_error(err) then return end
  if err.kind == "argument" or (err.kind == "token" and (err.reason == "malformed" or err.reason == "algorithm")) then
    error(err, 0)
  end
end

local function with_issuer(opts, issuer)
  if type(opts) ~= "table" and opts ~= nil then return opts end -- jwt.verify names the error
  if opts ~= nil and opts.issuer ~= nil then return opts end
  local copy = {}
  for k, v in pairs(opts or {}) do copy[k] = v end
  copy.issuer = issuer
  return copy
end

--- The current keyset, fetched first when there is none or it is `ttl` old.
-- @return the keyset (see `tfauth.jwt.keyset`)
-- @raise an error of kind `network` (or `timeout`) when there is no set at
-- all and it cannot be fetched; `err.cause` is the fetch's own error
function Jwks:keyset()
  check_self(self, "keyset")
  self:_refresh()
  if not self.keys then error(self:_unavailable(), 0) end
  return self.keys
end

-- After a refusal for a kid not in the set, begun at started: whether a
-- newer set came (fetched now, at most once per min_refresh_interval) for a
-- second try.
local function refetched(self, started)
  local fetched = self.store:get("fetched")
  if fetched and fetched >= started then
    -- The set arrived during this call (its first fetch, say): that fetch
    -- was this miss's one. A fresh jwks fed made-up kids fetches once.
    local last = self.store:get("miss_fetch")
    if not last or last < fetched then self.store:set("miss_fetch", fetched) end
    return false
  end
  local version = self.version
  self:_refresh(version)
  return self.version ~= version
end

-- How often an object that holds a key set looks at the shared store (a
-- newer set another worker fetched, the ttl, a back-off): its three reads
-- were ~3% of a refused token's CPU in the gate. A kid not in the set looks
-- at once (refetched), so a rotated-in key is never refused for this.
local LOOK_EVERY = 0.1

-- text verified with verifier: core.jwt_verify (a refusal raised; claims,
-- header) or core.jwt_check (a refusal returned: claims | nil, err; lean:
-- nil, reason, kid_missing). The set is fetched first when due, and again
-- once when the token's kid is not in it.
local function verify_with(self, verifier, text, skip, opts, lean)
  local started = clock()
  opts = with_issuer(opts, self.issuer)
  if not self.keys or started >= (self.next_look or 0) then
    self:_load()
    if self:_due() then
      precheck(text, opts, skip)
      self:_refresh()
    end
    self.next_look = started + LOOK_EVERY
  end
  if not self.keys then precheck(text, opts, skip); error(self:_unavailable(), 0) end
  local ok, claims, header, kid_missing = pcall(verifier, text, self.keys, opts, skip, lean)
  if ok and claims then return claims, header end
  local err = ok and header or claims
  if (kid_missing or is_error(err) and err.kind == "token" and err.kid_missing) and refetched(self, started) then
    return verifier(text, self.keys, opts, skip, lean)
  end
  if ok then return nil, err end
  error(err, 0)
end

--- Verifies a token against the realm's keys (`tfauth.jwt.verify`).
-- A token whose `kid` is not in the set makes one fetch (at most one per
-- `min_refresh_interval`) and a second try.
-- @tparam string token the compact JWS
-- @tparam[opt] table opts as `tfauth.jwt.verify`'s, `types` included; `issuer` defaults to the jwks' issuer
-- @treturn table the claims
-- @treturn table the header
-- @raise a `token` error (with `reason`, `kid`, `alg`, `iss`) when the token is refused; an
-- `argument` error for bad arguments (before any fetch); `network` or
-- `timeout` when there is no key set at all
function Jwks:verify(token, opts)
  check_self(self, "verify")
  return verify_with(self, core.jwt_verify, token, 0, opts)
end

-- Internal (the gate's): `verify` of the token that starts after the first
-- `skip` bytes of text ("Bearer <token>", skip 7): no second long string is
-- made from the header (LuaJIT interns every string it makes). A refusal is
-- returned, not raised: the claims, or nil and the `token` error (lean: nil
-- and its reason, no error object made); other errors (no key set, bad
-- arguments) are raised.
function Jwks:_check_in(text, skip, opts, lean)
  return verify_with(self, core.jwt_check, text, skip, opts, lean)
end

function Jwks:__tostring()
  return ("tfauth.jwks (%s, %s)"):format(self.url or self.issuer,
    self.keys and (#self.keys:kids() .. " keys") or "no key set yet")
end

jwks.Jwks = Jwks
return jwks
