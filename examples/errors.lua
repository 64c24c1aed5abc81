-- errors.lua: handling failures with tfauth.safe (nil, err instead of raising).
-- Every failure is a tfauth.Error: look at err.kind, then at the fields that
-- kind carries. No error ever holds a password or a token.
--
--   TOANFNDTN_SERVER_URL=http://127.0.0.1:8000 lua5.4 examples/errors.lua
local safe = require "tfauth.safe"

local server = os.getenv("TOANFNDTN_SERVER_URL") or "http://127.0.0.1:8000"
local client = assert(safe.new { server_url = server })

local function explain(what, result, err)
  if result then return print(("%-38s ok"):format(what)) end
  local line = ("%-38s %-10s %s"):format(what, err.kind, err.message)
  if err.kind == "argument" then
    line = line .. (" [field %s; nothing was sent]"):format(err.field)
  elseif err.kind == "validation" and err.detail then -- withheld when a secret sent is under 8 characters
    line = line .. (" [%d problem(s); first at %s]"):format(#err.detail, table.concat(err.detail[1].loc, "."))
  elseif err.kind == "http" then
    line = line .. (" [status %d%s]"):format(err.status, err.error and (", " .. err.error) or "")
  elseif err.kind == "timeout" or err.kind == "network" or err.kind == "tls" then
    line = line .. (" [curl %d; retryable: %s]"):format(err.curl_code, tostring(err.retryable))
  end
  print(line)
end

explain("login with a wrong password", client:login { user = "alice", password = "not-the-password" })
explain("login without a password", client:login { user = "alice" })
explain("refresh with a token never issued", client:refresh { refresh_token = "not-a-refresh-token" })
explain("reset_password for nobody", client:reset_password { username = "nobody" })

local tokens = assert(client:login { user = "alice", password = os.getenv("TFAUTH_DEMO_PASSWORD") or "alice-Secret-1" })
local authed = assert(safe.new { server_url = server, bearer = tokens.access_token })
explain("change_password: too short", authed:change_password {
  x_org = "acme", current_password = "whatever", new_password = "short" })
explain("change_password: not my organisation", authed:change_password {
  x_org = "globex", current_password = "whatever", new_password = "long-enough-1" })

local nowhere = assert(safe.new { server_url = "http://127.0.0.1:1", timeout_ms = 2000 })
explain("a server that is not there", nowhere:login { user = "alice", password = "x" })
explain("a bad configuration", safe.new { server_url = "ftp://example.com" })

-- With retries (the Python SDK's RetryConfig), the error says how many attempts were made.
local patient = assert(safe.new { server_url = "http://127.0.0.1:1", retries = {
  strategy = "backoff", retry_connection_errors = true,
  backoff = { initial_interval = 50, max_interval = 100, max_elapsed_time = 300 } } })
local _, err = patient:login { user = "alice", password = "x" }
print(("%-38s %-10s after %d attempts"):format("the same, with retries", err.kind, err.attempts))
authed:logout { refresh_token = tokens.refresh_token }
