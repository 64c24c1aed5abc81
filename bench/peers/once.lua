-- luacheck: globals wrk request
-- wrk script (bench/flat_gate.sh): lines TFAUTH_FROM to TFAUTH_TO of the
-- file TFAUTH_TOKENS, each sent once as a bearer token to /app/hello.txt;
-- then the thread stops (the few requests still asked for go to the
-- unguarded /bare/hello.txt).
local tokens = {}
local path = os.getenv("TFAUTH_TOKENS")
assert(path, "TFAUTH_TOKENS: a file of tokens")
local from, to = tonumber(os.getenv("TFAUTH_FROM")), tonumber(os.getenv("TFAUTH_TO"))
local n = 0
for line in io.lines(path) do
  n = n + 1
  if n > to then break end
  if n >= from then tokens[#tokens + 1] = "Bearer " .. line end
end
local next_token = 0
local headers = {}

function request()
  next_token = next_token + 1
  if next_token > #tokens then
    wrk.thread:stop()
    return wrk.format("GET", "/bare/hello.txt")
  end
  headers.Authorization = tokens[next_token]
  return wrk.format("GET", "/app/hello.txt", headers)
end
