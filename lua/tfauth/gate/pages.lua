--- The gate's pages: server-rendered, no JavaScript, every value escaped,
-- a Content-Security-Policy that allows nothing but the page's own style.
-- @module tfauth.gate.pages
local ids = require "tfauth.ids"
local answers = require "tfauth.gate.answers"

local pages = {}

--- s with `& < > " '` escaped for HTML text and attribute values.
function pages.escape_html(s)
  return (tostring(s or ""):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end
local escape_html = pages.escape_html

-- Why a sign-in failed: only these, never text from the request.
local REASONS = {
  invalid = "Wrong user name or password.",
  missing = "Enter your user name and password.",
  unavailable = "Signing in is not possible right now. Try again in a moment.",
  cross_site = "This sign-in form was sent from another site. Sign in from this page.",
  -- the gate's cookie came twice (one planted by another site): no session
  -- until the user clears them, as a planted cookie with a longer Path
  -- outlives the next sign-in
  duplicate_cookie = "Your browser sent this site's sign-in cookie more than once, which can mean another site "
    .. "planted one. Clear this site's cookies in your browser, then sign in again.",
}

-- Nothing but the page's own style (by a nonce made per answer), and the
-- form posted to this origin; no script at all, no framing.
local CSP = "default-src 'none'; style-src 'nonce-%s'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

local SIGNIN = [[<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style nonce="{nonce}">
body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }
main { max-width: 22rem; margin: 12vh auto; background: #fff; padding: 2rem; border-radius: 8px;
  box-shadow: 0 1px 4px rgba(0,0,0,.15); }
h1 { font-size: 1.4rem; margin-top: 0; }
label { display: block; margin-top: 1rem; font-size: .9rem; }
input { box-sizing: border-box; width: 100%; padding: .5rem; margin-top: .25rem; font-size: 1rem; }
button { margin-top: 1.5rem; width: 100%; padding: .6rem; font-size: 1rem; }
.error { color: #a40000; background: #fdecec; padding: .5rem; border-radius: 4px; }
</style>
</head>
<body>
<main>
<h1>Sign in</h1>
{alert}<form method="post" action="{action}">
<input type="hidden" name="rd" value="{rd}">
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" required autofocus value="{user}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
</main>
</body>
</html>
]]

-- The headers every page carries; returns the nonce of its style.
local function page_headers(status)
  ngx.status = status
  ngx.header["Content-Type"] = "text/html; charset=utf-8"
  local nonce = ids.random_hex(16)
  ngx.header["Content-Security-Policy"] = CSP:format(nonce)
  ngx.header["X-Frame-Options"] = "DENY"
  ngx.header["X-Content-Type-Options"] = "nosniff"
  ngx.header["Referrer-Policy"] = "same-origin"
  answers.no_store()
  return nonce
end

--- The sign-in page, with the reason of a failed attempt (a key of REASONS).
function pages.signin(status, reason, rd, user)
  local alert = reason and ('<p class="error" role="alert">' .. escape_html(REASONS[reason]) .. "</p>\n") or ""
  local nonce = page_headers(status)
  local fields = { alert = alert, action = escape_html(ngx.var.uri), rd = escape_html(rd or "/"),
    user = escape_html(user), nonce = nonce }
  ngx.print((SIGNIN:gsub("{(%a+)}", fields)))
  return ngx.exit(ngx.HTTP_OK)
end

return pages
