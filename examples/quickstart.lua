-- quickstart.lua: the whole token cycle against an FNDTN backend:
-- login -> refresh -> change password -> logout.
--
--   TOANFNDTN_SERVER_URL=http://127.0.0.1:8000 lua5.4 examples/quickstart.lua
--
-- (`make demo` starts the reference backend and runs this.) Nothing secret
-- is printed: no password, no token.
local tfauth = require "tfauth"
local safe = require "tfauth.safe"

local user = os.getenv("TFAUTH_DEMO_USER") or "alice"
local password = os.getenv("TFAUTH_DEMO_PASSWORD") or "alice-Secret-1"
local org = os.getenv("TFAUTH_DEMO_ORG") or "acme"

local server = os.getenv("TOANFNDTN_SERVER_URL") or "http://127.0.0.1:8000"

local tokens -- the current pair; the bearer function reads it at each call
local client = tfauth.new {
  server_url = server,
  bearer = function() return tokens.access_token end,
}
-- The same, returning nil, err instead of raising: for the expected refusals.
local checker = assert(safe.new { server_url = server })

local function expiry(t)
  return ("access token valid %d s (until %s UTC), refresh token %d s"):format(
    t.expires_in, os.date("!%H:%M:%S", t.expires_at), t.refresh_expires_in)
end

print(("tfauth %s -> %s"):format(tfauth.version, tostring(client)))

tokens = client:login { user = user, password = password }
print(("1. login            %s: %s token, scope '%s'; %s"):format(
  user, tokens.token_type, tokens.scope, expiry(tokens)))

local old_refresh = tokens.refresh_token
tokens = client:refresh { refresh_token = tokens.refresh_token }
print("2. refresh          new pair issued; " .. expiry(tokens))
local _, reuse = checker:refresh { refresh_token = old_refresh }
print("                    the used refresh token is refused: " .. tostring(reuse))

local new_password = password .. "-rotated"
client:change_password { x_org = org, current_password = password, new_password = new_password }
print(("3. change password  done for %s in organisation '%s'"):format(user, org))
client:change_password { x_org = org, current_password = new_password, new_password = password }
print("                    (and changed back, so the demo can run again)")

client:logout { refresh_token = tokens.refresh_token }
local _, after = checker:refresh { refresh_token = tokens.refresh_token }
print("4. logout           session ended; refreshing now gives: " .. tostring(after))

client:close()
checker:close()
