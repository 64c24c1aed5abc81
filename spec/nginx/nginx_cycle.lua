-- Test endpoints inside nginx: run tfauth through a chosen transport and
-- report, as JSON, what a caller sees (results' shapes, errors' fields).
local tfauth = require "tfauth"
local json = require("cjson").new()

local M = {}

local function backend() return ngx.var.arg_backend end

local function client()
  return tfauth.new { server_url = backend(), transport = ngx.var.arg_transport or "auto" }
end

-- An error, or a result's shape (secrets left out: they differ per call).
local function describe(ok, value)
  if ok then
    local shape = {}
    for k, v in pairs(value) do shape[k] = type(v) end
    return { ok = true, shape = shape, token_type = value.token_type, state = value.state }
  end
  if not tfauth.is_error(value) then return { raw = tostring(value) } end
  return {
    kind = value.kind, message = value.message, operation = value.operation, status = value.status,
    error = value.error, error_description = value.error_description, detail = value.detail,
    field = value.field, retryable = value.retryable, attempts = value.attempts,
    content_type = value.headers and value.headers["content-type"],
  }
end

function M.cycle()
  local c = client()
  local out = { transport = tostring(c) }
  local ok, t = pcall(c.login, c, { user = "alice", password = "alice-Secret-1" })
  out.login = describe(ok, t)
  local ok2, t2 = pcall(c.refresh, c, { refresh_token = t.refresh_token })
  out.refresh = describe(ok2, t2)
  out.reuse = describe(pcall(c.refresh, c, { refresh_token = t.refresh_token }))
  out.logout = describe(pcall(c.logout, c, { refresh_token = t2.refresh_token }))
  out.after_logout = describe(pcall(c.refresh, c, { refresh_token = t2.refresh_token }))
  out.wrong_password = describe(pcall(c.login, c, { user = "alice", password = "wrong-password-1" }))
  out.missing = describe(pcall(c.login, c, { user = "alice" }))
  local fresh = c:login { user = "alice", password = "alice-Secret-1" }
  local authed = tfauth.new { server_url = backend(), transport = ngx.var.arg_transport, bearer = fresh.access_token }
  out.validation = describe(pcall(authed.change_password, authed,
    { x_org = "acme", current_password = "x", new_password = "short" }))
  out.session = describe(pcall(function()
    local s = c:session { user = "bob", password = "bob-Secret-2" }
    s:refresh()
    s:logout()
    return { state = s.state }
  end))
  local gone = tfauth.new { server_url = "http://127.0.0.1:1", transport = ngx.var.arg_transport }
  out.refused = describe(pcall(gone.login, gone, { user = "alice", password = "x" }))
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode(out))
end

-- One login against ?url= through ?transport= (libcurl trusting ?ca=, a
-- file, when given): what the caller sees, as JSON.
function M.try()
  local config = { server_url = ngx.var.arg_url, transport = ngx.var.arg_transport }
  if ngx.var.arg_ca then config.tls = { ca_file = ngx.unescape_uri(ngx.var.arg_ca) } end
  local c = tfauth.new(config)
  local out = describe(pcall(c.login, c, { user = "alice", password = "alice-Secret-1" }))
  out.transport = tostring(c)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode(out))
end

function M.login()
  local c = client()
  local ok, t = pcall(c.login, c, { user = "alice", password = "alice-Secret-1" })
  ngx.say(ok and "logged in" or tostring(t))
end

return M
