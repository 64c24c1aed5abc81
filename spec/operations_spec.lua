-- The six operations against the reference backend: what comes back, and
-- what the server received.
local cjson = require "cjson"
local tfauth = require "tfauth"
local h = require "spec.helper"

local function header(req, name) return req.headers[name] end

describe("operations", function()
  before_each(h.reset)

  describe("login", function()
    it("returns a TokenOpenID with absolute expiry times", function()
      local before = os.time()
      local t = h.login("alice")
      assert.is_string(t.access_token)
      assert.is_string(t.refresh_token)
      assert.equal(300, t.expires_in)
      assert.equal(1800, t.refresh_expires_in)
      assert.equal("openid email profile", t.scope)
      assert.equal("Bearer", t.token_type)
      assert.is_string(t.session_state)
      assert.is_string(t.id_token)
      assert.equal(0, t["not-before-policy"])
      assert.is_true(t.expires_at >= before + 300 and t.expires_at <= os.time() + 300)
      assert.is_true(t.refresh_expires_at >= before + 1800 and t.refresh_expires_at <= os.time() + 1800)
    end)

    it("POSTs the credentials as JSON with the contract's default remember_me", function()
      h.client({ bearer = "unused-bearer-token" }):login { user = "alice", password = h.users.alice.password }
      local req, count = h.last_request()
      assert.equal(1, count)
      assert.equal("POST", req.method)
      assert.equal("/api/iam/login", req.path)
      assert.equal("application/json", header(req, "content-type"))
      assert.equal("application/json", header(req, "accept"))
      assert.matches("^tfauth/%d+%.%d+%.%d+ libcurl/%S+ Lua", header(req, "user-agent"))
      assert.is_nil(header(req, "authorization"), "login must not send the bearer")
      assert.same({ user = "alice", password = h.users.alice.password, remember_me = false },
        cjson.decode(req.body))
    end)

    it("sends remember_me when given", function()
      h.client():login { user = "alice", password = h.users.alice.password, remember_me = true }
      assert.is_true(cjson.decode(h.last_request().body).remember_me)
    end)

    it("is also reachable by the Python SDK's operation name, on clients and the module", function()
      local t = h.client():login_user_api_iam_login_post { user = "bob", password = h.users.bob.password }
      assert.is_string(t.access_token)
      tfauth.configure { server_url = h.url }
      t = tfauth.login_user_api_iam_login_post { user = "bob", password = h.users.bob.password }
      assert.is_string(t.access_token)
      assert.equal(2, #h.requests())
    end)
  end)

  describe("refresh", function()
    it("rotates the token pair, and the old refresh token is refused", function()
      local client = h.client()
      local first = h.login("alice", client)
      local second = client:refresh { refresh_token = first.refresh_token }
      assert.are_not.equal(first.refresh_token, second.refresh_token)
      assert.are_not.equal(first.access_token, second.access_token)
      assert.equal("/api/iam/refresh", h.last_request().path)
      assert.same({ refresh_token = first.refresh_token }, cjson.decode(h.last_request().body))
      local err = h.error_of(client.refresh, client, { refresh_token = first.refresh_token })
      assert.equal("http", err.kind)
      assert.equal(400, err.status)
      assert.equal("invalid_grant", err.error)
      assert.matches("not active", err.error_description)
    end)

    it("refuses an expired refresh token with invalid_grant", function()
      h.configure_server { refresh_ttl = 0 } -- exp = iat: expired from the next second on
      os.execute("sleep 1")
      local client = h.client()
      local t = h.login("alice", client)
      local err = h.error_of(client.refresh, client, { refresh_token = t.refresh_token })
      assert.equal(400, err.status)
      assert.equal("invalid_grant", err.error)
      assert.equal("Token is not active", err.error_description)
    end)

    it("works through the SDK name and the module default client", function()
      tfauth.configure { server_url = h.url }
      local t = tfauth.login { user = "alice", password = h.users.alice.password }
      t = tfauth.refresh_token_api_iam_refresh_post { refresh_token = t.refresh_token }
      assert.is_string(t.access_token)
    end)
  end)

  describe("a client", function()
    it("keeps its connection alive between calls; another client has its own", function()
      local a, b = h.client(), h.client()
      a:reset_password { username = "alice" }
      h.login("alice", a)
      a:reset_password { username = "alice" }
      b:reset_password { username = "alice" }
      local reqs = h.requests()
      assert.equal(reqs[1].client_port, reqs[2].client_port)
      assert.equal(reqs[1].client_port, reqs[3].client_port)
      assert.are_not.equal(reqs[1].client_port, reqs[4].client_port)
    end)
  end)

  describe("logout", function()
    it("returns the OK object and revokes the session", function()
      local client = h.client()
      local t = h.login("alice", client)
      local ok = client:logout { refresh_token = t.refresh_token }
      assert.same({}, ok)
      assert.equal("/api/iam/logout", h.last_request().path)
      local err = h.error_of(client.refresh, client, { refresh_token = t.refresh_token })
      assert.equal(400, err.status)
      assert.equal("invalid_grant", err.error)
    end)
  end)

  describe("reset_password", function()
    it("sends the username as a percent-encoded query value, with no body", function()
      local client = h.client()
      assert.same({}, client:reset_password { username = "alice" })
      local req = h.last_request()
      assert.equal("/api/iam/password/reset", req.path)
      assert.equal("username=alice", req.query)
      assert.equal("", req.body)
      assert.equal("0", header(req, "content-length"))
      assert.same({ "alice" }, h.resets())

      local err = h.error_of(client.reset_password, client, { username = "ann marie+1@x/y?z" })
      assert.equal(404, err.status)
      assert.equal("username=ann%20marie%2B1%40x%2Fy%3Fz", h.last_request().query)
    end)
  end)

  describe("change_password", function()
    it("sends the bearer, X-Org and the JSON body; the new password then works", function()
      local t = h.login("alice")
      local client = h.client { bearer = t.access_token }
      assert.same({}, client:change_password {
        x_org = "acme", current_password = h.users.alice.password, new_password = "alice-New-Secret-9",
      })
      local req = h.last_request()
      assert.equal("/api/iam/password/change", req.path)
      assert.equal("Bearer " .. t.access_token, header(req, "authorization"))
      assert.equal("acme", header(req, "x-org"))
      assert.is_nil(header(req, "x-org-override"))
      assert.same({ current_password = h.users.alice.password, new_password = "alice-New-Secret-9" },
        cjson.decode(req.body))
      assert.is_string(client:login { user = "alice", password = "alice-New-Secret-9" }.access_token)
      local err = h.error_of(client.login, client, { user = "alice", password = h.users.alice.password })
      assert.equal(401, err.status)
    end)

    it("sends X-Org-Override when given", function()
      local t = h.login("alice")
      h.client({ bearer = t.access_token }):change_password {
        x_org = "acme", x_org_override = "globex",
        current_password = h.users.alice.password, new_password = "alice-New-Secret-9",
      }
      assert.equal("globex", header(h.last_request(), "x-org-override"))
    end)

    it("calls a bearer function once per request", function()
      local calls = 0
      local t = h.login("alice")
      local client = h.client { bearer = function() calls = calls + 1; return t.access_token end }
      h.login("alice", client) -- no bearer needed: not called
      assert.equal(0, calls)
      client:change_password { x_org = "acme", current_password = h.users.alice.password, new_password = "p-1234567" }
      client:change_password { x_org = "acme", current_password = "p-1234567", new_password = "p-7654321" }
      assert.equal(2, calls)
    end)

    it("accepts a bearer given with its 'Bearer ' prefix without doubling it", function()
      local t = h.login("alice")
      h.client({ bearer = "Bearer " .. t.access_token }):change_password {
        x_org = "acme", current_password = h.users.alice.password, new_password = "alice-New-Secret-9",
      }
      assert.equal("Bearer " .. t.access_token, header(h.last_request(), "authorization"))
    end)

    it("is refused by the server for an organisation the user is not in", function()
      local t = h.login("alice")
      local client = h.client { bearer = t.access_token }
      local err = h.error_of(client.change_password, client,
        { x_org = "globex", current_password = h.users.alice.password, new_password = "alice-New-Secret-9" })
      assert.equal("http", err.kind)
      assert.equal(403, err.status)
      assert.equal("Not a member of this organisation", err.detail)
    end)
  end)

  describe("admin_change_password", function()
    it("puts user_id in the path and sends the admin's bearer; the user's new password works", function()
      local t = h.login("admin")
      local client = h.client { bearer = t.access_token }
      assert.same({}, client:admin_change_password {
        user_id = h.users.alice.id, x_org = "acme", new_password = "set-by-admin-1",
      })
      local req = h.last_request()
      assert.equal("/api/iam/admin/user/" .. h.users.alice.id .. "/password", req.path)
      assert.equal("Bearer " .. t.access_token, header(req, "authorization"))
      assert.equal("acme", header(req, "x-org"))
      assert.same({ new_password = "set-by-admin-1" }, cjson.decode(req.body))
      assert.is_string(client:login { user = "alice", password = "set-by-admin-1" }.access_token)
    end)

    it("percent-encodes user_id", function()
      local client = h.client { bearer = h.login("admin").access_token }
      local err = h.error_of(client.admin_change_password, client,
        { user_id = "no such user?#", x_org = "acme", new_password = "set-by-admin-1" })
      assert.equal(404, err.status)
      assert.equal("/api/iam/admin/user/no%20such%20user%3F%23/password", h.last_request().raw_path)
    end)

    it("is refused for a user without the admin role, under both names", function()
      local client = h.client { bearer = h.login("alice").access_token }
      for _, name in ipairs { "admin_change_password",
        "admin_change_user_password_api_iam_admin_user_user_id_password_post",
        "admin_change_user_password_api_iam_admin_user__user_id__password_post" } do
        local err = h.error_of(client[name], client,
          { user_id = h.users.bob.id, x_org = "acme", new_password = "set-by-admin-1" })
        assert.equal(403, err.status)
        assert.equal("admin_change_password", err.operation)
      end
    end)
  end)

  describe("per-call overrides", function()
    it("merge http_headers over the client's", function()
      local client = h.client { http_headers = { ["X-Request-Id"] = "client-id", ["X-Tenant"] = "t1" } }
      client:reset_password({ username = "alice" }, { http_headers = { ["x-request-id"] = "call-id" } })
      local req = h.last_request()
      assert.equal("call-id", header(req, "x-request-id"))
      assert.equal("t1", header(req, "x-tenant"))
      local names = 0
      for _, pair in ipairs(req.header_list) do
        if pair[1] == "x-request-id" then names = names + 1 end
      end
      assert.equal(1, names)
      client:reset_password { username = "alice" }
      assert.equal("client-id", header(h.last_request(), "x-request-id"))
    end)

    it("send to another server_url for one call only", function()
      local client = h.client()
      local err = h.error_of(client.reset_password, client, { username = "alice" }, { server_url = h.closed_url })
      assert.equal("network", err.kind)
      assert.same({}, client:reset_password { username = "alice" })
    end)

    it("accept a server_url with a path prefix and trailing slash", function()
      local client = h.client { server_url = h.url .. "/" }
      assert.same({}, client:reset_password { username = "alice" })
      assert.equal("/api/iam/password/reset", h.last_request().path)
    end)
  end)
end)
