#!/usr/bin/env bash
# guard.sh: what tfauth.gate's guard costs, with wrk, one nginx worker
# (bench/gate-nginx.conf) pinned to core 1 and wrk to core 0, against the
# reference backend (auth API and realm). The same proxied location:
#   bare      no guard
#   session   guarded, a session cookie (session cached by the worker)
#   bearer    guarded, one bearer token (verified once, then cached)
#   fresh     guarded, a bearer token never seen before on every request
#             (RSA verification each time: distinct pre-minted tokens; the
#             worker is reloaded before each round so its cache starts empty)
# ROUNDS alternating rounds (default 5) of SECONDS each (default 2), 8
# connections; medians. Prints a table and the verdict on the < 15% target.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
ROUNDS=${ROUNDS:-5} SECONDS_EACH=${SECONDS_EACH:-2} NFRESH=${NFRESH:-6000}
inner() {
  local prefix port app_port jar tokens token cookie
  prefix=$(mktemp -d) jar=$(mktemp) tokens=$(mktemp)
  mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
  free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  port=$(free_port) app_port=$(free_port)
  user=""; [ "$(id -u)" -eq 0 ] && user="user root;"
  sed -e "s|@USER@|$user|; s|@PREFIX@|$prefix|g; s|@ROOT@|$root|g; s|@PORT@|$port|; s|@APP_PORT@|$app_port|g" \
      -e "s|@BACKEND@|$TFAUTH_TEST_URL|; s|@ISSUER@|$TFAUTH_TEST_ISSUER|; s|@KEY@|$(openssl rand -hex 32)|" \
      bench/gate-nginx.conf >"$prefix/conf/nginx.conf"
  # nginx on core 1, wrk on core 0 (the reference backend idles meanwhile)
  taskset -c 1 nginx -p "$prefix" -c conf/nginx.conf >"$prefix/logs/stderr.log" 2>&1 &
  local url="http://127.0.0.1:$port"
  for _ in $(seq 1 200); do curl -fs -o /dev/null "$url/bare/" 2>/dev/null && break; sleep 0.05; done
  curl -fs -o /dev/null "$url/bare/" || { cat "$prefix"/logs/*.log >&2; exit 1; }

  curl -fs -c "$jar" -d 'user=alice&password=alice-Secret-1' "$url/login" >/dev/null
  cookie=$(awk '$6 == "tfauth_sid" || $6 == "__Host-tfauth" {print $6 "=" $7}' "$jar")
  /usr/bin/python3 bench/mint_tokens.py "$TFAUTH_TEST_URL" "$TFAUTH_TEST_ISSUER" "$NFRESH" "$tokens"
  token=$(head -1 "$tokens")
  # Every door answers the application's page before anything is measured.
  reaches() { # door, curl arguments...
    local door=$1
    shift
    [ "$(curl -fs "$@")" = "hello from the application" ] || { echo "guard.sh: $door did not reach the application" >&2; exit 1; }
  }
  reaches bare "$url/bare/"
  reaches session -H "Cookie: $cookie" "$url/app/"
  reaches bearer -H "Authorization: Bearer $token" "$url/app/"
  tail -n +2 "$tokens" >"$tokens.fresh" # the first token is the cached one

  # wrk -> "req/s p50_us p99_us"
  run_wrk() {
    taskset -c 0 wrk -t1 -c8 -d"${SECONDS_EACH}s" --latency "$@" | awk '
      function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
      /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF }
      END { printf "%s %.0f %.0f %d\n", rps, p50, p99, bad }'
  }
  local out=$prefix/results
  run_wrk "$url/bare/" >/dev/null # warm up
  run_wrk -H "Cookie: $cookie" "$url/app/warm" >/dev/null
  run_wrk -H "Authorization: Bearer $token" "$url/app/warm" >/dev/null
  for round in $(seq 1 "$ROUNDS"); do # alternating, then medians: one run swings with the machine
    run_wrk "$url/bare/x" >>"$out.bare"
    run_wrk -H "Cookie: $cookie" "$url/app/x" >>"$out.session"
    run_wrk -H "Authorization: Bearer $token" "$url/app/x" >>"$out.bearer"
    # a fresh worker (empty token cache), then tokens it has never seen
    kill -HUP "$(cat "$prefix/nginx.pid")"
    sleep 1
    curl -fs -o /dev/null "$url/bare/"
    export TFAUTH_TOKENS="$tokens.fresh"
    SECONDS_EACH=30 run_wrk -s bench/wrk-tokens.lua "$url/app/fresh" >>"$out.fresh"
  done
  local errors
  errors=$(curl -fs "$url/metrics" | awk '/^tfauth_gate_requests_total/ && !/outcome="allowed"/ { n += $2 } END { print n + 0 }')
  errors=$((errors + $(cat "$out".* | awk '{ n += $4 } END { print n + 0 }')))
  median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  col() { awk -v c="$2" '{print $c}' "$out.$1" | median; }
  local bare
  bare=$(col bare 1)
  printf '| door (1 worker, 8 connections) | req/s | p50 (µs) | p99 (µs) | cost vs bare |\n|---|---:|---:|---:|---:|\n'
  for entry in "bare:bare proxied location" "session:guarded, session cookie" "bearer:guarded, bearer (cached verification)" \
               "fresh:guarded, bearer seen for the first time (RSA verify)"; do
    local name=${entry%%:*} label=${entry#*:} rps
    rps=$(col "$name" 1)
    printf '| %s | %.0f | %s | %s | %s |\n' "$label" "$rps" "$(col "$name" 2)" "$(col "$name" 3)" \
      "$(awk -v r="$rps" -v b="$bare" -v n="$name" 'BEGIN { if (n == "bare") print "-"; else printf "%.1f%%", 100 * (1 - r / b) }')"
  done
  echo
  awk -v b="$bare" -v s="$(col session 1)" -v t="$(col bearer 1)" 'BEGIN {
    cs = 100 * (1 - s / b); ct = 100 * (1 - t / b)
    printf "- guard cost, session cookie: %.1f%% (target < 15%%): %s\n", cs, (cs < 15 ? "met" : "MISSED")
    printf "- guard cost, bearer (cached): %.1f%% (target < 15%%): %s\n", ct, (ct < 15 ? "met" : "MISSED") }'
  echo "- requests refused or not answered 2xx during the run: $errors (must be 0)"
  echo "- medians of $ROUNDS alternating rounds; bare, session and bearer ${SECONDS_EACH} s each; first-seen: $((NFRESH - 65)) distinct tokens per round"
  kill "$(cat "$prefix/nginx.pid")"
  sleep 0.3
  rm -rf "$prefix" "$jar" "$tokens" "$tokens.fresh"
}
bash spec/support/with-backend.sh bash -c "$(declare -f inner); root=$root ROUNDS=$ROUNDS SECONDS_EACH=$SECONDS_EACH NFRESH=$NFRESH inner"
