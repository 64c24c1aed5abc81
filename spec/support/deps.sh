#!/usr/bin/env bash
# deps.sh GROUP...: installs the Debian packages of the named groups that are
# missing (as root, with apt-get: one `apt-get update` first); otherwise names
# them and fails. Groups, by purpose:
#   build  compile tfauth for Lua 5.4 (`make`)
#   demo   run the reference backend and the quickstart (`make demo`: build + demo)
#   gate   nginx and LuaJIT for `make demo-gate` (build + demo + gate)
#   test   every suite of `make test` (build + demo + test)
#   bench  `make bench`, `make bench-peers` (with all of the above)
# Without arguments: all groups.
set -eu
declare -A group
group[build]="lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson pkg-config gcc make"
# The reference backend (FastAPI on uvicorn; it signs tokens with
# cryptography) and what with-backend.sh uses: curl, openssl (throwaway certificates).
group[demo]="python3-fastapi python3-uvicorn python3-jwt python3-cryptography curl openssl"
group[test]="lua-busted lua-resty-lrucache
  lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev luajit2 libluajit2-5.1-dev
  luarocks zip unzip git
  nginx libnginx-mod-http-lua lua-nginx-redis redis-server redis-sentinel redis-tools
  python3-jwcrypto python3-prometheus-client
  chromium chromium-driver python3-selenium libnss3-tools
  valgrind clang libclang-rt-14-dev
  lua-check lua-ldoc lua-markdown"
# (test, line by line: specs; every Lua; the install check and make dist; the
#  OpenResty path and its Redis stores (one server, TLS, Sentinel,
#  Cluster); the backend's JWKS and the gate's metrics; the browser journey;
#  memory checks and libFuzzer; lint and docs, LDoc under Lua 5.1 with
#  lua-markdown.)
# spec/oidc_spec.lua's OpenID Provider (oidc-provider from npm, spec/support/oidc.sh):
# Debian's nodejs and npm, each only when absent: a node from elsewhere
# (NodeSource's, which brings its own npm) conflicts with Debian's npm.
command -v node >/dev/null || group[test]+=" nodejs"
command -v npm >/dev/null || group[test]+=" npm"
# `make demo-gate`: nginx with the lua module, and the LuaJIT build it loads.
group[gate]="luajit2 libluajit2-5.1-dev nginx libnginx-mod-http-lua lua-resty-lrucache"
# `make bench` and `make bench-peers` (the gate's peers: HAProxy's jwt_verify,
# Apache with mod_auth_openidc).
group[bench]="wrk python3-requests haproxy apache2 libapache2-mod-auth-openidc"

[ $# -gt 0 ] || set -- build demo test bench
packages=()
for g in "$@"; do
  [ -n "${group[$g]+x}" ] || { echo "deps.sh: no group '$g' (build, demo, gate, test, bench)" >&2; exit 2; }
  read -r -a more <<<"$(echo ${group[$g]})"
  packages+=("${more[@]}")
done
# The browser suite's accessibility checker, axe-core from the npm registry
# (test only, pinned by spec/browser/package-lock.json): Debian's nodejs and
# npm only when node or npm are absent (any node >= 18 will do).
npm_wanted=""
for g in "$@"; do [ "$g" = test ] && npm_wanted=1; done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ -n "$npm_wanted" ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "tfauth: missing Debian packages (run as root, or install them): ${missing[*]}" >&2
    exit 1
  fi
  echo "tfauth: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -n "$npm_wanted" ]; then
  browser=$(cd "$(dirname "$0")/../browser" && pwd)
  # npm ci: exactly the lock file's versions and checksums; again only when the lock changed.
  if ! [ -f "$browser/node_modules/axe-core/axe.min.js" ] \
      || ! [ "$browser/node_modules/.tfauth-lock" -nt "$browser/package-lock.json" ]; then
    (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
      || { echo "tfauth: npm ci failed in spec/browser (axe-core)" >&2; exit 1; }
    touch "$browser/node_modules/.tfauth-lock"
  fi
fi
