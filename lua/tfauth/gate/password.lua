--- The account's own pages on the auth API's operations: reset a forgotten
-- password (`reset_password`) and change one's own (`change_password`).
-- @module tfauth.gate.password
local tfauth = require "tfauth"
local lrucache = require "resty.lrucache" -- Debian's lua-resty-lrucache (with the lua module)
local request = require "tfauth.gate.request"
local answers = require "tfauth.gate.answers"
local pages = require "tfauth.gate.pages"
local sessions = require "tfauth.gate.sessions"
local templates = require "tfauth.gate.templates"

local password = {}

local escape_html, text = templates.escape_html, templates.text

local MAX_FIELD = 1024 -- bytes: longer user names and passwords are refused as missing

--- The client that calls change_password: its bearer is the signed-in
-- user's access token, handed over per request in ngx.ctx.
function password.client_of(cfg)
  return tfauth.new { server_url = cfg.server_url, nginx_location = cfg.nginx_location,
    bearer = function() return ngx.ctx.tfauth_bearer end }
end

local function field(args, name)
  local value = args and request.text(args[name])
  if value and value ~= "" and #value <= MAX_FIELD then return value end
end

-- Whether the answer to this POST is a page: a form from a browser.
local function as_page(from_form)
  return from_form and request.prefers_html(ngx.var.http_accept)
end

local function not_configured()
  return answers.reply_error(404, "not_found")
end

-- ---- reset ----------------------------------------------------------------

local function reset_page(state, status, notice, with_form)
  local form = with_form and ('<p>' .. text(state.messages, "reset_text") .. "</p>\n"
    .. '<form method="post" action="' .. escape_html(ngx.var.uri) .. '">\n'
    .. '<label for="user">' .. text(state.messages, "user_label") .. "</label>\n"
    .. '<input id="user" name="user" autocomplete="username" required autofocus>\n'
    .. '<button type="submit">' .. text(state.messages, "reset_button") .. "</button>\n</form>\n") or ""
  local back = state.login_url
  return pages.render(state, "reset", status, { heading = "reset_heading", notice_html = notice or "",
    action = ngx.var.uri, content_html = form .. '<ul class="links">' .. pages.link(state, back, "back_to_signin")
    .. "</ul>\n" })
end

-- Calls reset_password for user, after the answer (a timer: the response
-- time says nothing about whether the account exists).
local function send_reset(premature, client, user)
  if premature then return end
  local ok, err = pcall(client.reset_password, client, { username = user })
  -- The API's 404 for an unknown user is not an error of the gate's.
  if not ok and not (tfauth.is_error(err) and err.status == 404) then
    ngx.log(ngx.ERR, "tfauth: password reset at the auth API failed: ", tostring(err))
  end
end

-- The gate's dict also holds the key set, its fetch lock and the metrics,
-- and anyone may ask for a reset of any name: the marks stop while less than
-- a quarter of its pages is free (a flood of made-up names once filled it,
-- and the workers could no longer share the key set). Past that, this
-- worker's own marks stand in: resets still go out, at most once per name
-- per interval per worker.
local RESERVE = 4
local worker_marks = lrucache.new(10000)

local function mark_in_worker(key, interval)
  if worker_marks:get(key) then return false, "exists" end
  worker_marks:set(key, true, interval)
  return true
end

-- At most one reset per user name per reset_interval, across workers: the
-- first to add the key sends it.
local function schedule_reset(state, user)
  -- Keycloak's user names are case-insensitive: Bob and bob are one mailbox.
  local key, dict, interval = "reset:" .. ngx.md5(user:lower()), state.dict, state.account.reset_interval
  local ok, err
  if dict:get(key) then
    ok, err = false, "exists"
  elseif dict:free_space() * RESERVE < dict:capacity() then
    ok, err = mark_in_worker(key, interval)
  else
    ok, err = dict:safe_add(key, true, interval)
    if not ok and err == "no memory" then ok, err = mark_in_worker(key, interval) end
  end
  if not ok then
    if err ~= "exists" then ngx.log(ngx.ERR, "tfauth: password reset not sent: lua_shared_dict ", state.dict_name,
      ": ", tostring(err)) end
    return
  end
  local started, timer_err = ngx.timer.at(0, send_reset, state.client, user)
  if not started then ngx.log(ngx.ERR, "tfauth: password reset not sent: ", tostring(timer_err)) end
end

--- The reset location: GET the form, POST a user name.
function password.reset(state)
  if not state.account then return not_configured() end
  local method = ngx.req.get_method()
  if method == "GET" or method == "HEAD" then return reset_page(state, 200, nil, true) end
  if method ~= "POST" then return answers.method_not_allowed("GET, HEAD, POST") end
  local args, from_form = request.posted()
  local page = as_page(from_form)
  if request.cross_site(state) then
    if page then return reset_page(state, 403, pages.notice(state, "signin_cross_site", "error"), true) end
    return answers.reply_error(403, "cross_site_request")
  end
  local user = field(args, "user")
  if not user then
    if page then return reset_page(state, 400, pages.notice(state, "reset_missing", "error"), true) end
    return answers.reply_error(400, "invalid_request")
  end
  schedule_reset(state, user)
  if page then return reset_page(state, 200, pages.notice(state, "reset_sent", "notice"), false) end
  return answers.reply(200, { requested = true })
