-- The module's shape and the client's life: names, defaults, environment,
-- close, tostring, debug lines, and lua-cjson left as the host set it.
local tfauth = require "tfauth"
local safe = require "tfauth.safe"
local h = require "spec.helper"

local LUA = os.getenv("TFAUTH_TEST_LUA") or "lua5.4"
local SHORT = { "login", "refresh", "logout", "reset_password", "change_password", "admin_change_password" }
local LONG = {
  login = "login_user_api_iam_login_post",
  refresh = "refresh_token_api_iam_refresh_post",
  logout = "logout_user_api_iam_logout_post",
  reset_password = "reset_password_api_iam_password_reset_post",
  change_password = "change_password_api_iam_password_change_post",
  admin_change_password = "admin_change_user_password_api_iam_admin_user_user_id_password_post",
}

-- Runs a Lua chunk in a fresh interpreter with the given environment
-- changes; returns its output.
local function run_lua(code, env)
  local prefix = "env"
  for k, v in pairs(env or {}) do
    prefix = prefix .. (v == false and (" -u " .. k) or (" " .. k .. "='" .. v .. "'"))
  end
  local name = os.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen(prefix .. " " .. LUA .. " " .. name .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  os.remove(name)
  return out
end

describe("module", function()
  before_each(h.reset)

  it("has each operation under its short and its SDK name, on the module, clients and tfauth.safe", function()
    local client = h.client()
    for _, name in ipairs(SHORT) do
      for _, n in ipairs { name, LONG[name] } do
        assert.is_function(tfauth[n], n)
        assert.is_function(safe[n], n)
        assert.is_function(client[n], n)
      end
      assert.equal(name, tfauth.operations[LONG[name]])
    end
    for _, f in ipairs { "new", "configure", "is_error" } do
      assert.is_function(tfauth[f])
      assert.is_function(safe[f])
    end
    assert.is_table(tfauth.Error)
    assert.matches("^%d+%.%d+%.%d+$", tfauth.version)
  end)

  it("default client: reads TOANFNDTN_SERVER_URL and TOANFNDTN_BEARER at first use", function()
    local t = h.login("alice")
    local out = run_lua([[
      local tfauth = require "tfauth"
      local ok = tfauth.change_password { x_org = "acme", current_password = "alice-Secret-1",
                                          new_password = "from-env-123" }
      print(next(ok) == nil and "changed")
    ]], { TOANFNDTN_SERVER_URL = h.url, TOANFNDTN_BEARER = t.access_token })
    assert.equal("changed\n", out)
    assert.equal("Bearer " .. t.access_token, h.last_request().headers.authorization)
  end)

  it("default client: without configure or environment, names server_url", function()
    local out = run_lua([[
      local tfauth = require "tfauth"
      local ok, err = pcall(tfauth.login, { user = "a", password = "b" })
      print(err.kind, err.field)
    ]], { TOANFNDTN_SERVER_URL = false })
    assert.equal("argument\tserver_url\n", out)
  end)

  it("configure replaces the default client and closes the previous one", function()
    local first = tfauth.configure { server_url = h.closed_url }
    assert.equal("network", h.error_of(tfauth.reset_password, { username = "alice" }).kind)
    local second = tfauth.configure { server_url = h.url }
    assert.same({}, tfauth.reset_password { username = "alice" })
    assert.is_false(first:is_open())
    assert.is_true(second:is_open())
  end)

  it("new{} falls back to TOANFNDTN_SERVER_URL", function()
    local out = run_lua([[
      local c = require("tfauth").new{}
      print(next(c:reset_password{ username = "alice" }) == nil)
    ]], { TOANFNDTN_SERVER_URL = h.url })
    assert.equal("true\n", out)
  end)

  it("leaves the host's cjson settings alone", function()
    local out = run_lua([=[
      local cjson = require "cjson"
      cjson.decode_max_depth(2)
      local tfauth = require "tfauth"
      local c = tfauth.new { server_url = os.getenv("TOANFNDTN_SERVER_URL"),
                             bearer = "not.a-valid-token" }
      local ok, err = pcall(c.change_password, c, { x_org = "acme", current_password = "x-Password-1",
                                                    new_password = "new-Password-1" })
      print(err.status, type(err.json), cjson.decode_max_depth(), pcall(cjson.decode, '[[[1]]]'))
    ]=], { TOANFNDTN_SERVER_URL = h.url })
    assert.matches("^401\ttable\t2\tfalse", out)
  end)
end)

describe("client", function()
  before_each(h.reset)

  it("close is idempotent; a closed client refuses calls with an argument error", function()
    local client = h.client()
    assert.is_true(client:is_open())
    client:close()
    client:close()
    assert.is_false(client:is_open())
    local err = h.error_of(client.login, client, { user = "a", password = "b" })
    assert.equal("argument", err.kind)
    assert.matches("closed", err.message)
    assert.equal(0, #h.requests())
  end)

  it("closes through __close at the end of its scope (Lua 5.4)", function()
    if _VERSION ~= "Lua 5.4" then return pending("to-be-closed variables are Lua 5.4") end
    local chunk = assert(load([[
      local h = ...
      local kept
      do
        local client <close> = h.client()
        kept = client
        client:reset_password { username = "alice" }
      end
      return kept
    ]]))
    local client = chunk(h)
    assert.is_false(client:is_open())
    assert.matches("closed", tostring(client))
  end)

  it("is collected without being closed", function()
    for _ = 1, 50 do h.client():reset_password { username = "alice" } end
    collectgarbage()
    collectgarbage()
    assert.equal(50, #h.requests())
  end)

  it("prints its server but never its bearer", function()
    local client = h.client { bearer = "secret-bearer-token" }
    assert.equal("tfauth.client (" .. h.url .. ")", tostring(client))
    assert.matches("^tfauth.safe.client", tostring(safe.new { server_url = h.url, bearer = "x" }))
  end)

  it("sends its user_agent and http_headers", function()
    h.client({ user_agent = "my-app/2.0", http_headers = { ["X-Request-Id"] = "r-1" } })
      :reset_password { username = "alice" }
    local req = h.last_request()
    assert.equal("my-app/2.0", req.headers["user-agent"])
    assert.equal("r-1", req.headers["x-request-id"])
  end)

  it("gives the debug function a line per request and per response, without secrets", function()
    local lines = {}
    local client = h.client { debug = function(line) lines[#lines + 1] = line end }
    local t = h.login("alice", client)
    pcall(client.login, client, { user = "alice", password = "wrong-password-1" })
    assert.equal(4, #lines)
    assert.matches("-> login: POST " .. h.url:gsub("%p", "%%%0") .. "/api/iam/login", lines[1])
    assert.matches("<- login: 200 in [%d.]+ ms, %d+ bytes", lines[2])
    assert.matches("<- login: http 401: Invalid user credentials", lines[4])
    for _, line in ipairs(lines) do
      assert.is_nil(line:find("alice-Secret-1", 1, true))
      assert.is_nil(line:find("wrong-password-1", 1, true))
      assert.is_nil(line:find(t.access_token, 1, true))
    end
  end)

  it("is unaffected by a debug function that raises", function()
    local client = h.client { debug = function() error("debug sink broke") end }
    assert.is_string(h.login("alice", client).access_token)
  end)

  it("is independent of other clients", function()
    local a = h.client { http_headers = { ["X-Who"] = "a" } }
    local b = h.client { http_headers = { ["X-Who"] = "b" } }
    a:reset_password { username = "alice" }
    b:reset_password { username = "alice" }
    a:close()
    b:reset_password { username = "alice" }
    local reqs = h.requests()
    assert.same({ "a", "b", "b" }, { reqs[1].headers["x-who"], reqs[2].headers["x-who"], reqs[3].headers["x-who"] })
  end)
end)
