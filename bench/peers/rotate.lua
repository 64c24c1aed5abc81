-- luacheck: globals wrk request
-- wrk script (bench/peers.sh): every request carries the next token of the
-- file named by TFAUTH_TOKENS (one per line), from line TFAUTH_OFFSET + 1 on,
-- starting over at the end: with more tokens than the gate caches (10,000
-- a worker), a guard that caches sees each one as new. The path is
-- TFAUTH_PATH (default /app/hello.txt).
local tokens = {}
local path = os.getenv("TFAUTH_TOKENS")
assert(path, "TFAUTH_TOKENS: a file of tokens")
for line in io.lines(path) do
  tokens[#tokens + 1] = "Bearer " .. line
end
local target = os.getenv("TFAUTH_PATH") or "/app/hello.txt"
local next_token = tonumber(os.getenv("TFAUTH_OFFSET") or "0") % #tokens
local headers = {}

function request()
  next_token = next_token % #tokens + 1
  headers.Authorization = tokens[next_token]
  return wrk.format("GET", target, headers)
end
