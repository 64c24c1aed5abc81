-- Bad input is refused before any I/O, with an `argument` error that names
-- the field; the server's request log proves nothing was sent.
local tfauth = require "tfauth"
local h = require "spec.helper"

local BEARER = "valid.bearer-token_1"
local good = {
  login = { user = "alice", password = "alice-Secret-1" },
  change_password = { x_org = "acme", current_password = "old-password", new_password = "new-password-1" },
  admin_change_password = { user_id = "u-1", x_org = "acme", new_password = "new-password-1" },
}
local function with(op, changes)
  local p = {}
  for k, v in pairs(good[op]) do p[k] = v end
  for k, v in pairs(changes) do if v == "<nil>" then p[k] = nil else p[k] = v end end
  return p
end

-- { description, operation, params, overrides, field, client config }
local bad_calls = {
  { "login: missing user", "login", with("login", { user = "<nil>" }), nil, "user" },
  { "login: missing password", "login", with("login", { password = "<nil>" }), nil, "password" },
  { "login: no table at all", "login", nil, nil, "user" },
  { "login: parameters not a table", "login", "alice", nil, "parameters" },
  { "login: user a number", "login", with("login", { user = 42 }), nil, "user" },
  { "login: password a table", "login", with("login", { password = {} }), nil, "password" },
  { "login: empty user", "login", with("login", { user = "" }), nil, "user" },
  { "login: empty password", "login", with("login", { password = "" }), nil, "password" },
  { "login: remember_me a string", "login", with("login", { remember_me = "yes" }), nil, "remember_me" },
  { "login: unknown parameter", "login", with("login", { pasword = "x" }), nil, "pasword" },
  { "login: positional parameters", "login", { "alice", "pw" }, nil, "parameter" },
  { "login: invalid UTF-8 user", "login", with("login", { user = "al\255ice" }), nil, "user" },
  { "login: huge password", "login", with("login", { password = string.rep("p", 20000) }), nil, "password" },
  { "refresh: missing token", "refresh", {}, nil, "refresh_token" },
  { "refresh: token a boolean", "refresh", { refresh_token = true }, nil, "refresh_token" },
  { "logout: empty token", "logout", { refresh_token = "" }, nil, "refresh_token" },
  { "reset_password: missing username", "reset_password", {}, nil, "username" },
  { "reset_password: CR LF in username", "reset_password", { username = "a\r\nb" }, nil, "username" },
  { "change_password: missing x_org", "change_password", with("change_password", { x_org = "<nil>" }), nil, "x_org" },
  { "change_password: CR LF in x_org", "change_password",
    with("change_password", { x_org = "acme\r\nX-Evil: 1" }), nil, "x_org" },
  { "change_password: NUL in x_org", "change_password", with("change_password", { x_org = "ac\0me" }), nil, "x_org" },
  { "change_password: TAB in x_org_override", "change_password",
    with("change_password", { x_org_override = "a\tb" }), nil, "x_org_override" },
  { "change_password: empty current_password", "change_password",
    with("change_password", { current_password = "" }), nil, "current_password" },
  { "change_password: no bearer", "change_password", good.change_password, nil, "bearer", { bearer = false } },
  { "change_password: bearer function returning LF", "change_password", good.change_password, nil, "bearer",
    { bearer = function() return "abc\ndef" end } },
  { "change_password: bearer with a space", "change_password", good.change_password, nil, "bearer", { bearer = "abc def" } },
  { "change_password: bearer function raising", "change_password", good.change_password, nil, "bearer",
    { bearer = function() error("no token file") end } },
  { "change_password: bearer function returning nil", "change_password", good.change_password, nil, "bearer",
    { bearer = function() return nil end } },
  { "change_password: bearer function returning a number", "change_password", good.change_password, nil, "bearer",
    { bearer = function() return 42 end } },
  { "admin: user_id ../x", "admin_change_password", with("admin_change_password", { user_id = "../x" }), nil, "user_id" },
  { "admin: user_id a/b", "admin_change_password", with("admin_change_password", { user_id = "a/b" }), nil, "user_id" },
  { "admin: user_id %2e", "admin_change_password", with("admin_change_password", { user_id = "%2e" }), nil, "user_id" },
  { "admin: user_id ..", "admin_change_password", with("admin_change_password", { user_id = ".." }), nil, "user_id" },
  { "admin: user_id with CR", "admin_change_password", with("admin_change_password", { user_id = "a\rb" }), nil, "user_id" },
  { "admin: empty user_id", "admin_change_password", with("admin_change_password", { user_id = "" }), nil, "user_id" },
  { "change_password: invalid UTF-8 in x_org", "change_password",
    with("change_password", { x_org = "ac\195\040me" }), nil, "x_org" },
  { "change_password: DEL in x_org", "change_password", with("change_password", { x_org = "ac\127me" }), nil, "x_org" },
  { "change_password: huge new_password", "change_password",
    with("change_password", { new_password = string.rep("n", 1e6) }), nil, "new_password" },
  { "change_password: huge bearer from a function", "change_password", good.change_password, nil, "bearer",
    { bearer = function() return string.rep("t", 1e5) end } },
  { "admin: huge user_id", "admin_change_password",
    with("admin_change_password", { user_id = string.rep("u", 20000) }), nil, "user_id" },
  { "admin: user_id with a backslash", "admin_change_password",
    with("admin_change_password", { user_id = "a\\b" }), nil, "user_id" },
  { "admin: user_id .", "admin_change_password", with("admin_change_password", { user_id = "." }), nil, "user_id" },
  { "reset_password: overlong UTF-8 in username", "reset_password", { username = "\192\175" }, nil, "username" },
  { "overrides not a table", "login", good.login, "fast", "overrides" },
  { "override: unknown key", "login", good.login, { timeout = 5 }, "timeout" },
  { "override: timeout_ms zero", "login", good.login, { timeout_ms = 0 }, "timeout_ms" },
  { "override: timeout_ms a fraction", "login", good.login, { timeout_ms = 1.5 }, "timeout_ms" },
  { "override: server_url ftp", "login", good.login, { server_url = "ftp://127.0.0.1" }, "server_url" },
  { "override: header value with CRLF", "login", good.login, { http_headers = { ["X-A"] = "1\r\nX-B: 2" } }, "http_headers" },
  { "override: header name with a space", "login", good.login, { http_headers = { ["X A"] = "1" } }, "http_headers" },
  { "override: Authorization header", "login", good.login, { http_headers = { Authorization = "Bearer x" } }, "http_headers" },
  { "override: retries not a table", "login", good.login, { retries = 3 }, "retries" },
  { "override: retries strategy unknown", "login", good.login, { retries = { strategy = "forever" } }, "retries.strategy" },
  { "override: retries backoff negative", "login", good.login,
    { retries = { strategy = "backoff", backoff = { initial_interval = -1 } } }, "initial_interval" },
}

