#!/usr/bin/env bash
# run.sh [CMD...]: the gate demo (`make demo-gate`). Run it under
# spec/support/with-backend.sh (which starts the reference backend: the auth
# API and the realm's issuer). Renders nginx.conf into a fresh folder, starts
# Debian's nginx with the lua module (2 workers, tfauth's LuaJIT build from
# `make jit`) on 127.0.0.1, prints where to go and whom to sign in as, then
#   - without CMD: runs until Ctrl-C;
#   - with CMD: runs it with TFAUTH_DEMO_URL (and TFAUTH_DEMO_PREFIX, nginx's
#     folder, logs in logs/) set, then stops, with CMD's exit status.
# TFAUTH_DEMO_PORT chooses the port (default 8080, or a free one if taken).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
backend=${TFAUTH_TEST_URL:?run it under spec/support/with-backend.sh (make demo-gate does)}
issuer=${TFAUTH_TEST_ISSUER:-$backend/realms/fndtn}
[ -f "$root/build/jit/tfauth/core.so" ] || { echo "build tfauth for LuaJIT first: make jit" >&2; exit 1; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port_free() { /usr/bin/python3 -c 'import socket, sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null; }
port=${TFAUTH_DEMO_PORT:-8080}
if ! port_free "$port"; then
  [ -n "${TFAUTH_DEMO_PORT:-}" ] && { echo "port $port is taken (TFAUTH_DEMO_PORT)" >&2; exit 1; }
  port=$(free_port)
fi
app_port=$(free_port)

prefix=$(mktemp -d)
mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
user=""; [ "$(id -u)" -eq 0 ] && user="user root;" # workers would otherwise drop to nobody
key=$(openssl rand -hex 32)
sed -e "s|@USER@|$user|; s|@PREFIX@|$prefix|g; s|@ROOT@|$root|g; s|@PORT@|$port|g; s|@APP_PORT@|$app_port|g" \
    -e "s|@BACKEND@|$backend|; s|@ISSUER@|$issuer|; s|@KEY@|$key|" "$here/nginx.conf" >"$prefix/conf/nginx.conf"

nginx -p "$prefix" -c conf/nginx.conf >"$prefix/logs/stderr.log" 2>&1 &
pid=$!
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$prefix"; }
trap stop EXIT
trap 'exit 130' INT TERM
url="http://127.0.0.1:$port"
for _ in $(seq 1 200); do
  curl -s -o /dev/null "$url/login" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "nginx did not start:" >&2; cat "$prefix"/logs/*.log >&2; exit 1; }
  sleep 0.05
done
curl -s -o /dev/null "$url/login" || { echo "nginx did not answer:" >&2; cat "$prefix"/logs/*.log >&2; exit 1; }

cat <<EOF

tfauth gate demo: nginx (2 workers) with tfauth.gate, on loopback
  open          $url/app/      (a protected page: any signed-in user)
                $url/admin/    (the admin page: realm role "admin" only)
  sign in as    admin / admin-Secret-3   (has the admin role)
                alice / alice-Secret-1   (no admin role: the admin page answers 403)
  account       $url/account/password (change password), $url/login/reset (forgot password),
                $url/logout (sign out), $url/reports/ (auth_request, admin only)
  metrics       $url/metrics   (Prometheus text; loopback only)
  bearer        TOKEN=\$(curl -s -H 'content-type: application/json' \\
                  -d '{"user":"alice","password":"alice-Secret-1"}' $backend/api/iam/login \\
                  | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
                curl -H "Authorization: Bearer \$TOKEN" $url/app/
  auth API      $backend (the reference backend; realm issuer $issuer)
  nginx logs    $prefix/logs/error.log
EOF

if [ $# -gt 0 ]; then
  export TFAUTH_DEMO_URL="$url" TFAUTH_DEMO_PREFIX="$prefix"
  set +e
  "$@"
  exit $?
fi
echo "Ctrl-C stops it."
wait "$pid"
