-- lua-deps.lua LAYERS FILE...: the Lua dependency graph from the requires of
-- FILEs (lua/tfauth/**.lua), checked against LAYERS (spec/support/layers.txt):
-- every require of a tfauth module points to the same layer or below, or is
-- a listed exception; no cycle. Prints one line per problem; exits 1 on any.
local layers_file = arg[1]
local layer_of, patterns, exceptions, rank = {}, {}, {}, 0
for line in io.lines(layers_file) do
  local from, to = line:match("^except%s+(%S+)%s*%->%s*([^:%s]+)%s*:%s*%S")
  if from then
    exceptions[from .. " -> " .. to] = true
  elseif not line:find("^%s*#") and line:find("%S") then
    rank = rank + 1
    for name in line:gmatch("%S+") do
      if name ~= line:match("^(%S+)") then
        if name:sub(-2) == ".*" then patterns[#patterns + 1] = { name:sub(1, -2), rank } else layer_of[name] = rank end
      end
    end
  end
end

local function layer(module)
  if layer_of[module] then return layer_of[module] end
  for _, p in ipairs(patterns) do
    if module:sub(1, #p[1]) == p[1] then return p[2] end
  end
end

-- lua/tfauth/gate/init.lua -> tfauth.gate
local function module_of(path)
  return (path:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", "."))
end

local edges, problems = {}, {}
for i = 2, #arg do
  local path = arg[i]
  local from = module_of(path)
  if not layer(from) then problems[#problems + 1] = from .. " (" .. path .. ") is in no layer of " .. layers_file end
  local text = assert(io.open(path)):read("*a")
  for to in text:gmatch("require%s*%(?%s*[\"'](tfauth[%w_.]*)[\"']") do
    if to ~= from then
      edges[#edges + 1] = { from, to }
      local lf, lt = layer(from), layer(to)
      if not lt then
        problems[#problems + 1] = path .. " requires " .. to .. ", which is in no layer"
      elseif lf and lt > lf and not exceptions[from .. " -> " .. to] then
        problems[#problems + 1] = path .. ": " .. from .. " -> " .. to .. " points up (layer " .. lf .. " -> " .. lt
          .. "); invert it, or list it with its reason in " .. layers_file
      end
    end
  end
end

-- A cycle: depth-first search over the edges.
local next_of = {}
for _, e in ipairs(edges) do
  next_of[e[1]] = next_of[e[1]] or {}
  next_of[e[1]][e[2]] = true
end
local colour, path = {}, {}
local function visit(m)
  colour[m] = "grey"
  path[#path + 1] = m
  for n in pairs(next_of[m] or {}) do
    if colour[n] == "grey" then
      local at
      for k, v in ipairs(path) do if v == n then at = k end end
      problems[#problems + 1] = "cycle: " .. table.concat(path, " -> ", at) .. " -> " .. n
    elseif not colour[n] then
      visit(n)
    end
  end
  path[#path] = nil
  colour[m] = "black"
end
local names = {}
for m in pairs(next_of) do names[#names + 1] = m end
table.sort(names)
for _, m in ipairs(names) do if not colour[m] then visit(m) end end

for _, p in ipairs(problems) do print(p) end
print(("%d modules' requires, %d edges"):format(#arg - 1, #edges))
os.exit(#problems == 0 and 0 or 1)
