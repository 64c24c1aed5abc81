-- luacheck: globals wrk request
-- wrk script: every request carries a bearer token the gate has not seen
-- (so each one is verified: RSA, claims), read from the file named by
-- TFAUTH_TOKENS, one per line; the thread stops before a token would repeat.
local tokens = {}
local path = os.getenv("TFAUTH_TOKENS")
assert(path, "TFAUTH_TOKENS: a file of tokens")
for line in io.lines(path) do
  tokens[#tokens + 1] = line
end
local next_token = 0
local margin = 64 -- requests in flight when the thread stops

function request()
  next_token = next_token + 1
  if next_token > #tokens - margin then wrk.thread:stop() end
  return wrk.format("GET", "/app/fresh", { Authorization = "Bearer " .. tokens[next_token] })
end
