-- tfauth.gate on real nginx: the documentation's Protect a service snippets, run as printed.
local cjson = require "cjson"
local h = require "spec.helper"
local support = require "spec.gate.support"

local sh, http = h.sh, h.http
local first = support.first
local issuer = support.issuer


-- The README's "Protect a service" snippets as printed: the main one (its
-- `location = /_tfauth { ... }` filled with the README's own transport
-- location), with the auth_request one added (its /app/ moved to /ar/), made
-- runnable with placeholders filled in and nothing else changed.
describe("the README's Protect a service snippets #nginx", function()
  local dir, url
  local function block(text, from)
    local start = assert(text:find("```nginx\n", from, true), "no nginx block")
    local stop = assert(text:find("\n```\n", start, true))
    return text:sub(start + 9, stop), stop
  end
  local function replace(s, old, new)
    local i, j = s:find(old, 1, true)
    assert(i, "the README no longer has: " .. old)
    return s:sub(1, i - 1) .. new .. s:sub(j + 1)
  end

  setup(function()
    local readme = assert(io.open(h.root .. "/README.md")):read("*a")
    local transport = readme:match("\n(        location = /_tfauth {            # tfauth's requests.-\n        })\n")
    assert(transport, "the README's /_tfauth location")
    local section = assert(readme:find("## Protect a service", 1, true))
    local main, after = block(readme, section)
    local ar = block(readme, after)
    dir = sh("mktemp -d"):gsub("%s+$", "")
    sh(("mkdir -p %s/logs %s/tmp"):format(dir, dir))
    local port = sh("/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); "
      .. "print(s.getsockname()[1])'"):gsub("%s+$", "")
    url = "http://127.0.0.1:" .. port
    local conf = main
    conf = replace(conf, '"https://api.example.com"', '"' .. h.url .. '"')
    conf = replace(conf, '"<64 hex: openssl rand -hex 32>"', '"' .. ("ab"):rep(32) .. '"')
    if issuer then
      conf = replace(conf, '"https://kc.example/realms/fndtn"', '"' .. issuer .. '"')
    else
      conf = conf:gsub("            bearer = {.-\n            },\n", "")
    end
    conf = replace(conf, "        location = /_tfauth { ... }", transport .. "\n")
    ar = replace(ar, "location /app/ {", "location /ar/ {")
    conf = replace(conf, "    server {\n", ("    upstream app { server unix:%s/app.sock; }\n"
      .. "    server {\n        listen unix:%s/app.sock;\n        location / { content_by_lua_block {\n"
      .. "            ngx.say(require('cjson').encode { headers = ngx.req.get_headers(0) }) } }\n    }\n"
      .. "    server {\n        listen 127.0.0.1:%s;\n%s\n"):format(dir, dir, port, ar))
    conf = replace(conf, "http {\n", ("http {\n    client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;\n"
      .. '    lua_package_path "%s/lua/?.lua;%s/lua/?/init.lua;;";\n    lua_package_cpath "%s/build/jit/?.so;;";\n')
      :format(dir, dir, h.root, h.root, h.root))
    conf = ("%sworker_processes 2;\npid %s/nginx.pid;\nerror_log %s/logs/error.log warn;\n"
      .. "load_module /usr/lib/nginx/modules/ndk_http_module.so;\n"
      .. "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;\nevents { worker_connections 256; }\n%s")
      :format(sh("id -u"):find("^0") and "user root;\n" or "", dir, dir, conf)
    local f = assert(io.open(dir .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    local out = sh(("env -u LD_PRELOAD nginx -p %s -c %s/nginx.conf 2>&1; echo rc=$?"):format(dir, dir))
    assert(out:find("rc=0", 1, true), out .. sh("cat " .. dir .. "/logs/error.log"))
  end)
  teardown(function()
    if dir then sh(("kill $(cat %s/nginx.pid) 2>/dev/null; sleep 0.2; rm -rf %s"):format(dir, dir)) end
  end)
  before_each(h.reset)

  it("signs in, guards by roles and client roles, and takes bearer tokens, as printed", function()
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