local SERVER_DEFAULT = {}

describe("argument errors", function()
  before_each(h.reset)

  for _, case in ipairs(bad_calls) do
    local what, op, params, overrides, field, config = case[1], case[2], case[3], case[4], case[5], case[6]
    it(what, function()
      config = config or { bearer = BEARER }
      if config.bearer == false then config = {} end
      local client = h.client(config)
      local err = h.error_of(client[op], client, params, overrides)
      assert.equal("argument", err.kind)
      assert.equal(op, err.operation)
      assert.matches(field, err.message, 1, true)
      assert.matches(field, tostring(err), 1, true)
      assert.equal(0, #h.requests(), "nothing may be sent")
    end)
  end

  it("covers at least 30 bad inputs", function()
    assert.is_true(#bad_calls >= 30)
  end)

  -- { description, config, field }
  local bad_configs = {
    { "config not a table", "http://x", "config" },
    { "unknown key", { server_url = SERVER_DEFAULT, timeout = 5 }, "timeout" },
    { "server_url missing scheme", { server_url = "127.0.0.1:8000" }, "server_url" },
    { "server_url ftp", { server_url = "ftp://127.0.0.1" }, "server_url" },
    { "server_url with credentials", { server_url = "http://u:p@127.0.0.1" }, "server_url" },
    { "server_url with a query", { server_url = "http://127.0.0.1/?a=1" }, "server_url" },
    { "server_url with CRLF", { server_url = "http://127.0.0.1/\r\n" }, "server_url" },
    { "server_url a number", { server_url = 8000 }, "server_url" },
    { "bearer a number", { server_url = SERVER_DEFAULT, bearer = 42 }, "bearer" },
    { "bearer with NUL", { server_url = SERVER_DEFAULT, bearer = "ab\0c" }, "bearer" },
    { "timeout_ms negative", { server_url = SERVER_DEFAULT, timeout_ms = -5 }, "timeout_ms" },
    { "connect_timeout_ms a string", { server_url = SERVER_DEFAULT, connect_timeout_ms = "10" }, "connect_timeout_ms" },
    { "max_response_bytes zero", { server_url = SERVER_DEFAULT, max_response_bytes = 0 }, "max_response_bytes" },
    { "http_headers a list", { server_url = SERVER_DEFAULT, http_headers = { "X-A: 1" } }, "http_headers" },
    { "http_headers value a number", { server_url = SERVER_DEFAULT, http_headers = { ["X-A"] = 1 } }, "http_headers" },
    { "http_headers sets X-Org", { server_url = SERVER_DEFAULT, http_headers = { ["X-Org"] = "acme" } }, "http_headers" },
    { "user_agent with LF", { server_url = SERVER_DEFAULT, user_agent = "a\nb" }, "user_agent" },
    { "tls not a table", { server_url = SERVER_DEFAULT, tls = true }, "tls" },
    { "tls.verify a string", { server_url = SERVER_DEFAULT, tls = { verify = "no" } }, "tls.verify" },
    { "tls unknown key", { server_url = SERVER_DEFAULT, tls = { insecure = true } }, "tls.insecure" },
    { "proxy a table", { server_url = SERVER_DEFAULT, proxy = {} }, "proxy" },
    { "debug a string", { server_url = SERVER_DEFAULT, debug = "yes" }, "debug" },
    { "retries backoff unknown key", { server_url = SERVER_DEFAULT, retries = { backoff = { initial = 1 } } },
      "retries.backoff.initial" },
    { "retries unknown key", { server_url = SERVER_DEFAULT, retries = { tries = 3 } }, "retries.tries" },
  }
  for _, case in ipairs(bad_configs) do
    it("new: " .. case[1], function()
      local config = case[2]
      if type(config) == "table" and config.server_url == SERVER_DEFAULT then config.server_url = h.url end
      local err = h.error_of(tfauth.new, config)
      assert.equal("argument", err.kind)
      assert.equal("new", err.operation)
      assert.matches(case[3], err.message, 1, true)
      local err2 = h.error_of(tfauth.configure, config)
      assert.equal("configure", err2.operation)
    end)
  end

  it("names a nested unknown key by its whole path in err.field", function()
    for config, field in pairs {
      [{ tls = { verfy = true } }] = "tls.verfy",
      [{ retries = { backoff = { initial = 1 } } }] = "retries.backoff.initial",
      [{ timeout = 5 }] = "timeout",
    } do
      config.server_url = h.url
      assert.equal(field, h.error_of(tfauth.new, config).field)
    end
  end)

  it("a config value changed after new has no effect", function()
    local headers = { ["X-A"] = "1" }
    local client = h.client { http_headers = headers }
    headers["X-A"] = "1\r\nX-Injected: yes"
    client:reset_password { username = "alice" }
    assert.equal("1", h.last_request().headers["x-a"])
    assert.is_nil(h.last_request().headers["x-injected"])
  end)
end)
