-- The documentation's snippets, run as printed: each code block of README.md
-- and docs/*.md is read from the page, its placeholders (the example URLs,
-- passwords and keys) filled in with the reference backend's, nothing else
-- changed; the nginx ones are started in a real nginx on loopback.
local cjson = require "cjson"
local h = require "spec.helper"

local sh, http = h.sh, h.http
local has_jwks = pcall(require, "tfauth.jwks")
local issuer = has_jwks and os.getenv("TFAUTH_TEST_ISSUER") or nil

local function first(headers, name) return headers[name] and headers[name][1] end

local function read(path)
  local f = assert(io.open(h.root .. "/" .. path))
  local text = f:read("*a")
  f:close()
  return text
end

-- The nth (default 1st) code block of `lang` in the section of `path` that
-- starts with the heading line `heading` (and ends at the next heading of
-- that level): its text, without the fences.
local function block(path, heading, lang, nth)
  local text = read(path)
  local level = heading:match("^#+ ")
  local at = text:find("\n" .. heading .. "\n", 1, true)
  assert(at, path .. " no longer has the heading: " .. heading)
  local stop = text:find("\n" .. level, at + #heading + 2, true) or #text
  local from = at
  for _ = 1, nth or 1 do
    local start = text:find("\n```" .. lang .. "\n", from, true)
    assert(start and start < stop, ("%s, %s: no ```%s block %d"):format(path, heading, lang, nth or 1))
    from = start + 1
  end
  local start = from + 3 + #lang + 1
  return text:sub(start, text:find("\n```\n", start - 1, true))
end

-- s with old (plain text, which must be there) replaced by new.
local function replace(s, old, new)
  local i, j = s:find(old, 1, true)
  assert(i, "the snippet no longer has: " .. old)
  return s:sub(1, i - 1) .. new .. s:sub(j + 1)
end

-- docs/openresty.md's transport location, as printed.
local function transport()
  local text = block("docs/openresty.md", "## The transport location", "nginx")
  return assert(text:match("\n(        location = /_tfauth {            # tfauth's requests.-\n        })\n"),
    "docs/openresty.md's /_tfauth location")
end

local function free_port()
  return (sh("/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); "
    .. "print(s.getsockname()[1])'"):gsub("%s+$", ""))
end

-- Starts nginx (two workers) with an `http { ... }` snippet: its first
-- `server {` listens on a free loopback port, after `extra` (more
-- locations), and `upstream app` is a small application that answers with
-- the headers it received. A snippet without a server gets one. Returns
-- the URL and a stop function.
local function start_nginx(conf, extra)
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  sh(("mkdir -p %s/logs %s/tmp"):format(dir, dir))
  local port = free_port()
  local app = ("    upstream app { server unix:%s/app.sock; }\n"
    .. "    server {\n        listen unix:%s/app.sock;\n        location / { content_by_lua_block {\n"
    .. "            ngx.say(require('cjson').encode { headers = ngx.req.get_headers(0) }) } }\n    }\n")
    :format(dir, dir)
  if not conf:find("\n    server {\n", 1, true) then
    conf = conf:gsub("}\n?$", "    server {\n    }\n}\n")
  end
  conf = replace(conf, "\n    server {\n", ("\n%s    server {\n        listen 127.0.0.1:%s;\n%s\n")
    :format(app, port, extra or ""))
  local paths = ""
  if not conf:find("lua_package_path", 1, true) then
    paths = ('    lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;;";\n    lua_package_cpath "%s/build/jit/?.so;;";\n')
      :format(h.root, h.root, h.root)
  end
  conf = replace(conf, "http {\n", ("http {\n    client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;\n%s")
    :format(dir, dir, paths))
  if not conf:find("load_module", 1, true) then
    conf = "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n"
      .. "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\n" .. conf
  end
  conf = replace(conf, "http {\n", "events { worker_connections 256; }\nhttp {\n")
  conf = ("%sworker_processes 2;\npid %s/nginx.pid;\nerror_log %s/logs/error.log warn;\n%s")
    :format(sh("id -u"):find("^0") and "user root;\n" or "", dir, dir, conf)
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local out = sh(("env -u LD_PRELOAD nginx -p %s -c %s/nginx.conf 2>&1; echo rc=$?"):format(dir, dir))
  assert(out:find("rc=0", 1, true), out .. sh("cat " .. dir .. "/logs/error.log") .. "\n" .. conf)
  return "http://127.0.0.1:" .. port, function()
    sh(("kill $(cat %s/nginx.pid) 2>/dev/null; sleep 0.2; rm -rf %s"):format(dir, dir))
  end
end

-- The gate's snippets name the auth API and the realm as printed; here they
-- are the reference backend. Without a realm, the bearer section goes.
local function fill_gate(conf)
  conf = replace(conf, '"https://api.example.com"', '"' .. h.url .. '"')
  conf = replace(conf, '"<64 hex: openssl rand -hex 32>"', '"' .. ("ab"):rep(32) .. '"')
  if conf:find("bearer = {", 1, true) then
    if issuer then
      conf = replace(conf, '"https://kc.example/realms/fndtn"', '"' .. issuer .. '"')
    else
      conf = conf:gsub("            bearer = {.-\n            },\n", "")
    end
  end
  return replace(conf, "        location = /_tfauth { ... }", transport() .. "\n")
end

describe("the README's client example", function()
  before_each(h.reset)

  it("logs in, refreshes, logs out and reads a refusal, as printed", function()
    local code = block("README.md", "## The client in short", "lua")
    code = replace(code, '"https://api.example.com"', '"' .. h.url .. '"')
    code = replace(code, '"s3cret"', '"' .. h.users.alice.password .. '"')
    local printed = {}
    local env = setmetatable({ print = function(...)
      local line = {}
      for i = 1, select("#", ...) do line[i] = tostring((select(i, ...))) end
      printed[#printed + 1] = table.concat(line, " ")
    end }, { __index = _G })
    local chunk = assert((loadstring or load)(code, "=README.md"))
    if setfenv then setfenv(chunk, env) else chunk = assert(load(code, "=README.md", "t", env)) end
    chunk()
    assert.same({ "Bearer 300", "false http 401" }, printed)
    local paths = {}
    for _, r in ipairs(h.requests()) do paths[#paths + 1] = r.path end
    assert.same({ "/api/iam/login", "/api/iam/refresh", "/api/iam/logout", "/api/iam/login" }, paths)
  end)
end)

describe("the documentation's gate snippets #nginx", function()
  before_each(h.reset)

  it("the README's gate: sign-in, a guarded page and a role, as printed", function()
    local url, stop = start_nginx(fill_gate(block("README.md", "## The gate in short", "nginx")))
    finally(stop)
    local status, headers = http(url .. "/app/x", { headers = { "Accept: text/html" } })
    assert.equal(302, status)
    assert.equal("/login?rd=%2Fapp%2Fx", first(headers, "location"))
    status, headers = http(url .. "/login", {
      form = { user = "alice", password = h.users.alice.password, rd = "/app/x" } })
    assert.equal(303, status)
    assert.equal("/app/x", first(headers, "location"))
    local value = first(headers, "set-cookie"):match("^__Host%-tfauth=(%x+); Path=/; HttpOnly; Secure; SameSite=Lax$")
    assert.truthy(value, first(headers, "set-cookie"))
    local cookie = "Cookie: __Host-tfauth=" .. value
    local _, body
    status, _, body = http(url .. "/app/x", { headers = { cookie } })
    assert.equal(200, status)
    local got = cjson.decode(body).headers
    assert.equal("alice", got["x-auth-request-user"])
    assert.matches("^Bearer ", got["authorization"])
    assert.equal(403, (http(url .. "/admin/x", { headers = { cookie } })))
    assert.equal(200, (http(url .. "/logout", { method = "POST", headers = { cookie } })))
    assert.equal(401, (http(url .. "/app/x", { headers = { cookie } })))
  end)

  -- docs/gate.md's set-up (its `location = /_tfauth { ... }` filled with
  -- docs/openresty.md's transport location), with the auth_request snippet
  -- added (its /app/ moved to /ar/).
  it("docs/gate.md: signs in, guards by roles and client roles, takes bearer tokens, auth_request", function()
    local conf = fill_gate(block("docs/gate.md", "## Set up", "nginx"))
    local ar = block("docs/gate.md", "## With nginx's own `auth_request`", "nginx")
    local url, stop = start_nginx(conf, replace(ar, "location /app/ {", "location /ar/ {"))
    finally(stop)
    local status, headers = http(url .. "/app/x", { headers = { "Accept: text/html" } })
    assert.equal(302, status)
    assert.equal("/login?rd=%2Fapp%2Fx", first(headers, "location"))
    status, headers = http(url .. "/login", { headers = { "Origin: https://app.example.com" },
      form = { user = "alice", password = h.users.alice.password, rd = "/app/x" } })
    assert.equal(303, status)
    assert.equal("/app/x", first(headers, "location"))
    local value = first(headers, "set-cookie"):match("^__Host%-tfauth=(%x+); Path=/; HttpOnly; Secure; SameSite=Lax$")
    assert.truthy(value, first(headers, "set-cookie"))
    local cookie = "Cookie: __Host-tfauth=" .. value
    local _, body
    status, _, body = http(url .. "/app/x", { headers = { cookie, "X-Forwarded-Email: forged@example.com" } })
    assert.equal(200, status)
    local got = cjson.decode(body).headers
    assert.equal("alice", got["x-auth-request-user"])
    assert.is_nil(got["x-forwarded-email"])
    assert.equal(403, (http(url .. "/admin/x", { headers = { cookie } })))
    assert.equal(200, (http(url .. "/reports/x", { headers = { cookie } }))) -- alice: fndtn-api's reader
    -- the auth_request snippet: identity set, the client's copies overridden or emptied
    status, _, body = http(url .. "/ar/x", { headers = { cookie, "X-Auth-Request-User: mallory",
      "X-Forwarded-Email: forged@example.com", "X-Forwarded-Groups: admin" } })
    assert.equal(200, status)
    got = cjson.decode(body).headers
    assert.equal("alice", got["x-auth-request-user"])
    assert.is_nil(got["x-forwarded-email"])
    assert.is_nil(got["x-forwarded-groups"])
    status, headers = http(url .. "/ar/x", { headers = { "Accept: text/html" } })
    assert.equal(302, status)
    assert.equal("/login?rd=%2Far%2Fx", first(headers, "location"))
    status, headers = http(url .. "/ar/x", { headers = { "Accept: application/json" } })
    assert.equal(401, status)
    assert.equal('Bearer realm="tfauth"', first(headers, "www-authenticate"))
    if issuer then
      local token = h.login("admin").access_token
      status, _, body = http(url .. "/admin/x", { headers = { "Authorization: Bearer " .. token } })
      assert.equal(200, status)
      assert.equal("admin", cjson.decode(body).headers["x-auth-request-user"])
    end
    assert.equal(403, (http(url .. "/login", { headers = { "Origin: " .. url },
      form = { user = "alice", password = h.users.alice.password } }))) -- public_origin, not Host
    local _, _, metrics_body = http(url .. "/metrics")
    assert.matches('tfauth_logins_total{result="ok"} 1', metrics_body, 1, true)
  end)
end)
