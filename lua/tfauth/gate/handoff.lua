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
-- @module tfauth.gate.handoff
local handoff = {}

-- header name -> the variable that carries it with handoff = "variables"
local VARIABLE = { Authorization = "tfauth_authorization", Cookie = "tfauth_cookie" }

local function set_variable(variable, value) ngx.var[variable] = value end

--- Hands header `name` on with value; nil or "" removes it. With
-- "headers", the header itself, and the variable too where it is declared.
function handoff.set(state, name, value)
  if state.handoff_variables then
    local variable = VARIABLE[name]
    if not pcall(set_variable, variable, value or "") then -- fail closed: 500, and the fix in the log
      error(('tfauth.gate: handoff = "variables" needs `set $%s $http_%s;` at the server level and '
        .. '`proxy_set_header %s $%s;` in every guarded location (docs/gate.md, "Hand-off")')
        :format(variable, name:lower(), name, variable), 0)
    end
    return
  end
  if value == nil or value == "" then ngx.req.clear_header(name) else ngx.req.set_header(name, value) end
  -- A configuration written for "variables" sends the variable, not the
  -- header: keep it right too, where it is declared.
  local variable = VARIABLE[name]
  if ngx.var[variable] ~= nil then ngx.var[variable] = value or "" end
end

return handoff
