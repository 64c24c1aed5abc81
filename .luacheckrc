-- luacheck: tfauth's Lua face, specs and examples.
std = "max"            -- Lua 5.1 to 5.4 and LuaJIT alike
max_line_length = 120
globals = {}
-- OpenResty, where tfauth runs inside nginx: ngx.var, ngx.ctx, ngx.header
-- and ngx.status are written.
read_globals = {
  ngx = { other_fields = true, fields = {
    var = { read_only = false, other_fields = true },
    ctx = { read_only = false, other_fields = true },
    header = { read_only = false, other_fields = true },
    status = { read_only = false },
  } },
}

files["spec/"] = { std = "+busted", max_line_length = 130 } -- tables of cases read better whole
files["bench/"] = { std = "max" }
