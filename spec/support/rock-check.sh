#!/usr/bin/env bash
# rock-check.sh: installs tfauth with luarocks into a private tree, then uses
# that copy from a script outside the checkout, against the reference
# backend. Prints TAP.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
tree=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$tree" "$work"' EXIT
echo "1..3"
# Built from a copy, so the checkout is left as it was (luarocks builds in place).
mkdir -p "$work/src"
cp -r src lua tfauth-scm-1.rockspec "$work/src/"
if (cd "$work/src" && luarocks --lua-version 5.4 --tree "$tree" make --deps-mode none tfauth-scm-1.rockspec) >"$work/install.log" 2>&1 \
   && [ -f "$tree/lib/lua/5.4/tfauth/core.so" ]; then
  echo "ok 1 - luarocks make installs tfauth.core, tfauth and tfauth.safe"
else
  echo "not ok 1 - luarocks make failed"; sed 's/^/# /' "$work/install.log"; exit 1
fi
cat >"$work/use.lua" <<'LUA'
local tfauth = require "tfauth"
assert(package.searchpath("tfauth.core", package.cpath):find(os.getenv("TREE"), 1, true), "not the installed copy")
local client = tfauth.new { server_url = os.getenv("TFAUTH_TEST_URL") }
local t = client:login { user = "alice", password = "alice-Secret-1" }
t = client:refresh { refresh_token = t.refresh_token }
assert(next(client:logout { refresh_token = t.refresh_token }) == nil)
local ok, err = require("tfauth.safe").refresh { refresh_token = t.refresh_token }
assert(ok == nil and err.status == 400, tostring(err))
print("cycle ok")
LUA
cd "$work"
if env -u LUA_PATH -u LUA_CPATH TREE="$tree" \
     LUA_PATH="$tree/share/lua/5.4/?.lua;$tree/share/lua/5.4/?/init.lua;;" \
     LUA_CPATH="$tree/lib/lua/5.4/?.so;;" TOANFNDTN_SERVER_URL= \
     bash "$root/spec/support/with-backend.sh" lua5.4 "$work/use.lua" >"$work/use.log" 2>&1 \
   && grep -q "cycle ok" "$work/use.log"; then
  echo "ok 2 - the installed copy runs login, refresh, logout from outside the checkout"
else
  echo "not ok 2 - the installed copy failed"; sed 's/^/# /' "$work/use.log"; exit 1
fi
# Every Lua module of the checkout is installed (tfauth.gate, tfauth.jwks, ...).
missing=$(cd "$root/lua" && for f in tfauth/*.lua; do
  [ "$f" = tfauth/init.lua ] && f=tfauth/init.lua && [ -f "$tree/share/lua/5.4/tfauth.lua" ] && continue
  [ -f "$tree/share/lua/5.4/$f" ] || echo "$f"
done)
if [ -z "$missing" ]; then echo "ok 3 - the rock installs every module under lua/tfauth"
else echo "not ok 3 - the rock misses: $missing"; fi
