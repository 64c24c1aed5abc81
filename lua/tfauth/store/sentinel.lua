-- Redis behind Sentinel: the master is asked of the sentinels (the first
-- that answers), each new connection checks ROLE is master, and a failover
-- seen by an operation (READONLY, NOREPLICAS, a refused connection, ROLE not
-- master) makes the next operation ask again. A graceful SENTINEL FAILOVER
-- shows none of those for seconds (the old master stays writable until it
-- is reconfigured, and what is written there is then lost), so the master's
-- address is also re-checked at most once a second per worker. Asking is
-- rate-limited (10 a second per worker), so a failover does not make every
-- request ask. A new master bumps the pool's epoch: connections pooled to
-- the old one are never handed out again (they close when idle).
local connection = require "tfauth.store.connection"

local RECHECK = 1      -- seconds between re-checks of a known master
local ASK_EVERY = 0.1  -- seconds between askings while no master is known

local Sentinel = {}
Sentinel.__index = Sentinel

-- Asks the sentinels in turn; the first that answers names the master.
local function ask(self)
  local last_err, last_kind = "no sentinel answered", "connect"
  for i, node in ipairs(self.sentinels) do
    local addr, err, kind = connection.run(self.sentinel_options, node, function(red)
      return red:sentinel("get-master-addr-by-name", self.master_name)
    end)
    if type(addr) == "table" then
      if i > 1 then table.insert(self.sentinels, 1, table.remove(self.sentinels, i)) end -- ask it first next time
      return { host = addr[1], port = tonumber(addr[2]) }
    end
    if addr == ngx.null then
      err, kind = ("sentinel %s:%d does not know master %s"):format(node.host, node.port, self.master_name), "other"
    end
    last_err, last_kind = err, kind
  end
  return nil, "redis sentinels: " .. tostring(last_err), last_kind
end

-- The master: known and checked within RECHECK, else asked (rate-limited).
function Sentinel:master()
  local now = ngx.now()
  if self.node and now - self.checked < RECHECK then return self.node end
  if not self.node and self.asked and now - self.asked < ASK_EVERY then
    return nil, self.ask_err or "redis sentinels: no master known for " .. self.master_name, self.ask_kind or "connect"
  end
  self.asked = now
  local node, err, kind = ask(self)
  if not node then
    self.ask_err, self.ask_kind = err, kind
    if self.node then return self.node end -- the sentinels are unreachable: keep the master we know
    return nil, err, kind
  end
  if not self.node or self.node.host ~= node.host or self.node.port ~= node.port then
    if self.node then
      ngx.log(ngx.WARN, "tfauth: redis master ", self.master_name, " is now ", node.host, ":", node.port,
        " (was ", self.node.host, ":", self.node.port, ")")
    end
    self.epoch = self.epoch + 1
    self.options.epoch = self.epoch
    self.node = node
  end
  self.checked, self.ask_err, self.ask_kind = now, nil, nil
  return node
end

local FAILOVER = { readonly = true, connect = true }

function Sentinel:run(_, f)
  local res, err, kind
  for attempt = 1, 2 do
    local node, merr, mkind = self:master()
    if not node then
      if attempt == 2 then return nil, err, kind end -- the operation's own error names the failover
      return nil, merr, mkind
    end
    res, err, kind = connection.run(self.options, node, f)
    if not (res == nil and err) or not FAILOVER[kind] then return res, err, kind end
    self.node = nil -- ask again: once now, then rate-limited
  end
  return nil, err, kind
end

local sentinel = {}

--- The router of a Sentinel-managed master (config: sentinels, master_name,
-- sentinel_username, sentinel_password, tls).
function sentinel.new(config, options)
  options.role = "master"
  options.epoch = 0
  local sentinels = {}
  for i, node in ipairs(config.sentinels) do sentinels[i] = { host = node.host, port = node.port } end
  return setmetatable({
    options = options, sentinels = sentinels, master_name = config.master_name, epoch = 0, checked = 0,
    sentinel_options = {
      pool_id = options.pool_id, sentinel = true, tls = config.tls,
      username = config.sentinel_username, password = config.sentinel_password,
      timeout_ms = options.timeout_ms, connect_timeout_ms = options.connect_timeout_ms,
      pool_size = options.pool_size, keepalive_ms = options.keepalive_ms,
    },
  }, Sentinel)
end

return sentinel
