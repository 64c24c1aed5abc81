--- How the gate answers: JSON with a status, the security headers of its
-- pages, `WWW-Authenticate`, and the refusals of guard and auth_request.
-- @module tfauth.gate.answers
local json = require("cjson").new()
local request = require "tfauth.gate.request"
local pages = require "tfauth.gate.pages"

local answers = {}

--- Marks the answer as not to be stored by any cache.
function answers.no_store()
  ngx.header["Cache-Control"] = "no-store"
end
local no_store = answers.no_store

-- A table that makes each value on first use, by make(key): for what
-- depends only on one of the gate's fixed codes. A refusal is the common
-- answer of a guarded API, and none of its parts varies.
local function made_once(make)
  return setmetatable({}, { __index = function(made, key)
    made[key] = make(key)
    return made[key]
  end })
end

local ERROR_BODIES = made_once(function(code) return json.encode { error = code } end)

local function send(status, text)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.header["Content-Length"] = #text -- one buffer, not chunks
  no_store()
  ngx.print(text)
  return ngx.exit(ngx.HTTP_OK)
end

--- Sends a JSON answer and ends the request.
function answers.reply(status, body)
  return send(status, json.encode(body))
end

--- Sends `{"error": code}` (code: one of the gate's fixed codes) and ends the request.
function answers.reply_error(status, code)
  return send(status, ERROR_BODIES[code])
end
local reply_error = answers.reply_error

--- 503 `{"error": "unavailable"}` with `Retry-After`, or the 503 page for a
-- browser's navigation (given the state); `what` and `err` in the error log.
function answers.unavailable(what, err, state)
  ngx.log(ngx.ERR, "tfauth: ", what, " unavailable: ", tostring(err))
  if state and request.from_browser(true) then return pages.unavailable(state) end
  ngx.header["Retry-After"] = tostring(pages.RETRY_AFTER)
  return reply_error(503, "unavailable")
end

--- 500 for a location whose configuration is wrong: the error page for a
-- browser's navigation, else `{"error": "misconfigured"}` (never nginx's bare page).
-- for_auth_request: in auth_request's subrequest.
function answers.misconfigured(state, for_auth_request)
  if request.from_browser(true, for_auth_request) then return pages.error(state) end
  return reply_error(500, "misconfigured")
end

--- 403 for a signed-in user the rules refuse (`who`: their identity): the
-- 403 page for a browser's navigation, else `{"error": detail}` (and
-- `WWW-Authenticate` for insufficient_scope).
function answers.forbidden(state, detail, who)
  if detail == "insufficient_scope" then
    if request.from_browser(true) then return pages.forbidden(state, who) end
    answers.www_authenticate("insufficient_scope")
  end
  return reply_error(403, detail)
end

local CHALLENGES = made_once(function(code)
  return code and 'Bearer realm="tfauth", error="' .. code .. '"' or 'Bearer realm="tfauth"'
end)

--- Sets `WWW-Authenticate: Bearer realm="tfauth"`, with an error code (one
-- of the gate's fixed codes) if given.
function answers.www_authenticate(error_code)
  ngx.header["WWW-Authenticate"] = CHALLENGES[error_code or false]
end

--- What the sign-in URL carries when the request had the gate's cookie
-- twice: the page then tells the user to clear this site's cookies.
answers.DUPLICATE_FLAG = "cookies=duplicate"

--- 302 to the sign-in page, carrying where the browser was going (and
-- the duplicate-cookie flag when detail is "duplicate_cookie").
function answers.to_signin(state, detail)
  no_store()
  local flag = detail == "duplicate_cookie" and "&" .. answers.DUPLICATE_FLAG or ""
  return ngx.redirect(state.login_url .. state.login_sep .. "rd=" .. ngx.escape_uri(ngx.var.request_uri) .. flag, 302)
end

--- The answer to a request the gate did not let through: result
-- ("unauthenticated", "forbidden", "unavailable"), its detail (an error
-- code, or what was unavailable), and why (for the log; for forbidden, the
-- identity refused). The subrequest of auth_request answers JSON: nginx
-- shows its own page for it unless `error_page` names gate.signin() / gate.forbidden().
function answers.refusal(state, result, detail, why, for_auth_request)
  if result == "unavailable" then return answers.unavailable(detail, why, not for_auth_request and state or nil) end
  if result == "forbidden" then
    if for_auth_request then
      if detail == "insufficient_scope" then answers.www_authenticate("insufficient_scope") end
      return reply_error(403, detail)
    end
    return answers.forbidden(state, detail, why)
  end
  if not for_auth_request and request.from_browser() then return answers.to_signin(state, detail) end
  if detail == "duplicate_cookie" then detail = nil end -- not an RFC 6750 error code
  answers.www_authenticate(detail)
  return reply_error(401, detail or "unauthenticated")
end

--- The refusal of a request whose path holds a dot segment
-- (request.has_dot_segment): 400 `{"error": "invalid_request"}`; 403 for
-- auth_request (nginx turns a subrequest's 400 into 500).
function answers.dot_segment(for_auth_request)
  return reply_error(for_auth_request and 403 or 400, "invalid_request")
end

--- 405 with the methods allowed.
function answers.method_not_allowed(allow)
  ngx.header["Allow"] = allow
  return reply_error(405, "method_not_allowed")
end

return answers
