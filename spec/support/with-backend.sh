#!/usr/bin/env bash
# with-backend.sh CMD...: makes throwaway certificates (make-certs.sh), starts
# the reference backend with all its listeners on free loopback ports, runs CMD
# with these set, stops the backend, and exits with CMD's status:
#   TOANFNDTN_SERVER_URL, TFAUTH_TEST_URL  http://127.0.0.1:PORT   (main)
#   TFAUTH_TEST_ISSUER                     http://127.0.0.1:PORT/realms/fndtn (the realm; tokens carry it)
#   TFAUTH_TEST_TLS_ISSUER                 https://localhost:PORT/realms/fndtn (the same realm on tls)
#   TFAUTH_TEST_OTHER_URL                  http://127.0.0.1:PORT   (a second origin)
#   TFAUTH_TEST_TLS_URL                    https://localhost:PORT  (server.pem)
#   TFAUTH_TEST_MTLS_URL                   https://localhost:PORT  (client cert required)
#   TFAUTH_TEST_WRONGHOST_URL              https://localhost:PORT  (cert for wrong.example)
#   TFAUTH_TEST_CERTS                      the certificate directory (ca.pem, client.pem, ...)
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$dir"; }
trap cleanup EXIT
bash "$here/make-certs.sh" "$dir/certs" || { echo "could not make test certificates" >&2; exit 1; }
/usr/bin/python3 "$here/../backend/backend.py" --port-file "$dir/port" --tls-dir "$dir/certs" \
  >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  [ -s "$dir/port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "reference backend failed to start:" >&2; cat "$dir/log" >&2; exit 1; }
  sleep 0.05
done
[ -s "$dir/port" ] || { echo "reference backend did not start in time" >&2; exit 1; }
# the port file is a JSON object: {"main": PORT, "other": PORT, "tls": PORT, ...}
read -r main other tls mtls wronghost < <(/usr/bin/python3 -c '
import json, sys
ports = json.load(open(sys.argv[1]))
print(*(ports[name] for name in ("main", "other", "tls", "mtls", "wronghost")))
' "$dir/port") || { echo "unreadable port file: $(cat "$dir/port")" >&2; exit 1; }
url="http://127.0.0.1:$main"
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null -X POST "$url/_test/reset" 2>/dev/null && break
  sleep 0.05
done
export TOANFNDTN_SERVER_URL="$url" TFAUTH_TEST_URL="$url"
export TFAUTH_TEST_ISSUER="$url/realms/fndtn"
export TFAUTH_TEST_TLS_ISSUER="https://localhost:$tls/realms/fndtn"
export TFAUTH_TEST_OTHER_URL="http://127.0.0.1:$other"
export TFAUTH_TEST_TLS_URL="https://localhost:$tls"
export TFAUTH_TEST_MTLS_URL="https://localhost:$mtls"
export TFAUTH_TEST_WRONGHOST_URL="https://localhost:$wronghost"
export TFAUTH_TEST_CERTS="$dir/certs"
"$@"
