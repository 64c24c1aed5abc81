#!/usr/bin/env bash
# lint.sh: luacheck (per .luacheckrc) over lua/, spec/, examples/, bench/,
# and the C sources compiled for Lua 5.4 and LuaJIT with -Wall -Wextra
# -Werror. Prints TAP.
set -u
cd "$(dirname "$0")/../.."
echo "1..4"
out=$(luacheck --no-color --formatter plain lua spec examples bench 2>&1)
if [ $? -eq 0 ]; then echo "ok 1 - luacheck: lua/ spec/ examples/ bench/ clean"
else echo "not ok 1 - luacheck"; echo "$out" | sed 's/^/# /'; fi
n=2
# The fuzz harness is built for Lua 5.4 only.
for target in "lua5.4 src/*.c fuzz/*.c" "luajit src/*.c"; do
  set -- $target
  inc=$(pkg-config --cflags "$1")
  shift
  out=$(cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror -fsyntax-only \
          $inc $(pkg-config --cflags libcurl) "$@" 2>&1)
  if [ $? -eq 0 ]; then echo "ok $n - cc -Wall -Wextra -Werror ($inc)"
  else echo "not ok $n - cc -Wall -Wextra -Werror ($inc)"; echo "$out" | sed 's/^/# /'; fi
  n=$((n + 1))
done
# luarocks builds only what the rockspec names: every C source must be there.
missing=$(for f in src/*.c; do grep -q "\"$f\"" tfauth-scm-1.rockspec || echo "$f"; done)
if [ -z "$missing" ]; then echo "ok 4 - the rockspec lists every src/*.c"
else echo "not ok 4 - the rockspec misses: $missing"; fi
