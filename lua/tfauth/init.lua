--- The FNDTN authentication API client.
--
--    local tfauth = require "tfauth"
--    local client <close> = tfauth.new { server_url = "https://api.example.com" }
--    local tokens = client:login { user = "alice", password = pw }
--
-- Six operations, each a `client` method and a module function on the
-- default client (`tfauth.login{...}`), under its short name and the Python
-- SDK's long name. Every failure raises an `Error`; `tfauth.safe` returns
-- `nil, err` instead. No error, message or debug line ever holds a password,
-- a token or the bearer.
-- @module tfauth
local core = require "tfauth.core"
local make_client -- below
local session = require "tfauth.session"

local runtime = require "tfauth.runtime"
-- Inside nginx the client takes the nginx transport by itself (transport =
-- "auto"): the one upward dependency of this module, listed in
-- spec/support/layers.txt.
local openresty = require "tfauth.openresty"

local tfauth = {
  --- "tfauth 1.2.0"
  _VERSION = "tfauth " .. core.version,
  --- The version, "1.2.0".
  version = core.version,
  --- The metatable of every error; see `Error`.
  Error = core.Error,
  --- The error kinds, in order: argument, validation, http, timeout, network, tls, response, token.
  kinds = core.kinds,
  --- Every operation name (short and long) -> its short name.
  operations = core.operations,
  --- The `tfauth.session` module.
  session = session,
  --- The `tfauth.jwt` module.
  jwt = require "tfauth.jwt",
}

--- Whether `value` is a tfauth `Error`.
-- @param value anything
-- @treturn boolean
-- @function is_error
tfauth.is_error = core.is_error

--- An `argument` error (not raised): for Lua code that checks its own
-- configuration and reports it as tfauth does (the gate, the stores).
-- @string operation what was called, e.g. "gate.init"
-- @string field the field at fault (a path: "store.tls.verify")
-- @string problem what is wrong with it
-- @treturn Error
-- @function argument_error
tfauth.argument_error = core.argument_error

--- A new client.
-- @tparam[opt] table config `server_url` (required, or env `TOANFNDTN_SERVER_URL`;
-- `http://` or `https://`), `bearer` (string or function called per request; env
-- `TOANFNDTN_BEARER`), `timeout_ms` (30000), `connect_timeout_ms` (10000),
-- `retries` (a RetryConfig: `strategy`, `backoff = { initial_interval, max_interval,
-- exponent, max_elapsed_time }`, `retry_connection_errors`), `http_headers`,
-- `user_agent`, `tls = { verify, ca_file, ca_path, cert, key }` (`verify = false` is
-- unsafe), `proxy`, `max_response_bytes` (1 MiB), `debug` (function(line)),
-- `before_request` (function(req): may add headers), `after_success` (function(info)),
-- `after_error` (function(err)); inside nginx, `transport` ("auto": nginx in request
-- phases, libcurl elsewhere; "nginx"; "curl") and `nginx_location` ("/_tfauth").
-- Unknown keys are refused; values are copied.
-- @treturn client
-- @raise an `argument` error naming the field
function tfauth.new(config)
  return make_client(config, "new")
end

local LIBCURL_ONLY = { "before_request", "after_success", "after_error", "debug" }

-- The core client, wrapped for nginx when tfauth runs inside it (or is told
-- to use it). `transport` and `nginx_location` are the Lua face's own keys.
make_client = function(config, op)
  if type(config) ~= "table" or (config.transport == nil and config.nginx_location == nil) then
    local client = core.new(config, op)
    if runtime.nginx() then return openresty.wrap(client, "auto") end
    return client
  end
  local transport, location = config.transport or "auto", config.nginx_location
  local function refuse(field, message) error(core.argument_error(op, field, message)) end
  if not runtime.TRANSPORTS[transport] then refuse("transport", 'must be "auto", "nginx" or "curl"') end
  if location ~= nil and (type(location) ~= "string" or location:sub(1, 1) ~= "/") then
    refuse("nginx_location", "must be a location path starting with /")
  end
  local rest = {}
  for k, v in pairs(config) do if k ~= "transport" and k ~= "nginx_location" then rest[k] = v end end
  local client = core.new(rest, op)
  if transport == "curl" then return client end
  local libcurl_only
  for _, key in ipairs(LIBCURL_ONLY) do libcurl_only = libcurl_only or (rest[key] ~= nil and key or nil) end
  return openresty.wrap(client, transport, location, libcurl_only)
end

