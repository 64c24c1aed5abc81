-- One connection to one Redis node, ready for commands: connected (its own
-- connect timeout), TLS (verified against nginx's
-- lua_ssl_trusted_certificate, the client certificate sent), AUTH (an ACL
-- user or the default user), SELECT, and for Sentinel a ROLE check. Pooled
-- by nginx's cosocket pool under a name of the node, the store (each store
-- object its own pools: another store's user, password, database or TLS
-- never comes with a pooled connection) and the master's epoch.
--
-- Every failure is `nil, message, kind`: the message names the node and the
-- reply or socket error (never a password), kind is one of the fixed set the
-- gate counts: connect, timeout, auth, tls, readonly, oom, moved, other.
local connection = {}

local driver = require "nginx.redis" -- Debian's lua-nginx-redis (lua-resty-redis)

-- Error replies by their first word; socket errors below.
local REPLY_KINDS = {
  READONLY = "readonly", NOREPLICAS = "readonly", MASTERDOWN = "readonly",
  OOM = "oom",
  MOVED = "moved", ASK = "moved", TRYAGAIN = "moved", CLUSTERDOWN = "moved",
  NOAUTH = "auth", WRONGPASS = "auth", NOPERM = "auth",
}

--- The kind of an error: one of connect, timeout, auth, tls, readonly, oom, moved, other.
function connection.kind_of(err)
  err = tostring(err)
  local word = err:match("^(%u+)[ %s]") or err:match("^(%u+)$")
  if word and REPLY_KINDS[word] then return REPLY_KINDS[word] end
  if err == "timeout" then return "timeout" end
  if err:find("refused", 1, true) or err == "closed" or err:find("no route", 1, true)
    or err:find("reset by peer", 1, true) or err:find("broken pipe", 1, true) then return "connect" end
  return "other"
end

-- Client certificates, parsed once per worker (cdata cannot be shared).
local parsed = {}
local function client_cert(tls)
  local cached = parsed[tls]
  if cached then return cached.cert, cached.key end
  local ssl = require "ngx.ssl"
  local function read(path)
    local file = assert(io.open(path, "rb"))
    local text = file:read("*a")
    file:close()
    return text
  end
  local cert, err = ssl.parse_pem_cert(read(tls.cert))
  if not cert then return nil, "tls.cert: " .. tostring(err) end
  local key, kerr = ssl.parse_pem_priv_key(read(tls.key))
  if not key then return nil, "tls.key: " .. tostring(kerr) end
  parsed[tls] = { cert = cert, key = key }
  return cert, key
end

-- What an OpenSSL verification error means here, for the log line.
local function tls_hint(err)
  if err:find("unable to get local issuer", 1, true) or err:find("self%-signed") then
    return " (the certificate is not signed by a CA in nginx's lua_ssl_trusted_certificate"
      .. " -- is that directive set?)"
  elseif err:find("host mismatch", 1, true) then
    return " (the certificate does not name tls.server_name)"
  end
  return ""
end

local function handshake(red, options, node)
  local tls = options.tls
  local sock = rawget(red, "_sock")
  if tls.cert then
    local cert, key = client_cert(tls)
    if not cert then return nil, key end
    local ok, err = sock:setclientcert(cert, key)
    if not ok then return nil, "client certificate: " .. tostring(err) end
  end
  local verify = tls.verify ~= false
  -- reused_session must be nil, not false: with false, resty.core 0.1.25
  -- skips the call that reports a failed verification when the handshake
  -- completes at once. With nil, it raises an assertion instead in that
  -- case: a refusal all the same (nginx logs OpenSSL's reason on its own line).
  local done, ok, err = pcall(sock.sslhandshake, sock, nil, tls.server_name or node.host, verify)
  if not done then
    ok, err = nil, "handshake failed (the reason is on nginx's line above: a certificate not signed by a CA in"
      .. " lua_ssl_trusted_certificate, not for tls.server_name, or a client certificate the server wants)"
  end
  if not ok then return nil, "TLS: " .. tostring(err) .. tls_hint(tostring(err)) end
  return true
end

local function failed(red, node, err, kind)
  red:close()
  return nil, ("redis %s:%d: %s"):format(node.host, node.port, tostring(err)), kind or connection.kind_of(err)
end

-- A new connection's setup: TLS, AUTH, SELECT, ROLE.
local function prepare(red, options, node)
  if options.tls then
    local ok, err = handshake(red, options, node)
    if not ok then return failed(red, node, err, "tls") end
  end
  if options.password then
    local ok, err
    if options.username then ok, err = red:auth(options.username, options.password)
    else ok, err = red:auth(options.password) end
    if not ok then return failed(red, node, "AUTH refused: " .. tostring(err), "auth") end
  end
  if options.database and options.database ~= 0 then
    local ok, err = red:select(options.database)
    if not ok then
      return failed(red, node, "SELECT " .. options.database .. ": " .. tostring(err), connection.kind_of(err))
    end
  end
  if options.role then
    local role, err = red:role()
    if not role then return failed(red, node, "ROLE: " .. tostring(err), connection.kind_of(err)) end
    if role[1] ~= options.role then
      return failed(red, node, "ROLE is " .. tostring(role[1]) .. ", not " .. options.role, "readonly")
    end
  end
  return red
end

--- A connection to node ({ host =, port = }) with options (the store's
-- config: tls, username, password, database, timeouts; role: the role it
-- must have; epoch: part of the pool's name). Returns it, or nil, err, kind.
function connection.open(options, node)
  local red = driver:new()
  local sock = rawget(red, "_sock")
  local timeout = options.timeout_ms or 1000
  sock:settimeouts(options.connect_timeout_ms or timeout, timeout, timeout)
  local pool = ("tfauth:%s:%d:%s:%s:%s"):format(node.host, node.port, options.pool_id or "",
    options.sentinel and "sentinel" or "", options.epoch or 0)
  local ok, err = red:connect(node.host, node.port, { pool = pool, pool_size = options.pool_size or 32 })
  if not ok then return failed(red, node, "connect: " .. tostring(err), err == "timeout" and "timeout" or "connect") end
  if red:get_reused_times() > 0 then return red end
  return prepare(red, options, node)
end

--- Returns a connection to the pool (after a command that succeeded or got an error reply).
function connection.release(options, red)
  red:set_keepalive(options.keepalive_ms or 60000, options.pool_size or 32)
end

--- Runs f(red) on a connection to node: f's result, or nil, err, kind. An
-- error reply (resty.redis's `false, err`) is an error like a socket error;
-- the connection is kept after an error reply, closed after a socket error.
function connection.run(options, node, f)
  local red, err, kind = connection.open(options, node)
  if not red then return nil, err, kind end
  local res, ferr, extra = f(red)
  if res == nil or res == false then
    if ferr == nil then -- f's own "no" (a script's nil answer): not an error
      connection.release(options, red)
      return res
    end
    local message = ("redis %s:%d: %s"):format(node.host, node.port, tostring(ferr))
    if res == false then connection.release(options, red) else red:close() end
    return nil, message, connection.kind_of(ferr), ferr, extra
  end
  connection.release(options, red)
  return res
end

return connection
