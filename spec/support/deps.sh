#!/usr/bin/env bash
# deps.sh: installs the Debian packages tfauth's build, tests and demo need,
# when any is missing. As root it uses apt-get; otherwise it names them.
set -eu
packages=(
  lua5.4 liblua5.4-dev libcurl4-openssl-dev libssl-dev lua-cjson           # build
  lua-busted luarocks                                                      # tests
  luajit2 libluajit2-5.1-dev                                               # LuaJIT build
  nginx libnginx-mod-http-lua lua-nginx-redis redis-server                 # OpenResty path
  python3-fastapi python3-uvicorn python3-jwt python3-cryptography         # reference backend
  curl openssl pkg-config gcc make valgrind clang libclang-rt-14-dev       # test tooling
  lua-check lua-ldoc lua-markdown                                          # lint, docs
  wrk python3-requests                                                     # make bench
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "tfauth: missing Debian packages (run as root, or install them): ${missing[*]}" >&2
  exit 1
fi
echo "tfauth: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
