-- Every error kind, as a caller meets it: kind, status, headers, body, json,
-- lifted fields, curl_code, retryable, and one readable line.
local cjson = require "cjson"
local tfauth = require "tfauth"
local safe = require "tfauth.safe"
local h = require "spec.helper"

local LOGIN = "/api/iam/login"
local creds = { user = "alice", password = "alice-Secret-1" }

-- Logs in after scripting the server's answer (if any); returns the error.
local function login_error(answer, config)
  if answer then
    answer.path = answer.path or LOGIN
    h.script(answer)
  end
  local client = h.client(config)
  return h.error_of(client.login, client, creds)
end

describe("errors", function()
  before_each(h.reset)

  describe("tfauth.Error", function()
    it("is a table with the Error metatable, told apart by is_error, printed as one line", function()
      local err = h.error_of(h.client().login, h.client(), { user = "alice", password = "wrong-password-1" })
      assert.equal(tfauth.Error, getmetatable(err))
      assert.is_true(tfauth.is_error(err))
      assert.is_false(tfauth.is_error("tfauth: login: http 401"))
      assert.is_false(tfauth.is_error({ kind = "http" }))
      assert.equal("tfauth: login: http 401: Invalid user credentials", tostring(err))
      assert.equal("login", err.operation)
      assert.equal("http 401: Invalid user credentials", err.message)
      assert.equal(1, err.attempts)
    end)

    it("lists its kinds", function()
      assert.same({ "argument", "validation", "http", "timeout", "network", "tls", "response", "token" }, tfauth.kinds)
    end)
  end)

  describe("validation (422)", function()
    it("carries FastAPI's detail list and names the field in the message", function()
      -- FastAPI's answer to a new password it refuses (one the client does not
      -- hold: for the short one it sent, the text would be withheld, below)
      h.script { path = "/api/iam/password/change", status = 422, body = cjson.encode { detail = { {
        loc = { "body", "new_password" }, msg = "ensure this value has at least 8 characters",
        type = "value_error.any_str.min_length", ctx = { limit_value = 8 } } } } }
      local client = h.client { bearer = h.login("alice").access_token }
      local err = h.error_of(client.change_password, client,
        { x_org = "acme", current_password = "alice-Secret-1", new_password = "new-Password-1" })
      assert.equal("validation", err.kind)
      assert.equal(422, err.status)
      assert.equal("change_password", err.operation)
      assert.same({ "body", "new_password" }, err.detail[1].loc)
      assert.matches("at least 8 characters", err.detail[1].msg)
      assert.same(err.detail, err.json.detail)
      assert.equal("application/json", err.headers["content-type"])
      assert.matches("^http 422: body%.new_password: ensure this value has at least 8 characters$", err.message)
      assert.is_false(err.retryable)
    end)

    it("withholds the API's text when a secret of the call is shorter than 8 characters", function()
      local client = h.client { bearer = h.login("alice").access_token }
      local err = h.error_of(client.change_password, client,
        { x_org = "acme", current_password = "alice-Secret-1", new_password = "short" })
      assert.equal("validation", err.kind)
      assert.equal(422, err.status)
      assert.equal("http 422: the server's explanation was withheld (a secret of this call is shorter than 8 "
        .. "characters)", err.message)
      for _, field in ipairs { "body", "json", "detail", "error", "error_description" } do
        assert.is_nil(err[field], field)
      end
      assert.equal("application/json", err.headers["content-type"])
      assert.equal("POST", err.method)
    end)
  end)

  describe("http", function()
    it("lifts FastAPI's detail from a JSON error and lower-cases header names", function()
      local err = login_error { status = 401, body = '{"detail":"Invalid user credentials"}',
        headers = { ["WWW-Authenticate"] = "Bearer", ["X-Trace-Id"] = "abc" } }
      assert.equal("http", err.kind)
      assert.equal(401, err.status)
      assert.equal("Invalid user credentials", err.detail)
      assert.same({ detail = "Invalid user credentials" }, err.json)
      assert.equal('{"detail":"Invalid user credentials"}', err.body)
      assert.equal("Bearer", err.headers["www-authenticate"])
      assert.equal("abc", err.headers["x-trace-id"])
      assert.is_nil(err.headers["X-Trace-Id"])
    end)

    it("lifts Keycloak's error and error_description", function()
      local err = login_error { status = 400, body = '{"error":"invalid_grant","error_description":"Session not active"}' }
      assert.equal("invalid_grant", err.error)
      assert.equal("Session not active", err.error_description)
      assert.equal("tfauth: login: http 400: Session not active", tostring(err))
    end)

    it("keeps a non-JSON body as text, with no json field, explained by the reason phrase", function()
      local page = "<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>"
      local err = login_error { status = 502, body = page, content_type = "text/html" }
      assert.equal("http", err.kind)
      assert.equal(502, err.status)
      assert.equal(page, err.body)
      assert.is_nil(err.json)
      assert.is_nil(err.detail)
      assert.equal("text/html", err.headers["content-type"])
      assert.equal("http 502: Bad Gateway", err.message)
      assert.is_true(err.retryable)
    end)

    it("marks 429, 500, 502, 503 and 504 retryable, and others not", function()
      for status, retryable in pairs { [429] = true, [500] = true, [503] = true, [504] = true,
        [400] = false, [404] = false, [501] = false } do
        local err = login_error { status = status, body = "{}" }
        assert.equal(status, err.status)
        assert.equal(retryable, err.retryable, "status " .. status)
      end
    end)

    it("is what a redirect gives: it is not followed", function()
      local err = login_error { status = 302, body = "", headers = { Location = h.url .. "/api/iam/refresh" } }
      assert.equal("http", err.kind)
      assert.equal(302, err.status)
      assert.equal(h.url .. "/api/iam/refresh", err.headers.location)
      local reqs = h.requests()
      assert.equal(1, #reqs)
      assert.equal(LOGIN, reqs[1].path)
    end)

    it("survives a JSON number too large for a double in an error body that needs redaction", function()
      local err = login_error { status = 400, body = '{"detail":"bad alice-Secret-1","limit":1e999}' }
      assert.equal("http", err.kind)
      assert.equal("bad [REDACTED]", err.detail)
      assert.equal(math.huge, err.json.limit)
      assert.is_nil(err.body:find("alice-Secret-1", 1, true))
    end)

    it("names the method and the URL, without its query", function()
      local err = login_error { status = 404, body = '{"detail":"Not Found"}' }
      assert.equal("POST", err.method)
      assert.equal(h.url .. LOGIN, err.url)
      -- reset_password sends the user name in the query: the URL stops before it
      h.script { path = "/api/iam/password/reset", status = 404, body = '{"detail":"User not found"}' }
      local lines = {}
      local client = h.client { debug = function(line) lines[#lines + 1] = line end }
      err = h.error_of(client.reset_password, client, { username = "pat-Secret-9" })
      assert.equal("http", err.kind)
      assert.equal("POST", err.method)
      assert.equal(h.url .. "/api/iam/password/reset", err.url)
      for key, value in pairs(err) do
        if type(value) == "string" then assert.is_nil(value:find("pat-Secret-9", 1, true), key) end
      end
      -- nor does the debug line of the request
      assert.equal("tfauth: -> reset_password: POST " .. h.url .. "/api/iam/password/reset, 0 bytes", lines[1])
      for _, line in ipairs(lines) do assert.is_nil(line:find("pat-Secret-9", 1, true), line) end
      -- a server_url with a wrong path shows it in the URL
      client = h.client { server_url = h.url .. "/api" }
      err = h.error_of(client.login, client, creds)
      assert.equal(404, err.status)
      assert.equal(h.url .. "/api/api/iam/login", err.url)
    end)

    it("names the method and the URL on a validation error and a broken answer too", function()
      local client = h.client { bearer = h.login("alice").access_token }
      local err = h.error_of(client.change_password, client,
        { x_org = "acme", current_password = "alice-Secret-1", new_password = "tiny" })
      assert.equal("validation", err.kind)
      assert.equal("POST", err.method)
      assert.equal(h.url .. "/api/iam/password/change", err.url)
      err = login_error { status = 200, body = "[]" }
      assert.equal("response", err.kind)
      assert.equal("POST", err.method)
      assert.equal(h.url .. LOGIN, err.url)
    end)

    it("names them when a transport written in Lua maps the answer (client:map)", function()
      local core = require("tfauth.core")
      local c = core.new { server_url = h.url }
      local req = c:prepare("reset_password", { username = "pat" })
      local ok, err = pcall(c.map, c, req, 404, {}, '{"detail":"User not found"}')
      assert.is_false(ok)
      assert.equal("POST", err.method)
      assert.equal(h.url .. "/api/iam/password/reset", err.url)
      c:close()
    end)

    it("caps the body at max_response_bytes", function()
      local err = login_error({ status = 500, body = string.rep("x", 5000), content_type = "text/plain" },
        { max_response_bytes = 1000 })
      assert.equal("http", err.kind)
      assert.equal(500, err.status)
      assert.equal(string.rep("x", 1000), err.body)
    end)
  end)

  describe("transport failures", function()
    it("timeout: the total time limit, with libcurl's code", function()
      local started = os.time()
      local err = login_error({ delay_ms = 3000, body = "{}" }, { timeout_ms = 300 })
      assert.equal("timeout", err.kind)
      assert.equal(28, err.curl_code)
      assert.is_true(err.retryable)
      assert.is_nil(err.status)
      assert.matches("^timeout: ", err.message)
      assert.is_true(os.time() - started <= 2, "the timeout should cut the 3 s stall")
    end)

    it("timeout: per call, overriding the client's", function()
      h.script { path = LOGIN, delay_ms = 3000, body = "{}" }
      local client = h.client()
      local err = h.error_of(client.login, client, creds, { timeout_ms = 200 })
      assert.equal("timeout", err.kind)
    end)

    it("network: nothing listening", function()
      local err = login_error(nil, { server_url = h.closed_url })
      assert.equal("network", err.kind)
      assert.equal(7, err.curl_code)
      assert.is_true(err.retryable)
      assert.matches("^network error: ", err.message)
      assert.equal("POST", err.method)
      assert.equal(h.closed_url .. LOGIN, err.url)
    end)

    it("network: a host that does not resolve", function()
      local err = login_error(nil, { server_url = "http://no-such-host.invalid" })
      assert.equal("network", err.kind)
      assert.equal(6, err.curl_code)
    end)

    it("tls: a TLS handshake with a server that does not speak TLS", function()
      local err = login_error(nil, { server_url = h.url:gsub("^http:", "https:") })
      assert.equal("tls", err.kind)
      assert.equal(35, err.curl_code)
      assert.is_false(err.retryable)
    end)
  end)

  describe("response (a 2xx that breaks the contract)", function()
    local cases = {
      { "invalid JSON", '{"access_token": "abc", ', "not a JSON object" },
      { "a JSON array", "[1, 2]", "not a JSON object" },
      { "a JSON string", '"ok"', "not a JSON object" },
      { "an empty body", "", "not a JSON object" },
      { "a missing field", cjson.encode { access_token = "a", refresh_token = "r", expires_in = 1,
        refresh_expires_in = 1, token_type = "Bearer" }, "'scope' is missing" },
      { "a null required field", '{"access_token":"a","refresh_token":"r","expires_in":1,'
        .. '"refresh_expires_in":1,"token_type":"Bearer","scope":null}', "'scope' is missing" },
      { "a wrongly typed field", cjson.encode { access_token = "a", refresh_token = "r", expires_in = "300",
        refresh_expires_in = 1, token_type = "Bearer", scope = "s" }, "'expires_in' should be an integer" },
      { "a fractional expiry", cjson.encode { access_token = "a", refresh_token = "r", expires_in = 1.5,
        refresh_expires_in = 1, token_type = "Bearer", scope = "s" }, "'expires_in' should be an integer" },
      { "a wrongly typed optional field", cjson.encode { access_token = "a", refresh_token = "r", expires_in = 1,
        refresh_expires_in = 1, token_type = "Bearer", scope = "s", session_state = 5 }, "'session_state' should be a string" },
    }
    for _, case in ipairs(cases) do
      it("for " .. case[1], function()
        local err = login_error { status = 200, body = case[2] }
        assert.equal("response", err.kind)
        assert.equal(200, err.status)
        assert.matches(case[3], err.message, 1, true)
        assert.is_false(err.retryable)
      end)
    end

    it("for an OK body that is not an object", function()
      h.script { path = "/api/iam/logout", status = 200, body = "true" }
      local client = h.client()
      local err = h.error_of(client.logout, client, { refresh_token = "some-refresh-token" })
      assert.equal("response", err.kind)
    end)

    it("for a body over max_response_bytes", function()
      local t = h.login("alice")
      local err = login_error({ status = 200, body = cjson.encode(t) }, { max_response_bytes = 200 })
      assert.equal("response", err.kind)
      assert.matches("larger than max_response_bytes", err.message)
    end)

    it("accepts a valid token with optional fields absent or null", function()
      h.script { path = LOGIN, status = 200, body = '{"access_token":"a","refresh_token":"r","expires_in":60,'
        .. '"refresh_expires_in":0,"token_type":"Bearer","scope":"s","session_state":null}' }
      local t = h.client():login(creds)
      assert.equal(60, t.expires_in)
      assert.is_nil(t.session_state)
      assert.is_nil(t.id_token)
      assert.equal(t.expires_at - 60, t.refresh_expires_at)
    end)
  end)

  describe("tfauth.safe", function()
    it("returns nil, err for every kind instead of raising", function()
      local client = safe.new { server_url = h.url }
      local res, err = client:login { user = "alice", password = "wrong-password-1" }
      assert.is_nil(res)
      assert.equal("http", err.kind)
      res, err = client:login { user = "alice" }
      assert.is_nil(res)
      assert.equal("argument", err.kind)
      res, err = safe.new { server_url = "ftp://example" }
      assert.is_nil(res)
      assert.equal("argument", err.kind)
      res, err = safe.configure { timeout_ms = -1, server_url = h.url }
      assert.is_nil(res)
      assert.equal("timeout_ms", err.field)
      assert.is_string(client:login(creds).access_token)
    end)

    it("mirrors the module functions and names", function()
      assert.is_truthy(safe.configure { server_url = h.url })
      local t, err = safe.login(creds)
      assert.is_nil(err)
      local ok = safe.logout_user_api_iam_logout_post { refresh_token = t.refresh_token }
      assert.same({}, ok)
      local res
      res, err = safe.refresh { refresh_token = t.refresh_token }
      assert.is_nil(res)
      assert.equal(400, err.status)
      assert.equal(tfauth.Error, safe.Error)
      assert.equal(tfauth.is_error, safe.is_error)
    end)

    it("still raises for misuse that is a bug in the caller", function()
      local client = safe.new { server_url = h.url }
      assert.has_error(function() client.login({}, creds) end)
      assert.has_error(function() tfauth.new { server_url = h.url }.login("not a client", creds) end)
    end)
  end)
end)
