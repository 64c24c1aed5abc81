#!/usr/bin/env bash
# ldoc.sh ARGS...: LDoc, always under Lua 5.1. Debian's ldoc starts through
# lua-any, which picks Lua 5.2 whenever lua5.2 is installed; lua-markdown
# exists only for 5.1, so the reference would then render without markdown.
# One interpreter, whatever else the machine has: the same doc/ everywhere.
set -eu
ldoc=$(command -v ldoc) || { echo "ldoc.sh: ldoc not found (Debian: lua-ldoc)" >&2; exit 1; }
command -v lua5.1 >/dev/null || { echo "ldoc.sh: lua5.1 not found (Debian: lua5.1)" >&2; exit 1; }
exec env -u LUA_PATH -u LUA_PATH_5_1 -u LUA_CPATH -u LUA_INIT lua5.1 "$ldoc" "$@"
