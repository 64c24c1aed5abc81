--- Shared by the specs: the reference backend's address, its test-control
-- endpoints (spoken to with the curl command, apart from the module under
-- test), and small helpers to capture errors.
local cjson = require "cjson"
local tfauth = require "tfauth"

local helper = {}

helper.url = assert(os.getenv("TFAUTH_TEST_URL"), "run the specs through spec/support/with-backend.sh")
--- The reference backend's realm: the issuer its tokens carry; discovery and
-- certs below it (also served, with its own issuer, on the TLS listener).
helper.issuer = os.getenv("TFAUTH_TEST_ISSUER")
helper.tls_issuer = os.getenv("TFAUTH_TEST_TLS_ISSUER")
helper.certs_path = "/realms/fndtn/protocol/openid-connect/certs"
helper.discovery_path = "/realms/fndtn/.well-known/openid-configuration"

helper.users = {
  alice = { id = "7d0c5a8e-0000-4000-8000-00000000a11c", password = "alice-Secret-1", org = "acme" },
  bob = { id = "7d0c5a8e-0000-4000-8000-000000000b0b", password = "bob-Secret-2", org = "globex" },
  admin = { id = "7d0c5a8e-0000-4000-8000-0000000ad311", password = "admin-Secret-3", org = "acme" },
}

-- A loopback port nothing listens on.
helper.closed_url = "http://127.0.0.1:1"

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function control(method, path, body)
  -- LD_PRELOAD is for the module under test (sanitizer runs), not for curl.
  local cmd = "env -u LD_PRELOAD curl -sS -X " .. method .. " -H 'content-type: application/json' "
  local tmp
  if body then
    tmp = os.tmpname()
    local f = assert(io.open(tmp, "wb"))
    f:write(cjson.encode(body))
    f:close()
    cmd = cmd .. "--data-binary @" .. tmp .. " "
  end
  local p = assert(io.popen(cmd .. shell_quote(helper.url .. path)))
  local out = p:read("*a")
  p:close()
  if tmp then os.remove(tmp) end
  return cjson.decode(out)
end

function helper.reset() return control("POST", "/_test/reset") end
function helper.requests() return control("GET", "/_test/requests") end
function helper.resets() return control("GET", "/_test/resets") end
function helper.configure_server(config) return control("POST", "/_test/config", config) end

--- A token signed by the backend's realm key (spec: claims, alg, kid, header;
-- see backend.py's /_test/sign).
function helper.sign(spec) return control("POST", "/_test/sign", spec).token end

--- A new realm key for alg (default RS256), first in the JWKS and signing
-- from now on; returns its kid. retire = true drops the older keys of alg.
function helper.rotate(spec) return control("POST", "/_test/keys/rotate", spec or {}).kid end

--- The JWKS the backend serves now (decoded).
function helper.jwks() return control("GET", helper.certs_path) end

--- The next `times` requests to path get this canned answer.
function helper.script(answer) return control("POST", "/_test/script", answer) end

--- How many requests the backend received on path (or whose `field`, e.g.
-- "listener", is value).
function helper.count(value, field)
  local n = 0
  for _, req in ipairs(helper.requests()) do
    if req[field or "path"] == value then n = n + 1 end
  end
  return n
end

