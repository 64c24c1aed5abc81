#!/usr/bin/env bash
# run.sh PREFIX BACKEND_URL [PORT] [WORKERS] [SKEW] [EXTRA_CONF_FILE] [EXTRA_LUA_DIR]
# Renders nginx.conf into PREFIX (a fresh folder) and runs Debian's nginx
# with the lua module in the foreground, on 127.0.0.1:PORT (default: a free
# port, written to PREFIX/port). tfauth's LuaJIT build (make jit) is used.
# The session store: the shared dict, or Redis with TFAUTH_REDIS=HOST:PORT;
# sealing keys: TFAUTH_SEAL_KEYS (hex, comma-separated, newest first).
# https to the auth API: the CAs trusted are TFAUTH_CA_FILE (default: the
# system bundle), host names resolved by TFAUTH_RESOLVER (nginx's `resolver`,
# e.g. "127.0.0.53"; needed when server_url names a host).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=$1 backend=$2
port=${3:-$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
workers=${4:-2} skew=${5:-30} extra_conf=${6:-} extra_lua=${7:-}
mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
user=""; [ "$(id -u)" -eq 0 ] && user="user root;" # workers would otherwise drop to nobody
include=""; [ -n "$extra_conf" ] && include="include $extra_conf;"
lua_extra=""; [ -n "$extra_lua" ] && lua_extra="$extra_lua/?.lua"
store='{ kind = "shared_dict", name = "tfauth_sessions" }'
if [ -n "${TFAUTH_REDIS:-}" ]; then
  store="{ kind = \"redis\", host = \"${TFAUTH_REDIS%:*}\", port = ${TFAUTH_REDIS##*:} }"
fi
keys=""
for k in $(echo "${TFAUTH_SEAL_KEYS:-}" | tr ',' ' '); do keys="$keys\"$k\", "; done
ca_file=${TFAUTH_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}
resolver=""; [ -n "${TFAUTH_RESOLVER:-}" ] && resolver="resolver $TFAUTH_RESOLVER ipv6=off;"
sed -e "s|@CA_FILE@|$ca_file|; s|@RESOLVER@|$resolver|" -e "s|@USER@|$user|; s|@WORKERS@|$workers|; s|@PREFIX@|$prefix|g; s|@PORT@|$port|" \
    -e "s|@BACKEND@|$backend|; s|@ROOT@|$root|g; s|@SKEW@|$skew|; s|@EXTRA_CONF@|$include|" \
    -e "s|@EXTRA_LUA@|$lua_extra|; s|@STORE@|$store|; s|@KEYS@|$keys|" "$here/nginx.conf" >"$prefix/conf/nginx.conf"
echo "$port" >"$prefix/port"
exec nginx -p "$prefix" -c conf/nginx.conf
