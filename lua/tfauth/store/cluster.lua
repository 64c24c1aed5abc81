-- Redis Cluster routing (Debian's lua-nginx-redis speaks no cluster
-- protocol): a key's hash slot (CRC16 of its hash tag, modulo 16384), the
-- slot map read with CLUSTER SLOTS at first use and again on MOVED or a
-- lost node (at most five times a second per worker), MOVED and ASK
-- followed. Every operation of the store touches one slot (a session and
-- its lock share theirs through a hash tag), so no command spans nodes.
-- With TLS, nodes are announced by IP: every one is verified against
-- tls.server_name.
local connection = require "tfauth.store.connection"
local bit = require "bit" -- LuaJIT's (the store runs inside nginx)

local band, bxor, lshift, rshift = bit.band, bit.bxor, bit.lshift, bit.rshift

local SLOTS = 16384
local REREAD = 0.2    -- seconds between two reads of the slot map
local REDIRECTS = 5   -- MOVED / ASK / lost node: tries per operation

local cluster = {}

-- CRC16-CCITT (XMODEM), the one Redis Cluster uses, table-driven.
local CRC = {}
for i = 0, 255 do
  local crc = lshift(i, 8)
  for _ = 1, 8 do
    if band(crc, 0x8000) ~= 0 then crc = bxor(lshift(crc, 1), 0x1021) else crc = lshift(crc, 1) end
  end
  CRC[i] = band(crc, 0xffff)
end

--- CRC16 of s (XMODEM): `crc16("123456789") == 0x31C3`.
function cluster.crc16(s)
  local crc = 0
  for i = 1, #s do
    crc = band(bxor(lshift(crc, 8), CRC[bxor(band(rshift(crc, 8), 0xff), s:byte(i))]), 0xffff)
  end
  return crc
end

--- The hash slot of a key: of its hash tag when it has a non-empty one ({...}).
function cluster.slot(key)
  local open = key:find("{", 1, true)
  if open then
    local close = key:find("}", open + 1, true)
    if close and close > open + 1 then key = key:sub(open + 1, close - 1) end
  end
  return cluster.crc16(key) % SLOTS
end

local Cluster = {}
Cluster.__index = Cluster

-- One table per node address, so the map holds few distinct tables.
local function node_of(self, host, port)
  local name = host .. ":" .. port
  local node = self.nodes[name]
  if not node then
    node = { host = host, port = port }
    self.nodes[name] = node
  end
  return node
end

-- Reads CLUSTER SLOTS from the first node that answers (known nodes, then seeds).
local function read_map(self)
  local now = ngx.now()
  if self.read_at and now - self.read_at < REREAD then return self.map ~= nil end
  self.read_at = now
  local candidates = {}
  for _, node in pairs(self.nodes) do candidates[#candidates + 1] = node end
  for _, node in ipairs(self.seeds) do candidates[#candidates + 1] = node end
  for _, node in ipairs(candidates) do
    local ranges = connection.run(self.options, node, function(red) return red:cluster("slots") end)
    if type(ranges) == "table" and #ranges > 0 then
      local map = {}
      for _, range in ipairs(ranges) do
        local master = node_of(self, range[3][1], tonumber(range[3][2]))
        for slot = tonumber(range[1]), tonumber(range[2]) do map[slot] = master end
      end
      self.map = map
      return true
    end
  end
  return self.map ~= nil
end

-- "MOVED 3999 127.0.0.1:6381" -> slot, node
local function redirect(self, raw)
  local slot, host, port = tostring(raw):match("^%u+ (%d+) (.+):(%d+)$")
  if not slot then return nil end
  return tonumber(slot), node_of(self, host, tonumber(port))
end

local function asking(f)
  return function(red)
    local ok, err = red:asking()
    if not ok then return ok, err end
    return f(red)
  end
end

--- Runs f(red) on the node that holds key's slot: f's result, or nil, err, kind.
function Cluster:run(key, f)
  if not self.map then read_map(self) end
  local slot = cluster.slot(key)
  local node = self.map and self.map[slot] or self.seeds[1]
  local run = f
  local res, err, kind, raw
  for _ = 1, REDIRECTS do
    res, err, kind, raw = connection.run(self.options, node, run)
    if not (res == nil and err) then return res, err, kind end
    local word = tostring(raw):match("^(%u+) ")
    if word == "MOVED" then
      local moved_slot, target = redirect(self, raw)
      if not moved_slot then return nil, err, kind end
      if self.map then self.map[moved_slot] = target end
      read_map(self) -- a resharding moves many slots: read them all (rate-limited)
      node, run = target, f
    elseif word == "ASK" then
      local _, target = redirect(self, raw)
      if not target then return nil, err, kind end
      node, run = target, asking(f)
    elseif kind == "connect" or kind == "readonly" or kind == "timeout" then
      -- A lost master (or one turned replica): its replica takes over once promoted.
      if kind == "timeout" then return nil, err, kind end
      if not read_map(self) then return nil, err, kind end
      local next_node = self.map and self.map[slot]
      if not next_node or next_node == node then return nil, err, kind end
      node, run = next_node, f
    else
      return nil, err, kind
    end
  end
  return nil, err, kind
end

--- The router of a cluster (config.cluster: seed nodes).
function cluster.new(config, options)
  local seeds = {}
  for i, node in ipairs(config.cluster) do seeds[i] = { host = node.host, port = node.port } end
  return setmetatable({ options = options, seeds = seeds, nodes = {} }, Cluster)
end

return cluster
