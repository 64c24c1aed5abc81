-- tfauth.jwks inside Debian's nginx + lua module (LuaJIT, two workers),
-- against the reference backend: in request phases it fetches through nginx
-- (non-blocking), with a shared dict one fetch serves every worker, and
-- outside request phases (a timer) it uses libcurl.
local cjson = require "cjson"
local h = require "spec.helper"

local sh, start_nginx, count = h.sh, h.start_nginx, h.count
local CERTS = h.certs_path
local CONF = h.root .. "/spec/nginx/jwks.conf"

local serial = 0
-- A fresh test id: its own jwks objects in each worker and its own keys in
-- the shared dict (they are per JWKS URL; the query makes the URL new).
local function fresh(params)
  serial = serial + 1
  local id = ("%d-%d"):format(os.time(), serial)
  local q = { id = id, url = h.url .. CERTS .. "?t=" .. id, iss = h.issuer }
  for k, v in pairs(params or {}) do q[k] = v or nil end
  local parts = {}
  for k, v in pairs(q) do parts[#parts + 1] = k .. "=" .. v:gsub("[^%w%-%._~]", function(c)
    return ("%%%02X"):format(c:byte())
  end) end
  return table.concat(parts, "&")
end

-- n verifications of token, `parallel` at a time; the decoded answers.
local function verify_many(url, query, token, n, parallel)
  local out = sh(("seq %d | xargs -P %d -I{} curl -s -H 'Authorization: Bearer %s' '%s/t/jwks/verify?%s&n={}'; echo")
    :format(n, parallel or 1, token, url, query))
  local answers = {}
  for line in out:gmatch("[^\n]+") do answers[#answers + 1] = cjson.decode(line) end
  assert.equal(n, #answers)
  return answers
end

local function workers_of(answers)
  local seen, n = {}, 0
  for _, a in ipairs(answers) do
    if not seen[a.worker] then n = n + 1 end
    seen[a.worker] = a.fetches
  end
  return n, seen
end

local function certs_requests()
  local out = {}
  for _, req in ipairs(h.requests()) do if req.path == CERTS then out[#out + 1] = req end end
  return out
end

describe("tfauth.jwks in nginx #nginx", function()
  local url, stop

  setup(function() url, stop = start_nginx { workers = 2, conf = CONF } end)
  teardown(function() stop() end)
  before_each(h.reset)

  it("fetches through nginx in request phases, and one fetch serves every worker (shared dict)", function()
    local token = h.login("alice").access_token
    local answers = verify_many(url, fresh { dict = "tfauth_sessions", mri = "60" }, token, 60, 30)
    for _, a in ipairs(answers) do assert.equal("alice", a.user, a.message) end
    local workers, fetches = workers_of(answers)
    assert.is_true(workers >= 2, "requests reached " .. workers .. " worker(s)")
    local reqs = certs_requests()
    assert.equal(1, #reqs)
    assert.equal("close", reqs[1].headers.connection) -- proxied by nginx, not libcurl's keep-alive
    local ok = 0
    for _, f in pairs(fetches) do ok = ok + f.ok end
    assert.equal(1, ok) -- one worker fetched; the others read the set from the dict
  end)

  it("finds the keys by discovery through nginx, once for every worker", function()
    local token = h.login("alice").access_token
    local query = fresh { dict = "tfauth_sessions", url = false, issuer = h.issuer }
    local answers = verify_many(url, query, token, 40, 20)
    for _, a in ipairs(answers) do assert.equal("alice", a.user, a.message) end
    assert.is_true(workers_of(answers) >= 2)
    assert.equal(1, count(h.discovery_path))
    assert.equal(1, count(CERTS))
  end)

  it("without a shared dict each worker fetches its own set (what the dict saves)", function()
    local token = h.login("alice").access_token
    local answers = verify_many(url, fresh(), token, 60, 30)
    local workers = workers_of(answers)
    assert.is_true(workers >= 2, "requests reached " .. workers .. " worker(s)")
    assert.equal(workers, #certs_requests())
  end)

  it("picks up a rotated key with one fetch for all workers", function()
    local query = fresh { dict = "tfauth_sessions", mri = "60" }
    verify_many(url, query, h.login("alice").access_token, 10, 5)
    assert.equal(1, #certs_requests())
    h.rotate()
    local answers = verify_many(url, query, h.login("bob").access_token, 60, 30)
    for _, a in ipairs(answers) do assert.equal("bob", a.user, a.message) end
    assert.is_true(workers_of(answers) >= 2)
    assert.equal(2, #certs_requests())
  end)

  it("answers a flood of unknown kids across workers with at most one fetch per interval", function()
    local query = fresh { dict = "tfauth_sessions", mri = "60" }
    local forged = h.sign { header = { kid = "not-a-realm-key" }, claims = { iss = h.issuer, exp = os.time() + 60 } }
    local answers = verify_many(url, query, forged, 60, 30)
    for _, a in ipairs(answers) do
      assert.equal("token", a.kind)
      assert.equal("key", a.reason)
    end
    assert.equal(1, #certs_requests()) -- the first fetch, which served the first miss too
  end)

  it("with Keycloak failing, requests fail as network errors without each causing a fetch", function()
    h.script { path = CERTS, status = 500, body = "{}", times = 100 }
    local answers = verify_many(url, fresh { dict = "tfauth_sessions" }, h.login("alice").access_token, 30, 10)
    for _, a in ipairs(answers) do assert.equal("network", a.kind, a.message) end
    assert.is_true(#certs_requests() <= 2, #certs_requests() .. " fetches") -- backoff: 1 s, then 2 s ...
  end)

  it("uses libcurl outside request phases (a timer), and shares what it fetched", function()
    local query = fresh { dict = "tfauth_sessions" }
    sh(("curl -s '%s/t/jwks/timer?%s'"):format(url, query))
    local result
    for _ = 1, 100 do
      result = cjson.decode(sh(("curl -s '%s/t/jwks/timer_result?%s'"):format(url, query))).result
      if type(result) == "string" then break end
      os.execute("sleep 0.05")
    end
    assert.equal("ok", result)
    local reqs = certs_requests()
    assert.equal(1, #reqs)
    assert.is_nil(reqs[1].headers.connection) -- libcurl's own request
    local answers = verify_many(url, query, h.login("alice").access_token, 20, 10)
    for _, a in ipairs(answers) do assert.equal("alice", a.user, a.message) end
    assert.equal(1, #certs_requests())
  end)
end)

describe("tfauth.jwks in one nginx worker #nginx", function()
  local url, stop

  setup(function() url, stop = start_nginx { workers = 1, conf = CONF } end)
  teardown(function() stop() end)
  before_each(h.reset)

  it("does not block the worker while a fetch is in flight, and a second request waits for it", function()
    local set = cjson.encode(h.jwks())
    h.reset() -- forgets that request; the realm's keys stay those of `set`
    local token = h.login("alice").access_token
    h.script { path = CERTS, delay_ms = 2000, body = set } -- the real set, late
    local query = fresh { dict = "tfauth_sessions" }
    local outs = { os.tmpname(), os.tmpname() }
    for _, out in ipairs(outs) do
      os.execute(("env -u LD_PRELOAD curl -s -H 'Authorization: Bearer %s' '%s/t/jwks/verify?%s' >%s 2>&1 &")
        :format(token, url, query, out))
    end
    os.execute("sleep 0.3")
    local seconds = tonumber(sh("curl -s -o /dev/null -w '%{time_total}' " .. url .. "/ping"))
    assert.is_true(seconds < 0.5, ("/ping took %.3f s"):format(seconds))
    local answers = {}
    for _ = 1, 100 do
      answers = {}
      for _, out in ipairs(outs) do
        local f = io.open(out)
        local text = f and f:read("*a") or ""
        if f then f:close() end
        if text ~= "" then answers[#answers + 1] = cjson.decode(text) end
      end
      if #answers == 2 then break end
      os.execute("sleep 0.1")
    end
    for _, out in ipairs(outs) do os.remove(out) end
    assert.equal(2, #answers)
    for _, a in ipairs(answers) do
      assert.equal("alice", a.user, a.message)
      assert.is_true(a.seconds > 1.0) -- both waited for the one fetch
    end
    assert.equal(1, count(CERTS))
  end)
end)
