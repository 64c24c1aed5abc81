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

--- The main request's method. In a subrequest (auth_request's: the caller
-- says so) only `$request_method` holds it; elsewhere the request's own is
-- the same and cheaper to read (no variable looked up by name, ~500
-- instructions).
function request.method(subrequest)
  if subrequest then return ngx.var.request_method end
  return ngx.req.get_method()
end

--- Whether this request is a browser's navigation: a GET (or HEAD, with
-- `or_head`) whose Accept prefers text/html. subrequest: as method's.
function request.from_browser(or_head, subrequest)
  local method = request.method(subrequest)
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

-- The index of the first byte at or after i that is neither a space nor a tab.
local function skip_blanks(header, i)
  local byte = header:byte(i)
  while byte == BYTE_SPACE or byte == BYTE_TAB do
    i = i + 1
    byte = header:byte(i)
  end
  return i
end

--- The gate's cookie in a Cookie header, compared exactly (case-sensitive
-- name, pairs split on `;` only): its value, where its pair starts, and the
-- `;` that ends it (nil when last); nil when absent; "duplicate" when it
-- appears more than once (a planted cookie beside the real one: neither is
-- used). Plain finds and byte loops, no pattern: this runs on every request.
function request.find_cookie(header, needle)
  if not header then return nil end
  local found, stop
  local at = header:find(needle, 1, true)
  while at do
    local next_stop = header:find(";", at + #needle, true)
    if pair_starts_at(header, at) then
      if found then return "duplicate" end
      found, stop = at, next_stop
    end
    at = next_stop and header:find(needle, next_stop + 1, true)
  end
  if not found then return nil end
  local value_from, value_to = skip_blanks(header, found + #needle), (stop or #header + 1) - 1
  local byte = header:byte(value_to)
  while value_to >= value_from and (byte == BYTE_SPACE or byte == BYTE_TAB) do
    value_to = value_to - 1
    byte = header:byte(value_to)
  end
  return header:sub(value_from, value_to), found, stop
end

-- One-entry memos of what is read from a Cookie header (where the gate's
-- pair is; the header without it): a browser sends the same header request
-- after request, and LuaJIT compares two strings by identity (it interns
-- them), so a repeat costs a comparison, not a walk over ~1 KB and a new
-- ~1 KB string. Per worker; pure functions of what they are keyed by.
-- The memo also keeps whether the value has a session id's form: checking
-- 48 bytes against a Lua pattern cost ~3,200 instructions a request.
local function is_sid(value) return type(value) == "string" and #value == 48 and value:find(SID_PATTERN) ~= nil end
local last_found = {}
local function found_in(header, needle)
  local m = last_found
  if header ~= m.header or needle ~= m.needle then
    m.header, m.needle = header, needle
    m.value, m.at, m.stop = request.find_cookie(header, needle)
    m.is_sid = m.value ~= "duplicate" and is_sid(m.value)
  end
  return m.value, m.at, m.stop, m.is_sid
end

--- The session id of this request's cookie, or nil; and the Cookie header
-- it came from, or "duplicate" when the gate's name appears more than once
-- (logged at info: no session, never the first or the last); and the span
-- of its pair (find_cookie's), to remove it before the upstream.
function request.session_id(state)
  local header = ngx.var.http_cookie
  local value, at, stop, sid_form = found_in(header, state.cookie.needle)
  if value == "duplicate" then
    ngx.log(ngx.INFO, "tfauth: more than one ", state.cookie.name, " cookie in the request: no session")
    return nil, "duplicate"
  end
  if not sid_form then return nil, header, at, stop end
  return value, header, at, stop
end

--- Whether the Cookie header holds the gate's cookie more than once.
function request.duplicate_cookie(state)
  return request.find_cookie(ngx.var.http_cookie, state.cookie.needle) == "duplicate"
end

-- header without the one pair that starts at `at` and ends at the `;` at
-- stop (nil: the last pair), with the separators around it; the pairs on
-- either side joined by "; ", as browsers join them (RFC 6265 §5.4).
local function without_pair(header, at, stop)
  local before = at - 1
  local byte = header:byte(before)
  while byte == BYTE_SEMICOLON or byte == BYTE_SPACE or byte == BYTE_TAB do
    before = before - 1
    byte = header:byte(before)
  end
  local after = stop and skip_blanks(header, stop + 1) or #header + 1
  if after > #header then return header:sub(1, before) end
  if before == 0 then return header:sub(after) end
  return header:sub(1, before) .. "; " .. header:sub(after)
end

--- header without the gate's cookie (every pair named `needle`, exactly),
-- every other pair byte for byte as it came; "" when no other is left; nil
-- when the gate's cookie is not in it. Plain finds and byte loops, no
-- patterns: this runs on every guarded bearer request that sends cookies.
function request.without_cookie(header, needle)
  if not header then return nil end
  local spans = {}
  local at = header:find(needle, 1, true)
  while at do
    local stop = header:find(";", at + #needle, true)
    if pair_starts_at(header, at) then spans[#spans + 1] = { at, stop } end
    at = stop and header:find(needle, stop + 1, true)
  end
  if #spans == 0 then return nil end
  for i = #spans, 1, -1 do header = without_pair(header, spans[i][1], spans[i][2]) end -- last first: spans hold
  return header
end

--- The Cookie header the guard hands on: the request's without the gate's
-- cookie ("" when no other is left), or nil when it holds no gate cookie
-- (nothing to change). header, at, stop: the request's Cookie header and the
-- span of the gate's one pair in it (session_id's), when already known;
-- else the header is read and every pair of the gate's name removed.
local last_cut = {}
function request.cookie_for_guard(state, header, at, stop)
  if at then
    local m = last_cut
    if header ~= m.header or at ~= m.at or stop ~= m.stop then
      m.header, m.at, m.stop, m.rest = header, at, stop, without_pair(header, at, stop)
    end
    return m.rest
  end
  return request.without_cookie(header or ngx.var.http_cookie, state.cookie.needle)
end

--- The Cookie header the upstream should receive: the request's without the
-- gate's cookie, or nil when nothing is left (for auth_request, whose
-- subrequest cannot change the main request's headers).
function request.cookie_for_upstream(state)
  local header = ngx.var.http_cookie
  local rest = request.without_cookie(header, state.cookie.needle)
  if rest == nil then rest = header end
  if rest == "" then return nil end
  return rest
end

local FORWARDED = { ["x-forwarded-user"] = true, ["x-forwarded-email"] = true, ["x-forwarded-groups"] = true,
  ["x-forwarded-preferred-username"] = true, ["x-forwarded-access-token"] = true }

-- Removes what the client sent under an identity header's name (or one that
-- an upstream would read as one: X_Auth_Request_User when underscores pass).
local BYTE_X = ("x"):byte()
local function scrub_one(name)
  local n = name:gsub("_", "-")
  if n:sub(1, 15) == "x-auth-request-" or FORWARDED[n] then ngx.req.clear_header(name) end
end

-- The names only, through the FFI functions resty.core's get_headers uses:
-- get_headers(0) makes a Lua string of every value (the bearer's ~1 KB
-- token too, for LuaJIT to intern); here no value is read and a name
-- becomes a string only when it starts with x. nil where they are missing.
local function names_reader()
  local ok, ffi = pcall(require, "ffi")
  if not ok or not pcall(require, "resty.core.request") then return nil end
  local base = require "resty.core.base"
  local C, elt_ptr = ffi.C, ffi.typeof("ngx_http_lua_ffi_table_elt_t*")
  local elt_size, truncated = ffi.sizeof("ngx_http_lua_ffi_table_elt_t"), ffi.new("int[1]")
  return function()
    local r = base.get_request()
    local count = C.ngx_http_lua_ffi_req_get_headers_count(r, 0, truncated) -- 0: all, not the first 100
    if count <= 0 then return end
    local elts = ffi.cast(elt_ptr, base.get_string_buf(count * elt_size))
    if C.ngx_http_lua_ffi_req_get_headers(r, elts, count, 0) ~= 0 then error("tfauth.gate: cannot read the headers") end
    local names = {}
    for i = 0, count - 1 do -- 0: lower-cased names
      local key = elts[i].key
      if key.len > 0 and key.data[0] == BYTE_X then names[#names + 1] = ffi.string(key.data, key.len) end
    end
    for _, name in ipairs(names) do scrub_one(name) end -- after the loop: clearing changes the list
  end
end
local scrub_by_names = names_reader()

function request.scrub()
  if scrub_by_names then return scrub_by_names() end
  for name in pairs(ngx.req.get_headers(0)) do -- lower-cased names; 0: all of them, not the first 100
    if name:byte(1) == BYTE_X then scrub_one(name) end -- most headers are not x-*: no copy made for them
  end
end

-- A dot segment in a request URI's path: after `/` or `%2F`, one or two `.`
-- or `%2E`, then `/`, `%2F`, `;`, the query or the end.
local DOT_SEGMENT = [[^[^?]*(?:/|%2[fF])(?:\.|%2[eE]){1,2}(?:/|%2[fF]|;|\?|$)]]

--- Whether a request URI's path, as the client sent it, holds a dot segment
-- (`.` or `..`, plain or percent-encoded, between `/` or `%2F`, or before a
-- `;` path parameter). nginx picks the location on the path with them
-- resolved, but `proxy_pass` without a URI hands the upstream the path as
-- sent: `/admin/..%2Fapp/x` is guarded as `/app/` and reaches the upstream
-- as `/admin/...`, where a router that does not resolve them (Express, say)
-- serves its admin pages. Browsers resolve dot segments before sending.
function request.has_dot_segment(uri)
  -- A path without `.` or `%` holds none: two plain finds (compiled by
  -- LuaJIT) spare most API paths the regex call (~1,100 instructions).
  if not uri:find(".", 1, true) and not uri:find("%", 1, true) then return false end
  -- One PCRE-JIT call, no Lua string work: Lua's own find here cost the
  -- guard ~7,000 instructions a request (callgrind); this, with the read of
  -- $request_uri, ~1,300.
  return ngx.re.find(uri, DOT_SEGMENT, "jo") ~= nil
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
