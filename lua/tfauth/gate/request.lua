--- What the gate reads from a request: its origin, what it accepts, its
-- session cookie, its posted fields; and the identity headers a client may
-- not send.
-- @module tfauth.gate.request
local json = require("cjson").new()
local origin_of = require("tfauth.gate.config").origin_of

local request = {}

--- Whether an Accept header prefers text/html (by q) over everything else.
function request.prefers_html(accept)
  if type(accept) ~= "string" then return false end
  local html, other = nil, 0
  for range in accept:gmatch("[^,]+") do
    local media = range:match("^%s*([^;%s]+)") or ""
    local q = tonumber(range:match(";%s*[qQ]%s*=%s*([%d.]+)")) or 1
    if media:lower() == "text/html" then html = math.max(html or 0, q) elseif q > other then other = q end
  end
  return html ~= nil and html > 0 and html >= other
end

--- Whether this request is a browser's navigation: a GET (or HEAD, with
-- `or_head`) whose Accept prefers text/html.
function request.from_browser(or_head)
  local method = ngx.var.request_method
  return (method == "GET" or or_head and method == "HEAD") and request.prefers_html(ngx.var.http_accept)
end

--- The request's own origin: public_origin, else the scheme and Host nginx sees.
function request.own_origin(state)
  if state.public_origin then return state.public_origin end
  return (origin_of(ngx.var.scheme .. "://" .. (ngx.var.http_host or ngx.var.host or "")))
end

--- Whether a browser says this request came from another site: Origin (or,
-- without one, Referer) names an origin other than ours, or is "null".
function request.cross_site(state)
  local origin = ngx.var.http_origin
  if origin == nil then
    local referer = ngx.var.http_referer
    if referer == nil then return false end -- not a browser
    origin = referer
  end
  if origin == "null" then return true end
  local theirs = origin_of(origin)
  return theirs == nil or theirs ~= request.own_origin(state)
end

--- Methods that change nothing: a session's cookie may come from anywhere.
request.SAFE_METHODS = { GET = true, HEAD = true, OPTIONS = true }

local SID_PATTERN = "^" .. ("%x"):rep(48) .. "$"
local BYTE_SEMICOLON, BYTE_SPACE, BYTE_TAB = (";"):byte(), (" "):byte(), ("\t"):byte()

-- Whether a cookie pair starts at `at` in header: at its start, or after
-- `;` and optional spaces (RFC 6265 §4.2.1: pairs are split on `;` only; a
-- name after `,` is part of another cookie's value).
local function is_space(byte) return byte == BYTE_SPACE or byte == BYTE_TAB end

local function pair_starts_at(header, at)
  local i = at - 1
  while i > 0 do
    local byte = header:byte(i)
    if byte == BYTE_SEMICOLON then return true end
    if not is_space(byte) then return false end
    i = i - 1
  end
  return true
end

--- The gate's cookie in a Cookie header, compared exactly (case-sensitive
-- name, pairs split on `;` only): its value and the span of its pair
-- (first, last byte), or nil when absent; "duplicate" when it appears more
-- than once (a planted cookie beside the real one: neither is used).
-- Plain finds and byte tests only: no pattern runs over the header (the
-- guard's fast path; a pattern costs tens of instructions a byte).
function request.find_cookie(header, needle)
  if not header then return nil end
  local found_at, value_to
  local from = 1
  while true do
    local at, last = header:find(needle, from, true)
    if not at then break end
    if pair_starts_at(header, at) then
      if found_at then return "duplicate" end
      found_at = at
      value_to = (header:find(";", last + 1, true) or #header + 1) - 1
      while value_to > last and is_space(header:byte(value_to)) do value_to = value_to - 1 end
    end
    from = last + 1
  end
  if not found_at then return nil end
  return header:sub(found_at + #needle, value_to), found_at, value_to
end

--- The session id of this request's cookie, or nil; and the span of the
-- gate's cookie in the Cookie header (to remove it before the upstream), or
-- "duplicate" when the name appears more than once (logged at info: no session).
function request.session_id(state)
  local header = ngx.var.http_cookie
  local value, first, last = request.find_cookie(header, state.cookie.needle)
  if value == "duplicate" then
    ngx.log(ngx.INFO, "tfauth: more than one ", state.cookie.name, " cookie in the request: no session")
    return nil, "duplicate"
  end
  if not value then return nil end
  if #value ~= 48 or not value:find(SID_PATTERN) then return nil, first, last end
  return value, first, last
end

--- The Cookie header without the gate's cookie (bytes first..last of it,
-- and the separator beside it); every other cookie byte for byte, "" when
-- it was the only one.
function request.cookie_without(first, last)
  local header = ngx.var.http_cookie
  local before = first - 1
  while before > 0 and (header:byte(before) == BYTE_SEMICOLON or is_space(header:byte(before))) do
    before = before - 1
  end
  local after = last + 1
  if header:byte(after) == BYTE_SEMICOLON then after = after + 1 end
  while is_space(header:byte(after)) do after = after + 1 end
  if after > #header then return header:sub(1, before) end
  if before == 0 then return header:sub(after) end
  return header:sub(1, before) .. "; " .. header:sub(after)
end

local FORWARDED = { ["x-forwarded-user"] = true, ["x-forwarded-email"] = true, ["x-forwarded-groups"] = true,
  ["x-forwarded-preferred-username"] = true, ["x-forwarded-access-token"] = true }

-- Removes what the client sent under an identity header's name (or one that
-- an upstream would read as one: X_Auth_Request_User when underscores pass).
local BYTE_X = ("x"):byte()
function request.scrub()
  for name in pairs(ngx.req.get_headers(0)) do -- lower-cased names; 0: all of them, not the first 100
    if name:byte(1) == BYTE_X then -- most headers are not x-*: no copy made for them
      local n = name:gsub("_", "-")
      if n:sub(1, 15) == "x-auth-request-" or FORWARDED[n] then ngx.req.clear_header(name) end
    end
  end
end

--- The POST's fields (form or JSON) and whether they came from a form; nil
-- when the body is neither.
function request.posted()
  ngx.req.read_body()
  local content_type = (ngx.var.content_type or ""):lower()
  local body = ngx.req.get_body_data()
  -- `curl -d '{"user": ...}'` labels a JSON body as a form: a body that is
  -- a JSON object is read as one whatever its label (no form field starts with "{").
  if content_type:find("^application/x%-www%-form%-urlencoded") and not (body and body:find("^%s*{")) then
    return ngx.req.get_post_args(100), true
  end
  if not body or body == "" then return {}, false end
  local ok, args = pcall(json.decode, body)
  if ok and type(args) == "table" then return args, false end
  return nil, false
end

--- v when it is a string, else nil.
function request.text(v) if type(v) == "string" then return v end end

--- The `rd` of the posted fields, else of the query string.
function request.rd_of(args)
  return args and request.text(args.rd) or request.text(ngx.req.get_uri_args(100).rd)
end

--- Where a decoded `rd` may send the browser: rd itself when it is a local
-- path (one leading `/`, second character neither `/` nor `\`, no backslash,
-- no control character, no `%2F`/`%5C` in any case), else `/`.
function request.local_path(rd)
  if type(rd) ~= "string" or rd:sub(1, 1) ~= "/" then return "/" end
  local second = rd:sub(2, 2)
  if second == "/" or second == "\\" or rd:find("\\", 1, true) or rd:find("[%z\1-\31\127]") or rd:find("%%2[fF]")
      or rd:find("%%5[cC]") then
    return "/"
  end
  return rd
end

return request
