--- The gate's metrics, in its shared dict: summed over every worker by
-- construction. Every series is created at init (`safe_add`: never evicts
-- anything) and then only incremented in place; a series found missing was
-- evicted by another writer with `set`, and is said so in the error log.
-- @module tfauth.gate.metrics
local metrics = {}

local stores = require "tfauth.store"

local FAMILIES = {
  { name = "tfauth_gate_requests_total", type = "counter", help = "Requests judged by the gate.",
    labels = { { "outcome", { "allowed", "unauthenticated", "forbidden", "unavailable" } },
      { "via", { "session", "bearer", "none" } } } },
  { name = "tfauth_logins_total", type = "counter", help = "Sign-ins through the gate.",
    labels = { { "result", { "ok", "failed" } } } },
  { name = "tfauth_refreshes_total", type = "counter", help = "Session refreshes at the auth API.",
    labels = { { "result", { "ok", "failed" } } } },
  { name = "tfauth_jwks_fetches_total", type = "counter", help = "Fetches of the realm's key set.",
    labels = { { "result", { "ok", "failed" } } } },
  { name = "tfauth_gate_store_errors_total", type = "counter",
    help = "Errors of the session store, by kind (a fixed set).", labels = { { "kind", stores.ERROR_KINDS } } },
}

-- Refused bearer tokens, by reason: the C core's fixed set (src/jws.c,
-- REASONS), and "error" for a verification that failed otherwise (a bug, a
-- key set that cannot be built): never a value taken from the token.
metrics.BEARER_REASONS = { "malformed", "algorithm", "key", "signature", "expired", "not_yet_valid", "issuer",
  "type", "audience", "error" }
FAMILIES[#FAMILIES + 1] = { name = "tfauth_gate_bearer_refused_total", type = "counter",
  help = "Bearer tokens the gate refused, by reason.", labels = { { "reason", metrics.BEARER_REASONS } } }
-- The histograms: each labelled by one label of fixed values.
local HISTOGRAMS = {
  { name = "tfauth_api_request_duration_seconds", label = "operation", values = { "login", "refresh", "logout" },
    help = "Time taken by the auth API's operations, as the gate saw it.",
    buckets = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 } },
  { name = "tfauth_gate_store_duration_seconds", label = "operation", values = stores.OPERATIONS,
    help = "Time taken by the session store's operations (Redis; a shared dict's take microseconds).",
    buckets = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1 } },
}
local HISTOGRAM_OF = {}
for _, histogram in ipairs(HISTOGRAMS) do HISTOGRAM_OF[histogram.name] = histogram end

