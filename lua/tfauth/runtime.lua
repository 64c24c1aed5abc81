--- Where tfauth runs: inside nginx or not, in which phase, whether it may
-- sleep, and which transport a call takes. The one home of these questions:
-- the client (`tfauth`), `tfauth.session`, `tfauth.openresty`, `tfauth.jwks`
-- and the gate ask here. It requires nothing, so every layer may.
-- @module tfauth.runtime
local runtime = {}

--- The transports a client or a key set may be told to use.
runtime.TRANSPORTS = { auto = true, curl = true, nginx = true }

--- Where nginx subrequests go unless the client says otherwise.
runtime.DEFAULT_LOCATION = "/_tfauth"

-- Phases where nginx lets Lua make subrequests.
local REQUEST_PHASES = { rewrite = true, access = true, content = true }
-- Phases where `ngx.sleep` (and cosockets) work.
local SLEEPING_PHASES = { rewrite = true, access = true, content = true, timer = true }

--- The `ngx` table when tfauth runs inside nginx (OpenResty, lua-nginx-module), else nil.
function runtime.nginx()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" then return ngx end
end

--- The nginx phase ("init", "access", "timer", ...), or nil outside nginx.
function runtime.phase()
  local ngx = runtime.nginx()
  if not (ngx and ngx.get_phase) then return nil end
  local ok, phase = pcall(ngx.get_phase)
  return ok and phase or nil
end

--- Whether this code runs in an nginx request phase where subrequests work.
function runtime.in_request_phase()
  return REQUEST_PHASES[runtime.phase()] == true
end

--- Whether `ngx.sleep` works here (request phases and timers): the way to
-- wait without blocking the worker.
function runtime.can_sleep()
  return SLEEPING_PHASES[runtime.phase()] == true
end

--- Whether the running coroutine may yield. Lua 5.3+ says so; before it
-- (5.1, 5.2, LuaJIT without the 5.2 extensions) the best guess is "inside a
-- coroutine that is not the main one".
function runtime.yieldable()
  if coroutine.isyieldable then return coroutine.isyieldable() end
  local co, main = coroutine.running()
  return co ~= nil and not main
end

--- Whether a call by a client or key set told `transport` goes through
-- nginx now: "nginx" always, "auto" in a request phase, "curl" never.
function runtime.uses_nginx(transport)
  return transport == "nginx" or (transport == "auto" and runtime.in_request_phase())
end

local errlog -- ngx.errlog (lua-resty-core), once looked for; false: not there
--- Whether nginx writes this request's log lines of `level` (`ngx.INFO`,
-- ...), by the error_log that applies to it: what a caller checks before
-- formatting a line nginx would drop. True outside nginx or when unknown.
function runtime.logs(level)
  if errlog == nil then
    local ok, module = pcall(require, "ngx.errlog")
    errlog = ok and module or false
  end
  if not errlog then return true end
  local ok, filter = pcall(errlog.get_sys_filter_level)
  return not ok or filter >= level
end

return runtime