local default_client -- made by configure, or from the environment at first use

--- Sets the configuration of the default client the module functions use;
-- the previous default client, if any, is closed.
-- @tparam table config as for `new`
-- @treturn client the new default client
function tfauth.configure(config)
  local client = make_client(config, "configure")
  if default_client then default_client:close() end
  default_client = client
  return client
end

--- The default client: the one `configure` made, or else one made at first
-- use from `TOANFNDTN_SERVER_URL` and `TOANFNDTN_BEARER`.
-- @treturn client
function tfauth.default_client()
  if not default_client then default_client = make_client(nil, "configure") end
  return default_client
end

-- tfauth.login{...} and friends, one per operation name and alias.
for name in pairs(core.operations) do
  tfauth[name] = function(params, overrides)
    local client = tfauth.default_client()
    return client[name](client, params, overrides)
  end
end

-- client:session{...}, documented with the client's methods below: the
-- one definition, attached to the core client and to the nginx one.
local function session_of(client, source, options)
  return session.new(client, source, options)
end
core.client_methods.session = session_of
openresty.Client.session = session_of

-- The rest of this file documents what the C core implements.

--- Module functions.
-- Each operation on the default client, with the same arguments and results
-- as the `client` methods.
-- @section module

--- `client:login` on the default client. Also `login_user_api_iam_login_post`.
-- @function login

--- `client:refresh` on the default client. Also `refresh_token_api_iam_refresh_post`.
-- @function refresh

--- `client:logout` on the default client. Also `logout_user_api_iam_logout_post`.
-- @function logout

--- `client:reset_password` on the default client. Also `reset_password_api_iam_password_reset_post`.
-- @function reset_password

--- `client:change_password` on the default client. Also `change_password_api_iam_password_change_post`.
-- @function change_password

--- `client:admin_change_password` on the default client. Also
-- `admin_change_user_password_api_iam_admin_user_user_id_password_post`.
-- @function admin_change_password

