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
-- `forbidden()`, `login()`, `logout()`, `reset_password()`,
-- `change_password()` and `metrics()` in `content_by_lua` (docs/gate.md).
-- A browser gets a page for every answer (the sign-in page, 403, the
-- sign-out confirmation, 503, 500), branded and translated by `page`,
-- `messages` and `templates`; APIs get JSON.
--
-- **Two ways in.** A session cookie: `login()` keeps the tokens server-side,
-- in a `tfauth.store` (a `lua_shared_dict` for one node, Redis for many),
-- sealed with AES-256-GCM and the session id bound in; the browser holds only
-- an opaque id (`tfauth.gate.sessions`). Or `Authorization: Bearer <access
-- token>`, verified locally against the realm's JWKS (`tfauth.jwks`); a
-- request carrying both is judged by its bearer.
--
-- **Verified-token cache.** Per worker, at most 10,000 tokens, keyed by the
-- whole token, each kept no later than its `exp`: the hot path runs no RSA
-- for a token it has already verified. Rules are checked on every request.
-- A key removed from the JWKS does not evict tokens already verified with
-- it, and logout does not end bearer tokens: both stay valid until `exp`.
--
-- The parts, each handed the one state object `init` builds: `config`
-- (checks), `request` (origin, Accept, CSRF, cookies, scrubbing), `answers`,
-- `pages`, `identity` (claims, rules, bearer tokens), `sessions`, `judge`,
-- `account` (login, logout), `password` (reset, change), `options` (page,
-- messages, templates, account, rules), `templates`, `metrics`.
-- @module tfauth.gate
local tfauth = require "tfauth"
local lrucache = require "resty.lrucache" -- Debian's lua-resty-lrucache (with the lua module)
local config = require "tfauth.gate.config"
local request = require "tfauth.gate.request"
local answers = require "tfauth.gate.answers"
local pages = require "tfauth.gate.pages"
local metrics = require "tfauth.gate.metrics"
local judge = require "tfauth.gate.judge"
local account = require "tfauth.gate.account"
local gate_options = require "tfauth.gate.options"
local password = require "tfauth.gate.password"
local handoff = require "tfauth.gate.handoff"
local sessions = require "tfauth.gate.sessions"

local gate = {}

local SESSIONS_CACHED = 10000 -- decoded sessions per worker
local TOKENS_CACHED = 10000   -- verified bearer tokens per worker

-- What init made: the checked configuration and this worker's caches.
local state

local function the_shared_dict(name)
  local dict = ngx.shared[name]
  if not dict then
    config.refuse("shared_dict", "no lua_shared_dict named " .. name .. " (declare it: lua_shared_dict "
      .. name .. " 1m;)")
  end
  return dict
end

local function client_of(cfg)
  local ok, client = pcall(tfauth.new, { server_url = cfg.server_url, nginx_location = cfg.nginx_location })
  if not ok then config.refuse(client.field or "server_url", client.problem or tostring(client)) end
  return client
end

local function jwks_of(built, cfg)
  local options = built.bearer.jwks
  options.shared_dict, options.nginx_location = built.dict_name, cfg.nginx_location
  options.on_fetch = function(result) metrics.result(built, "tfauth_jwks_fetches_total", result) end
  local ok, jwks = pcall(require("tfauth.jwks").new, options)
  if ok then return jwks end
  if tfauth.is_error(jwks) and jwks.field then
    config.refuse("bearer." .. (jwks.field == "url" and "jwks_url" or jwks.field), jwks.problem or jwks.message)
  end
  error(tostring(jwks), 0)
end

