-- Retries as the Python SDK's RetryConfig: which outcomes are retried, how
-- long the client waits (read from its debug lines: deterministic), and what
-- the caller gets at the end. The server is told to fail N times.
local h = require "spec.helper"

local LOGIN = "/api/iam/login"
local creds = { user = "alice", password = "alice-Secret-1" }
local function backoff(b, extra)
  local r = { strategy = "backoff", backoff = b }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end
local FAST = backoff { initial_interval = 5, max_interval = 20 }

-- A client that records the waits it announces.
local function client(config)
  local waits = {}
  config = config or {}
  config.debug = function(line)
    local ms = line:match("retrying in (%d+) ms")
    if ms then waits[#waits + 1] = tonumber(ms) end
  end
  return h.client(config), waits
end

local function fail(times, status, headers)
  h.script { path = LOGIN, status = status or 503, body = '{"detail":"try later"}', times = times, headers = headers }
end

describe("retries", function()
  before_each(h.reset)

  it("are off by default: one attempt, and the error says so", function()
    fail(1)
    local c = client()
    local err = h.error_of(c.login, c, creds)
    assert.equal(503, err.status)
    assert.equal(1, err.attempts)
    assert.is_true(err.retryable)
    assert.equal(1, #h.requests())
  end)

  it("retry a failing call until it succeeds", function()
    fail(2)
    local c = client { retries = FAST }
    assert.is_string(c:login(creds).access_token)
    assert.equal(3, #h.requests())
  end)

  for _, status in ipairs { 429, 500, 502, 503, 504 } do
    it("retry status " .. status, function()
      fail(1, status)
      local c = client { retries = FAST }
      assert.is_string(c:login(creds).access_token)
      assert.equal(2, #h.requests())
    end)
  end

  for _, status in ipairs { 400, 401, 404, 422, 501 } do
    it("do not retry status " .. status, function()
      fail(1, status)
      local c = client { retries = FAST }
      local err = h.error_of(c.login, c, creds)
      assert.equal(status, err.status)
      assert.equal(1, err.attempts)
      assert.equal(1, #h.requests())
    end)
  end

  it("grow as initial_interval * exponent^n plus up to 1 s of jitter", function()
    fail(3)
    local c, waits = client { retries = backoff { initial_interval = 10, exponent = 2, max_interval = 60000 } }
    c:login(creds)
    assert.equal(3, #waits)
    for i, base in ipairs { 10, 20, 40 } do
      assert.is_true(waits[i] >= base and waits[i] < base + 1000, ("wait %d: %d ms"):format(i, waits[i]))
    end
  end)

  it("never wait past max_interval", function()
    fail(2)
    local c, waits = client { retries = backoff { initial_interval = 1000, max_interval = 30 } }
    c:login(creds)
    assert.same({ 30, 30 }, waits)
  end)

  it("wait as Retry-After says in seconds", function()
    fail(1, 429, { ["Retry-After"] = "1" })
    local c, waits = client { retries = backoff { initial_interval = 5, max_interval = 5000 } }
    c:login(creds)
    assert.same({ 1000 }, waits)
  end)

  it("wait as Retry-After says as an HTTP date", function()
    fail(1, 503, { ["Retry-After"] = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2) })
    local c, waits = client { retries = backoff { initial_interval = 5, max_interval = 5000 } }
    c:login(creds)
    assert.equal(1, #waits)
    assert.is_true(waits[1] >= 1000 and waits[1] <= 2000, waits[1] .. " ms")
  end)

  it("cap Retry-After at max_interval", function()
    fail(1, 429, { ["Retry-After"] = "30" })
    local c, waits = client { retries = backoff { max_interval = 50 } }
    c:login(creds)
    assert.same({ 50 }, waits)
  end)

  it("give the caller the last response once max_elapsed_time has passed", function()
    fail(100)
    local c = client { retries = backoff { initial_interval = 100, exponent = 1, max_interval = 100,
      max_elapsed_time = 350 } }
    local started = os.time()
    local err = h.error_of(c.login, c, creds)
    assert.equal("http", err.kind)
    assert.equal(503, err.status)
    assert.equal("try later", err.detail)
    assert.equal(4, err.attempts) -- at 0, 100, 200, 300 ms; a fourth wait would end past 350
    assert.equal(4, #h.requests())
    assert.is_true(os.time() - started <= 2)
  end)

  it("retry connection failures only when retry_connection_errors is set", function()
    local c = client { server_url = h.closed_url, retries = FAST }
    assert.equal(1, h.error_of(c.login, c, creds).attempts)
    c = client { server_url = h.closed_url,
      retries = backoff({ initial_interval = 5, max_interval = 20, max_elapsed_time = 200 },
        { retry_connection_errors = true }) }
    local err = h.error_of(c.login, c, creds)
    assert.equal("network", err.kind)
    assert.is_true(err.attempts > 2)
  end)

  it("retry timeouts when retry_connection_errors is set", function()
    h.script { path = LOGIN, delay_ms = 1500, body = "{}", times = 2 }
    local c = client { timeout_ms = 200, retries = backoff({ initial_interval = 5, max_interval = 20 },
      { retry_connection_errors = true }) }
    assert.is_string(c:login(creds).access_token)
    assert.equal(3, #h.requests())
  end)

  it("are set per call, over the client's", function()
    fail(1)
    local c = client()
    assert.is_string(c:login(creds, { retries = FAST }).access_token)
    h.reset()
    fail(1)
    c = client { retries = FAST }
    assert.equal(1, h.error_of(c.login, c, creds, { retries = { strategy = "none" } }).attempts)
  end)

  it("do not resend after a non-retryable argument error", function()
    local c = client { retries = FAST }
    assert.equal("argument", h.error_of(c.login, c, { user = "alice" }).kind)
    assert.equal(0, #h.requests())
  end)
end)
