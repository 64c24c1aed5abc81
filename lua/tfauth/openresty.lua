--- Calls through nginx itself, for OpenResty: non-blocking.
--
-- libcurl blocks: inside nginx, a slow login would stall every request of
-- the worker. In a request phase (rewrite, access, content) this transport
-- sends the request tfauth prepared as an nginx subrequest to an internal
-- location that proxies it (`ngx.location.capture`), and feeds the answer
-- to the same response mapper: results and errors are those of the libcurl
-- path. Elsewhere (init, timers, plain Lua) calls go through libcurl.
--
-- The internal location (docs/openresty.md, "The transport location"):
--
--    location = /_tfauth {
--        internal;
--        set $tfauth_url "";
--        set $tfauth_host "";
--        rewrite_by_lua_block { require("tfauth.openresty").subrequest() }
--        proxy_pass $tfauth_url;
--        proxy_redirect off;
--        proxy_ssl_verify on;                 # https: the certificate is checked
--        proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;
--        proxy_ssl_verify_depth 4;
--        proxy_ssl_server_name on;            # SNI
--        proxy_ssl_name $tfauth_host;         # the name checked: the URL's host
--        add_header X-Tfauth-Upstream $upstream_header_time always;
--    }
--
-- nginx checks the certificate's DNS names only (`X509_check_host`): an
-- https `server_url` must name a host, not an IP address, and nginx needs a
-- `resolver` for it (except `localhost`, dialled as 127.0.0.1). nginx's answer to a refused certificate is a bare 502,
-- as for a server that is down; to report a `tls` error as libcurl does,
-- this module then tries a TLS handshake itself, through a cosocket: give
-- the http block `lua_ssl_trusted_certificate` (the same CAs) and
-- `lua_ssl_verify_depth 4` (without them the probe trusts nothing, and any
-- https failure past the TCP connect reads as `tls`), and put the
-- `resolver` at the http or server level.
-- @module tfauth.openresty
local core = require "tfauth.core"
local runtime = require "tfauth.runtime"

local Error = core.Error

local openresty = {}