-- The state of a checked configuration.
local function build(cfg)
  config.check_top(cfg)
  local built = { dict_name = cfg.shared_dict or "tfauth_gate" }
  built.dict = the_shared_dict(built.dict_name)
  built.skew = cfg.skew or tfauth.session.DEFAULT_SKEW
  built.pass_access_token = cfg.pass_access_token ~= false
  built.handoff_variables = config.check_handoff(cfg.handoff, "handoff") == "variables"
  built.identity_variables = config.check_handoff(cfg.identity_handoff, "identity_handoff") == "variables"
  built.cookie = config.check_cookie(cfg.cookie)
  built.login_url, built.login_sep = config.check_login_url(cfg.login_url)
  built.public_origin = config.check_public_origin(cfg.public_origin)
  built.keys = config.check_keys(cfg)
  built.session = config.check_session(cfg.session, sessions.DEFAULTS)
  built.store = config.check_store(cfg.store, metrics.store_observer(built))
  built.store_name = cfg.store and cfg.store.name or "tfauth_sessions"
  built.client = client_of(cfg)
  built.server_url = cfg.server_url:gsub("/+$", "")
  gate_options.build(built, cfg)
  if built.account then built.account_client = password.client_of(cfg) end
  built.sessions = assert(lrucache.new(SESSIONS_CACHED))
  if cfg.bearer ~= nil then
    built.bearer = config.check_bearer(cfg.bearer)
    built.tokens = assert(lrucache.new(TOKENS_CACHED))
  end
  local ok, err = metrics.create(built.dict)
  if not ok then config.refuse("shared_dict", "lua_shared_dict too small for the metrics (" .. tostring(err) .. ")") end
  if built.bearer then built.jwks = jwks_of(built, cfg) end
  return built
end

--- Sets the gate up; in `init_by_lua`. Every key and value is checked: an
-- unknown key or a wrong type raises an error naming it (`tfauth: gate.init:
-- argument 'cookie.same_site': ...`, the text of an `argument` error), so nginx
-- does not start and says why in its error log. The keys, their defaults and
-- what they do: docs/gate.md, "Configuration reference".
-- @tparam table cfg
-- `server_url` (required: the FNDTN auth API),
-- `store` (`{ kind = "shared_dict", name = "tfauth_sessions" }`, the default, or
-- `{ kind = "redis", host =, port =, password =, prefix =, timeout_ms =, pool_size =, keepalive_ms = }`),
-- `keys` (sealing keys, 64 hex digits each, newest first; required for Redis, where every node shares them;
-- one node may leave them out: a key is made at start),
-- `skew` (seconds before expiry at which a session refreshes; 30),
-- `session = { max_per_user = 10, idle_timeout = 28800, max_lifetime = 604800 }` (sessions per user:
-- a new sign-in ends the oldest beyond it; seconds unused after which a session ends; seconds after
-- sign-in after which it ends, refreshes or not),
-- `cookie = { secure = true, same_site = "Lax" (or "Strict"; "None" is refused), path = "/", domain = nil,
-- name = nil }` (the name is `__Host-tfauth` when secure, on `/` and without a domain, else `tfauth_sid`),
-- `bearer = { issuer =, audience = (required: a string, a list, or false), algorithms = { "RS256" },
-- leeway = 0, jwks_url =, ttl =, min_refresh_interval =, tls =, timeout_ms =, connect_timeout_ms =,
-- types = { "at+jwt", "Bearer" } (RFC 9068's header typ, Keycloak's typ claim; false: unchecked) }`
-- (absent: `Authorization: Bearer` is not accepted),
-- `login_url` (where browsers without a session go; `/login`, the built-in page),
-- `public_origin` (`https://app.example.com` behind a TLS-terminating proxy: the origin cross-site
-- checks compare with; default the scheme and `Host` nginx sees),
-- `shared_dict` (`tfauth_gate`: the key set, metrics), `nginx_location` (`/_tfauth`),
-- `pass_access_token` (true: the upstream gets `Authorization: Bearer <access token>`; false: no
-- token, the identity headers only), `handoff` ("headers": `ngx.req.set_header`; "variables": the
-- guard sets `$tfauth_authorization` and `$tfauth_cookie`, which every guarded location passes with
-- `proxy_set_header`: cheaper; docs/gate.md, "Hand-off"), `identity_handoff` (the same choice for
-- the identity headers: "variables" sets `$tfauth_user`, `$tfauth_email`, `$tfauth_roles`, `$tfauth_subject`).
-- @raise a message naming the key
function gate.init(cfg)
  local ok, built = pcall(build, cfg)
  -- Raised from here, level 0: the message's first line names the key, and
  -- the traceback nginx prints starts at the caller's init_by_lua code.
  if not ok then return error(tostring(built), 0) end
  state = built
