-- luacheck: tfauth's Lua face, specs and examples.
std = "max"            -- Lua 5.1 to 5.4 and LuaJIT alike
max_line_length = 120
globals = {}
read_globals = { "ngx" } -- OpenResty, where tfauth runs inside nginx

files["spec/"] = { std = "+busted", max_line_length = 130 } -- tables of cases read better whole
files["bench/"] = { std = "max" }
