-- tfauth inside Debian's nginx + lua module (LuaJIT), against the reference
-- backend: both transports give the same results and errors, the nginx
-- transport does not block the worker. (The gate that the example runs:
-- gate_spec.lua.)
local cjson = require "cjson"
local h = require "spec.helper"

local sh, start_nginx = h.sh, h.start_nginx



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