--- Where subrequests go unless the client says otherwise (`tfauth.runtime`'s).
openresty.DEFAULT_LOCATION = runtime.DEFAULT_LOCATION

--- Whether this code runs in an nginx request phase where subrequests work
-- (`tfauth.runtime.in_request_phase`).
-- @function in_request_phase
openresty.in_request_phase = runtime.in_request_phase

-- The host of a URL tfauth built (scheme://host[:port]/...), IPv6 in brackets.
local function url_host(url)
  return url:match("^%a+://(%[[^%]]*%])") or url:match("^%a+://([^/:?#]+)")
end

-- Where nginx connects for host. It resolves names with its own `resolver`
-- only, never /etc/hosts; "localhost" is loopback by definition (RFC 6761),
-- so it is dialled as 127.0.0.1 without one, while TLS still sends and checks
-- the name "localhost" (`proxy_ssl_name $tfauth_host`, the probe's handshake).
local function address_of(host)
  if host and host:lower() == "localhost" then return "127.0.0.1" end
  return host
end

-- The URL proxy_pass dials: host replaced by address_of(host).
local function dialled(url)
  local host = url_host(url)
  if address_of(host) == host then return url end
  local scheme, rest = url:match("^(%a+://)[^/:?#]+(.*)$")
  return scheme .. address_of(host) .. rest
end

--- For the internal location's rewrite phase: replaces the headers the
-- subrequest inherited from the client's request with tfauth's, and sets
-- `$tfauth_url` and, when the location declares it, `$tfauth_host` (the
-- URL's host, for `proxy_ssl_name`: with `proxy_pass $tfauth_url` it is
-- the name the upstream certificate must carry).
function openresty.subrequest()
  local req = ngx.ctx.tfauth_request
  if not req then return ngx.exit(ngx.HTTP_NOT_FOUND) end
  for name in pairs(ngx.req.get_headers(0, true)) do
    -- Content-Length is the subrequest's own, set for tfauth's body (a GET has none).
    if name:lower() ~= "content-length" or req.method == "GET" then ngx.req.clear_header(name) end
  end
  for name, value in pairs(req.headers) do ngx.req.set_header(name, value) end
  ngx.ctx.dispatched = true -- the caller's ctx: the location is the documented one
  ngx.var.tfauth_url = dialled(req.url)
  -- An undeclared variable reads as nil (1.0 configurations lack it).
  if ngx.var.tfauth_host ~= nil then ngx.var.tfauth_host = url_host(req.url) or "" end
end

local PROBE_TIMEOUT_MS = 5000

-- Whether an https request that got no answer (nginx's bare 502) failed in
-- the TLS handshake: nginx's answer does not say (its error log does), so
-- this tries a handshake itself, through a cosocket verifying as the
-- location does (`lua_ssl_trusted_certificate`, `lua_ssl_verify_depth`: the
-- same CAs as `proxy_ssl_trusted_certificate`), sending nothing. Connected
-- but refused: the certificate or the handshake is the failure.
local function handshake_refused(url)
  local host = url_host(url)
  local port = tonumber(url:match("^https://[^/]-:(%d+)/")) or 443
  if not host or host:sub(1, 1) == "[" then return false end
  local sock = ngx.socket.tcp()
  sock:settimeouts(PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS, PROBE_TIMEOUT_MS)
  if not sock:connect(address_of(host), port) then return false end -- nothing answers: a network error
  -- Not sslhandshake(false, ...): when the handshake completes without
  -- waiting, lua-nginx-module (0.10.23) answers true even though the
  -- certificate failed verification; asking for the session makes resty.core
  -- read the verdict (an error, or there its assertion: caught as a refusal).
  local ran, _, err = pcall(sock.sslhandshake, sock, nil, host, true)
  sock:close()
  return not ran or err ~= nil
end

local UPSTREAM_MARK = "x-tfauth-upstream"

-- The subrequest's answer as status and headers, or as a transport failure:
-- nginx answers 502/504 itself when no upstream response header came
-- ($upstream_header_time "-" or absent).
local function outcome(res)
  local headers, mark = {}, nil
  for name, value in pairs(res.header) do
    if name:lower() == UPSTREAM_MARK then mark = value else headers[name] = value end
  end
  if type(mark) == "table" then mark = mark[#mark] end
  local answered = mark ~= nil and mark ~= "" and mark ~= "-"
  if not answered and (res.status == 502 or res.status == 504 or res.status >= 500 and mark == nil) then
    return nil, res.status == 504 and "timeout" or "network", headers
  end
  if res.truncated then return nil, "network", headers end
  return res.status, nil, headers
end

local function header_value(headers, wanted)
  for name, value in pairs(headers) do
    if name:lower() == wanted then return type(value) == "table" and value[1] or value end
  end
end

local LABELS = { timeout = "timeout", network = "network error", tls = "TLS handshake failed" }

-- The subrequest's answer, as outcome() gives it, with a bare 502 from an
-- https URL that refused its handshake reported as `tls`.
-- A subrequest that never ran subrequest() (ctx.dispatched unset) was
-- answered by nginx itself: the location is missing or not the documented
-- one ("location": nothing reached the auth API, whatever the status says).
local function answer_of(res, url, ctx)
  if not ctx.dispatched then return nil, "location", {} end
  local status, failure, headers = outcome(res)
  if failure == "network" and url:sub(1, 8) == "https://" and handshake_refused(url) then failure = "tls" end
  return status, failure, headers
end

-- Locations already said to be missing in this worker's log.
local said_missing = {}

--- The fix for a transport location that nginx answers itself, as logged.
openresty.LOCATION_FIX = "declare it as docs/openresty.md shows: location = %s { internal; set $tfauth_url \"\"; "
  .. "set $tfauth_host \"\"; rewrite_by_lua_block { require(\"tfauth.openresty\").subrequest() } "
  .. "proxy_pass $tfauth_url; ... }"

-- A subrequest nginx answered itself: logged once per worker, with the fix.
local function location_error(location, url, res, operation, attempts)
  if not said_missing[location] then
    said_missing[location] = true
    ngx.log(ngx.ERR, "tfauth: the nginx location ", location, " did not reach the auth API (nginx answered ",
      res.status, " itself: its rewrite_by_lua never ran): it is missing or not the documented one; ",
      openresty.LOCATION_FIX:format(location))
  end
  return Error.new("network", ("network error: the nginx location %s answered %d itself, nothing reached %s "
    .. "(the location is missing or not the documented one; see the error log)")
    :format(location, res.status, url:match("^%a+://[^/]+")), { operation = operation, retryable = false,
      attempts = attempts })
end

-- The error for a subrequest that got no answer (failure: a kind).
local function transport_error(failure, url, res, operation, attempts, location)
  if failure == "location" then return location_error(location, url, res, operation, attempts) end
  local origin = url:match("^%a+://[^/]+")
  if failure == "tls" then
    return Error.new(failure, ("%s: nginx refused the certificate or handshake of %s (status %d; see its error log)")
      :format(LABELS[failure], origin, res.status), { operation = operation, retryable = false, attempts = attempts })
  end
  return Error.new(failure, ("%s: the nginx subrequest got no answer from %s (status %d)")
    :format(LABELS[failure], origin, res.status), { operation = operation, retryable = true, attempts = attempts })
end

--- One operation through nginx, retries included.
-- @param client a core client
-- @string location the internal location
-- @string operation
-- @tparam table params
-- @tparam[opt] table overrides
function openresty.call(client, location, operation, params, overrides)
  local req = client:prepare(operation, params, overrides)
  local started, attempts = ngx.now(), 0
  while true do
    attempts = attempts + 1
    local ctx = { tfauth_request = req }
    local res = ngx.location.capture(location, { method = ngx.HTTP_POST, body = req.body or "", ctx = ctx })
    local status, failure, headers = answer_of(res, req.url, ctx)
    if failure == "location" then error(transport_error(failure, req.url, res, req.operation, attempts, location)) end
    local wait = core.retry_wait(req.retry, attempts - 1, (ngx.now() - started) * 1000, failure,
      status, status and header_value(headers, "retry-after"))
    if not wait then
      if failure then error(transport_error(failure, req.url, res, req.operation, attempts, location)) end
      local ok, result = pcall(client.map, client, req, status, headers, res.body)
      if ok then return result end
      result.attempts = attempts
      error(result, 0)
    end
    ngx.sleep(wait / 1000)
  end
end

--- A GET of a JSON document through nginx: `client:fetch` on the nginx
-- transport (no retries), non-blocking.
-- @param client a core client
-- @string location the internal location
-- @string url absolute http(s) URL
-- @string[opt] name the errors' `operation` (default "fetch")
-- @treturn table the decoded JSON object
-- @treturn string the body as sent
function openresty.fetch(client, location, url, name)
  local req = client:prepare_fetch(url, name)
  local ctx = { tfauth_request = req }
  local res = ngx.location.capture(location, { method = ngx.HTTP_GET, ctx = ctx })
  local status, failure, headers = answer_of(res, url, ctx)
  if failure then error(transport_error(failure, url, res, req.operation, 1, location)) end
  return client:map(req, status, headers, res.body), res.body
end

local Client = { __name = "tfauth.openresty.client" }
Client.__index = Client

for name, short in pairs(core.operations) do
  Client[name] = function(self, params, overrides)
    if getmetatable(self) ~= Client then error("tfauth: call it as client:" .. name .. "{...}", 2) end
    if not runtime.uses_nginx(self.transport) then return self.core[name](self.core, params, overrides) end
    if self.libcurl_only then
      error(core.argument_error(short, self.libcurl_only,
        'runs on the libcurl transport only; use transport = "curl" for this client'))
    end
    return openresty.call(self.core, self.location, short, params, overrides)
  end
end

function Client:prepare(...) return self.core:prepare(...) end
function Client:map(...) return self.core:map(...) end
function Client:close() return self.core:close() end
function Client:is_open() return self.core:is_open() end
function Client:__close() self.core:close() end
function Client:__tostring()
  return tostring(self.core):gsub("^tfauth%.client", "tfauth.client[" .. self.transport .. "]")
end

--- A client that uses nginx in request phases (`transport = "auto"`), or
-- always (`"nginx"`).
-- @param core_client a core client
-- @string transport "auto" or "nginx"
-- @string[opt] location the internal location, default `/_tfauth`
-- @string[opt] libcurl_only a configured hook or debug that only libcurl runs
function openresty.wrap(core_client, transport, location, libcurl_only)
  return setmetatable({ core = core_client, transport = transport,
    location = location or openresty.DEFAULT_LOCATION, libcurl_only = libcurl_only }, Client)
end

openresty.Client = Client
return openresty
