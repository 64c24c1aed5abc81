--- The gate's options for people (issue 18), checked at init apart from the
-- rest of the configuration: `page` (brand and language), `messages`,
-- `templates`, `account` (reset and change password), `logout_url`, and
-- named `rules`; and the rules given inline to `guard` / `auth_request`,
-- checked on their first use.
-- @module tfauth.gate.options
local config = require "tfauth.gate.config"
local templates = require "tfauth.gate.templates"
require "tfauth.gate.pages" -- adds the sign-in reasons to templates.MESSAGES

local options = {}

local refuse, check_section, has_control = config.refuse, config.check_section, config.has_control

--- The top-level keys this part checks (config.check_top lets them through).
options.KEYS = { page = "table", messages = "table", templates = "string", account = "table",
  logout_url = "string", rules = "table" }
for key, wanted in pairs(options.KEYS) do config.TOP[key] = wanted end

local PAGE = { title = "string", product = "string", logo_url = "string", stylesheet_url = "string",
  lang = "string", footer = "table" }
local ACCOUNT = { x_org = "string", reset_url = "string", change_password_url = "string", reset_interval = "number" }

local DEFAULT_RESET_INTERVAL = 900 -- seconds: one reset mail per user name per 15 minutes

--- A URL a page may load or link to: a local path (one leading `/`) or an
-- https URL, without what would break out of an attribute or the CSP.
-- Returns the CSP source that allows it ('self' or the URL itself).
function options.check_url(field, url)
  if has_control(url) or url:find("[%s;,'\"<>\\]") then refuse(field, "expected a local path or an https URL") end
  if url:find("^/[^/]") or url == "/" then return "'self'" end
  local origin = config.origin_of(url)
  if not origin or origin:sub(1, 8) ~= "https://" then refuse(field, "expected a local path or an https URL") end
  return url
end
local check_url = options.check_url

local function check_text(field, value)
  if value == "" or has_control(value) then refuse(field, "expected a non-empty line of text") end
  return value
end

local function check_footer(footer)
  local out = {}
  for key in pairs(footer) do
    if type(key) ~= "number" or not footer[key] then refuse("page.footer", "expected a list of { text =, url = }") end
  end
  for i, link in ipairs(footer) do
    local field = "page.footer[" .. i .. "]"
    if type(link) ~= "table" then refuse(field, "expected { text =, url = }") end
    check_section(field .. ".", link, { text = "string", url = "string" })
    if not link.text or not link.url then refuse(field, "expected { text =, url = }") end
    check_url(field .. ".url", link.url)
    out[i] = { text = check_text(field .. ".text", link.text), url = link.url }
  end
  if #out ~= #footer then refuse("page.footer", "expected a list of { text =, url = }") end
  return out
end

--- The page section: { lang, title, product, logo_url, stylesheet_url,
-- footer, img_src, style_src } (the last two: the CSP sources it adds).
function options.check_page(page)
  page = page or {}
  check_section("page.", page, PAGE)
  local out = { lang = page.lang or "en", footer = page.footer and check_footer(page.footer) or {} }
  if not out.lang:find("^%a%a?%a?%a?%a?%a?%a?%a?[%w%-]*$") or #out.lang > 35 then
    refuse("page.lang", "expected a language tag (en, de, pt-BR)")
  end
  for _, key in ipairs { "title", "product" } do
    if page[key] then out[key] = check_text("page." .. key, page[key]) end
  end
  if page.logo_url then out.logo_url, out.img_src = page.logo_url, check_url("page.logo_url", page.logo_url) end
  if page.stylesheet_url then
    out.stylesheet_url, out.style_src = page.stylesheet_url, check_url("page.stylesheet_url", page.stylesheet_url)
  end
  return out
end

--- The messages: the defaults with the configured ones in their place;
-- an unknown key or a text that is not one is refused.
function options.check_messages(messages)
  local out = {}
  for key, text in pairs(templates.MESSAGES) do out[key] = text end
  for key, text in pairs(messages or {}) do
    if templates.MESSAGES[key] == nil then refuse("messages." .. tostring(key), "is not a known message") end
    if type(text) ~= "string" or text == "" then refuse("messages." .. key, "expected a non-empty string") end
    out[key] = text
  end
  return out
