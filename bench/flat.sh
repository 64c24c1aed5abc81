#!/usr/bin/env bash
# bench/flat.sh: `make bench-flat`. bench/flat.lua at N = 20,000 and 100,000
# under LuaJIT and Lua 5.4 (build/jit, build/5.4). The tokens are minted once
# into build/flat/ (bench/flat_tokens.py) and kept for later runs.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
dir=build/flat
max=100000
mkdir -p "$dir"
if [ "$(wc -l <"$dir/flat.tokens" 2>/dev/null || echo 0)" -lt "$max" ]; then
  echo "minting $max tokens into $dir (once)"
  /usr/bin/python3 bench/flat_tokens.py "$dir" "$max"
fi
for n in ${FLAT_N:-20000 100000}; do
  LUA_CPATH="$root/build/jit/?.so;;" luajit bench/flat.lua "$dir/flat.jwks" "$dir/flat.tokens" "$n"
  LUA_CPATH="$root/build/5.4/?.so;;" lua5.4 bench/flat.lua "$dir/flat.jwks" "$dir/flat.tokens" "$n"
done
