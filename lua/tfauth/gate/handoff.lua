--- What the guard hands on to the upstream: the identity headers, the
-- access token in `Authorization`, and the `Cookie` header without the
-- gate's own cookie.
--
-- `ngx.req.set_header` checks and copies every byte of the value it is
-- given (lua-nginx-module 0.10.23 escapes header values): for a 1 KB bearer
-- or Cookie header that is most of the guard's cost. With `handoff =
-- "variables"` the operator promises that every guarded location passes
-- the two variables on (docs/gate.md, "Hand-off"):
--
--    set $tfauth_authorization $http_authorization;   # server level
--    set $tfauth_cookie $http_cookie;
--    proxy_set_header Authorization $tfauth_authorization;
--    proxy_set_header Cookie $tfauth_cookie;
--
-- and the values go into the variables instead (one copy, no escaping),
-- for nginx's proxy module to send. An opt-in, not a guess from whether the
-- variables are declared: nginx declares a variable for every location at
-- once, and a location with its own proxy_set_header lines inherits none,
-- so a declared variable does not prove the location sends it.
-- `identity_handoff = "variables"` does the same for the four identity
-- headers (`$tfauth_user`, `$tfauth_email`, `$tfauth_roles`,
-- `$tfauth_subject`, each declared `set $tfauth_user "";` at the server level).
-- @module tfauth.gate.handoff
local handoff = {}

-- header name -> the variable that carries it with handoff = "variables"
local VARIABLE = { Authorization = "tfauth_authorization", Cookie = "tfauth_cookie" }

--- The identity headers: each one's name, the identity's field it carries,
-- and its variable with identity_handoff = "variables".
handoff.IDENTITY = { { "X-Auth-Request-User", "user", "tfauth_user" },
  { "X-Auth-Request-Email", "email", "tfauth_email" }, { "X-Auth-Request-Roles", "roles", "tfauth_roles" },
  { "X-Auth-Request-Subject", "sub", "tfauth_subject" } }

local function set_variable(variable, value) ngx.var[variable] = value end

-- Sets a hand-off variable, or fails closed (500, and the fix in the log):
-- the configuration promised a variable nginx does not have.
local function set_or_fail(key, variable, server_value, name, value)
  if not pcall(set_variable, variable, value) then
    error(('tfauth.gate: %s = "variables" needs `set $%s %s;` at the server level and '
      .. '`proxy_set_header %s $%s;` in every guarded location (docs/gate.md, "Hand-off")')
      :format(key, variable, server_value, name, variable), 0)
  end
end

--- Hands header `name` on with value; nil or "" removes it. With
-- "headers", the header itself, and the variable too where it is declared.
function handoff.set(state, name, value)
  if state.handoff_variables then
    local variable = VARIABLE[name]
    return set_or_fail("handoff", variable, "$http_" .. name:lower(), name, value or "")
  end
  if value == nil or value == "" then ngx.req.clear_header(name) else ngx.req.set_header(name, value) end
  -- A configuration written for "variables" sends the variable, not the
  -- header: keep it right too, where it is declared.
  local variable = VARIABLE[name]
  if ngx.var[variable] ~= nil then ngx.var[variable] = value or "" end
end

-- The four identity variables, set in one protected call: no loop and one
-- pcall keep the guard's trace short enough for LuaJIT to compile whole.
local function set_identity(var, who)
  var.tfauth_user, var.tfauth_email = who.user or "", who.email or ""
  var.tfauth_roles, var.tfauth_subject = who.roles or "", who.sub or ""
end

--- Hands the identity headers on: who's user, email, roles and sub. With
-- identity_handoff = "variables", through their variables, each set on
-- every request ("" when who has none: nothing is sent); ngx.req.set_header
-- costs ~1,600 instructions a header, a variable about half.
function handoff.identity(state, who)
  if state.identity_variables then
    if pcall(set_identity, ngx.var, who) then return end
    for _, h in ipairs(handoff.IDENTITY) do -- which one is missing: its fix in the log
      set_or_fail("identity_handoff", h[3], '""', h[1], who[h[2]] or "")
    end
    return
  end
  for i = 1, #handoff.IDENTITY do
    local h = handoff.IDENTITY[i]
    local value = who[h[2]]
    if value then ngx.req.set_header(h[1], value) end
  end
end

return handoff
