--- The gate's pages: server-rendered, no JavaScript, every value escaped,
-- a Content-Security-Policy that allows nothing but the page's own style
-- (and the configured stylesheet and logo). Each is a template
-- (`tfauth.gate.templates`): the built-in one, or the configured
-- directory's; its texts are the `messages`.
-- @module tfauth.gate.pages
local ids = require "tfauth.ids"
local templates = require "tfauth.gate.templates"
local local_path = require("tfauth.gate.request").local_path

local pages = {}

local escape_html, fill, text = templates.escape_html, templates.fill, templates.text

--- s with `& < > " '` escaped for HTML text and attribute values.
-- @function escape_html
pages.escape_html = escape_html

-- Why a sign-in failed: only these, never text from the request. The text
-- shown is the message `signin_<reason>` (these are its defaults).
local REASONS = {
  invalid = "Wrong user name or password.",
  missing = "Enter your user name and password.",
  unavailable = "Signing in is not possible right now. Try again in a moment.",
  cross_site = "This sign-in form was sent from another site. Sign in from this page.",
  disabled = "This account cannot sign in now. Contact your administrator.",
  too_many = "Too many attempts. Wait {seconds} seconds, then try again.",
  -- the gate's cookie came twice (one planted by another site): no session
  -- until the user clears them, as a planted cookie with a longer Path
  -- outlives the next sign-in
  duplicate_cookie = "Your browser sent this site's sign-in cookie more than once, which can mean another site "
    .. "planted one. Clear this site's cookies in your browser, then sign in again.",
}
pages.REASONS = REASONS
for reason, default in pairs(REASONS) do
  templates.MESSAGES["signin_" .. reason] = templates.MESSAGES["signin_" .. reason] or default
end

--- Seconds a 503 asks a client to wait (`Retry-After`).
pages.RETRY_AFTER = 10

--- The name of the cookie that tells the sign-in page a browser has just signed out.
pages.SIGNED_OUT_COOKIE = "tfauth_signed_out"

-- Nothing but the page's own style (by a nonce made per answer) and the
-- configured stylesheet and logo; forms posted to this origin; no script
-- at all, no framing.
local function csp(page, nonce)
  return "default-src 'none'; style-src 'nonce-" .. nonce .. "'" .. (page.style_src and " " .. page.style_src or "")
    .. (page.img_src and "; img-src " .. page.img_src or "")
    .. "; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
end

-- The headers every page carries; returns the nonce of its style.
local function page_headers(state, status)
  ngx.status = status
  ngx.header["Content-Type"] = "text/html; charset=utf-8"
  local nonce = ids.random_hex(16)
  ngx.header["Content-Security-Policy"] = csp(state.page, nonce)
  ngx.header["X-Frame-Options"] = "DENY"
  ngx.header["X-Content-Type-Options"] = "nosniff"
  ngx.header["Referrer-Policy"] = "same-origin"
  ngx.header["Cache-Control"] = "no-store"
  return nonce
end

local function head_html(vars, page)
  return '<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>'
    .. escape_html(vars.title) .. '</title>\n<style nonce="' .. vars.nonce .. '">\n' .. templates.STYLE .. "</style>"
    .. (page.stylesheet_url and '\n<link rel="stylesheet" href="' .. escape_html(page.stylesheet_url) .. '">' or "")
end

local function brand_html(page)
  if not page.logo_url and not page.product then return "" end
  return '<p class="brand">' .. (page.logo_url and '<img src="' .. escape_html(page.logo_url) .. '" alt="">' or "")
    .. (page.product and "<span>" .. escape_html(page.product) .. "</span>" or "") .. "</p>\n"
end

local function footer_html(page)
  if #page.footer == 0 then return "" end
  local items = {}
  for i, link in ipairs(page.footer) do
    items[i] = '<li><a href="' .. escape_html(link.url) .. '">' .. escape_html(link.text) .. "</a></li>"
  end
  return "<footer><ul>" .. table.concat(items) .. "</ul></footer>\n"
end

--- A paragraph of message key (`class` error or notice; an error is an alert).
function pages.notice(state, key, class, vars)
  return '<p class="' .. class .. '"' .. (class == "error" and ' role="alert"' or ' role="status"') .. ">"
    .. text(state.messages, key, vars) .. "</p>\n"
end

--- A link list item, or "" without a URL.
function pages.link(state, url, key)
  if not url then return "" end
  return '<li><a href="' .. escape_html(url) .. '">' .. text(state.messages, key) .. "</a></li>"
end

--- Sends page `name` (one of templates.NAMES) with status: the configured
-- template, else the built-in layout around vars.content_html; vars as in
-- templates.VARIABLES (heading: a message key). Ends the request.
function pages.render(state, name, status, vars)
  local page = state.page
  vars.nonce = page_headers(state, status)
  vars.lang, vars.product = page.lang, page.product
  vars.heading = state.messages[vars.heading]:gsub("{product}", function() return page.product or "" end)
  vars.title = vars.heading .. ((page.title or page.product) and " – " .. (page.title or page.product) or "")
  vars.head_html, vars.brand_html, vars.footer_html = head_html(vars, page), brand_html(page), footer_html(page)
  vars.logout_url, vars.login_url = state.logout_url, state.login_url
  vars.reset_url = state.account and state.account.reset_url
  vars.change_password_url = state.account and state.account.change_password_url
  ngx.print(fill(state.templates[name] or templates.LAYOUT, vars))
  return ngx.exit(ngx.HTTP_OK)
end

