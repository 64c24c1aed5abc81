#!/usr/bin/env bash
# run-tests.sh [SUITE...]: every suite (or those named), each against its own
# reference backend on a free loopback port. Suites report TAP; the busted
# suite runs under Lua 5.4, LuaJIT, 5.3, 5.2 and 5.1. The last line is the
# total, "N passed, N failed, N skipped", and the exit status is non-zero on
# any failure.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/?.lua;;"

# suite NAME COMMAND...: runs COMMAND (which prints TAP), keeps its report.
suite() {
  local name=$1 rc start=$SECONDS
  shift
  echo "== $name"
  "$@" >"$out/$name.tap" 2>&1
  rc=$?
  cat "$out/$name.tap"
  if [ $rc -ne 0 ] && ! grep -q '^not ok' "$out/$name.tap"; then
    echo "not ok - suite '$name' exited with status $rc" | tee -a "$out/$name.tap"
  fi
  echo "# $name: $(count "$out/$name.tap") ($((SECONDS - start)) s)"
}

count() { # TAP FILE...: "N passed, N failed, N skipped"; skips (busted's pending) apart
  local passed skipped failed
  passed=$(cat "$@" | grep '^ok ' | grep -vc '# SKIP')
  skipped=$(cat "$@" | grep '^ok ' | grep -c '# SKIP')
  failed=$(cat "$@" | grep -c '^not ok')
  echo "$passed passed, $failed failed, $skipped skipped"
}

busted_under() { # LUA CPATH-DIR [wrapper...]: the busted suite, against its own backend
  local lua=$1 dir=$2 tags=""
  shift 2
  # The nginx specs drive nginx (which loads the LuaJIT build) from outside:
  # once, from the Lua 5.4 suite, is enough. Specs tagged `once` (slow ones
  # that test no Lua-specific path) also run there only, and under ASan and
  # valgrind; every other spec runs under every Lua. Specs tagged `live`
  # (against a server of another project, started for them: oidc_spec's
  # OpenID Provider) run in the Lua 5.4 suite only: that server starts once
  # per make test.
  if [ "$dir" = build/5.4 ] && [ $# -eq 0 ]; then tags=""
  elif [ "$dir" = build/5.4 ] || [ "$dir" = build/asan ]; then tags="--exclude-tags=nginx,live"
  else tags="--exclude-tags=nginx,once,live"; fi
  env LUA_CPATH="$root/$dir/?.so;;" TFAUTH_TEST_LUA="$lua" \
    bash spec/support/with-backend.sh "$@" "$lua" /usr/bin/busted -o TAP $tags spec
}
asan_preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"

run() {
  case $1 in
    lua5.4) suite lua5.4 busted_under lua5.4 build/5.4 ;;
    luajit) suite luajit busted_under luajit build/jit ;;
    lua5.1|lua5.2|lua5.3) suite "$1" busted_under "$1" "build/${1#lua}" ;;
    luarocks) suite luarocks bash spec/support/rock-check.sh ;;
    examples) suite examples env LUA_CPATH="$root/build/5.4/?.so;;" \
                bash spec/support/with-backend.sh bash spec/support/examples.sh lua5.4 ;;
    # The real-browser journeys (headless Chromium): against `make demo-gate`,
    # and a planted cookie against the gate behind HTTPS (spec/browser/run.sh).
    browser) suite browser make -s --no-print-directory demo-gate \
               DEMO_CMD="bash spec/browser/run.sh" ;;
    # Leaks are valgrind's to find (zero definite leaks, below): LeakSanitizer's
    # tracer itself crashes now and then under ptrace-restricted sandboxes.
    asan) suite asan busted_under lua5.4 build/asan \
            env ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 LD_PRELOAD="$asan_preload" ;;
    valgrind) suite valgrind busted_under lua5.4 build/5.4 \
                valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 ;;
    fuzz) suite fuzz bash spec/support/fuzz.sh "${FUZZ_SECONDS:-20}" ;;
    lint) suite lint bash spec/support/lint.sh ;;
    docs) suite docs bash spec/support/docs.sh ;;
    endurance) suite endurance env LUA_CPATH="$root/build/5.4/?.so;;" \
                 bash bench/with-nginx.sh lua5.4 bench/endurance.lua ;;
    *) echo "run-tests.sh: no suite '$1'" >&2; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then
  set -- lint docs lua5.4 luajit lua5.3 lua5.2 lua5.1 luarocks examples browser asan valgrind fuzz endurance
fi
for name in "$@"; do run "$name"; done

summary=$(count "$out"/*.tap)
echo "$summary"
[[ $summary != *" 0 failed"* ]] && exit 1
[[ $summary != "0 passed"* ]]
