#!/usr/bin/env bash
# run-tests.sh: every suite, each against its own reference backend on a
# free loopback port. Suites report TAP; the last line is the total,
# "N passed, N failed", and the exit status is non-zero on any failure.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/?.lua;;"
broken=0 # suites that failed without saying which test

# suite NAME COMMAND...: runs COMMAND (which prints TAP), keeps its report.
suite() {
  local name=$1 rc
  shift
  echo "== $name"
  "$@" >"$out/$name.tap" 2>&1
  rc=$?
  cat "$out/$name.tap"
  if [ $rc -ne 0 ] && ! grep -q '^not ok' "$out/$name.tap"; then
    echo "not ok - suite '$name' exited with status $rc" | tee -a "$out/$name.tap"
  fi
}

suite lua5.4 env LUA_CPATH="$root/build/5.4/?.so;;" TFAUTH_TEST_LUA=lua5.4 \
  bash spec/support/with-backend.sh lua5.4 /usr/bin/busted -o TAP spec
suite luajit env LUA_CPATH="$root/build/jit/?.so;;" TFAUTH_TEST_LUA=luajit \
  bash spec/support/with-backend.sh luajit /usr/bin/busted -o TAP spec
suite luarocks bash spec/support/rock-check.sh
suite examples env LUA_CPATH="$root/build/5.4/?.so;;" \
  bash spec/support/with-backend.sh bash spec/support/examples.sh lua5.4

passed=$(cat "$out"/*.tap | grep '^ok ' | grep -vc '# SKIP')
skipped=$(cat "$out"/*.tap | grep '^ok ' | grep -c '# SKIP')
failed=$(cat "$out"/*.tap | grep -c '^not ok')
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