end

--- The account section, or nil: { x_org, reset_url, change_password_url, reset_interval }.
function options.check_account(account)
  if account == nil then return nil end
  check_section("account.", account, ACCOUNT)
  for _, key in ipairs { "reset_url", "change_password_url" } do
    if account[key] then check_url("account." .. key, account[key]) end
  end
  if account.x_org then check_text("account.x_org", account.x_org) end
  local interval = account.reset_interval or DEFAULT_RESET_INTERVAL
  if interval < 1 then refuse("account.reset_interval", "expected seconds >= 1") end
  return { x_org = account.x_org, reset_url = account.reset_url, change_password_url = account.change_password_url,
    reset_interval = interval }
end

--- logout_url: where the gate's pages post a sign-out (a local path; `/logout`).
function options.check_logout_url(url)
  url = url or "/logout"
  if check_url("logout_url", url) ~= "'self'" then refuse("logout_url", "expected a local path") end
  return url
end

local RULE_KEYS = { roles = true, client_roles = true }

-- Why a list of role names is not one, or nil (no allocation when it is:
-- an inline rule table is checked on every request that uses it).
local function list_problem(list)
  if type(list) ~= "table" then return "expected a list of role names, got " .. type(list) end
  local n = 0
  for _, role in pairs(list) do
    n = n + 1
    if type(role) ~= "string" then return "expected a list of role names, got a " .. type(role) .. " in it" end
  end
  if n ~= #list then return "expected a list of role names" end
end

-- A rule table's problem as field, message; nil when it is right.
local function rule_problem(rules)
  if type(rules) ~= "table" then return "", "expected a table of roles, got " .. type(rules) end
  for key, value in pairs(rules) do
    if not RULE_KEYS[key] then return "." .. tostring(key), "is not a known key (roles, client_roles)" end
    if key == "roles" then
      local problem = list_problem(value)
      if problem then return ".roles", problem end
    elseif type(value) ~= "table" then
      return ".client_roles", "expected { [client] = { roles } }, got " .. type(value)
    else
      for client, roles in pairs(value) do
        local problem = type(client) ~= "string" and "expected client names as keys" or list_problem(roles)
        if problem then return ".client_roles." .. tostring(client), problem end
      end
    end
  end
end

--- The named rules, each checked: { [name] = rules }.
function options.check_rules(rules)
  local out = {}
  for name, rule in pairs(rules or {}) do
    if type(name) ~= "string" then refuse("rules", "expected names as keys: rules = { admin = { roles = {...} } }") end
    local field, problem = rule_problem(rule)
    if field then refuse("rules." .. name .. field, problem) end
    out[name] = rule
  end
  return out
end

-- Problems already logged (once per worker each).
local logged = {}

--- The rules a location asked for (nil, a name, or a table) as checked
-- rules; nil, problem when they are wrong (the problem is logged once per
-- worker, naming the key).
function options.rules_of(state, asked)
  if asked == nil then return nil end
  local problem
  if type(asked) == "string" then
    local named = state.rules[asked]
    if named then return named end
    problem = "no rule named '" .. asked .. "' in init's rules (declare it: rules = { " .. asked
      .. " = { roles = {...} } })"
  else
    -- `guard { roles = {...} }` makes a new table per request: checked each
    -- time (a few table reads, nothing allocated), not remembered.
    local field, why = rule_problem(asked)
    if not field then return asked end
    problem = "rules" .. field .. ": " .. why
  end
  if not logged[problem] then
    logged[problem] = true
    ngx.log(ngx.ERR, "tfauth: gate rules of location ", ngx.var.uri, ": ", problem,
      ": every request here is refused with 500 until the rule is fixed")
  end
  return nil, problem
end

--- Checks this part's keys of cfg into built.
function options.build(built, cfg)
  built.page = options.check_page(cfg.page)
  built.messages = options.check_messages(cfg.messages)
  built.account = options.check_account(cfg.account)
  built.logout_url = options.check_logout_url(cfg.logout_url)
  built.rules = options.check_rules(cfg.rules)
  built.templates = cfg.templates and templates.load("templates", cfg.templates) or {}
end

return options
