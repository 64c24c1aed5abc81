--- The judgement shared by guard and auth_request: who sent this request,
-- by which credential, and may they pass.
-- @module tfauth.gate.judge
local request = require "tfauth.gate.request"
local identity = require "tfauth.gate.identity"
local sessions = require "tfauth.gate.sessions"

local judge = {}

-- A bearer request: its outcome, "bearer", and identity or detail.
local function by_bearer(state, rules, authorization)
  local who = identity.cached(state, authorization)
  if not who then
    local text, skip = identity.bearer_token(authorization)
    if not text then return nil end -- another scheme: judged by the session
    local failure, why
    who, failure, why = identity.of_bearer(state, text, skip, authorization)
    if not who then
      if failure == "unavailable" then return "unavailable", "bearer", "key set", why end
      return "unauthenticated", "bearer", "invalid_token"
    end
  end
  if not identity.allowed_by(rules, who) then return "forbidden", "bearer", "insufficient_scope", who end
  return "allowed", "bearer", who
end

-- A request without a bearer: judged by its session cookie. A Cookie
-- header with the gate's name twice is no session, and says so
-- ("duplicate_cookie": the sign-in page tells the user to clear cookies).
local function by_session(state, rules, subrequest)
  local sid, header, at, stop = request.session_id(state)
  if not sid then return "unauthenticated", "none", header == "duplicate" and "duplicate_cookie" or nil end
  local entry, err = sessions.current(state, sid)
  if err then return "unavailable", "session", "session store", err end
  if not entry then return "unauthenticated", "none" end
  if not request.SAFE_METHODS[request.method(subrequest)] and request.cross_site(state) then
    return "forbidden", "session", "cross_site_request"
  end
  if not identity.allowed_by(rules, entry.identity) then
    return "forbidden", "session", "insufficient_scope", entry.identity
  end
  return "allowed", "session", entry.identity, nil, header, at, stop
end

--- outcome ("allowed" | "unauthenticated" | "forbidden" | "unavailable"),
-- via ("session" | "bearer" | "none"), identity or detail, why (unavailable;
-- for insufficient_scope, the identity the rules refused),
-- and for a session the Cookie header and the span of the gate's pair in it
-- (already found: the guard removes it).
-- A request carrying both a bearer and a session is judged by its bearer.
-- subrequest: true in auth_request's subrequest (the method is the main request's).
function judge.request(state, rules, subrequest)
  local authorization = ngx.var.http_authorization
  if state.bearer and authorization then
    local result, via, who, why = by_bearer(state, rules, authorization)
    if result then return result, via, who, why end
  end
  return by_session(state, rules, subrequest)
end

return judge
