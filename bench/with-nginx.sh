#!/usr/bin/env bash
# with-nginx.sh CMD...: starts Debian's nginx from a temporary prefix on a
# free loopback port, answering the six auth endpoints with canned,
# contract-correct bodies (keep-alive on); runs CMD with TFAUTH_BENCH_URL
# set; stops nginx. Exits with CMD's status.
set -u
dir=$(mktemp -d)
mkdir -p "$dir/conf" "$dir/logs" "$dir/tmp"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=""; [ "$(id -u)" -eq 0 ] && user="user root;"
# A token as Keycloak shapes it (the values are dummies of realistic size).
jwt="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.$(head -c 300 /dev/zero | tr '\0' 'x').signature-signature-signature"
token="{\"access_token\":\"$jwt\",\"expires_in\":300,\"refresh_expires_in\":1800,\"refresh_token\":\"$jwt\",\"token_type\":\"Bearer\",\"id_token\":\"$jwt\",\"not-before-policy\":0,\"session_state\":\"7435b583-6da4-4306-8595-dc6a0fc1342c\",\"scope\":\"openid email profile\"}"
cat >"$dir/conf/nginx.conf" <<CONF
$user
worker_processes ${TFAUTH_NGINX_WORKERS:-1};
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  default_type application/json;
  server {
    listen 127.0.0.1:$port;
    location = /api/iam/login { return 200 '$token'; }
    location = /api/iam/refresh { return 200 '$token'; }
    location = /api/iam/logout { return 200 '{}'; }
    location = /api/iam/password/reset {
      if (\$arg_username = nobody) { return 404 '{"detail":"User not found"}'; }
      return 200 '{}';
    }
    location = /api/iam/password/change { return 200 '{}'; }
    location ~ ^/api/iam/admin/user/[^/]+/password\$ { return 200 '{}'; }
  }
}
CONF
# TFAUTH_NGINX_CPU pins nginx to one core (the benchmark puts clients on another).
pin=(); [ -n "${TFAUTH_NGINX_CPU:-}" ] && pin=(taskset -c "$TFAUTH_NGINX_CPU")
"${pin[@]}" nginx -p "$dir" -c conf/nginx.conf 2>"$dir/logs/start.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/api/iam/logout" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "nginx failed to start:" >&2; cat "$dir/logs/"*.log >&2; exit 1; }
  sleep 0.05
done
export TFAUTH_BENCH_URL="http://127.0.0.1:$port"
"$@"
