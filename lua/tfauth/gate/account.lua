--- The account's own locations: sign in and sign out.
-- @module tfauth.gate.account
local tfauth = require "tfauth"
local request = require "tfauth.gate.request"
local answers = require "tfauth.gate.answers"
local pages = require "tfauth.gate.pages"
local metrics = require "tfauth.gate.metrics"
local sessions = require "tfauth.gate.sessions"
local identity = require "tfauth.gate.identity"

local account = {}

-- A sign-in without a user or password failed like a wrong one: 401.
local LOGIN_STATUS = { invalid = 401, missing = 401, unavailable = 503, cross_site = 403 }
local LOGIN_ERROR = { invalid = "invalid_credentials", missing = "invalid_request", unavailable = "unavailable",
  cross_site = "cross_site_request" }

--- Expires the gate's cookie (same name, Path, Domain and attributes).
function account.expire_cookie(state)
  local cookie = state.cookie
  ngx.header["Set-Cookie"] = cookie.name .. "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT" .. cookie.attributes
end

local function set_cookie(state, sid)
  ngx.header["Set-Cookie"] = state.cookie.name .. "=" .. sid .. state.cookie.attributes
end

-- Why the auth API refused a sign-in, from its error: "invalid" or "unavailable".
local function login_failure(err)
  local kind = tfauth.is_error(err) and err.kind
  if identity.TRANSIENT[kind] or kind == "http" and err.status >= 500 then return "unavailable" end
  return "invalid"
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
  local function failed(reason, user)
    if reason ~= "cross_site" then metrics.result(state, "tfauth_logins_total", "failed") end
    if as_page then return pages.signin(LOGIN_STATUS[reason], reason, rd, user) end
    return answers.reply(LOGIN_STATUS[reason], { error = LOGIN_ERROR[reason] })
  end
  if request.cross_site(state) then return failed("cross_site") end
  local user, password = args and request.text(args.user), args and request.text(args.password)
  if not user or not password or user == "" or password == "" then return failed("missing", user) end
  local ok, s = metrics.timed(state, "login", state.client.session, state.client,
    { user = user, password = password }, { skew = state.skew })
  if not ok then
    -- The status and the kind only: the auth API's text (its detail, a body
    -- that may echo the password in some encoding) never reaches the log.
    local is_error = tfauth.is_error(s)
    ngx.log(ngx.WARN, "tfauth: login failed: status ", is_error and tonumber(s.status) or "-", ", kind ",
      is_error and s.kind or "error")
    return failed(login_failure(s), user)
  end
  local sid, err = start_session(state, s)
  if not sid then
    if err == "full" then return failed("unavailable", user) end -- logged, with the store's size
    metrics.result(state, "tfauth_logins_total", "failed")
    return answers.unavailable("session store", err)
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
  if request.cross_site(state) then return answers.reply(403, { error = "cross_site_request" }) end
  local args = request.posted() or {}
  local rd = request.rd_of(args)
  local sid = request.session_id(state)
  local entry
  if sid then
    local err
    entry, err = sessions.finish(state, sid)
    if entry == nil then return answers.unavailable("session store", err) end
  end
  account.expire_cookie(state)
  if rd then
    answers.no_store()
    return ngx.redirect(request.local_path(rd), 303)
  end
  return answers.reply(200, { logged_out = entry and true or false })
end

return account
