#!/usr/bin/env bash
# with-backend.sh CMD...: starts the reference backend on a free loopback
# port, runs CMD with TOANFNDTN_SERVER_URL and TFAUTH_TEST_URL pointing at
# it, stops the backend, and exits with CMD's status.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
/usr/bin/python3 "$here/../backend/backend.py" --port-file "$dir/port" >"$dir/log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 1 200); do
  [ -s "$dir/port" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "reference backend failed to start:" >&2; cat "$dir/log" >&2; exit 1; }
  sleep 0.05
done
[ -s "$dir/port" ] || { echo "reference backend did not start in time" >&2; exit 1; }
url="http://127.0.0.1:$(cat "$dir/port")"
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null -X POST "$url/_test/reset" 2>/dev/null && break
  sleep 0.05
done
export TOANFNDTN_SERVER_URL="$url" TFAUTH_TEST_URL="$url"
"$@"
