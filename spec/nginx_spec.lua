-- tfauth inside Debian's nginx + lua module (LuaJIT), against the reference
-- backend: both transports give the same results and errors, the nginx
-- transport does not block the worker, and the example auth hook keeps
-- sessions in a shared dict with one refresh per expiry across workers.
local cjson = require "cjson"
local h = require "spec.helper"

local sh, start_nginx = h.sh, h.start_nginx

local count = h.count

describe("nginx #nginx", function()
  local url, stop

  setup(function() url, stop = start_nginx { workers = 1, skew = 30 } end)
  teardown(function() stop() end)
  before_each(h.reset)

  local function cycle(transport)
    return cjson.decode(sh(("curl -s -H 'X-Client-Secret: from-the-browser' '%s/t/cycle?transport=%s&backend=%s'")
      :format(url, transport, h.url)))
  end

  it("runs login, refresh and logout through nginx with the same results and errors as libcurl", function()
    local via_nginx = cycle("nginx")
    h.reset()
    local via_curl = cycle("curl")
    assert.is_true(via_nginx.login.ok)
    assert.equal("Bearer", via_nginx.login.token_type)
    assert.is_true(via_nginx.refresh.ok)
    assert.is_true(via_nginx.logout.ok)
    assert.equal("invalid_grant", via_nginx.reuse.error)
    assert.equal(400, via_nginx.after_logout.status)
    assert.equal(401, via_nginx.wrong_password.status)
    assert.equal("argument", via_nginx.missing.kind)
    assert.equal("validation", via_nginx.validation.kind)
    assert.equal("closed", via_nginx.session.state)
    assert.equal("network", via_nginx.refused.kind)
    assert.matches("^tfauth.client%[nginx%]", via_nginx.transport)
    for _, key in ipairs { "login", "refresh", "reuse", "logout", "after_logout", "wrong_password", "missing",
      "validation", "session" } do
      assert.same(via_curl[key], via_nginx[key], key)
    end
    assert.equal(via_curl.refused.kind, via_nginx.refused.kind)
    assert.equal(via_curl.refused.retryable, via_nginx.refused.retryable)
  end)

  it("sends none of the browser's request headers to the API, and tfauth's own", function()
    cycle("nginx")
    local reqs = h.requests()
    assert.is_true(#reqs >= 6)
    for _, req in ipairs(reqs) do
      assert.is_nil(req.headers["x-client-secret"])
      assert.matches("^tfauth/", req.headers["user-agent"])
      assert.equal("application/json", req.headers.accept)
    end
  end)

  -- Times /ping while a login stalls 2 s at the backend.
  local function ping_during_stalled_login(transport)
    h.script { path = "/api/iam/login", delay_ms = 2000, body = "{}" }
    local done = os.tmpname()
    os.execute(("env -u LD_PRELOAD curl -s '%s/t/login?transport=%s&backend=%s' >%s 2>&1 &"):format(
      url, transport, h.url, done))
    os.execute("sleep 0.3")
    local seconds = tonumber(sh("curl -s -o /dev/null -w '%{time_total}' " .. url .. "/ping"))
    for _ = 1, 60 do -- let the login finish before the next test
      local f = io.open(done)
      local text = f and f:read("*a")
      if f then f:close() end
      if text and text ~= "" then break end
      os.execute("sleep 0.1")
    end
    os.remove(done)
    return seconds
  end

  it("does not block the worker: another request answers while a login is in flight (auto transport)", function()
    local seconds = ping_during_stalled_login("auto")
    assert.is_true(seconds < 0.1, ("/ping took %.3f s"):format(seconds))
  end)

  it("with the libcurl transport, the same worker stalls (why the nginx transport exists)", function()
    local seconds = ping_during_stalled_login("curl")
    assert.is_true(seconds > 1.0, ("/ping took %.3f s"):format(seconds))
  end)
end)

describe("nginx auth hook example #nginx", function()
  local url, stop
  local cookies

  setup(function() url, stop = start_nginx { workers = 3, skew = 1 } end) -- refresh 1 s before expiry
  teardown(function() stop() end)
  before_each(function()
    h.reset()
    cookies = os.tmpname()
  end)
  after_each(function() os.remove(cookies) end)

  local function login(user)
    return sh(("curl -s -c %s -w ' %%{http_code}' --data-urlencode 'user=%s' --data-urlencode 'password=%s' %s/login")
      :format(cookies, user, h.users[user].password, url))
  end
  local function app(path)
    return sh(("curl -s -b %s -w ' %%{http_code}' %s/app/%s"):format(cookies, url, path or "x"))
  end

  it("logs in behind an opaque cookie, guards the application, logs out", function()
    assert.matches('^{"user":"alice"}%s+200$', login("alice"))
    assert.matches('"user":"alice".* 200$', app())
    assert.matches("401$", sh(("curl -s -w ' %%{http_code}' %s/app/x"):format(url)))
    local jar = sh("cat " .. cookies)
    assert.matches("tfauth_sid", jar)
    assert.is_nil(jar:find("eyJ", 1, true), "no token in the browser's cookies")
    assert.matches("200$", sh(("curl -s -b %s -c %s -w ' %%{http_code}' -X POST %s/logout"):format(cookies, cookies, url)))
    assert.equal(1, count("/api/iam/logout"))
    assert.matches("401$", app())
  end)

  it("refuses wrong credentials", function()
    assert.matches("401$", sh(("curl -s -w ' %%{http_code}' -d 'user=alice&password=nope-nope' %s/login"):format(url)))
  end)

  it("refreshes once per expiry across workers, and no concurrent request fails", function()
    h.configure_server { access_ttl = 3 }
    assert.matches("200$", login("alice"))
    for round = 1, 2 do
      os.execute("sleep 2.2") -- inside the 1 s skew of the 3 s token
      local out = sh(("seq 60 | xargs -P 30 -I{} curl -s -b %s -w ' %%{http_code}\\n' %s/app/{}"):format(cookies, url))
      local workers, n = {}, 0
      for line in out:gmatch("[^\n]+") do
        local code = line:match("^ (%d+)$")
        if code then
          n = n + 1
          assert.equal("200", code)
        else
          workers[assert(line:match('"worker":(%d+)'), line)] = true
        end
      end
      assert.equal(60, n)
      local distinct = 0
      for _ in pairs(workers) do distinct = distinct + 1 end
      assert.is_true(distinct >= 2, "requests reached " .. distinct .. " worker(s)")
      assert.equal(round, count("/api/iam/refresh"), "round " .. round)
    end
  end)

  it("keeps a session and its change stamp for as long as the refresh token lives, across refreshes", function()
    h.configure_server { access_ttl = 2, refresh_ttl = 100 }
    assert.matches("200$", login("alice"))
    local value, stamp = sh(("curl -s -b %s %s/t/ttl"):format(cookies, url)):match("(%d+) (%d+)")
    assert.is_true(tonumber(value) > 95 and tonumber(value) <= 100 and stamp == value, value .. " " .. stamp)
    h.configure_server { refresh_ttl = 1800 } -- the next refresh token lives longer
    os.execute("sleep 1.1")
    assert.matches("200$", app())
    assert.equal(1, count("/api/iam/refresh"))
    value, stamp = sh(("curl -s -b %s %s/t/ttl"):format(cookies, url)):match("(%d+) (%d+)")
    assert.is_true(tonumber(value) > 1790, value)
    assert.is_true(math.abs(tonumber(stamp) - tonumber(value)) <= 1, value .. " " .. stamp)
  end)

  it("treats a session whose refresh token was revoked as logged out", function()
    h.configure_server { access_ttl = 1 }
    assert.matches("200$", login("bob"))
    -- revoke every session of the backend's, behind nginx's back
    for _, req in ipairs(h.requests()) do assert.equal("/api/iam/login", req.path) end
    h.configure_server { access_ttl = 300 }
    sh(("curl -s -X POST %s/_test/reset"):format(h.url)) -- the backend forgets all sessions
    os.execute("sleep 1.1")
    assert.matches("401$", app())
    assert.matches("401$", app()) -- and stays so, without asking again
    assert.equal(1, count("/api/iam/refresh"))
  end)
end)
