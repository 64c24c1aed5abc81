#!/usr/bin/env bash
# run.sh PREFIX BACKEND_URL [PORT] [WORKERS] [SKEW] [EXTRA_CONF_FILE] [EXTRA_LUA_DIR]
# Renders nginx.conf into PREFIX (a fresh folder) and runs Debian's nginx
# with the lua module in the foreground, on 127.0.0.1:PORT (default: a free
# port, written to PREFIX/port). tfauth's LuaJIT build (make jit) is used.
# Settings from the environment:
#   TFAUTH_REDIS=HOST:PORT     sessions on Redis (default: the shared dict)
#   TFAUTH_STORE='{ ... }'     the whole store table (overrides TFAUTH_REDIS: Sentinel, Cluster, TLS)
#   TFAUTH_SEAL_KEYS=hex,hex   sealing keys, newest first
#   TFAUTH_ISSUER=URL          accept Authorization: Bearer tokens of this realm
#   TFAUTH_AUDIENCE=aud        their audience (default fndtn-api)
#   TFAUTH_BEARER='{ ... }'    the whole bearer table, any number of lines (overrides the two above)
#   TFAUTH_SECURE=true|false   the cookie's Secure flag (default false: plain http on loopback)
#   TFAUTH_COOKIE='{ ... }'     the whole cookie table (overrides TFAUTH_SECURE)
#   TFAUTH_PUBLIC_ORIGIN=URL   the origin cross-site checks compare with
#   TFAUTH_CA_FILE=path        CAs trusted for the auth API (default: the system's bundle)
#   TFAUTH_RESOLVER=ADDR[:PORT] nginx's resolver, for a server_url that names a host
#   TFAUTH_LOGIN_RATE=5r/s TFAUTH_LOGIN_BURST=10   limit_req on POST /login
#   TFAUTH_HANDOFF=headers     the guard's hand-off by ngx.req.set_header (default: the variables)
#   TFAUTH_IDENTITY_HANDOFF=variables  the identity headers through nginx variables too
#   TFAUTH_SESSION='{ ... }'   the gate's session table (max_per_user, idle_timeout, max_lifetime)
#   TFAUTH_SESSIONS_SIZE=10m   the size of the tfauth_sessions lua_shared_dict
#   TFAUTH_LOG_LEVEL=warn      the error log's level (info: refused bearer tokens, duplicate cookies)
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
[ -n "${TFAUTH_STORE:-}" ] && store="$TFAUTH_STORE"
keys=""
for k in $(echo "${TFAUTH_SEAL_KEYS:-}" | tr ',' ' '); do keys="$keys\"$k\", "; done
bearer=""
if [ -n "${TFAUTH_ISSUER:-}" ]; then
  bearer="bearer = { issuer = \"$TFAUTH_ISSUER\", audience = \"${TFAUTH_AUDIENCE:-fndtn-api}\", leeway = 30 },"
fi
if [ -n "${TFAUTH_BEARER:-}" ]; then
  # escaped for sed's replacement: \ | & as themselves, each newline as \n
  bearer=$(printf 'bearer = %s,' "$TFAUTH_BEARER" | sed -e 's/[\\|&]/\\&/g' -e 's/$/\\n/' | tr -d '\n')
fi
session=""; [ -n "${TFAUTH_SESSION:-}" ] && session="session = $TFAUTH_SESSION,"
origin=""; [ -n "${TFAUTH_PUBLIC_ORIGIN:-}" ] && origin="public_origin = \"$TFAUTH_PUBLIC_ORIGIN\","
handoff="variables"; [ -n "${TFAUTH_HANDOFF:-}" ] && handoff=$TFAUTH_HANDOFF
# identity_handoff = "variables": the four variables declared at the server
# level and passed by every guarded location (after its Authorization line)
identity=""
if [ "${TFAUTH_IDENTITY_HANDOFF:-}" = variables ]; then
  identity='s|^\( *\)handoff = "\(.*\)",$|&\n\1identity_handoff = "variables",|'
  for v in user:User email:Email roles:Roles subject:Subject; do
    identity="$identity; s|^\( *\)set \$tfauth_cookie \$http_cookie;|&\n\1set \$tfauth_${v%%:*} \"\";|"
    identity="$identity; s|^\( *\)proxy_set_header Authorization \$tfauth_authorization;|&\n\1proxy_set_header X-Auth-Request-${v#*:} \$tfauth_${v%%:*};|"
  done
fi
resolver=""; [ -n "${TFAUTH_RESOLVER:-}" ] && resolver="resolver $TFAUTH_RESOLVER ipv6=off;"
cookie=""
[ -n "${TFAUTH_COOKIE:-}" ] && cookie="s|cookie = { secure = @SECURE@, same_site = \"Lax\" }|cookie = $TFAUTH_COOKIE|"
sed -e "$cookie" -e "$identity" \
    -e "s|@USER@|$user|; s|@WORKERS@|$workers|; s|@PREFIX@|$prefix|g; s|@PORT@|$port|" \
    -e "s|@BACKEND@|$backend|; s|@ROOT@|$root|g; s|@SKEW@|$skew|; s|@EXTRA_CONF@|$include|" \
    -e "s|@EXTRA_LUA@|$lua_extra|; s|@STORE@|$store|; s|@KEYS@|$keys|; s|@BEARER@|$bearer|" \
    -e "s|@SECURE@|${TFAUTH_SECURE:-false}|; s|@PUBLIC_ORIGIN@|$origin $session|; s|@RESOLVER@|$resolver|; s|@HANDOFF@|$handoff|" \
    -e "s|@CA_FILE@|${TFAUTH_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}|" \
    -e "s|@LOGIN_RATE@|${TFAUTH_LOGIN_RATE:-5r/s}|; s|@LOGIN_BURST@|${TFAUTH_LOGIN_BURST:-10}|" \
    -e "s|^\(error_log .*\) warn;\$|\1 ${TFAUTH_LOG_LEVEL:-warn};|" \
    -e "s|lua_shared_dict tfauth_sessions 10m;|lua_shared_dict tfauth_sessions ${TFAUTH_SESSIONS_SIZE:-10m};|" \
    "$here/nginx.conf" >"$prefix/conf/nginx.conf"
echo "$port" >"$prefix/port"
exec nginx -p "$prefix" -c conf/nginx.conf
