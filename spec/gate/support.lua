-- What the gate's spec files share: the running nginx (two workers, the
-- reference backend as auth API and realm) and its helpers.
local cjson = require "cjson"
local h = require "spec.helper"

local sh = h.sh
local unpack = table.unpack or unpack
local support = {}

support.has_jwks = pcall(require, "tfauth.jwks")
support.issuer = support.has_jwks and os.getenv("TFAUTH_TEST_ISSUER") or nil

function support.first(headers, name) return headers[name] and headers[name][1] end

-- The lines of log that hold text (plain).
function support.lines_with(log, text)
  local out = {}
  for line in log:gmatch("[^\n]+") do
    if line:find(text, 1, true) then out[#out + 1] = line end
  end
  return out
end

function support.log_of(prefix) return sh("cat " .. prefix .. "/logs/error.log") end

-- The run.sh'd nginx.conf of a running prefix, with `edit` applied, started
-- in the foreground: nginx's exit status and what it printed; while it runs,
-- during(url, dir) when given (its results follow the output).
function support.start_with(prefix, edit, during)
  local dir = sh("mktemp -d"):gsub("%s+$", "")
  sh(("mkdir -p %s/logs %s/tmp %s/conf"):format(dir, dir, dir))
  local conf = sh(("cat %s/conf/nginx.conf"):format(prefix)):gsub(prefix:gsub("%p", "%%%0"), dir)
  local port = sh("/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); "
    .. "print(s.getsockname()[1])'"):gsub("%s+$", "")
  -- its own port: with reuseport, the running nginx's would be shared with it
  conf = conf:gsub("daemon off;", "daemon on;"):gsub("listen 127%.0%.0%.1:%d+ reuseport;", "listen 127.0.0.1:" .. port .. ";")
  conf = edit(conf)
  local f = assert(io.open(dir .. "/conf/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local out = sh(("timeout 30 nginx -p %s -c conf/nginx.conf 2>&1; echo \"rc=$?\""):format(dir))
  local results = {}
  if during and out:find("rc=0", 1, true) then
    results = { pcall(during, "http://127.0.0.1:" .. port, dir) }
  end
  sh(("kill $(cat %s/nginx.pid 2>/dev/null) 2>/dev/null; sleep 0.1; rm -rf %s"):format(dir, dir))
  if results[1] == false then error(results[2], 0) end
  return out, select(2, unpack(results))
end

--- describe(name) around body(t), with the gate's nginx started once for the
-- file: t.url, t.prefix, t.jar (a fresh cookie jar per test), t.login(user,
-- extra), t.get(path, opts), t.upstream(body) (the headers the upstream
-- saw), t.sid() (the tfauth_sid cookie in the jar). more_env: run.sh's
-- TFAUTH_* settings beside the suite's own (TFAUTH_LOG_LEVEL = "info" shows
-- refused bearer tokens and duplicate cookies, and nginx's own info lines,
-- which quote a header sent twice whole: not for specs that grep for tokens).
-- busted's describe, setup, ... live in the spec file's environment, not in
-- this module's: body's own.
local function env_of(f)
  if getfenv then return getfenv(f) end
  for i = 1, math.huge do
    local name, value = debug.getupvalue(f, i)
    if name == "_ENV" then return value end
    if not name then return _G end
  end
end

function support.suite(name, body, more_env)
  local env = env_of(body)
  local describe, setup, teardown, before_each, after_each =
    env.describe, env.setup, env.teardown, env.before_each, env.after_each
  describe(name, function()
    local t = {}
    setup(function()
      local settings = { TFAUTH_ISSUER = support.issuer or "", TFAUTH_LOGIN_RATE = "1000r/s",
        TFAUTH_LOGIN_BURST = "1000" }
      for k, v in pairs(more_env or {}) do settings[k] = v end
      -- The test CA, not the system's bundle: nginx takes seconds to load that one
      -- (in each context naming it: here and in every start_with), and these
      -- nginx talk to the plain-http backend only.
      local certs = os.getenv("TFAUTH_TEST_CERTS")
      t.url, t.stop, t.prefix = h.start_nginx { workers = 2, skew = 30, ca_file = certs and certs .. "/ca.pem",
        env = settings }
    end)
    teardown(function() t.stop() end)
    before_each(function()
      h.reset()
      t.jar = os.tmpname()
    end)
    after_each(function() os.remove(t.jar) end)

    function t.login(user, extra)
      local form = { user = user, password = h.users[user].password }
      for k, v in pairs(extra or {}) do form[k] = v end
      return h.http(t.url .. "/login", { form = form, jar = t.jar })
    end
    function t.get(path, opts)
      opts = opts or {}
      opts.jar = opts.jar == nil and t.jar or opts.jar or nil
      return h.http(t.url .. path, opts)
    end
    function t.upstream(response_body) return cjson.decode(response_body).headers end
    function t.sid()
      return (sh("awk '$6 == \"tfauth_sid\" {print $7}' " .. t.jar):gsub("%s+$", ""))
    end
    body(t)
  end)
end

return support