--- A client: one libcurl handle, its connection kept alive, its configuration checked and copied.
-- Each operation takes a table of parameters and an optional table of per-call overrides
-- (`server_url`, `timeout_ms`, `http_headers` merged over the client's, `retries`).
-- @type client

--- Logs in: `POST /api/iam/login`, JSON body.
-- @tparam table params `user`, `password` (strings), `remember_me` (boolean, default false)
-- @tparam[opt] table overrides
-- @treturn TokenOpenID
-- @function client:login

--- A new token pair: `POST /api/iam/refresh`. Keycloak rotates the refresh token.
-- @tparam table params `refresh_token`
-- @tparam[opt] table overrides
-- @treturn TokenOpenID
-- @function client:refresh

--- Ends the session: `POST /api/iam/logout`.
-- @tparam table params `refresh_token`
-- @tparam[opt] table overrides
-- @treturn table the OK object (usually empty)
-- @function client:logout

--- Triggers a password reset: `POST /api/iam/password/reset?username=...`.
-- @tparam table params `username`
-- @tparam[opt] table overrides
-- @treturn table the OK object
-- @function client:reset_password

--- Changes the bearer's own password: `POST /api/iam/password/change`, headers
-- `X-Org` (and `X-Org-Override`), the bearer.
-- @tparam table params `x_org`, `current_password`, `new_password`, `x_org_override` (optional)
-- @tparam[opt] table overrides
-- @treturn table the OK object
-- @function client:change_password

--- An admin sets another user's password: `POST /api/iam/admin/user/{user_id}/password`,
-- headers `X-Org` (and `X-Org-Override`), the admin's bearer. `user_id` must be one path segment.
-- @tparam table params `user_id`, `x_org`, `new_password`, `x_org_override` (optional)
-- @tparam[opt] table overrides
-- @treturn table the OK object
-- @function client:admin_change_password

--- The request an operation would send, as a table (`operation`, `method`, `url`, `headers`,
-- `body`, `timeout_ms`, `connect_timeout_ms`, `secrets`), sending nothing: for transports
-- written in Lua. It holds the secrets: never log it.
-- @string operation
-- @tparam table params
-- @tparam[opt] table overrides
-- @treturn table
-- @function client:prepare

--- Maps a response to the result, or raises the `Error`, exactly as a call would.
-- @tparam table request from `client:prepare`
-- @int status
-- @tparam table headers name -> value (any case)
-- @string body
-- @treturn table
-- @function client:map

--- GETs a JSON document at an absolute URL on this client's libcurl handle,
-- with its TLS options and timeouts (what `tfauth.jwks` reads JWKS and
-- discovery documents with). Only `Accept: application/json` is sent: not
-- the bearer, not `http_headers`; no retries, hooks or debug lines. The
-- answer is judged as the operations' are: a non-2xx is an `http` error, a
-- 2xx body that is not a JSON object or is over `max_response_bytes` a
-- `response` error; no answer is `network`, `timeout` or `tls`.
-- @string url an `http://` or `https://` URL (a query is kept; no credentials or fragment)
-- @string[opt] name the errors' `operation`, default "fetch"
-- @treturn table the decoded JSON object
-- @treturn string the body as sent
-- @function client:fetch

--- The request `fetch` would send, as `prepare` gives one (`method` "GET",
-- no body), for transports written in Lua; their answer goes to `map`.
-- @string url
-- @string[opt] name
-- @treturn table
-- @function client:prepare_fetch

--- A self-refreshing token session on this client (see `tfauth.session`).
-- @tparam table source `{ user =, password = }` to log in now, or tokens (a TokenOpenID or an export)
-- @tparam[opt] table options `skew`, `clock`, `wait`, `on_refresh`
-- @treturn tfauth.session.Session
-- @function client:session

--- Closes the client (idempotent); also `<close>` and garbage collection.
-- @function client:close

--- Whether the client is still open.
-- @function client:is_open

--- The result of `login` and `refresh`: what the server sent, checked, plus absolute times.
-- @table TokenOpenID
-- @field access_token string
-- @field refresh_token string
-- @field expires_in integer, seconds
-- @field refresh_expires_in integer, seconds
-- @field scope string
-- @field token_type string, "Bearer"
-- @field session_state string, when sent
-- @field id_token string, when sent
-- @field not-before-policy integer, when sent
-- @field expires_at integer, seconds since the epoch (client clock at receipt)
-- @field refresh_expires_at integer, seconds since the epoch

--- Every failure: a table with this metatable, raised with `error()`.
-- `tostring(err)` is one line: `tfauth: login: http 401: Invalid user credentials`.
-- `Error.new(kind, message[, fields])` builds one (for transports written in Lua).
--
-- Kinds: **argument** (a parameter or config value missing or of the wrong type or form;
-- nothing was sent), **validation** (HTTP 422), **http** (any other non-2xx, redirects
-- included), **timeout**, **network** (resolve, connect, send, receive), **tls**
-- (certificate or handshake), **response** (a 2xx that breaks the contract, or a body
-- over `max_response_bytes`), **token** (`tfauth.jwt.verify` or `tfauth.jwks` refused a
-- token; `reason` says which check).
-- @table Error
-- @field kind one of `kinds`
-- @field message one line, never holding a secret
-- @field operation "login", "refresh", ...
-- @field field for `argument` errors: the parameter or config field at fault
-- @field problem for `argument` errors: what is wrong with it, without the field (the
-- message is "argument '<field>': <problem>"), for a caller that names its own field path
-- @field status the HTTP status, when a response arrived
-- @field method the request's method ("POST"), on every error of a call that was sent
-- (`http`, `validation`, `response`, `timeout`, `network`, `tls`)
-- @field url the request's URL without its query or fragment (`reset_password` puts the
-- user name in the query), on the same errors
-- @field headers the response headers, names lower-cased
-- @field body the response body, capped and redacted
-- @field json the decoded body, when it was JSON
-- @field detail FastAPI's detail (the 422 list, or an HTTPException's text)
-- @field error Keycloak's error, e.g. "invalid_grant"
-- @field error_description Keycloak's error_description
-- @field curl_code libcurl's code, for timeout, network and tls errors
-- @field attempts how many attempts were made
-- @field retryable whether another attempt could succeed (429, 5xx gateway errors, timeouts, network)
-- @field expired set by a session whose refresh token was rejected
-- @field reason for `token` errors: "malformed", "algorithm", "key", "signature", "expired",
-- "not_yet_valid", "issuer", "audience" or "type"
-- @field kid_missing for `token` errors of reason `key`: true when the token's `kid` is not in the set
-- @field kid for `token` errors: the `kid` of the token's header, once it was read (a string, as sent)
-- @field alg for `token` errors: the `alg` of the token's header, once it was read (a string, as sent)
-- @field iss for `token` errors: the token's `iss` claim, once the claims were read (after the
-- signature verified; a string, as sent). Never the token, its signature or another claim.

return tfauth
