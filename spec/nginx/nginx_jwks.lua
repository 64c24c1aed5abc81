-- Test endpoints inside nginx for tfauth.jwks: one jwks per worker and test
-- id (made at first use from the query), verifying the request's bearer.
local jwks = require "tfauth.jwks"
local json = require("cjson").new()

local M = {}
local objects, fetches = {}, {}

local function jwks_of(args)
  local id = args.id
  if not objects[id] then
    fetches[id] = { ok = 0, failed = 0 }
    objects[id] = jwks.new {
      url = args.url, issuer = args.issuer, shared_dict = args.dict,
      min_refresh_interval = tonumber(args.mri), ttl = tonumber(args.ttl),
      on_fetch = function(result) fetches[id][result] = fetches[id][result] + 1 end,
    }
  end
  return objects[id], fetches[id]
end

local function reply(t)
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode(t))
end

--- Verifies Authorization: Bearer; answers what a caller saw.
function M.verify()
  local args = ngx.req.get_uri_args()
  local keys, counts = jwks_of(args)
  local token = (ngx.var.http_authorization or ""):match("^Bearer (.+)$") or ""
  local started = ngx.now()
  local ok, claims = pcall(keys.verify, keys, token, { issuer = args.iss, audience = "fndtn-api" })
  ngx.update_time()
  local out = { worker = ngx.worker.pid(), fetches = counts, seconds = ngx.now() - started }
  if ok then
    out.user = claims.preferred_username
  else
    out.kind, out.reason, out.message = claims.kind, claims.reason, claims.message
  end
  reply(out)
end

--- Fetches the set from a timer (outside request phases: libcurl); the
-- outcome is kept in the shared dict for /t/jwks/timer_result.
function M.timer()
  local args = ngx.req.get_uri_args()
  local keys = jwks_of(args)
  local dict = ngx.shared[args.dict or "tfauth_sessions"]
  ngx.timer.at(0, function()
    local ok, err = pcall(keys.keyset, keys)
    dict:set("timer:" .. args.id, ok and "ok" or tostring(err))
  end)
  reply { started = true }
end

function M.timer_result()
  local args = ngx.req.get_uri_args()
  reply { result = ngx.shared[args.dict or "tfauth_sessions"]:get("timer:" .. args.id) }
end

return M
