-- The documentation's snippets, run as printed: each code block of README.md
-- and docs/*.md is read from the page, its placeholders (the example URLs,
-- passwords and keys) filled in with the reference backend's, nothing else
-- changed; the nginx ones are started in a real nginx on loopback.
local cjson = require "cjson"
local h = require "spec.helper"

local sh, http = h.sh, h.http
local has_jwks = pcall(require, "tfauth.jwks")
local issuer = has_jwks and os.getenv("TFAUTH_TEST_ISSUER") or nil
local lua54 = _VERSION == "Lua 5.4" and it or pending -- `<close>` parses under 5.4 only

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

-- Runs a Lua snippet with `vars` as globals; returns the lines it printed,
-- its globals and what it returned.
local function run_lua(code, name, vars)
  local printed = {}
  local env = setmetatable({ print = function(...)
    local line = {}
    for i = 1, select("#", ...) do line[i] = tostring((select(i, ...))) end
    printed[#printed + 1] = table.concat(line, " ")
  end }, { __index = _G })
  for k, v in pairs(vars or {}) do env[k] = v end
  local chunk
  if setfenv then
    chunk = assert(loadstring(code, "=" .. name))
    setfenv(chunk, env)
  else
    chunk = assert(load(code, "=" .. name, "t", env))
  end
  return printed, env, chunk()
end

local function paths_requested()
  local paths = {}
  for _, r in ipairs(h.requests()) do paths[#paths + 1] = r.path:gsub("%?.*", "") end
  return paths
end

-- Every lua and nginx block of the documentation is run below: a new one
-- must be added here and to a test. (docs/tokens.md's third lua block, in
-- "Standard OpenID Providers (RFC 9068)", is run by spec/oidc_spec.lua
-- against a provider it starts.)
local RUN = {
  ["README.md"] = { lua = 1, nginx = 1 }, ["docs/client.md"] = { lua = 2 }, ["docs/sessions.md"] = { lua = 2 },
  ["docs/tokens.md"] = { lua = 3, nginx = 1 }, ["docs/gate.md"] = { nginx = 4 },
  ["docs/openresty.md"] = { nginx = 1 }, ["docs/redis.md"] = { nginx = 1, lua = 1 },
  ["docs/security.md"] = { nginx = 1 },
}

describe("the documentation's snippets", function()
  it("are all run by this spec (every lua and nginx block of README.md and docs/*.md)", function()
    local pages = { "README.md" }
    for name in sh("ls " .. h.root .. "/docs"):gmatch("[^\n]+") do
      if name:find("%.md$") then pages[#pages + 1] = "docs/" .. name end
    end
    for _, page in ipairs(pages) do
      local text, found = read(page), {}
      for lang in text:gmatch("\n```(%w+)\n") do
        if lang == "lua" or lang == "nginx" then found[lang] = (found[lang] or 0) + 1 end
      end
      assert.same(RUN[page] or {}, found, page .. ": add its new snippet to spec/docs_spec.lua")
    end
  end)
end)

describe("the documentation's Lua snippets", function()
  before_each(h.reset)

  it("docs/redis.md: every store configuration printed passes store.check", function()
    run_lua(block("docs/redis.md", "## Redis as production runs it", "lua"), "docs/redis.md")
  end)

  it("README.md: logs in, refreshes, logs out and reads a refusal, as printed", function()
    local code = block("README.md", "## The client in short", "lua")
    code = replace(code, '"https://api.example.com"', '"' .. h.url .. '"')
    code = replace(code, '"s3cret"', '"' .. h.users.alice.password .. '"')
    assert.same({ "Bearer 300", "false http 401" }, (run_lua(code, "README.md")))
    assert.same({ "/api/iam/login", "/api/iam/refresh", "/api/iam/logout", "/api/iam/login" }, paths_requested())
  end)

  -- The six operations; admin_change_password needs an admin's bearer, so
  -- the snippet's user is the backend's admin, its target alice.
  lua54("docs/client.md: the six operations, as printed #once", function()
    local code = block("docs/client.md", "## Use: the six operations", "lua")
    code = replace(code, '"https://api.example.com"', '"' .. h.url .. '"')
    code = replace(code, 'user = "alice"', 'user = "admin"')
    code = code:gsub('"s3cret"', '"' .. h.users.admin.password .. '"')
    code = replace(code, '"7d0c5a8e-..."', '"' .. h.users.alice.id .. '"')
    local printed = run_lua(code, "docs/client.md")
    assert.matches("^300 %d+$", printed[1])
    assert.same({ "/api/iam/login", "/api/iam/refresh", "/api/iam/password/change",
      "/api/iam/admin/user/" .. h.users.alice.id .. "/password", "/api/iam/password/reset", "/api/iam/logout" },
      paths_requested())
  end)

  it("docs/client.md: the retries table is a client's retries", function()
    local _, env = run_lua(block("docs/client.md", "## Retries", "lua"), "docs/client.md")
    local tfauth = require "tfauth"
    local client = tfauth.new { server_url = h.url, retries = env.retries }
    assert.equal("Bearer", client:login { user = "alice", password = h.users.alice.password }.token_type)
    client:close()
  end)

  lua54("docs/sessions.md: a session logs in, serves its token, logs out at scope end #once", function()
    local tfauth = require "tfauth"
    local code = block("docs/sessions.md", "## Client sessions", "lua")
    run_lua(code, "docs/sessions.md", { client = tfauth.new { server_url = h.url }, tfauth = tfauth,
      url = h.url, pw = h.users.alice.password })
    assert.same({ "/api/iam/login", "/api/iam/password/change", "/api/iam/logout" }, paths_requested())
  end)

  it("docs/sessions.md: tfauth.seal seals a value and opens it, as printed", function()
    -- its locals become globals, to be read back
    local code = ("\n" .. block("docs/sessions.md", "## Sealing: tfauth.seal", "lua")):gsub("\nlocal ", "\n")
    local _, env = run_lua(code, "docs/sessions.md")
    assert.same({ refresh_token = "..." }, env.state)
    assert.is_nil(env.why)
    local seal = require "tfauth.seal"
    local state, why = seal.open_json(env.keys, env.blob, "sid-2")
    assert.is_nil(state)
    assert.matches("another context", why)
  end)

  local bearer_it = issuer and it or pending
  bearer_it("docs/tokens.md: jwt.verify with a keyset of the realm's JWKS", function()
    local code = block("docs/tokens.md", "## Verified tokens", "lua")
    code = replace(code, '"https://kc.example/realms/fndtn"', '"' .. issuer .. '"')
    local printed = run_lua(code, "docs/tokens.md", { jwks_json = cjson.encode(h.jwks()),
      token = h.login("alice").access_token })
    assert.same({ "alice user" }, printed)
  end)

  bearer_it("docs/tokens.md: tfauth.jwks discovers the keys and verifies", function()
    local code = block("docs/tokens.md", "## Keys from Keycloak: `tfauth.jwks`", "lua")
    code = replace(code, '"https://kc.example/realms/fndtn"', '"' .. issuer .. '"')
    code = replace(code, '"/etc/ssl/private-ca.pem"', '"' .. os.getenv("TFAUTH_TEST_CERTS") .. '/ca.pem"')
    local token = h.login("alice").access_token
    -- its results are locals: returned to be looked at
    local _, _, claims, header = run_lua(code .. "return claims, header\n", "docs/tokens.md", { token = token })
    assert.equal("alice", claims.preferred_username)
    assert.equal("RS256", header.alg)
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
    -- the gate's cookie never reaches the upstream, through either snippet; the others do, as sent
    for _, path in ipairs { "/app/x", "/ar/x" } do
      status, _, body = http(url .. path, { headers = { "Cookie: theme=dark; " .. cookie:sub(9) .. "; lang=en" } })
      assert.equal(200, status)
      assert.equal("theme=dark; lang=en", cjson.decode(body).headers.cookie, path)
      status, _, body = http(url .. path, { headers = { cookie } })
      assert.equal(200, status)
      assert.is_nil(cjson.decode(body).headers.cookie, path)
      -- a name after `,` is another cookie's value, not a session (nginx's $cookie_ would take it)
      assert.equal(401, (http(url .. path, { headers = { "Cookie: pref=x," .. cookie:sub(9) } })), path)
    end
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
    -- the account's own pages and the pages for browsers (issue 18)
    local html = { "Accept: text/html", "Origin: https://app.example.com" }
    assert.equal(200, (http(url .. "/login/reset", { headers = html })))
    assert.equal(200, (http(url .. "/login/reset", { headers = html, form = { user = "alice" } })))
    status, headers = http(url .. "/account/password", { headers = html })
    assert.equal(302, status)
    assert.equal("/login?rd=%2Faccount%2Fpassword", first(headers, "location"))
    status, _, body = http(url .. "/logout", { headers = html })
    assert.equal(200, status)
    assert.matches('<form method="post" action="/logout">', body, 1, true)
  end)

  -- docs/gate.md's branded, translated gate: the page it prints is the page served.
  it("docs/gate.md: the branded, translated sign-in page, as printed", function()
    local conf = fill_gate(block("docs/gate.md", "### Brand, language and templates", "nginx"))
    local url, stop = start_nginx(conf)
    finally(stop)
    local status, _, body = http(url .. "/login", { headers = { "Accept: text/html" },
      form = { user = "alice", password = "wrong-Pass-1", rd = "/" } })
    assert.equal(401, status)
    local printed = block("docs/gate.md", "### Brand, language and templates", "html")
    body = body:gsub('<style nonce="%x+">.-</style>', '<style nonce="...">...</style>')
    assert.equal(printed, body)
  end)
  -- docs/gate.md's hand-off: the set-up with handoff = "variables", the
  -- snippet's server lines added and its /app/ location in place of the set-up's.
  it("docs/gate.md: the hand-off through nginx variables, as printed", function()
    local snippet = block("docs/gate.md", "## Hand-off: how the upstream gets the token and the cookies", "nginx")
    local sets = snippet:match("\n(    set .-\n)\n")
    local location = snippet:match("\n(    location /app/ {.-\n    })")
    local conf = fill_gate(block("docs/gate.md", "## Set up", "nginx"))
    conf = replace(conf, 'shared_dict = "tfauth_gate",', 'shared_dict = "tfauth_gate", handoff = "variables",')
    local server_sets = sets:gsub("\n    ", "\n        ")
    conf = replace(conf, "        absolute_redirect off;\n", "        absolute_redirect off;\n" .. server_sets)
    local setup_app = 'location /app/      { access_by_lua_block { require("tfauth.gate").guard() } '
      .. 'proxy_pass http://app; }'
    conf = replace(conf, setup_app, (location:gsub("^    ", ""):gsub("\n    ", "\n        ")))
    local url, stop = start_nginx(conf)
    finally(stop)
    local status, headers = http(url .. "/login", { headers = { "Origin: https://app.example.com" },
      form = { user = "alice", password = h.users.alice.password } })
    assert.equal(200, status)
    local value = first(headers, "set-cookie"):match("^__Host%-tfauth=(%x+);")
    local _, body
    status, _, body = http(url .. "/app/x", { headers = { "Cookie: a=1; __Host-tfauth=" .. value .. "; b=2" } })
    assert.equal(200, status)
    local got = cjson.decode(body).headers
    assert.equal("a=1; b=2", got.cookie)
    assert.matches("^Bearer eyJ", got.authorization)
  end)
end)

describe("the documentation's nginx snippets #nginx", function()
  before_each(h.reset)

  it("docs/openresty.md: the client's calls go through the transport location, as printed", function()
    local conf = block("docs/openresty.md", "## The transport location", "nginx"):gsub("/path/to/tfauth", h.root)
    local url, stop = start_nginx(conf, ([[
        location = /try { content_by_lua_block {
            local client = require("tfauth").new { server_url = "%s" }
            ngx.say(client:login { user = "alice", password = "%s" }.token_type)
        } }]]):format(h.url, h.users.alice.password))
    finally(stop)
    local status, _, body = http(url .. "/try")
    assert.equal(200, status)
    assert.equal("Bearer\n", body)
    assert.equal("/api/iam/login", h.last_request().path)
  end)

  local bearer_it = issuer and it or pending
  bearer_it("docs/tokens.md: tfauth.jwks in access_by_lua lets a realm's token in, as printed", function()
    local conf = block("docs/tokens.md", "## Verifying a token in OpenResty", "nginx")
    conf = replace(conf, '"https://kc.example/realms/fndtn"', '"' .. issuer .. '"')
    conf = replace(conf, "        location = /_tfauth { ... }", transport() .. "\n")
    local url, stop = start_nginx(conf)
    finally(stop)
    local status, _, body = http(url .. "/api/x", { headers = { "Authorization: Bearer " .. h.login("alice").access_token } })
    assert.equal(200, status)
    assert.equal("alice", cjson.decode(body).headers["x-user"])
    assert.equal(401, (http(url .. "/api/x", { headers = { "Authorization: Bearer a.b.c" } })))
    assert.equal(401, (http(url .. "/api/x")))
  end)

  it("docs/security.md: the bearer pre-check refuses malformed and oversized bearers before Lua, as printed", function()
    local conf = block("docs/security.md", "## Tokens chosen to collide in LuaJIT's string hash", "nginx")
    -- the gate's guard stands aside: what is checked is what nginx refuses before it
    conf = replace(conf, 'access_by_lua_block { require("tfauth.gate").guard() }', "")
    local url, stop = start_nginx(conf)
    finally(stop)
    local token = ("a"):rep(300) .. "." .. ("B-_9"):rep(200) .. "." .. ("c"):rep(342)
    local function status(authorization)
      return (http(url .. "/app/x", { headers = authorization and { "Authorization: " .. authorization } }))
    end
    for _, ok in ipairs { "Bearer " .. token, "bearer " .. token, "Bearer a.b.", "Basic YWxpY2U6cHc=" } do
      assert.equal(200, status(ok), ok:sub(1, 20))
    end
    assert.equal(200, status(nil))
    local refused = { "Bearer", "Bearer ", "Bearer a.b", "Bearer a.b.c.d", "Bearer a b.c.d",
      "Bearer a.b.c=", "Bearer ..", "BEARER  a.b.c", "Bearer " .. ("a"):rep(4094) .. ".b.c" }
    for _, bad in ipairs(refused) do
      local code, headers = http(url .. "/app/x", { headers = { "Authorization: " .. bad } })
      assert.equal(401, code, bad:sub(1, 20))
      assert.equal('Bearer error="invalid_token"', (headers["www-authenticate"] or {})[1], bad:sub(1, 20))
    end
  end)

  it("docs/redis.md: the gate's init takes the Redis store as printed (nginx starts)", function()
    local conf = block("docs/redis.md", "## Sessions on Redis", "nginx")
    conf = replace(conf, '"https://api.example.com"', '"' .. h.url .. '"')
    conf = replace(conf, '"10.0.0.5"', '"127.0.0.1"')
    conf = replace(conf, '"<64 hex digits: openssl rand -hex 32>"', '"' .. ("ab"):rep(32) .. '"')
    conf = replace(conf, '"<the previous key>"', '"' .. ("cd"):rep(32) .. '"')
    local url, stop = start_nginx(conf)
    finally(stop)
    assert.equal(404, (http(url .. "/")))
  end)
end)

-- docs/gate.md's configuration reference: every key it lists (top level,
-- `store.*`, `cookie.*`, `bearer.*`) is one gate.init knows. Each is given a
-- value of no documented type (a function), in one nginx's init_by_lua: the
-- answer must be about its value, never "is not a known key". And its
-- table of public functions names every function of tfauth.gate.
-- The keys docs/gate.md's configuration reference lists, as paths
-- ("skew", "cookie.name", "store.tls.verify"): the first cells of the tables
-- under "### Top level" and "### `section`" (others, such as the rules', are
-- not init's).
local function reference_keys()
  local text = read("docs/gate.md")
  local from = assert(text:find("\n## Configuration reference\n", 1, true))
  local to = text:find("\n## ", from + 1, true)
  local paths, section, keys = {}, nil, false
  for line in text:sub(from, to):gmatch("[^\n]+") do
    local heading = line:match("^### (.+)$")
    if heading then
      section = heading:match("^`([%w_.]+)`$")
      keys = section ~= nil or heading == "Top level"
    end
    local cell = line:match("^| (`[^|]+`) |")
    if cell and keys then
      for key in cell:gmatch("`([%w_]+)`") do paths[#paths + 1] = section and section .. "." .. key or key end
    end
  end
  return paths, text
end

describe("docs/gate.md's configuration reference", function()
  -- The key tables of lua/tfauth/gate/config.lua (`local TOP = { key =
  -- "type" or true, ... }`, COOKIE for cookie.*, STORE_TLS for store.tls.*):
  -- every key there has its row.
  it("lists every key gate.init checks #once", function()
    local documented = {}
    for _, path in ipairs(reference_keys()) do documented[path] = true end
    local missing, seen = {}, 0
    for name, body in read("lua/tfauth/gate/config.lua"):gmatch("\nlocal (%u[%u_]*) = (%b{})") do
      local prefix = name == "TOP" and "" or name:lower():gsub("_", ".") .. "."
      for key, kind in body:gmatch("([%a_][%w_]*)%s*=%s*([%w\"]+)") do
        if kind == "true" or kind:find('^"%l+"$') and ({ ['"string"'] = 1, ['"number"'] = 1, ['"table"'] = 1,
            ['"boolean"'] = 1, ['"function"'] = 1 })[kind] then
          seen = seen + 1
          if not documented[prefix .. key] then missing[#missing + 1] = prefix .. key end
        end
      end
    end
    assert.is_true(seen >= 30, "keys found in config.lua: " .. seen)
    assert.same({}, missing, "keys gate.init checks without a row in docs/gate.md's configuration reference")
  end)
end)

describe("docs/gate.md's configuration reference #nginx", function()
  it("lists only keys gate.init knows, and every public function of tfauth.gate", function()
    local paths, text = reference_keys()
    assert.is_true(#paths >= 30, "keys found: " .. #paths)
    local probe = ([[
    lua_shared_dict tfauth_sessions 1m;
    lua_shared_dict tfauth_gate 1m;
    init_by_lua_block {
        local gate, answers = require "tfauth.gate", {}
        for _, path in ipairs(require("cjson").decode('%s')) do
            local config = { server_url = "%s", keys = { ("ab"):rep(32) } }
            local at, last = config, nil
            for part in path:gmatch("[^.]+") do
                if last then at[last] = at[last] or {}; at = at[last] end
                last = part
            end
            at[last] = print
            local _, err = pcall(gate.init, config)
            answers[path] = tostring(err)
        end
        local functions = {}
        for name, value in pairs(gate) do
            if type(value) == "function" then functions[#functions + 1] = name end
        end
        table.sort(functions)
        package.loaded.answers = { keys = answers, functions = functions }
    }
    server {
        location = /answers { content_by_lua_block { ngx.say(require("cjson").encode(package.loaded.answers)) } }
    }
]]):format(cjson.encode(paths), h.url)
    local url, stop = start_nginx("http {\n" .. probe .. "}\n")
    finally(stop)
    local _, _, body = http(url .. "/answers")
    local answers = cjson.decode(body)
    local documented = {}
    local listed = text:sub((assert(text:find("\n## Public functions\n", 1, true))))
    for name in listed:gmatch("\n| `([%w_]+)%(") do documented[#documented + 1] = name end
    table.sort(documented)
    assert.same(answers.functions, documented, "docs/gate.md's public functions")
    answers = answers.keys
    for _, path in ipairs(paths) do
      assert.is_string(answers[path], path)
      assert.is_nil(answers[path]:find("is not a known key", 1, true), path .. ": " .. answers[path])
    end
  end)
end)
