-- One nginx node: a lua_shared_dict, shared by its workers (tfauth.store's
-- `shared_dict` backend).
--
-- No write here may evict: a full dict must refuse the new entry rather
-- than silently drop someone else's session (the dict's `set`, `add`,
-- `replace` and `incr` with an initial value all evict the least recently
-- used entries when full). Only `safe_set`, `safe_add` and `incr` without an
-- initial value are used; a full dict answers `nil, "no memory"`.
--
-- Beside each value `key`, a counter `~key` (its change stamp) lives exactly
-- as long as the value: the gate compares it with the session it decoded,
-- and "only if it exists" writes bump it after writing (incr without an
-- initial value is atomic across workers and fails once the session is
-- deleted: the write is then undone).
local ids = require "tfauth.ids"

local FULL = "no memory"

local Dict = { __name = "tfauth.store.shared_dict" }
Dict.__index = Dict

local function failed(err)
  if err == FULL then return nil, FULL, "oom" end
  return nil, "lua_shared_dict: " .. tostring(err), "other"
end

function Dict:get(key)
  local value, err = self.dict:get(key)
  if value == nil and err then return failed(err) end
  return value
end

-- The key's stamp lives under "~" and the key: the one place that says so.
local function stamp_of(key) return "~" .. key end

--- The name of key's stamp in the dict: a caller that reads the stamp
-- on every request keeps it, and hands it to stamp (no string made each time).
function Dict.stamp_name(_, key)
  return stamp_of(key)
end

function Dict:stamp(key, name)
  return self.dict:get(name or stamp_of(key))
end

-- A new stamp for key, after its value was written, without evicting:
-- true, or nil, err. The value first, then the stamp: a reader that sees the
-- new stamp must find the new value (it caches what it read under that stamp).
local function new_stamp(dict, key, ttl)
  local name = stamp_of(key)
  for _ = 1, 3 do
    if dict:incr(name, 1) then
      dict:expire(name, ttl)
      return true
    end
    local ok, err = dict:safe_add(name, 1, ttl)
    if ok then return true end
    if err ~= "exists" then return nil, err end -- else another worker made it between our two calls
  end
  return nil, "stamp contention"
end

local function holds(dict, options)
  return not options.lock or dict:get(options.lock) == options.token
end

-- Only over an existing key: the stamp must exist before and still after
-- the write (a delete removes the stamp first); else the write is undone.
local function replace(dict, key, value, ttl)
  local name = stamp_of(key)
  if not dict:get(name) then return false end
  local ok, err = dict:safe_set(key, value, ttl)
  if not ok then return failed(err) end
  if not dict:incr(name, 1) then -- deleted by another worker meanwhile
    dict:delete(key)
    return false
  end
  dict:expire(name, ttl)
  return true
end

--- key = value for ttl seconds (0: no expiry). options.exists: only if key
-- exists; options.lock and options.token: only while that lock is held by
-- token. Returns true, false (not written: absent, or the lock not held), or nil, err.
function Dict:set(key, value, ttl, options)
  local dict = self.dict
  ttl = ttl or 0
  if options and not holds(dict, options) then return false end
  if options and options.exists then return replace(dict, key, value, ttl) end
  local ok, err = dict:safe_set(key, value, ttl)
  if not ok then return failed(err) end
  ok, err = new_stamp(dict, key, ttl)
  if not ok then
    dict:delete(key)
    return failed(err)
  end
  return true
end

--- Deletes key (and its stamp). options.lock and options.token: only while that
-- lock is held by token (false otherwise).
function Dict:delete(key, options)
  if options and not holds(self.dict, options) then return false end
  self.dict:delete(stamp_of(key)) -- first: a concurrent "only if it exists" write then fails
  self.dict:delete(key)
  return true
end

function Dict:lock(key, ttl_ms)
  local token = ids.random_hex(16)
  local ok, err = self.dict:safe_add(key, token, ttl_ms / 1000)
  if ok then return token end
  if err == "exists" then return false end
  return failed(err)
end

function Dict:unlock(key, token)
  if self.dict:get(key) == token then self.dict:delete(key) end -- no yield between: atomic in the worker
  return true
end

function Dict:incr(key)
  local n = self.dict:incr(key, 1)
  if n then return n end
  local ok, err = self.dict:safe_add(key, 1)
  if ok then return 1 end
  if err == "exists" then return self.dict:incr(key, 1) end
  return failed(err)
end

--- Bytes left in the dict's free pages (`dict:free_space()`): what the gate exports.
function Dict:free_bytes()
  return self.dict:free_space()
end

--- The dict's size in bytes (`dict:capacity()`), for the log line of a full dict.
function Dict:capacity()
  return self.dict:capacity()
end

---------------------------------------------------------------------------
-- Indexes: a user's sessions with their creation times, one string per
-- index ("score member\n" lines), rewritten under a short lock because
-- workers are processes and a read-modify-write may otherwise interleave.

local function parse(text)
  local out = {}
  for score, member in (text or ""):gmatch("([^ \n]+) ([^\n]+)\n") do
    out[#out + 1] = { member = member, score = tonumber(score) }
  end
  table.sort(out, function(a, b) return a.score < b.score end)
  return out
end

local function serialize(list)
  local parts = {}
  for i, item in ipairs(list) do parts[i] = ("%.17g %s\n"):format(item.score, item.member) end
  return table.concat(parts)
end

-- Runs f(list) -> list|nil under the index's lock; writes what f returns.
local function rewrite(self, index_key, ttl, f)
  local lock = "~lock:" .. index_key
  local token
  for _ = 1, 200 do
    token = self:lock(lock, 1000)
    if token then break end
    if token == nil then return failed(FULL) end
    ngx.sleep(0.002)
  end
  if not token then return nil, "lua_shared_dict: index " .. index_key .. " stayed locked", "other" end
  local list = f(parse(self.dict:get(index_key)))
  local ok, err = true, nil
  if list and #list == 0 then
    self.dict:delete(index_key)
  elseif list then
    ok, err = self.dict:safe_set(index_key, serialize(list), ttl or self.dict:ttl(index_key) or 0)
  end
  self:unlock(lock, token)
  if not ok then return failed(err) end
  return true
end

--- Adds member with score (a creation time) to the index; members older than
-- ttl seconds (score < now - ttl) are dropped, and the index lives ttl seconds.
function Dict:add_member(index_key, member, score, ttl)
  local oldest = ttl and ttl > 0 and ngx.time() - ttl or -math.huge
  return rewrite(self, index_key, ttl or 0, function(list)
    local out = {}
    for _, item in ipairs(list) do
      if item.member ~= member and item.score >= oldest then out[#out + 1] = item end
    end
    out[#out + 1] = { member = member, score = score }
    table.sort(out, function(a, b) return a.score < b.score end)
    return out
  end)
end

--- The index's members, oldest first: { { member =, score = }, ... }.
function Dict:members(index_key)
  local text, err = self.dict:get(index_key)
  if text == nil and err then return failed(err) end
  return parse(text)
end

--- Removes member from the index.
function Dict:remove_member(index_key, member)
  return rewrite(self, index_key, nil, function(list)
    local out = {}
    for _, item in ipairs(list) do if item.member ~= member then out[#out + 1] = item end end
    return out
  end)
end

return function(config)
  local dict = ngx.shared[config.name]
  if not dict then error("tfauth.store: no lua_shared_dict named " .. tostring(config.name), 3) end
  return setmetatable({ dict = dict, name = config.name }, Dict)
end