end

-- ---- change ---------------------------------------------------------------

-- The API's refusals of change_password: message key and status.
local CHANGE_REFUSED = { [400] = { "password_wrong_current", 400, "wrong_current_password" },
  [403] = { "password_not_allowed", 403, "not_allowed" }, [422] = { "password_refused", 422, "password_refused" } }

local function password_input(state, id, label, autocomplete, focus)
  return '<label for="' .. id .. '">' .. text(state.messages, label) .. "</label>\n"
    .. '<input id="' .. id .. '" name="' .. id .. '" type="password" autocomplete="' .. autocomplete .. '" required'
    .. (focus and " autofocus" or "") .. ">\n"
end

local function change_page(state, status, who, notice, done)
  local form = done and "" or ('<form method="post" action="' .. escape_html(ngx.var.uri) .. '">\n'
    .. '<input type="hidden" name="username" autocomplete="username" value="' .. escape_html(who.user) .. '">\n'
    .. password_input(state, "current_password", "current_password_label", "current-password", true)
    .. password_input(state, "new_password", "new_password_label", "new-password")
    .. password_input(state, "new_password_again", "new_password_again_label", "new-password")
    .. '<button type="submit">' .. text(state.messages, "password_button") .. "</button>\n</form>\n")
  return pages.render(state, "password", status, { heading = "password_heading", notice_html = notice or "",
    user = who.user, action = ngx.var.uri, content_html = form .. '<ul class="links"><li><a href="/">'
      .. text(state.messages, "back_link") .. "</a></li></ul>\n" })
end

-- A refusal of the change: the page with the message, or JSON.
local function refused(state, page, who, key, status, code)
  if page then return change_page(state, status, who, pages.notice(state, key, "error")) end
  if status == 503 then ngx.header["Retry-After"] = tostring(pages.RETRY_AFTER) end
  return answers.reply_error(status, code)
end

-- Calls change_password with the session's access token.
local function call_change(state, entry, current, new)
  ngx.ctx.tfauth_bearer = entry.state.access_token
  local client = state.account_client
  local ok, err = pcall(client.change_password, client, { x_org = state.account.x_org, current_password = current,
    new_password = new })
  ngx.ctx.tfauth_bearer = nil
  if ok then return nil end
  local status = tfauth.is_error(err) and err.status
  if CHANGE_REFUSED[status] then return CHANGE_REFUSED[status] end
  ngx.log(ngx.ERR, "tfauth: change_password at the auth API failed: ", tostring(err))
  return { "password_unavailable", 503, "unavailable" }
end

-- The signed-in user's session entry, or the answer that ends the request.
local function signed_in(state)
  local sid = request.session_id(state)
  local entry, err
  if sid then entry, err = sessions.current(state, sid) end
  if err then return nil, answers.unavailable("session store", err, state) end
  if entry then return entry end
  if request.prefers_html(ngx.var.http_accept) then return nil, answers.to_signin(state) end -- and comes back
  answers.www_authenticate()
  return nil, answers.reply_error(401, "unauthenticated")
end

--- The change-password location: GET the form, POST the change.
function password.change(state)
  if not state.account then return not_configured() end
  local method = ngx.req.get_method()
  if method ~= "GET" and method ~= "HEAD" and method ~= "POST" then
    return answers.method_not_allowed("GET, HEAD, POST")
  end
  local entry = signed_in(state)
  if not entry then return end
  local who = entry.identity
  if method ~= "POST" then return change_page(state, 200, who) end
  local args, from_form = request.posted()
  local page = as_page(from_form)
  if request.cross_site(state) then
    return refused(state, page, who, "password_cross_site", 403, "cross_site_request")
  end
  local current, new, again = field(args, "current_password"), field(args, "new_password"),
    field(args, "new_password_again")
  if not current or not new or (from_form and not again) then
    return refused(state, page, who, "password_missing", 400, "invalid_request")
  end
  if again and again ~= new then return refused(state, page, who, "password_mismatch", 422, "passwords_differ") end
  if not state.account.x_org then
    ngx.log(ngx.ERR, "tfauth: gate.change_password: account.x_org is not set (the organisation change_password needs)")
    return answers.misconfigured(state)
  end
  local failure = call_change(state, entry, current, new)
  if failure then return refused(state, page, who, failure[1], failure[2], failure[3]) end
  if page then return change_page(state, 200, who, pages.notice(state, "password_changed", "notice"), true) end
  return answers.reply(200, { changed = true })
end

return password
