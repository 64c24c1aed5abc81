#!/usr/bin/env bash
# rock-check.sh: installs tfauth as a user would, outside the checkout, into
# fresh luarocks trees, and runs a login cycle with each installed copy
# against the reference backend. Prints TAP.
#   - `luarocks make` of the scm rockspec from a copy of the checkout (Lua 5.4);
#   - `make dist`'s source rock, tfauth-<version>-1.src.rock, installed with
#     `luarocks install --deps-mode none ./tfauth-<version>-1.src.rock` from
#     a folder of its own, for Lua 5.4 and for LuaJIT (luarocks' Lua 5.1 with
#     LuaJIT's headers: the same ABI).
set -u
cd "$(dirname "$0")/../.."
root=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
version=$(sed -n 's/^#define TFAUTH_VERSION "\(.*\)"/\1/p' src/tfauth.h)
rock=tfauth-$version-1.src.rock
jit_inc=$(pkg-config --variable=includedir luajit 2>/dev/null || echo /usr/include)/luajit-2.1
[ -f "$jit_inc/luajit.h" ] || jit_inc=$(pkg-config --cflags-only-I luajit | sed 's/^-I//; s/ .*//')
echo "1..6"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { # what log
  n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$2"
}

# luarocks make builds in place: from a copy, so the checkout is left as it was.
mkdir -p "$work/make"
cp -r src lua tfauth-scm-1.rockspec "$work/make/"
if (cd "$work/make" && luarocks --lua-version 5.4 --tree "$work/tree-make" make --deps-mode none \
      tfauth-scm-1.rockspec) >"$work/make.log" 2>&1 \
   && [ -f "$work/tree-make/lib/lua/5.4/tfauth/core.so" ]; then
  ok "luarocks make tfauth-scm-1.rockspec installs tfauth.core and the Lua face (Lua 5.4)"
else
  notok "luarocks make tfauth-scm-1.rockspec failed" "$work/make.log"
fi

mkdir -p "$work/dist"
if bash spec/support/dist.sh "$work/dist" >"$work/dist.log" 2>&1 && [ -f "$work/dist/$rock" ] \
   && unzip -l "$work/dist/$rock" | grep -q "tfauth-$version-1.rockspec"; then
  ok "make dist writes $rock"
else
  notok "make dist did not write $rock" "$work/dist.log"
fi

# install TREE LUA-VERSION [VAR=VALUE...]: the source rock, from its own folder.
install() {
  local tree=$1 lv=$2
  shift 2
  (cd "$work/dist" && luarocks --lua-version "$lv" --tree "$tree" install --deps-mode none "./$rock" "$@") \
    >"$tree.log" 2>&1 && [ -f "$tree/lib/lua/$lv/tfauth/core.so" ]
}
if install "$work/tree-5.4" 5.4; then ok "luarocks install ./$rock (Lua 5.4)"
else notok "luarocks install ./$rock failed (Lua 5.4)" "$work/tree-5.4.log"; fi
if install "$work/tree-jit" 5.1 LUA_INCDIR="$jit_inc"; then ok "luarocks install ./$rock (LuaJIT, $jit_inc)"
else notok "luarocks install ./$rock failed (LuaJIT)" "$work/tree-jit.log"; fi

cat >"$work/use.lua" <<'LUA'
-- Run as: LUA use.lua TREE LUA-VERSION; prints "cycle ok" when all went well.
local tree, lv = arg[1], arg[2]
package.path = tree .. "/share/lua/" .. lv .. "/?.lua;" .. tree .. "/share/lua/" .. lv .. "/?/init.lua;" .. package.path
package.cpath = tree .. "/lib/lua/" .. lv .. "/?.so;" .. package.cpath
local tfauth = require "tfauth"
for _, name in ipairs { "tfauth", "tfauth.core" } do
  local where = package.searchpath(name, name == "tfauth" and package.path or package.cpath)
  assert(where and where:find(tree, 1, true) == 1, name .. " is not the installed copy: " .. tostring(where))
end
assert(tfauth.version == os.getenv("TFAUTH_VERSION"), "version " .. tostring(tfauth.version))
local client = tfauth.new { server_url = os.getenv("TFAUTH_TEST_URL") }
local t = client:login { user = "alice", password = "alice-Secret-1" }
t = client:refresh { refresh_token = t.refresh_token }
assert(next(client:logout { refresh_token = t.refresh_token }) == nil)
local ok, err = require("tfauth.safe").refresh { refresh_token = t.refresh_token }
assert(ok == nil and err.status == 400, tostring(err))
print("cycle ok " .. (rawget(_G, "jit") and jit.version or _VERSION))
LUA
cat >"$work/cycles.sh" <<'SH'
# One backend, each installed copy in turn, from outside the checkout.
cd "$WORK"
for run in "lua5.4 tree-make 5.4" "lua5.4 tree-5.4 5.4" "luajit tree-jit 5.1"; do
  set -- $run
  echo "== $1 $2"
  "$1" use.lua "$WORK/$2" "$3" 2>&1
done
SH
env -u LUA_PATH -u LUA_CPATH -u LUA_INIT WORK="$work" TFAUTH_VERSION="$version" TOANFNDTN_SERVER_URL= \
  bash "$root/spec/support/with-backend.sh" bash "$work/cycles.sh" >"$work/use.log" 2>&1
if [ "$(grep -c '^cycle ok' "$work/use.log")" -eq 3 ]; then
  ok "each installed copy runs login, refresh, logout from outside the checkout ($(grep '^cycle ok' "$work/use.log" | cut -d' ' -f3- | sort -u | paste -sd,))"
else
  notok "an installed copy failed its login cycle" "$work/use.log"
fi
# Every Lua module of the checkout is in the source rock's install (tfauth.gate, tfauth.jwks, ...).
tree=$work/tree-5.4
missing=$(cd "$root/lua" && for f in tfauth/*.lua; do
  [ "$f" = tfauth/init.lua ] && [ -f "$tree/share/lua/5.4/tfauth.lua" ] && continue
  [ -f "$tree/share/lua/5.4/$f" ] || echo "$f"
done)
if [ -z "$missing" ]; then ok "the source rock installs every module under lua/tfauth"
else n=$((n + 1)); echo "not ok $n - the source rock misses: $missing"; fi