end

local function configured()
  if not state then error("tfauth.gate: call require('tfauth.gate').init{...} in init_by_lua first", 3) end
  return state
end

-- auth_request's answer carries the Cookie header without the gate's cookie
-- (issue 15.6): `auth_request_set $tfauth_cookie $sent_http_x_tfauth_cookie;`
-- and `proxy_set_header Cookie $tfauth_cookie;` pass it on instead.
local CLEANED_COOKIE = "X-Tfauth-Cookie"

--- Guards a location, in `access_by_lua`. Removes every identity header the
-- client sent (`X-Auth-Request-*`, oauth2-proxy's `X-Forwarded-User`, `-Email`,
-- `-Groups`, `-Preferred-Username`, `-Access-Token`), then judges the request
-- by its bearer token, or else its session cookie. Allowed: the request goes on
-- with `Authorization: Bearer <access token>`, `X-Auth-Request-User`
-- (preferred_username), `X-Auth-Request-Email` (only when `email_verified`),
-- `X-Auth-Request-Roles` (realm roles, comma-separated), `X-Auth-Request-Subject`
-- (sub), and without the gate's own cookie (`pass_access_token = false`: no
-- `Authorization`, the identity headers only; the hand-off through nginx
-- variables: docs/gate.md). Else: 302 to `login_url?rd=...`
-- for a `GET` that prefers `text/html`, 401 with `WWW-Authenticate: Bearer
-- realm="tfauth"` (and `error="invalid_token"` when a bearer was refused) and
-- JSON `{"error": ...}`; 403 (`insufficient_scope`, or `cross_site_request`
-- for a cookie-authenticated unsafe request from another origin); 503 when
-- the session store or the key set is unavailable.
-- A rule table with a mistake, or a name init's `rules` lacks, gets every
-- request 500 (the gate's page or JSON) and is logged once per worker. A
-- path that holds a dot segment as sent (`/admin/..%2Fapp/x`: nginx chose
-- the location with it resolved, the upstream gets it as sent) gets 400
-- `{"error": "invalid_request"}` (auth_request: 403).
-- @tparam[opt] table|string rules `roles` (realm roles), `client_roles = { [client] = {...} }`:
-- a request passes when it holds any one role listed; rules listing none let nobody in;
-- no rules: any valid user; a string: the rules of that name in init's `rules`
function gate.guard(rules)
  local s = configured()
  if request.has_dot_segment(ngx.var.request_uri) then return answers.dot_segment() end
  request.scrub()
  local checked, problem = gate_options.rules_of(s, rules)
  if problem then return answers.misconfigured(s) end
  rules = checked
  local result, via, who, why, cookies, at, stop = judge.request(s, rules)
  metrics.outcome(s, result, via)
  if result ~= "allowed" then return answers.refusal(s, result, who, why) end
  -- whatever the credential: the session cookie outlives the access token it stands for
  local cookie = request.cookie_for_guard(s, cookies, at, stop)
  if cookie then handoff.set(s, "Cookie", cookie) end
  handoff.identity(s, who)
  if not s.pass_access_token then
    handoff.set(s, "Authorization", nil)
  elseif via == "session" then
    -- A bearer request already carries its Authorization: handing it on
    -- again would copy the whole token for nothing.
    handoff.set(s, "Authorization", who.authorization)
  end
end

--- For nginx's `auth_request`, in the `content_by_lua` of the internal
-- location it names: 204 with the identity headers (`X-Auth-Request-User`,
-- `-Email`, `-Roles`, `-Subject`, `Authorization`) and `X-Tfauth-Cookie` (the
-- request's Cookie header without the gate's cookie) for `auth_request_set`,
-- 401 or 403 (nginx turns any other status, the 503 of an unavailable store,
-- into 500). The subrequest cannot remove the client's headers from the main
-- request: set every identity header, and `Cookie`, with `proxy_set_header`
-- from the `auth_request_set` variables (docs/gate.md).
-- @tparam[opt] table|string rules as `guard`'s
function gate.auth_request(rules)
  local s = configured()
  if request.has_dot_segment(ngx.var.request_uri) then return answers.dot_segment(true) end
  local checked, problem = gate_options.rules_of(s, rules)
  if problem then return answers.misconfigured(s, true) end
  rules = checked
  local result, via, who, why = judge.request(s, rules, true)
  metrics.outcome(s, result, via)
  if result ~= "allowed" then return answers.refusal(s, result, who, why, true) end
  for _, h in ipairs(handoff.IDENTITY) do
    if who[h[2]] then ngx.header[h[1]] = who[h[2]] end
  end
  if s.pass_access_token then ngx.header.Authorization = who.authorization end
  ngx.header[CLEANED_COOKIE] = request.cookie_for_upstream(s)
  answers.no_store()
  ngx.status = 204
  return ngx.exit(ngx.HTTP_NO_CONTENT)
end

--- For `error_page 401 500 = @signin` in a location guarded by `auth_request`, in
-- the named location's `content_by_lua`: the guard's own answer to someone
-- unauthenticated (and, for a 500, the gate's 500 page or JSON
-- `{"error": "misconfigured"}` instead of nginx's bare page). A `GET` whose `Accept` prefers `text/html` is redirected
-- (302) to `login_url?rd=<the original request URI, percent-encoded>`; anything
-- else keeps the 401, with the `WWW-Authenticate` that `auth_request()` sent
-- (nginx copies it onto the answer) and a JSON body `{"error": ...}`.
function gate.signin()
  local s = configured()
  local challenge = ngx.header["WWW-Authenticate"]
  -- auth_request's 401 always carries the gate's challenge; without one this
  -- is `error_page 500`: the gate's 500 (rules with a mistake, or nginx's
  -- answer to the subrequest's 503), never nginx's bare page.
  if challenge == nil then return answers.misconfigured(s) end
  local detail = type(challenge) == "string" and challenge:find('error="invalid_token"', 1, true) and "invalid_token"
    or request.duplicate_cookie(s) and "duplicate_cookie" or nil
  return answers.refusal(s, "unauthenticated", detail)
end

--- Where a decoded `rd` may send the browser: rd itself when it is a local
-- path (one leading `/`, second character neither `/` nor `\`, no backslash,
-- no control character, no `%2F`/`%5C` in any case), else `/`.
-- @param rd the decoded value, or nil
-- @treturn string
-- @function local_path
gate.local_path = request.local_path

--- The login location, in `content_by_lua`. `GET`: the built-in sign-in page
-- (server-rendered, no JavaScript; carries `rd`; `Content-Security-Policy`,
-- `X-Frame-Options: DENY`, `Cache-Control: no-store`). `POST` (form or JSON
-- `user`, `password`, optional `rd`): signs in at the auth API; on success a new
-- session id in the cookie (`HttpOnly`, `Secure` unless `cookie.secure = false`,
-- `SameSite`, `Path`) and 303 to `rd` when given (a local path, else `/`), or
-- 200 JSON `{"user": ...}`. Failures: 401 (wrong or missing credentials: the
-- auth API's 401 or 403), 403 (posted from another origin: `Origin`, or
-- `Referer`, names another one; or the auth API's 400: the account cannot
-- sign in now), 429 (the auth API's, with its `Retry-After`), 503 (auth API or
-- store unavailable, or any other status of the auth API: logged with method
-- and URL), as the page again with the reason for a form sent from it, else
-- JSON `{"error": ...}`; no cookie is set.
-- Other methods: 405.
function gate.login()
  local s = configured()
  local method = ngx.req.get_method()
  if method == "GET" or method == "HEAD" then
    local args = ngx.req.get_uri_args(100)
    -- a planted cookie (issue 15.5): flagged by the redirect, or seen here
    local duplicate = args.cookies == "duplicate" or request.duplicate_cookie(s)
    return pages.signin(s, 200, duplicate and "duplicate_cookie" or nil, request.local_path(request.text(args.rd)))
  end
  if method ~= "POST" then return answers.method_not_allowed("GET, HEAD, POST") end
  return account.login_post(s)
end

--- The logout location, in `content_by_lua`. `GET`/`HEAD` from a browser:
-- a confirmation page whose button posts the sign-out (others: 405). `POST`: refused
-- with 403 when posted from another origin. Ends the session at the auth API
-- and in the store (on every node), expires the cookie (same name, `Path`,
-- `Domain` and attributes), and answers 200 JSON `{"logged_out": true|false}`,
-- or 303 to `rd` when given (a local path, else `/`; from a form, the sign-in
-- page then says "You have signed out."). Bearer tokens and the
-- verified-token cache are untouched: they stay valid until their `exp`.
function gate.logout()
  local s = configured()
  local method = ngx.req.get_method()
  if method == "GET" or method == "HEAD" then return account.logout_get(s) end
  if method ~= "POST" then return answers.method_not_allowed("POST") end
  return account.logout_post(s)
end

--- For `error_page 403 = @forbidden` in a location guarded by `auth_request`,
-- in the named location's `content_by_lua`: the sibling of `signin()`. A
-- `GET`/`HEAD` whose `Accept` prefers `text/html` gets the 403 page (who is
-- signed in, a link back, sign out, sign in as someone else); anything else
-- the JSON `{"error": ...}` of the refusal, with `WWW-Authenticate`.
function gate.forbidden()
  local s = configured()
  local result, _, who = judge.request(s, nil) -- who is signed in (any valid user)
  if result == "forbidden" then return answers.forbidden(s, who) end -- cross_site_request
  return answers.forbidden(s, "insufficient_scope", result == "allowed" and who or nil)
end

--- The password-reset location (`location = /login/reset`), in
-- `content_by_lua`. `GET`: a page asking for the user name. `POST` (form or
-- JSON `user`): the same answer whether or not the account exists, at once
-- (200: the page saying an email is on its way, or JSON `{"requested": true}`);
-- the auth API's `reset_password` runs after the answer, in an `ngx.timer`,
-- at most once per user name per `account.reset_interval` (900 s) across
-- workers. CSRF-checked like login (403 from another origin); 404 without
-- `account` in the configuration.
function gate.reset_password()
  return password.reset(configured())
end

--- The change-password location (`location = /account/password`), in
-- `content_by_lua`, for a signed-in user (a browser without a session is sent
-- to sign in and comes back; others get 401). `GET`: the form (current
-- password, the new one twice). `POST` (form or JSON `current_password`,
-- `new_password`, `new_password_again`): the auth API's `change_password`
-- with the session's token and `account.x_org`; 200 (the page, or JSON
-- `{"changed": true}`) and the user stays signed in; 400 (wrong current
-- password), 403 (not allowed in this organisation, or posted from another
-- origin), 422 (new password refused, or the two differ), 503; each shown
-- from the fixed messages. 404 without `account` in the configuration.
function gate.change_password()
  return password.change(configured())
end

--- The metrics location, in `content_by_lua`: Prometheus text format 0.0.4,
-- summed over every worker (they live in the shared dict):
-- `tfauth_gate_requests_total{outcome, via}`, `tfauth_logins_total{result}`,
-- `tfauth_refreshes_total{result}`, `tfauth_jwks_fetches_total{result}`,
-- `tfauth_gate_bearer_refused_total{reason}` (the C core's fixed reasons, and
-- `error`) and the
-- histogram `tfauth_api_request_duration_seconds{operation}` (login, refresh,
-- logout). Serve it to loopback only (`allow 127.0.0.1; deny all;`).
function gate.metrics()
  local s = configured()
  ngx.header["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
  answers.no_store()
  ngx.print(metrics.render(s))
  return ngx.exit(ngx.HTTP_OK)
end

return gate
