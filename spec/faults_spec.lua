-- What the network and a misbehaving server can do, each ending in the
-- documented kind: dropped connections, stalls, chunked and oversized
-- bodies, and redirects to another origin, which are never followed.
local cjson = require "cjson"
local h = require "spec.helper"

local OTHER = assert(os.getenv("TFAUTH_TEST_OTHER_URL"))
local LOGIN = "/api/iam/login"
local creds = { user = "alice", password = "alice-Secret-1" }

local function token_body()
  return cjson.encode { access_token = "a", refresh_token = "r", expires_in = 60, refresh_expires_in = 600,
    token_type = "Bearer", scope = "openid", session_state = "s" }
end

local function login_with(answer, config)
  answer.path = answer.path or LOGIN
  h.script(answer)
  local c = h.client(config)
  return pcall(c.login, c, creds)
end

local function login_error(answer, config)
  local ok, err = login_with(answer, config)
  assert.is_false(ok, "expected an error")
  return err
end

local function from(listener) return h.count(listener, "listener") end

describe("faults", function()
  before_each(h.reset)

  it("a connection closed mid-response is a network error", function()
    local err = login_error { body = token_body(), close_after_bytes = 20 }
    assert.equal("network", err.kind)
    assert.equal(18, err.curl_code)
    assert.is_true(err.retryable)
  end)

  it("a connection closed with no answer is a network error", function()
    local err = login_error { close_without_answer = true }
    assert.equal("network", err.kind)
    assert.equal(52, err.curl_code)
  end)

  it("a stall before the answer ends in a timeout", function()
    local err = login_error({ delay_ms = 3000, body = token_body() }, { timeout_ms = 300 })
    assert.equal("timeout", err.kind)
  end)

  it("a stall in the middle of the body ends in a timeout", function()
    local started = os.time()
    local err = login_error({ body = token_body(), stall_body_ms = 3000 }, { timeout_ms = 400 })
    assert.equal("timeout", err.kind)
    assert.equal(28, err.curl_code)
    assert.is_true(os.time() - started <= 2)
  end)

  it("a chunked body is read whole", function()
    local ok, t = login_with { body = token_body(), chunked = true }
    assert.is_true(ok, tostring(t))
    assert.equal("a", t.access_token)
    assert.equal(600, t.refresh_expires_in)
  end)

  it("a chunked body over max_response_bytes is a response error", function()
    local err = login_error({ body = token_body() .. string.rep(" ", 4000), chunked = true },
      { max_response_bytes = 1000 })
    assert.equal("response", err.kind)
    assert.equal(200, err.status)
  end)

  it("a 200 with truncated JSON is a response error", function()
    local body = token_body()
    local err = login_error { body = body:sub(1, #body - 10) }
    assert.equal("response", err.kind)
  end)

  it("a 200 with an HTML page is a response error; an HTML error page is an http error", function()
    local page = "<!doctype html><title>Maintenance</title><p>Back soon</p>"
    assert.equal("response", login_error({ body = page, content_type = "text/html" }).kind)
    local err = login_error { status = 503, body = page, content_type = "text/html" }
    assert.equal("http", err.kind)
    assert.equal(page, err.body)
    assert.is_nil(err.json)
  end)

  for _, status in ipairs { 301, 302, 303, 307, 308 } do
    it("a " .. status .. " redirect to another origin is not followed: nothing reaches it", function()
      local t = h.login("alice")
      h.reset()
      h.script { path = "/api/iam/password/change", status = status, body = "",
        headers = { Location = OTHER .. "/api/iam/password/change" } }
      local c = h.client { bearer = t.access_token }
      local ok, err = pcall(c.change_password, c,
        { x_org = "acme", current_password = "alice-Secret-1", new_password = "New-Password-8" })
      assert.is_false(ok)
      assert.equal("http", err.kind)
      assert.equal(status, err.status)
      assert.equal(OTHER .. "/api/iam/password/change", err.headers.location)
      assert.equal(1, from("main"))
      assert.equal(0, from("other"))
    end)
  end

  it("a refused connection and an unresolvable host are network errors", function()
    local c = h.client { server_url = h.closed_url }
    assert.equal("network", h.error_of(c.login, c, creds).kind)
    c = h.client { server_url = "http://tfauth-test.invalid:8080" }
    assert.equal("network", h.error_of(c.login, c, creds).kind)
  end)

  it("the client keeps working after each fault", function()
    local c = h.client { timeout_ms = 400 }
    for _, answer in ipairs {
      { path = LOGIN, close_without_answer = true },
      { path = LOGIN, body = token_body(), close_after_bytes = 10 },
      { path = LOGIN, body = token_body(), stall_body_ms = 2000 },
    } do
      h.script(answer)
      assert.is_false(pcall(c.login, c, creds))
      assert.is_string(c:login(creds).access_token)
    end
  end)
end)
