-- No error value, message, body, header, debug line or printed client ever
-- holds a password, a token or the bearer used in the call, whatever the
-- server echoes back.
local cjson = require "cjson"
local tfauth = require "tfauth"
local h = require "spec.helper"

describe("secrets", function()
  local produced, secrets

  local function keep(v) for _, s in ipairs(h.strings(v)) do produced[#produced + 1] = s end end
  local function secret(s) secrets[#secrets + 1] = s; return s end
  -- The secret and every spelling of it a server may echo: JSON-escaped
  -- (with and without \/, non-ASCII as \uXXXX), percent-encoded (%20, +),
  -- HTML-escaped (named, decimal and hex references).
  local function utf16_escapes(s) -- as Python's json.dumps writes it (ensure_ascii)
    local out = {}
    for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
      local cp = ch:byte(1) % (#ch == 1 and 128 or 2 ^ (7 - #ch))
      for i = 2, #ch do cp = cp * 64 + ch:byte(i) % 64 end
      if ch == '"' or ch == "\\" then out[#out + 1] = "\\" .. ch
      elseif cp < 0x80 then out[#out + 1] = ch
      elseif cp < 0x10000 then out[#out + 1] = ("\\u%04x"):format(cp)
      else
        cp = cp - 0x10000
        out[#out + 1] = ("\\u%04x\\u%04x"):format(0xD800 + math.floor(cp / 1024), 0xDC00 + cp % 1024)
      end
    end
    return table.concat(out)
  end
  local function every_form(s)
    local function hex(c) return ("%%%02X"):format(c:byte()) end
    local html = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#x27;" }
    local forms = {
      s, (s:gsub('[\\"]', "\\%0")), cjson.encode(s):sub(2, -2), utf16_escapes(s),
      (s:gsub("[^%w%-%._~]", hex)), (s:gsub("[^%w%-%._~ ]", hex):gsub(" ", "+")),
      (s:gsub("[&<>\"']", html)), (s:gsub("[&<>\"']", function(c) return ("&#%d;"):format(c:byte()) end)),
    }
    for _, form in ipairs(forms) do secret(form) end
    return s
  end
  local function collect(f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert.is_true(tfauth.is_error(err), tostring(err))
    keep(err)
    keep(tostring(err))
  end
  local function client(config)
    config = config or {}
    config.debug = function(line) keep(line) end
    local c = h.client(config)
    keep(tostring(c))
    return c
  end

  before_each(function()
    h.reset()
    produced, secrets = {}, {}
  end)

  after_each(function()
    assert.is_true(#produced > 0)
    for _, text in ipairs(produced) do
      for _, s in ipairs(secrets) do
        assert.is_nil(text:find(s, 1, true), ("a secret leaked into: %q"):format(text))
      end
    end
  end)

  it("stay out of errors from the server's own answers", function()
    local alice_pw = secret(h.users.alice.password)
    local wrong_pw = secret("wrong-Password-777")
    local c = client()
    collect(c.login, c, { user = "alice", password = wrong_pw })
    local t = c:login { user = "alice", password = alice_pw }
    secret(t.access_token); secret(t.refresh_token); secret(t.id_token)
    c:logout { refresh_token = t.refresh_token }
    collect(c.refresh, c, { refresh_token = t.refresh_token })
    collect(c.logout, c, { refresh_token = t.refresh_token })
    local bc = client { bearer = t.access_token }
    collect(bc.change_password, bc, { x_org = "acme", current_password = alice_pw, new_password = secret("tiny") })
    collect(bc.change_password, bc, { x_org = "acme", current_password = alice_pw, new_password = secret("New-Password-8") })
  end)

  it("stay out of errors when the server echoes the request (FastAPI's input and ctx.doc)", function()
    local pw = secret("Echoed-Password-1")
    local body = cjson.encode { user = "alice", password = pw, remember_me = false }
    h.script { path = "/api/iam/login", status = 422, body = cjson.encode { detail = {
      { type = "missing", loc = { "body", "x" }, msg = "Field required", input = { user = "alice", password = pw } },
      { type = "json_invalid", loc = { "body", 1 }, msg = "JSON decode error", ctx = { error = "x", doc = body } },
      { type = "string_too_short", loc = { "body", "password" }, msg = "value " .. pw .. " is too short", input = pw },
    } } }
    local c = client()
    collect(c.login, c, { user = "alice", password = pw })
  end)

  -- bench/../spec/backend/backend.py's `echo`: the server spells the field
  -- of the request it got into its answer.
  local ALL = "{raw} | {json} | {json_ascii} | {percent} | {form} | {html}"

  it("stay out of errors in every form a server echoes them: escaped, encoded, as HTML", function()
    local pw = every_form("Pa ss<w\195\182rd>&\"'/+%-9\240\159\152\128")
    local c = client()
    h.script { path = "/api/iam/login", status = 401, echo = "password", echo_in = "detail",
      body = "wrong password " .. ALL }
    collect(c.login, c, { user = "alice", password = pw })
    h.script { path = "/api/iam/login", status = 400, echo = "password", content_type = "text/html",
      body = "<html><body><p>Bad password: " .. ALL .. "</p></body></html>" }
    collect(c.login, c, { user = "alice", password = pw })
    h.script { path = "/api/iam/login", status = 400, echo = "password",
      body = '{"error":"invalid_grant","error_description":"{json} ({json_ascii})"}' }
    collect(c.login, c, { user = "alice", password = pw })
    local t = h.login("alice")
    every_form(t.refresh_token)
    h.script { path = "/api/iam/refresh", status = 400, echo = "refresh_token", echo_in = "detail",
      body = "refresh token " .. ALL .. " is not active" }
    collect(c.refresh, c, { refresh_token = t.refresh_token })
  end)

  it("leave the API's text out of every field when a secret is shorter than 8 characters", function()
    local pw = every_form("P<w\"1&")
    local c = client()
    h.script { path = "/api/iam/login", status = 401, echo = "password", echo_in = "detail",
      body = "wrong password " .. ALL }
    local ok, err = pcall(c.login, c, { user = "alice", password = pw })
    assert.is_false(ok)
    keep(err)
    keep(tostring(err))
    assert.equal(401, err.status)
    assert.matches("withheld", err.message)
    for _, field in ipairs { "body", "json", "detail", "error", "error_description" } do
      assert.is_nil(err[field], field)
    end
    collect(c.login, c, { user = "alice", password = secret("abc") })
  end)

  it("stay out of errors when a server echoes tokens in body, detail or headers", function()
    local t = h.login("alice")
    secret(t.access_token); secret(t.refresh_token)
    local bc = client { bearer = t.access_token }
    h.script { path = "/api/iam/password/change", status = 401,
      body = cjson.encode { detail = "token " .. t.access_token .. " rejected" },
      headers = { ["X-Echo-Authorization"] = "Bearer " .. t.access_token, Authorization = "Bearer " .. t.access_token } }
    collect(bc.change_password, bc, { x_org = "acme", current_password = "current-pw-1", new_password = "New-Password-8" })
    h.script { path = "/api/iam/refresh", status = 500, content_type = "text/plain",
      body = "internal error while refreshing " .. t.refresh_token }
    collect(bc.refresh, bc, { refresh_token = t.refresh_token })
  end)

  it("stay out of response errors for token bodies that break the contract", function()
    local t = h.login("alice")
    secret(t.access_token); secret(t.refresh_token); secret(t.id_token)
    local broken = {}
    for k, v in pairs(t) do broken[k] = v end
    broken.scope, broken.expires_at, broken.refresh_expires_at = nil, nil, nil
    h.script { path = "/api/iam/login", status = 200, body = cjson.encode(broken) }
    local c = client()
    collect(c.login, c, { user = "alice", password = secret(h.users.alice.password) })
    h.script { path = "/api/iam/login", status = 200, body = cjson.encode(t):sub(1, -20) }
    collect(c.login, c, { user = "alice", password = h.users.alice.password })
    h.script { path = "/api/iam/login", status = 200, body = cjson.encode(t) }
    local small = client { max_response_bytes = 600 }
    collect(small.login, small, { user = "alice", password = h.users.alice.password })
  end)

  it("stay out of argument, transport and bearer-function errors", function()
    local bearer = secret("eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWJlYXJlcg.sig-value")
    local pw = secret("Transport-Password-1")
    local c = client { bearer = function() error("cannot read " .. bearer) end }
    collect(c.change_password, c, { x_org = "acme", current_password = pw, new_password = "New-Password-8" })
    c = client { bearer = function() return bearer .. "\n" end }
    collect(c.change_password, c, { x_org = "acme", current_password = pw, new_password = "New-Password-8" })
    c = client { server_url = h.closed_url, bearer = bearer }
    collect(c.change_password, c, { x_org = "acme", current_password = pw, new_password = "New-Password-8" })
    collect(c.login, c, { user = "alice", password = pw .. "\255" })
    h.script { path = "/api/iam/login", delay_ms = 2000, body = "{}" }
    c = client { timeout_ms = 200 }
    collect(c.login, c, { user = "alice", password = pw })
  end)

  it("stay out of retries, TLS failures, dropped connections and redirects", function()
    local t = h.login("alice")
    secret(t.access_token); secret(t.refresh_token)
    local pw = secret("Retry-Password-42")
    local params = { x_org = "acme", current_password = pw, new_password = secret("Retry-New-Password-42") }
    h.script { path = "/api/iam/password/change", status = 503, times = 3,
      body = cjson.encode { detail = "overloaded while handling " .. pw } }
    local c = client { bearer = t.access_token,
      retries = { strategy = "backoff", backoff = { initial_interval = 5, max_interval = 10, max_elapsed_time = 100 } } }
    collect(c.change_password, c, params)
    c = client { server_url = os.getenv("TFAUTH_TEST_TLS_URL"), bearer = t.access_token }
    collect(c.change_password, c, params)
    c = client { server_url = os.getenv("TFAUTH_TEST_MTLS_URL"), bearer = t.access_token,
      tls = { ca_file = os.getenv("TFAUTH_TEST_CERTS") .. "/ca.pem" } }
    collect(c.change_password, c, params)
    h.script { path = "/api/iam/refresh", close_after_bytes = 5, body = cjson.encode(t) }
    c = client()
    collect(c.refresh, c, { refresh_token = t.refresh_token })
    h.script { path = "/api/iam/logout", status = 302, body = "",
      headers = { Location = os.getenv("TFAUTH_TEST_OTHER_URL") .. "/sso?token=" .. t.refresh_token } }
    collect(c.logout, c, { refresh_token = t.refresh_token })
  end)
end)

