-- flat.lua JWKS_FILE TOKENS_FILE N: does the cost of verifying a token grow
-- with the number of distinct tokens a process has seen? N distinct tokens
-- of one shape (bench/flat_tokens.py) are verified once each with
-- tfauth.jwt.verify, their claims kept in a table (as the gate's cache keeps
-- them), the garbage collector left alone. Prints the CPU per verify of the
-- first 2,000 and of the last 2,000, and the ratio last/first.
local jwt = require "tfauth.jwt"
local clock = os.clock -- CPU time: time spent descheduled is not ours
local WINDOW = 2000

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local n = assert(tonumber(arg[3]), "N")
-- The token file is read first, into one table: its lines are interned
-- before the clock starts, as nginx interns a header before the gate sees it.
local tokens, count = {}, 0
for line in slurp(arg[2]):gmatch("[^\n]+") do
  count = count + 1
  tokens[count] = line
  if count == n then break end
end
assert(count == n, ("%s holds %d tokens, %d wanted"):format(arg[2], count, n))

local keys = jwt.keyset(slurp(arg[1]))
local opts = { issuer = "https://kc.example/realms/fndtn", audience = "fndtn-api", types = { "Bearer" },
               algorithms = { "RS256" } }
local kept = {}

local function verify_range(first, last)
  local start = clock()
  for i = first, last do
    kept[tokens[i]] = jwt.verify(tokens[i], keys, opts)
  end
  return (clock() - start) / (last - first + 1)
end

local first = verify_range(1, WINDOW)
verify_range(WINDOW + 1, n - WINDOW)
local last = verify_range(n - WINDOW + 1, n)
assert(kept[tokens[n]].jti, "the claims are kept")
print(("%-8s N=%-7d first %d: %7.1f us/verify   last %d: %7.1f us/verify   last/first %.2f"):format(
  jit and "LuaJIT" or _VERSION, n, WINDOW, first * 1e6, WINDOW, last * 1e6, last / first))
