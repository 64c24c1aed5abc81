--- The account's own locations: sign in and sign out.
-- @module tfauth.gate.account
local tfauth = require "tfauth"
local request = require "tfauth.gate.request"
local answers = require "tfauth.gate.answers"
local pages = require "tfauth.gate.pages"
local metrics = require "tfauth.gate.metrics"
local sessions = require "tfauth.gate.sessions"

local account = {}

-- A sign-in without a user or password failed like a wrong one: 401.
local LOGIN_STATUS = { invalid = 401, missing = 401, unavailable = 503, cross_site = 403, disabled = 403,
  too_many = 429 }
local LOGIN_ERROR = { invalid = "invalid_credentials", missing = "invalid_request", unavailable = "unavailable",
  cross_site = "cross_site_request", disabled = "account_disabled", too_many = "too_many_requests" }
local TOO_MANY_WAIT = 30 -- seconds to wait after the auth API's 429 without a Retry-After

--- Expires the gate's cookie (same name, Path, Domain and attributes).
function account.expire_cookie(state)
  local cookie = state.cookie
  ngx.header["Set-Cookie"] = cookie.name .. "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" .. cookie.attributes
end

local function set_cookie(state, sid)
  ngx.header["Set-Cookie"] = state.cookie.name .. "=" .. sid .. state.cookie.attributes
end

-- What the auth API's answer to a login means (issue 18): only 401 and 403
-- say the credentials are wrong; 400 is Keycloak's invalid_grant for an
-- account that cannot sign in now (disabled, a required action); 429 asks to
-- wait. Any other status (404, 405, 422, 5xx) says nothing about them.
local LOGIN_MEANING = { [401] = "invalid", [403] = "invalid", [400] = "disabled", [429] = "too_many" }

--- Why the auth API refused a sign-in, from its error: "invalid", "disabled",
-- "too_many" (with the seconds to wait) or "unavailable". A status that
-- points at the gate's configuration is logged with method and URL (no
-- query): `POST https://api.example/api/iam/login answered 404: check server_url`.
function account.login_failure(state, err)
  -- The status and the kind only: the auth API's text (its detail, a body
  -- that may echo the password in some encoding) never reaches the log.
  local is_error = tfauth.is_error(err)
  local status = is_error and tonumber(err.status) or nil
  local line = "tfauth: login failed: status " .. (status or "-") .. ", kind " .. (is_error and err.kind or "error")
  if not status then
    ngx.log(ngx.ERR, line)
    return "unavailable"
  end
  local meaning = LOGIN_MEANING[status]
  if meaning == "too_many" then
    ngx.log(ngx.WARN, line)
    local wait = tonumber(type(err.headers) == "table" and err.headers["retry-after"] or nil)
    return meaning, math.max(1, math.floor(wait or TOO_MANY_WAIT))
  end
  if meaning then
    ngx.log(ngx.WARN, line)
    return meaning
  end
  if status >= 500 then
    ngx.log(ngx.ERR, line)
  else
    local url = (err.url or state.server_url .. "/api/iam/login"):gsub("[?#].*", "")
    ngx.log(ngx.ERR, "tfauth: ", err.method or "POST", " ", url, " answered ", err.status, ": check server_url")
  end
  return "unavailable"
end

-- A new session for the signed-in tokens s; ends the request's earlier one
-- (a new id every login: a planted or earlier session is ended). The id,
-- or nil, err.
local function start_session(state, s)
  local old = request.session_id(state)
  if old then sessions.finish(state, old) end
  return sessions.start(state, s:export(), s:claims())
end

--- A POST to the login location: sign in at the auth API, start a session.
function account.login_post(state)
  local args, from_form = request.posted()
  local rd = request.rd_of(args)
  local as_page = from_form and (request.prefers_html(ngx.var.http_accept) or args and args.rd ~= nil)
  local function failed(reason, user, retry_after)
    if reason ~= "cross_site" then metrics.result(state, "tfauth_logins_total", "failed") end
    if reason == "unavailable" then ngx.header["Retry-After"] = tostring(pages.RETRY_AFTER) end
    if as_page then return pages.signin(state, LOGIN_STATUS[reason], reason, rd, user, retry_after) end
    if retry_after then ngx.header["Retry-After"] = tostring(retry_after) end
    return answers.reply_error(LOGIN_STATUS[reason], LOGIN_ERROR[reason])
  end
  if request.cross_site(state) then return failed("cross_site") end
  local user, password = args and request.text(args.user), args and request.text(args.password)
  if not user or not password or user == "" or password == "" then return failed("missing", user) end
  local ok, s = metrics.timed(state, "login", state.client.session, state.client,
    { user = user, password = password }, { skew = state.skew })
  if not ok then
    local reason, retry_after = account.login_failure(state, s)
    return failed(reason, user, retry_after)
  end
  local sid, err = start_session(state, s)
  if not sid then
    if err ~= "full" then ngx.log(ngx.ERR, "tfauth: session store unavailable: ", tostring(err)) end -- full: logged
    return failed("unavailable", user)
  end
  metrics.result(state, "tfauth_logins_total", "ok")
  set_cookie(state, sid)
  if rd then
    answers.no_store()
    return ngx.redirect(request.local_path(rd), 303)
  end
  return answers.reply(200, { user = s:claims().preferred_username })
end

--- A POST to the logout location: end the session, expire the cookie.
function account.logout_post(state)
  if request.cross_site(state) then return answers.reply_error(403, "cross_site_request") end
  local args, from_form = request.posted()
  local rd = request.rd_of(args or {})
  local sid = request.session_id(state)
  local entry
  if sid then
    local err
    entry, err = sessions.finish(state, sid)
    if entry == nil then return answers.unavailable("session store", err) end
  end
  account.expire_cookie(state)
  if rd then
    if from_form then -- a browser's sign-out: the sign-in page says so
      ngx.header["Set-Cookie"] = { ngx.header["Set-Cookie"], pages.signed_out_cookie(state, "1; Max-Age=300") }
    end
    answers.no_store()
    return ngx.redirect(request.local_path(rd), 303)
  end
  return answers.reply(200, { logged_out = entry and true or false })
end

--- A GET of the logout location: a browser gets the confirmation page
-- (its button posts the sign-out), others 405.
function account.logout_get(state)
  if not request.from_browser(true) then return answers.method_not_allowed("POST") end
  local sid = request.session_id(state)
  local entry = sid and sessions.get(state, sid)
  local rd = request.text(ngx.req.get_uri_args(100).rd)
  return pages.signout(state, entry and entry.identity, rd and request.local_path(rd))
end

return account
