--- The gate's pages as templates: the built-in ones, the fixed texts they
-- show (each replaceable by its key in `messages`), and a directory of
-- templates that replace a page whole, loaded at start.
--
-- A template is HTML with `{{name}}` variables. Every variable is escaped
-- for HTML text and attributes, except those whose name ends in `_html`:
-- pieces of HTML the gate built itself, every value in them escaped.
-- @module tfauth.gate.templates
local config = require "tfauth.gate.config"

local templates = {}

--- s with `& < > " '` escaped for HTML text and attribute values.
function templates.escape_html(s)
  return (tostring(s or ""):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end
local escape_html = templates.escape_html

--- Every text a person sees on the gate's pages, by key (docs/gate.md,
-- "Pages, brand and language", lists them). `{user}`, `{product}` and
-- `{seconds}` are filled in where a text has them. The reasons of a failed
-- sign-in, `signin_<reason>`, are added by tfauth.gate.pages.
templates.MESSAGES = {
  signin_heading = "Sign in",
  signin_to = "Sign in to {product}",
  user_label = "User name",
  password_label = "Password",
  signin_button = "Sign in",
  forgot_password = "Forgot password?",
  signed_out = "You have signed out.",
  forbidden_heading = "No access",
  forbidden_text = "You are signed in as {user}. This account does not have access to this page.",
  back_link = "Back to the start page",
  signout_button = "Sign out",
  switch_user = "Sign out, then sign in as someone else",
  change_password_link = "Change password",
  signout_heading = "Sign out",
  signout_text = "You are signed in as {user}. Do you want to sign out?",
  signout_nobody = "You are not signed in.",
  unavailable_heading = "Not possible right now",
  unavailable_text = "This is not possible right now. Try again in a moment.",
  error_heading = "Something went wrong",
  error_text = "This page cannot be shown right now. The administrator can find why in the server's log.",
  reset_heading = "Reset your password",
  reset_text = "Enter your user name. If the account exists, you will receive an email to set a new password.",
  reset_button = "Send the email",
  reset_sent = "If an account with this user name exists, an email to reset its password is on its way.",
  reset_missing = "Enter your user name.",
  back_to_signin = "Back to sign in",
  password_heading = "Change password",
  current_password_label = "Current password",
  new_password_label = "New password",
  new_password_again_label = "New password, again",
  password_button = "Change password",
  password_changed = "Your password has been changed.",
  password_missing = "Fill in all three fields.",
  password_mismatch = "The two new passwords are not the same.",
  password_wrong_current = "The current password is wrong.",
  password_not_allowed = "You may not change your password in this organisation.",
  password_refused = "The new password was refused. Choose another one.",
  password_unavailable = "Changing the password is not possible right now. Try again in a moment.",
  password_cross_site = "This form was sent from another site. Change your password from this page.",
  try_again_link = "Try again",
}

--- The pages a templates directory may replace: `<name>.html` each.
templates.NAMES = { "signin", "signout", "forbidden", "unavailable", "error", "reset", "password" }

--- The variables every page gets (a template naming another is refused).
templates.VARIABLES = { "lang", "title", "heading", "product", "nonce", "head_html", "brand_html", "notice_html",
  "content_html", "footer_html", "action", "rd", "user", "retry_after", "logout_url", "login_url", "reset_url",
  "change_password_url" }

local KNOWN = {}
for _, name in ipairs(templates.VARIABLES) do KNOWN[name] = true end

--- The built-in page: every page is this layout around its content.
templates.LAYOUT = [[<!DOCTYPE html>
<html lang="{{lang}}">
<head>
{{head_html}}
</head>
<body>
<main>
{{brand_html}}<h1>{{heading}}</h1>
{{notice_html}}{{content_html}}</main>
{{footer_html}}</body>
</html>
]]

