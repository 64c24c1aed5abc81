-- rss.lua: the resident set size of this process, in KiB (bench scripts).
return function()
  local f = assert(io.open("/proc/self/status"))
  local kib
  for line in f:lines() do kib = kib or tonumber(line:match("^VmRSS:%s+(%d+)")) end
  f:close()
  return kib
end
