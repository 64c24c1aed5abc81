-- session.lua: a session that refreshes itself. The caller only ever asks
-- for "a valid access token"; the session logs in, refreshes before expiry
-- (Keycloak rotates refresh tokens: one refresh at a time), and logs out.
--
--   TOANFNDTN_SERVER_URL=http://127.0.0.1:8000 lua5.4 examples/session.lua
local tfauth = require "tfauth"

local server = os.getenv("TOANFNDTN_SERVER_URL") or "http://127.0.0.1:8000"
local user = os.getenv("TFAUTH_DEMO_USER") or "alice"
local password = os.getenv("TFAUTH_DEMO_PASSWORD") or "alice-Secret-1"
local org = os.getenv("TFAUTH_DEMO_ORG") or "acme"

-- To show a refresh without waiting five minutes, the session's clock can
-- be moved forward; in real use leave `clock` out.
local ahead = 0
local client = tfauth.new { server_url = server }
local session = client:session({ user = user, password = password }, {
  skew = 30,
  clock = function() return os.time() + ahead end,
  on_refresh = function() print("   refreshed: a new token pair was issued (the old refresh token is spent)") end,
})
print(("1. logged in as %s (%s); access token valid %d s"):format(session:claims().preferred_username,
  tostring(session), session:expires_in()))

-- Any client can take the session as its bearer: a function called per request.
local api = tfauth.new { server_url = server, bearer = function() return session:access_token() end }
api:change_password { x_org = org, current_password = password, new_password = password .. "-2" }
print("2. changed the password with the current token")

ahead = session:expires_in() - 10 -- ten seconds before expiry, by the session's clock
print(("3. %d s later, the token is about to expire; the next call refreshes first"):format(ahead))
api:change_password { x_org = org, current_password = password .. "-2", new_password = password }
print("   changed it back with the refreshed token")

local state = session:export() -- a plain table, e.g. for a server-side store; it holds the tokens
local restored = client:session(state)
print(("4. restored from its exported state: %s"):format(tostring(restored)))

restored:logout()
restored:logout() -- idempotent
print(("5. logged out: %s"):format(tostring(restored)))
