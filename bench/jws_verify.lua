-- jws_verify.lua JWKS_FILE TOKEN_FILE ALG N: N calls of tfauth.jwt.verify on
-- one token, with the checks a gate makes (issuer, audience, types). The
-- keyset is made once, as an application does. Prints "verifications_per_second".
local jwt = require "tfauth.jwt"
local clock = require("tfauth.core").clock

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a"):gsub("%s+$", "")
  f:close()
  return s
end

local keys = jwt.keyset(slurp(arg[1]))
local token, alg, n = slurp(arg[2]), arg[3], tonumber(arg[4]) or 10000
local opts = { issuer = "https://kc.example/realms/fndtn", audience = "fndtn-api", types = { "Bearer" },
               algorithms = { alg } }
for _ = 1, 200 do jwt.verify(token, keys, opts) end -- warm: JIT, caches (a fixed count: callgrind subtracts runs)
local start = clock()
for _ = 1, n do jwt.verify(token, keys, opts) end
print(("%.0f"):format(n / (clock() - start)))
