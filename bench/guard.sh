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
  # nginx on core 1, wrk on core 0 (the reference backend is idle meanwhile)
  taskset -c 1 examples/nginx/run.sh "$prefix" "$TFAUTH_TEST_URL" "" 1 30 "$root/bench/nginx-open.conf" >/dev/null 2>&1 &
  for _ in $(seq 1 100); do [ -s "$prefix/port" ] && curl -fs "http://127.0.0.1:$(cat "$prefix/port")/ping" >/dev/null 2>&1 && break; sleep 0.05; done
  port=$(cat "$prefix/port")
  curl -fs -c "$jar" -d 'user=alice&password=alice-Secret-1' "http://127.0.0.1:$port/login" >/dev/null
  cookie=$(awk '$6 == "tfauth_sid" {print "tfauth_sid=" $7}' "$jar")
  rps() { taskset -c 0 wrk -t1 -c8 -d2s -H "Cookie: $cookie" "http://127.0.0.1:$port$1" | awk '/Requests\/sec/ {print $2}'; }
  rps /app/warm >/dev/null
  median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  local opens="" guardeds="" empties="" i
  for i in 1 2 3 4 5; do # alternating, then medians: one run swings with the machine
    opens="$opens $(rps /open/x)"
    guardeds="$guardeds $(rps /app/x)"
    empties="$empties $(rps /empty/x)"
  done
  open=$(echo $opens | tr ' ' '\n' | median) guarded=$(echo $guardeds | tr ' ' '\n' | median)
  empty=$(echo $empties | tr ' ' '\n' | median)
  awk -v o="$open" -v g="$guarded" -v e="$empty" 'BEGIN {
    printf "nginx guard (wrk, 1 worker, 8 connections, medians of 5, pinned): no guard %.0f req/s; guarded, session cached %.0f req/s;", o, g
    printf " the guard costs %.1f%% of throughput (target < 20%%);", 100 * (1 - g / o)
    printf " an empty access_by_lua handler alone costs %.1f%% (%.0f req/s)\n", 100 * (1 - e / o), e }'
  kill "$(cat "$prefix/nginx.pid")"
  rm -rf "$prefix" "$jar"
}
bash spec/support/with-backend.sh bash -c "$(declare -f inner); root=$root inner"