--- The style of the built-in pages (behind the page's nonce).
templates.STYLE = [[
body { font-family: system-ui, sans-serif; background: #f4f5f7; color: #1d1d1f; margin: 0; }
main { box-sizing: border-box; width: calc(100% - 2rem); max-width: 24rem; margin: 10vh auto 2rem;
  background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
@media (max-width: 30rem) { main { margin-top: 1rem; padding: 1.25rem; } }
.brand { display: flex; align-items: center; gap: .6rem; margin: 0 0 1rem; font-weight: 600; }
.brand img { max-height: 2.5rem; max-width: 10rem; }
h1 { font-size: 1.4rem; margin-top: 0; }
label { display: block; margin-top: 1rem; font-size: .9rem; }
input { box-sizing: border-box; width: 100%; padding: .5rem; margin-top: .25rem; font-size: 1rem; }
button { margin-top: 1.5rem; width: 100%; padding: .6rem; font-size: 1rem; }
form.inline button { margin-top: 1rem; }
.error { color: #a40000; background: #fdecec; padding: .5rem; border-radius: 4px; }
.notice { color: #0b5a1e; background: #e8f5eb; padding: .5rem; border-radius: 4px; }
.links { margin: 1.25rem 0 0; padding: 0; list-style: none; }
.links li { margin-top: .5rem; }
a { color: #0645ad; }
footer ul { display: flex; flex-wrap: wrap; justify-content: center; gap: 1rem; list-style: none; padding: 0;
  margin: 0 1rem 2rem; font-size: .9rem; }
]]

--- template with `{{name}}` replaced by vars[name]: escaped, or as it is
-- when name ends in `_html`. A variable without a value is empty.
function templates.fill(template, vars)
  return (template:gsub("{{%s*([%w_]+)%s*}}", function(name)
    local value = vars[name]
    if name:sub(-5) == "_html" then return value or "" end
    return escape_html(value)
  end))
end

--- The text of message `key` as HTML: escaped, its `{name}` filled in
-- (escaped) from vars.
function templates.text(messages, key, vars)
  local text = escape_html(messages[key])
  return (text:gsub("{(%a+)}", function(name)
    if vars and vars[name] ~= nil then return escape_html(vars[name]) end
  end))
end

-- Why a template cannot be used, or nil.
local function template_problem(text)
  if text:find("%z") then return "holds a NUL byte" end
  for inner in text:gmatch("{{(.-)}}") do
    local name = inner:match("^%s*([%w_]+)%s*$")
    if not name then return "{{" .. inner:sub(1, 40) .. "}} is not a variable" end
    if not KNOWN[name] then return "{{" .. name .. "}} is not a known variable" end
  end
  local without = text:gsub("{{.-}}", "")
  if without:find("{{", 1, true) or without:find("}}", 1, true) then return "has an unclosed {{" end
end

--- The templates in directory dir, by page name: every file named after a
-- page (`signin.html`, ...) is read and checked; a file that cannot be read
-- or names an unknown variable raises an error naming the file.
function templates.load(field, dir)
  if dir == "" or config.has_control(dir) then config.refuse(field, "expected a directory") end
  local probe = io.open(dir .. "/.", "r")
  if not probe then config.refuse(field, "no directory " .. dir) end
  probe:close()
  local out, pages = {}, {}
  for _, name in ipairs(templates.NAMES) do pages[name .. ".html"] = true end
  local listing = io.popen("ls -1A '" .. dir:gsub("'", "'\\''") .. "' 2>/dev/null")
  for file in listing:lines() do
    if file:find("%.html$") and not pages[file] then
      config.refuse(field, dir .. "/" .. file .. ": not a page's template (" .. table.concat(templates.NAMES,
        ".html, ") .. ".html)")
    end
  end
  listing:close()
  for _, name in ipairs(templates.NAMES) do
    local path = dir .. "/" .. name .. ".html"
    local f = io.open(path, "rb")
    if f then
      local text, err = f:read("*a")
      f:close()
      if not text then config.refuse(field, path .. ": " .. tostring(err)) end
      local problem = template_problem(text)
      if problem then config.refuse(field, path .. ": " .. problem) end
      out[name] = text
    end
  end
  return out
end

return templates
