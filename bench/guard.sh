#!/usr/bin/env bash
# guard.sh: requests per second of the example auth hook's guard for an
# authenticated request (session cached in the shared dict) versus the same
# location with no guard, with wrk, one nginx worker.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
inner() {
  local prefix jar port
  prefix=$(mktemp -d)
  jar=$(mktemp)
  examples/nginx/run.sh "$prefix" "$TFAUTH_TEST_URL" "" 1 30 "$root/bench/nginx-open.conf" >/dev/null 2>&1 &
  for _ in $(seq 1 100); do [ -s "$prefix/port" ] && curl -fs "http://127.0.0.1:$(cat "$prefix/port")/ping" >/dev/null 2>&1 && break; sleep 0.05; done
  port=$(cat "$prefix/port")
  curl -fs -c "$jar" -d 'user=alice&password=alice-Secret-1' "http://127.0.0.1:$port/login" >/dev/null
  cookie=$(awk '$6 == "tfauth_sid" {print "tfauth_sid=" $7}' "$jar")
  rps() { wrk -t1 -c8 -d3s -H "Cookie: $cookie" "http://127.0.0.1:$port$1" | awk '/Requests\/sec/ {print $2}'; }
  rps /app/warm >/dev/null
  open=$(rps /open/x) guarded=$(rps /app/x)
  awk -v o="$open" -v g="$guarded" 'BEGIN {
    printf "nginx guard (wrk, 1 worker, 8 connections): no guard %.0f req/s; guarded, session cached %.0f req/s;", o, g
    printf " the guard costs %.1f%% of throughput (target < 20%%)\n", 100 * (1 - g / o) }'
  kill "$(cat "$prefix/nginx.pid")"
  rm -rf "$prefix" "$jar"
}
bash spec/support/with-backend.sh bash -c "$(declare -f inner); root=$root inner"
