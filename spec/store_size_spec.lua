-- What one session takes, with Keycloak-sized tokens (an access token of
-- ~1.1 KB, a refresh token of ~0.8 KB), sealed as the gate seals it: in
-- Redis (used_memory over 10,000 sessions, with and without a per-user
-- index entry) and in a lua_shared_dict (sessions that fit in 10 MiB).
-- The figures are printed; docs/redis.md and docs/sessions.md quote them.
local h = require "spec.helper"
local redis = require "spec.support.redis"
local core = require "tfauth.core"
local cjson = require "cjson"

local sh = h.sh

-- A JWT-shaped string of n characters.
local function token(n)
  local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local out = {}
  for i = 1, n do
    local k = math.random(#chars)
    out[i] = chars:sub(k, k)
  end
  out[37], out[700] = ".", "."
  return table.concat(out)
end

local ACCESS, REFRESH = token(1100), token(800) -- sealing makes every copy different bytes anyway

local function sealed(sid)
  local now = os.time()
  local state = { access_token = ACCESS, refresh_token = REFRESH, expires_at = now + 300,
    refresh_expires_at = now + 1800, token_type = "Bearer", scope = "openid profile email",
    session_state = "5d1f3c4e-8a7b-4c2d-9e0f-1a2b3c4d5e6f", state = "active" }
  return core.seal({ ("5e"):rep(32) }, cjson.encode(state), sid)
end

local function resp(...)
  local args = { ... }
  local out = { "*" .. #args .. "\r\n" }
  for _, a in ipairs(args) do out[#out + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n" end
  return table.concat(out)
end

describe("what a session takes #nginx #once", function()
  local server
  setup(function() server = redis.start() end)
  teardown(function() server.remove() end)

  local function used() return tonumber(server.cli("info memory"):match("used_memory:(%d+)")) end
  local function pipe(commands)
    local file = os.tmpname()
    local f = assert(io.open(file, "wb"))
    f:write(table.concat(commands))
    f:close()
    local out = sh(("redis-cli -p %d --pipe <%s"):format(server.port, file))
    os.remove(file)
    assert.matches("errors: 0, replies: " .. #commands, out)
  end

  it("in Redis, and in a lua_shared_dict", function()
    local n, blob_size = 10000, 0
    local sessions, index = {}, {}
    for i = 1, n do
      local sid = ("%048x"):format(i)
      local blob = sealed(sid)
      blob_size = #blob
      sessions[i] = resp("SET", "tfauth:s:" .. sid, blob, "EX", "1800")
      index[i] = resp("ZADD", "tfauth:u:user" .. i, tostring(os.time()), sid)
    end
    local before = used()
    pipe(sessions)
    local per_session = (used() - before) / n
    local one = tonumber(server.cli("memory usage tfauth:s:" .. ("%048x"):format(1)))
    before = used()
    pipe(index)
    local per_index = (used() - before) / n
    print(("\n# Redis 7.0: a sealed session is %d bytes; it takes %.0f bytes of used_memory (MEMORY USAGE %d)"
      .. ", its user's index entry %.0f more; 1 M sessions: %.2f GiB, 10 M: %.1f GiB")
      :format(blob_size, per_session, one, per_index, (per_session + per_index) * 1e6 / 2 ^ 30,
        (per_session + per_index) * 1e7 / 2 ^ 30))
    assert.is_true(blob_size > 2000 and blob_size < 4000, blob_size)
    assert.is_true(per_session > blob_size and per_session < 2 * blob_size, per_session)

    -- The shared dict: sessions of that size until it is full (nothing evicted).
    local url, stop = h.start_nginx { workers = 1, conf = h.root .. "/spec/nginx/store.conf" }
    local ops = {}
    for i = 1, 6000 do ops[i] = { "set", "s:" .. ("%048x"):format(i), { x = blob_size }, 1800 } end
    local status, _, body = h.http(url .. "/t/store", { method = "POST", body = cjson.encode {
      config = { kind = "shared_dict", name = "tfauth_sessions" }, ops = ops } })
    stop()
    assert.equal(200, status)
    local stored = 0
    for _, r in ipairs(cjson.decode(body).results) do
      if r.res == true then stored = stored + 1 else assert.equal("no memory", r.err) end
    end
    print(("# lua_shared_dict 10m: %d sessions fit (%.0f per MiB, %.0f bytes each)")
      :format(stored, stored / 10, 10 * 2 ^ 20 / stored))
    assert.is_true(stored > 1000 and stored < 6000, stored)
  end)
end)