function helper.last_request()
  local all = helper.requests()
  return all[#all], #all
end

function helper.client(config)
  config = config or {}
  if config.server_url == nil then config.server_url = helper.url end
  return tfauth.new(config)
end

function helper.login(name, client)
  client = client or helper.client()
  return client:login { user = name, password = helper.users[name].password }
end

--- Calls f(...) expecting a tfauth error; returns it.
function helper.error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error, got success")
  assert(tfauth.is_error(err), "expected a tfauth error, got: " .. tostring(err))
  return err
end

--- Every string reachable from v (tables walked, keys too).
function helper.strings(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      helper.strings(k, out, seen)
      helper.strings(x, out, seen)
    end
  end
  return out
end

--- Runs a shell command (without the sanitizer preload); returns its output.
function helper.sh(cmd)
  local p = assert(io.popen("env -u LD_PRELOAD " .. cmd))
  local out = p:read("*a")
  p:close()
  return out
end

--- One HTTP request with curl: returns status, headers (lower-cased name ->
-- list of values) and body. opts: method, headers (list of "Name: value"),
-- body (sent as is), form (table, form-encoded), jar (a cookie file, read and
-- written), path_as_is (the URL's `/./` and `/../` sent, not resolved by curl).
function helper.http(url, opts)
  opts = opts or {}
  local head, body_file, data = os.tmpname(), os.tmpname(), nil
  local cmd = { "curl -s -g -D", head, "-o", body_file, "-w '%{http_code}'" }
  if opts.method then cmd[#cmd + 1] = "-X " .. opts.method end
  if opts.path_as_is then cmd[#cmd + 1] = "--path-as-is" end
  for _, h in ipairs(opts.headers or {}) do cmd[#cmd + 1] = "-H " .. shell_quote(h) end
  if opts.jar then cmd[#cmd + 1] = ("-b %s -c %s"):format(opts.jar, opts.jar) end
  if opts.form then
    for k, v in pairs(opts.form) do cmd[#cmd + 1] = "--data-urlencode " .. shell_quote(k .. "=" .. v) end
  elseif opts.body then
    data = os.tmpname()
    local f = assert(io.open(data, "wb"))
    f:write(opts.body)
    f:close()
    cmd[#cmd + 1] = "--data-binary @" .. data
  end
  cmd[#cmd + 1] = shell_quote(url)
  local status = tonumber(helper.sh(table.concat(cmd, " ")))
  local headers = {}
  local f = assert(io.open(head, "rb"))
  for line in f:lines() do
    local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      headers[name] = headers[name] or {}
      table.insert(headers[name], value)
    end
  end
  f:close()
  f = assert(io.open(body_file, "rb"))
  local body = f:read("*a")
  f:close()
  os.remove(head)
  os.remove(body_file)
  if data then os.remove(data) end
  return status, headers, body
end

--- The gate's metrics at url .. "/metrics" as {["name{label=value,...}"] =
-- value} (labels sorted), read with prometheus_client's own text parser.
--- A new temporary folder holding files (name -> text); its path.
function helper.temp_dir(files)
  local dir = helper.sh("mktemp -d"):gsub("%s+$", "")
  for name, text in pairs(files or {}) do
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(text)
    f:close()
  end
  return dir
end

function helper.metrics(url)
  local file = os.tmpname()
  helper.sh(("curl -s %s/metrics >%s"):format(url, file))
  local out = helper.sh("/usr/bin/python3 -c " .. [["
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        labels = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))
        out[s.name + '{' + labels + '}'] = s.value
print(json.dumps(out))
" ]] .. file)
  os.remove(file)
  return cjson.decode(out)
end

helper.root = assert(io.popen("pwd")):read("*l")

--- Starts the loopback DNS stub (spec/support/dns.py: localhost -> 127.0.0.1)
-- for nginx's `resolver`; returns "127.0.0.1:PORT" and a stop function.
function helper.start_dns()
  local dir = helper.sh("mktemp -d"):gsub("%s+$", "")
  os.execute(("/usr/bin/python3 %s/spec/support/dns.py %s/port >%s/log 2>&1 & echo $! >%s/pid")
    :format(helper.root, dir, dir, dir))
  local port
  for _ = 1, 200 do
    local f = io.open(dir .. "/port")
    if f then
      port = f:read("*l")
      f:close()
      if port then break end
    end
    os.execute("sleep 0.05")
  end
  assert(port, "the DNS stub did not start: " .. helper.sh("cat " .. dir .. "/log"))
  return "127.0.0.1:" .. port, function() os.execute(("kill $(cat %s/pid); rm -rf %s"):format(dir, dir)) end
end

--- Starts the example's nginx (examples/nginx/run.sh) with the test
-- locations, against the reference backend; returns its URL, a stop
-- function and its prefix (logs in prefix/logs). options: workers, skew,
-- redis ("host:port"), keys (comma-separated hex), ca_file (the CAs the
-- /_tfauth location trusts), resolver (nginx's, "127.0.0.1:PORT"), env (more
-- of run.sh's settings: { TFAUTH_ISSUER = ..., TFAUTH_SECURE = "true", ... }),
-- conf (the test locations' file, default spec/nginx/tests.conf).
function helper.start_nginx(options)
  local sh, root = helper.sh, helper.root
  local prefix = sh("mktemp -d"):gsub("%s+$", "")
  local env = ""
  if options.redis then env = env .. " TFAUTH_REDIS=" .. options.redis end
  if options.keys then env = env .. " TFAUTH_SEAL_KEYS=" .. options.keys end
  if options.ca_file then env = env .. " TFAUTH_CA_FILE=" .. options.ca_file end
  if options.resolver then env = env .. " TFAUTH_RESOLVER=" .. options.resolver end
  for name, value in pairs(options.env or {}) do env = env .. " " .. name .. "=" .. shell_quote(value) end
  os.execute(("env -u LD_PRELOAD %s %s/examples/nginx/run.sh %s %s '' %d %d %s %s/spec/nginx"
    .. " >%s/run.log 2>&1 &"):format(env, root, prefix, helper.url, options.workers or 2, options.skew or 30,
      options.conf or (root .. "/spec/nginx/tests.conf"), root, prefix))
  local url
  for _ = 1, 100 do
    local f = io.open(prefix .. "/port")
    local line = f and f:read("*l") -- the file may exist before its line does
    if f then f:close() end
    if line then
      url = "http://127.0.0.1:" .. line
      if sh("curl -s " .. url .. "/ping") == "pong\n" then break end
    end
    os.execute("sleep 0.05")
  end
  assert(url and sh("curl -s " .. url .. "/ping") == "pong\n",
    "nginx did not start: " .. sh("cat " .. prefix .. "/*.log " .. prefix .. "/logs/*.log"))
  return url, function()
    os.execute("kill $(cat " .. prefix .. "/nginx.pid) 2>/dev/null; sleep 0.2; rm -rf " .. prefix)
  end, prefix
end

return helper