-- Every series of a family: name{label="value",...} for each combination.
local function series_of(family)
  local out = { "" }
  for _, label in ipairs(family.labels) do
    local next_out = {}
    for _, prefix in ipairs(out) do
      for _, value in ipairs(label[2]) do
        next_out[#next_out + 1] = prefix .. (prefix == "" and "" or ",") .. label[1] .. '="' .. value .. '"'
      end
    end
    out = next_out
  end
  for i, labels in ipairs(out) do out[i] = family.name .. "{" .. labels .. "}" end
  return out
end

local function bucket_key(histogram, value, i)
  local le = histogram.buckets[i] and tostring(histogram.buckets[i]) or "+Inf"
  return histogram.name .. "_bucket{" .. histogram.label .. '="' .. value .. '",le="' .. le .. '"}'
end

local function sum_key(histogram, value)
  return histogram.name .. "_sum{" .. histogram.label .. '="' .. value .. '"}'
end
local function count_key(histogram, value)
  return histogram.name .. "_count{" .. histogram.label .. '="' .. value .. '"}'
end

local function all_series()
  local out = {}
  for _, family in ipairs(FAMILIES) do
    for _, key in ipairs(series_of(family)) do out[#out + 1] = key end
  end
  for _, histogram in ipairs(HISTOGRAMS) do
    for _, value in ipairs(histogram.values) do
      for i = 1, #histogram.buckets + 1 do out[#out + 1] = bucket_key(histogram, value, i) end
      out[#out + 1] = sum_key(histogram, value)
      out[#out + 1] = count_key(histogram, value)
    end
  end
  return out
end

-- series name -> its key in the dict: "m", a tag of the whole list of
-- series, ":", the series' number. Short keys, because the dict hashes
-- (crc32) and compares the whole key on every incr, and a series' name is
-- ~60 bytes: ~500 instructions on every guarded request (callgrind). The
-- tag changes with the list, so counts the dict kept across a reload (it
-- outlives one) never land on another series after an upgrade: such an
-- upgrade starts the counters from zero, as a restart does (Prometheus
-- reads that as a counter reset), and the old keys stay in the dict until
-- nginx restarts (~100 of them, a few KB; not deleted at init, where the
-- workers of the old version may still be counting under them). A name
-- outside the list keeps a key of its own ("m:" and the name).
local DICT_KEY = setmetatable({}, { __index = function(t, name)
  local key = "m:" .. name
  t[name] = key
  return key
end })
do
  local names, tag = all_series(), 5381
  for _, name in ipairs(names) do
    for i = 1, #name do tag = (tag * 33 + name:byte(i)) % 4294967296 end -- djb2: a tag, not a secret
  end
  for i, name in ipairs(names) do DICT_KEY[name] = ("m%08x:%d"):format(tag, i) end
end

--- Creates every series at 0 in dict; nil, err when the dict is too small.
function metrics.create(dict)
  for _, key in ipairs(all_series()) do
    local ok, err = dict:safe_add(DICT_KEY[key], 0)
    if not ok and err ~= "exists" then return nil, err end
  end
  return true
end

--- Adds n (1) to the series `key`.
function metrics.count(state, key, n)
  local dict = state.dict
  local value, err = dict:incr(DICT_KEY[key], n or 1)
  if value then return end
  if err == "not found" then
    ngx.log(ngx.ERR, "tfauth: metric ", key, " was evicted from lua_shared_dict ", state.dict_name,
      " (another writer used set on a full dict): give it more memory")
    local ok, add_err = dict:safe_add(DICT_KEY[key], n or 1)
    if not ok and add_err ~= "exists" then ngx.log(ngx.ERR, "tfauth: metric ", key, " lost: ", add_err) end
    return
  end
  ngx.log(ngx.ERR, "tfauth: metric ", key, ": ", err)
end
local count = metrics.count

--- Records seconds in the histogram `name` under its label value.
function metrics.observe(state, name, value, seconds)
  local histogram = HISTOGRAM_OF[name]
  local slot = #histogram.buckets + 1
  for i, le in ipairs(histogram.buckets) do
    if seconds <= le then slot = i break end
  end
  count(state, bucket_key(histogram, value, slot)) -- stored per bucket; render makes them cumulative
  count(state, sum_key(histogram, value), seconds)
  count(state, count_key(histogram, value))
end

--- Runs f(...) under pcall, timing it as the auth API operation `operation`.
function metrics.timed(state, operation, f, ...)
  ngx.update_time()
  local started = ngx.now()
  local ok, result = pcall(f, ...)
  ngx.update_time()
  metrics.observe(state, "tfauth_api_request_duration_seconds", operation, ngx.now() - started)
  return ok, result
end

--- The store's observer: its errors by kind and the durations of its operations.
function metrics.store_observer(state)
  return {
    on_error = function(kind) count(state, 'tfauth_gate_store_errors_total{kind="' .. kind .. '"}') end,
    on_duration = function(operation, seconds)
      metrics.observe(state, "tfauth_gate_store_duration_seconds", operation, seconds)
    end,
  }
end

-- The hot path's series names, made once.
local OUTCOME_KEYS = {}
for _, result in ipairs(FAMILIES[1].labels[1][2]) do
  OUTCOME_KEYS[result] = {}
  for _, via in ipairs(FAMILIES[1].labels[2][2]) do
    OUTCOME_KEYS[result][via] = 'tfauth_gate_requests_total{outcome="' .. result .. '",via="' .. via .. '"}'
  end
end

--- Counts a judged request: outcome (allowed, ...) and via (session, bearer, none).
function metrics.outcome(state, result, via)
  count(state, OUTCOME_KEYS[result][via])
end

-- reason -> its series, made once; anything outside the fixed set counts as "error".
local REFUSED_KEYS = {}
for _, reason in ipairs(metrics.BEARER_REASONS) do
  REFUSED_KEYS[reason] = 'tfauth_gate_bearer_refused_total{reason="' .. reason .. '"}'
end

--- Counts a refused bearer token under its reason (one of BEARER_REASONS,
-- else "error").
function metrics.bearer_refused(state, reason)
  count(state, REFUSED_KEYS[reason] or REFUSED_KEYS.error)
end

--- A counter of a fixed result: ('tfauth_logins_total', 'ok') and the like.
function metrics.result(state, family, result)
  count(state, family .. '{result="' .. result .. '"}')
end

--- The Prometheus text (format 0.0.4) of every series.
function metrics.render(state)
  local dict, out = state.dict, {}
  local function value(key) return dict:get(DICT_KEY[key]) or 0 end
  for _, family in ipairs(FAMILIES) do
    out[#out + 1] = "# HELP " .. family.name .. " " .. family.help
    out[#out + 1] = "# TYPE " .. family.name .. " " .. family.type
    for _, key in ipairs(series_of(family)) do out[#out + 1] = key .. " " .. value(key) end
  end
  for _, histogram in ipairs(HISTOGRAMS) do
    out[#out + 1] = "# HELP " .. histogram.name .. " " .. histogram.help
    out[#out + 1] = "# TYPE " .. histogram.name .. " histogram"
    for _, label in ipairs(histogram.values) do
      local cumulative = 0
      for i = 1, #histogram.buckets + 1 do
        cumulative = cumulative + value(bucket_key(histogram, label, i))
        out[#out + 1] = bucket_key(histogram, label, i) .. " " .. cumulative
      end
      out[#out + 1] = sum_key(histogram, label) .. " " .. string.format("%.6f", value(sum_key(histogram, label)))
      out[#out + 1] = count_key(histogram, label) .. " " .. value(count_key(histogram, label))
    end
  end
  if state.store.free_bytes then -- a shared dict: what is left of it
    out[#out + 1] = "# HELP tfauth_gate_store_free_bytes Free bytes in the session store's lua_shared_dict."
    out[#out + 1] = "# TYPE tfauth_gate_store_free_bytes gauge"
    out[#out + 1] = "tfauth_gate_store_free_bytes " .. state.store:free_bytes()
  end
  return table.concat(out, "\n") .. "\n"
end

return metrics
