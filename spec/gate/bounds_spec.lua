-- tfauth.gate on real nginx: sessions bounded in number and time, a full
-- store that evicts nobody, and a logout that wins over a refresh in flight
-- (on the shared dict and on Redis).
local cjson = require "cjson"
local h = require "spec.helper"
local redis = require "spec.support.redis"
local support = require "spec.gate.support"

local http, count = h.http, h.count

local function json_get(t, jar) -- an API's GET of the guarded page: its status
  return (t.get("/app/x", { jar = jar, headers = { "Accept: application/json" } }))
end

local function login_to(t, jar, user)
  return http(t.url .. "/login", { form = { user = user, password = h.users[user].password }, jar = jar })
end

support.suite("tfauth.gate sessions bounded #nginx", function(t)
  local jars = {}
  local function jar(i)
    jars[i] = jars[i] or os.tmpname()
    return jars[i]
  end
  after_each(function()
    for i, file in pairs(jars) do os.remove(file); jars[i] = nil end
  end)

  it("ends a user's oldest session beyond session.max_per_user, at the auth API too", function()
    for i = 1, 3 do assert.equal(200, (login_to(t, jar(i), "alice"))) end
    assert.equal(401, json_get(t, jar(1)))
    assert.equal(200, json_get(t, jar(2)))
    assert.equal(200, json_get(t, jar(3)))
    assert.equal(1, count("/api/iam/logout"))
    assert.equal(200, (login_to(t, jar(4), "bob"))) -- another user's sessions are their own
    assert.equal(200, json_get(t, jar(2)))
  end)

  it("ends a session left unused for session.idle_timeout", function()
    assert.equal(200, (login_to(t, jar(1), "alice")))
    assert.equal(200, json_get(t, jar(1)))
    os.execute("sleep 3.2")
    assert.equal(401, json_get(t, jar(1)))
  end)

  it("keeps a session in use past its idle timeout, and ends it at session.max_lifetime", function()
    assert.equal(200, (login_to(t, jar(1), "alice")))
    for _ = 1, 8 do
      os.execute("sleep 0.5")
      assert.equal(200, json_get(t, jar(1)), support.log_of(t.prefix):sub(-2000))
    end
    os.execute("sleep 2.5") -- 6.5 s after sign-in: past the lifetime of 6
    assert.equal(401, json_get(t, jar(1)))
  end)
end, { TFAUTH_SESSION = "{ max_per_user = 2, idle_timeout = 3, max_lifetime = 6 }" })

support.suite("tfauth.gate with a full session store #nginx", function(t)
  it("answers a sign-in 503 with one line naming the dict, and signs nobody out", function()
    local jars, status, body, _ = {}, nil, nil, nil
    for i = 1, 40 do
      jars[i] = os.tmpname()
      status, _, body = login_to(t, jars[i], i % 2 == 0 and "alice" or "bob")
      if status ~= 200 then break end
    end
    finally(function() for _, file in ipairs(jars) do os.remove(file) end end)
    assert.equal(503, status, "the dict never filled")
    assert.same({ error = "unavailable" }, cjson.decode(body))
    assert.is_true(#jars > 2)
    for i = 1, #jars - 1 do assert.equal(200, json_get(t, jars[i]), "session " .. i) end
    local log = support.log_of(t.prefix)
    local _, lines = log:gsub("session store full: lua_shared_dict tfauth_sessions %(%d+ bytes, %d+ free%)", "")
    assert.equal(1, lines)
    -- the page says so too, with its 503
    local page_status, _, page = http(t.url .. "/login", { headers = { "Accept: text/html" },
      form = { user = "alice", password = h.users.alice.password, rd = "/app/" } })
    assert.equal(503, page_status)
    assert.matches("not possible right now", page, 1, true)
    local m = h.metrics(t.url)
    assert.is_true(m["tfauth_gate_store_free_bytes{}"] < 8192, tostring(m["tfauth_gate_store_free_bytes{}"]))
  end)
end, { TFAUTH_SESSIONS_SIZE = "48k", TFAUTH_SESSION = "{ max_per_user = 100 }" })

-- The logout that wins, on a store: the refresh at the auth API is slowed
-- (refresh_delay_ms) and a logout arrives while it is in flight.
local function logout_wins(t)
  local function refresh_bodies()
    local refreshes, logouts = {}, {}
    for _, req in ipairs(h.requests()) do
      if req.path == "/api/iam/refresh" then refreshes[#refreshes + 1] = cjson.decode(req.body).refresh_token end
      if req.path == "/api/iam/logout" then logouts[#logouts + 1] = cjson.decode(req.body).refresh_token end
    end
    return refreshes, logouts
  end

  for _, case in ipairs { { 1500, "waits for the refresh and logs the new tokens out" },
      { 4500, "outlasts it: the refresher finds its session gone and logs its new tokens out" } } do
    it("a logout during a refresh " .. case[2] .. "; the session stays out", function()
      h.configure_server { access_ttl = 32 } -- the 30 s skew: a refresh is due 2 s after sign-in
      assert.equal(200, (t.login("alice")))
      h.configure_server { refresh_delay_ms = case[1] }
      os.execute("sleep 2.2")
      local out = os.tmpname()
      os.execute(("curl -s -o /dev/null -w '%%{http_code}' -b %s %s/app/x >%s 2>&1 &"):format(t.jar, t.url, out))
      os.execute("sleep 0.5") -- the refresh is in flight
      local status = http(t.url .. "/logout", { method = "POST", jar = t.jar })
      assert.equal(200, status)
      os.execute(("sleep %.1f"):format(case[1] / 1000 + 0.5))
      h.configure_server { refresh_delay_ms = 0 }
      assert.equal(401, json_get(t, t.jar))
      local refreshes, logouts = refresh_bodies()
      assert.equal(1, #refreshes)
      local sent_new = false
      for _, token in ipairs(logouts) do sent_new = sent_new or token ~= refreshes[1] end
      assert.is_true(sent_new, "no logout with the refreshed token: " .. #logouts .. " logout(s)")
      os.remove(out)
    end)
  end
end

support.suite("tfauth.gate logout during a refresh, shared dict #nginx", logout_wins)

local redis_port = redis.free_port()
describe("tfauth.gate on Redis #nginx", function()
  local server
  setup(function() server = redis.start { port = redis_port } end)
  teardown(function() server.remove() end)
  support.suite("logout during a refresh", logout_wins, {
    TFAUTH_REDIS = "127.0.0.1:" .. redis_port, TFAUTH_SEAL_KEYS = ("5e"):rep(32) })
end)