-- Where a sign-out from the gate's pages lands: the sign-in page when it is
-- local (it then says so), else the start page.
local function after_signout(state)
  return state.login_url:find("^/[^/\\]") and state.login_url:gsub("?.*", "") or "/"
end

local function signout_form(state, rd, key)
  return '<form class="inline" method="post" action="' .. escape_html(state.logout_url) .. '">'
    .. '<input type="hidden" name="rd" value="' .. escape_html(rd) .. '">'
    .. '<button type="submit">' .. text(state.messages, key) .. "</button></form>\n"
end

--- The Set-Cookie value of the signed-out mark (it holds no secret: "1").
function pages.signed_out_cookie(state, value)
  return pages.SIGNED_OUT_COOKIE .. "=" .. value .. "; Path=" .. state.cookie.path .. "; HttpOnly"
    .. (state.cookie.secure and "; Secure" or "") .. "; SameSite=Lax"
end

-- Whether this request follows a browser's sign-out (and forgets it).
local function just_signed_out(state)
  if not ngx.var["cookie_" .. pages.SIGNED_OUT_COOKIE] then return false end
  ngx.header["Set-Cookie"] = pages.signed_out_cookie(state, "; Max-Age=0")
  return true
end

--- The sign-in page, with the reason of a failed attempt (a key of REASONS,
-- its `retry_after` for too_many).
function pages.signin(state, status, reason, rd, user, retry_after)
  local notice = ""
  if reason then
    notice = pages.notice(state, "signin_" .. reason, "error", { seconds = retry_after })
  elseif just_signed_out(state) then
    notice = pages.notice(state, "signed_out", "notice")
  end
  local filled = user ~= nil and user ~= ""
  local action = escape_html(ngx.var.uri)
  local content = '<form method="post" action="' .. action .. '">\n'
    .. '<input type="hidden" name="rd" value="' .. escape_html(rd or "/") .. '">\n'
    .. '<label for="user">' .. text(state.messages, "user_label") .. "</label>\n"
    .. '<input id="user" name="user" autocomplete="username" required' .. (filled and "" or " autofocus")
    .. ' value="' .. escape_html(user) .. '">\n'
    .. '<label for="password">' .. text(state.messages, "password_label") .. "</label>\n"
    .. '<input id="password" name="password" type="password" autocomplete="current-password" required'
    .. (filled and " autofocus" or "") .. ">\n"
    .. '<button type="submit">' .. text(state.messages, "signin_button") .. "</button>\n</form>\n"
    .. (state.account and state.account.reset_url
      and '<ul class="links">' .. pages.link(state, state.account.reset_url, "forgot_password") .. "</ul>\n" or "")
  if retry_after then ngx.header["Retry-After"] = tostring(retry_after) end
  return pages.render(state, "signin", status, { heading = state.page.product and "signin_to" or "signin_heading",
    notice_html = notice, content_html = content, action = ngx.var.uri, rd = rd or "/", user = user,
    retry_after = retry_after })
end

local function account_links(state)
  local url = state.account and state.account.change_password_url
  return pages.link(state, url, "change_password_link")
end

local function name_of(who)
  return who and (who.user or who.email or who.sub) or ""
end

--- The 403 page of a signed-in user the rules refused: who, a link back,
-- sign out, sign in as someone else.
function pages.forbidden(state, who)
  local user = name_of(who)
  local content = "<p>" .. text(state.messages, "forbidden_text", { user = user }) .. "</p>\n"
    .. '<ul class="links"><li><a href="/">' .. text(state.messages, "back_link") .. "</a></li>"
    .. account_links(state) .. "</ul>\n"
    .. signout_form(state, after_signout(state), "signout_button")
    .. signout_form(state, local_path(ngx.var.request_uri), "switch_user")
  return pages.render(state, "forbidden", 403, { heading = "forbidden_heading", content_html = content,
    user = user })
end

--- The sign-out confirmation (`GET` on the logout location from a browser):
-- its button posts the sign-out to the same location.
function pages.signout(state, who, rd)
  local user = who and name_of(who)
  local content = "<p>" .. text(state.messages, user and "signout_text" or "signout_nobody", { user = user })
    .. "</p>\n" .. '<form method="post" action="' .. escape_html(ngx.var.uri) .. '">'
    .. '<input type="hidden" name="rd" value="' .. escape_html(rd or after_signout(state)) .. '">'
    .. '<button type="submit">' .. text(state.messages, "signout_button") .. "</button></form>\n"
    .. '<ul class="links"><li><a href="/">' .. text(state.messages, "back_link") .. "</a></li>"
    .. (user and account_links(state) or "") .. "</ul>\n"
  return pages.render(state, "signout", 200, { heading = "signout_heading", content_html = content,
    user = user, action = ngx.var.uri, rd = rd })
end

--- The 503 page: not possible right now, try again (`Retry-After`).
function pages.unavailable(state)
  ngx.header["Retry-After"] = tostring(pages.RETRY_AFTER)
  return pages.render(state, "unavailable", 503, { heading = "unavailable_heading", retry_after = pages.RETRY_AFTER,
    content_html = "<p>" .. text(state.messages, "unavailable_text") .. '</p>\n<ul class="links"><li><a href="'
      .. escape_html(local_path(ngx.var.request_uri)) .. '">' .. text(state.messages, "try_again_link")
      .. "</a></li></ul>\n" })
end

--- The 500 page of a location whose configuration is wrong.
function pages.error(state)
  return pages.render(state, "error", 500, { heading = "error_heading",
    content_html = "<p>" .. text(state.messages, "error_text") .. "</p>\n" })
end

return pages
