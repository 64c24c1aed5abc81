-- /t/store: runs store methods inside nginx (cosockets) for the store specs.
-- Body: { config = {...}, ops = { { "set", "k", "v", 60, { exists = true } }, ... },
-- fresh = true (a new store object, not the worker's cached one) }.
-- Answer: { results = { { res, err, kind }, ... }, errors = { kind = n }, durations = { operation = n },
-- pid = worker pid }.
local cjson = require "cjson.safe"
local store = require "tfauth.store"

local probe = {}
local cached = {}   -- per worker, by config: a Sentinel store keeps what it learnt
local errors, durations = {}, {}

-- The observer, also kept as Prometheus series in the shared dict (summed
-- over the workers), the way the gate's metrics() exports them.
local BUCKETS = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1 }
local function count(key, n)
  local dict = ngx.shared.tfauth_gate
  if not dict:incr(key, n or 1) then dict:safe_add(key, n or 1) end
end
local observer = {
  on_error = function(kind)
    errors[kind] = (errors[kind] or 0) + 1
    count("t:errors:" .. kind)
  end,
  on_duration = function(operation, seconds)
    assert(seconds >= 0 and seconds < 60)
    durations[operation] = (durations[operation] or 0) + 1
    for _, le in ipairs(BUCKETS) do if seconds <= le then count("t:bucket:" .. operation .. ":" .. le) end end
    count("t:count:" .. operation)
    count("t:sum:" .. operation, seconds)
  end,
}

--- /t/store/metrics: the store's series in Prometheus's text format.
function probe.metrics()
  local dict, out = ngx.shared.tfauth_gate, {}
  out[#out + 1] = "# TYPE tfauth_gate_store_errors_total counter"
  for _, kind in ipairs(store.ERROR_KINDS) do
    out[#out + 1] = ('tfauth_gate_store_errors_total{kind="%s"} %d'):format(kind, dict:get("t:errors:" .. kind) or 0)
  end
  out[#out + 1] = "# TYPE tfauth_gate_store_duration_seconds histogram"
  for _, op in ipairs(store.OPERATIONS) do
    local name = "tfauth_gate_store_duration_seconds"
    for _, le in ipairs(BUCKETS) do
      out[#out + 1] = ('%s_bucket{operation="%s",le="%s"} %d'):format(name, op, le,
        dict:get("t:bucket:" .. op .. ":" .. le) or 0)
    end
    local n = dict:get("t:count:" .. op) or 0
    out[#out + 1] = ('%s_bucket{operation="%s",le="+Inf"} %d'):format(name, op, n)
    out[#out + 1] = ('%s_sum{operation="%s"} %.6f'):format(name, op, dict:get("t:sum:" .. op) or 0)
    out[#out + 1] = ('%s_count{operation="%s"} %d'):format(name, op, n)
  end
  ngx.header["Content-Type"] = "text/plain; version=0.0.4"
  ngx.say(table.concat(out, "\n"))
end

local function store_of(config, fresh)
  local name = cjson.encode(config)
  if fresh or not cached[name] then cached[name] = store.new(config, observer) end
  return cached[name]
end

function probe.run()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if not data and ngx.req.get_body_file() then -- a big body went to a file
    local file = assert(io.open(ngx.req.get_body_file(), "rb"))
    data = file:read("*a")
    file:close()
  end
  local body = cjson.decode(data or "") or {}
  errors, durations = {}, {}
  local ok, s = pcall(store_of, body.config, body.fresh)
  if not ok then
    ngx.say(cjson.encode { raised = tostring(s), field = type(s) == "table" and s.field or nil })
    return
  end
  local results = {}
  for i, op in ipairs(body.ops or {}) do
    if op[1] == "sleep" then
      ngx.sleep(op[2])
      results[i] = {}
    elseif op[1] == "slot" then -- the cluster's hash slot of a stored key
      results[i] = { res = require("tfauth.store.cluster").slot(op[2]) }
    else
      local method = s[op[1]]
      local args = { unpack(op, 2) }
      local n = #op - 1
      for j = 1, n do
        if args[j] == cjson.null then args[j] = nil end
        if type(args[j]) == "table" and args[j].x then args[j] = ("x"):rep(args[j].x) end -- a big value
      end
      local res, err, kind = method(s, unpack(args, 1, n))
      results[i] = { res = res == nil and cjson.null or res, err = err, kind = kind }
    end
  end
  ngx.say(cjson.encode { results = results, errors = errors, durations = durations, pid = ngx.worker.pid() })
end

return probe
