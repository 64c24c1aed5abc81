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

  # The worker's CPU time in ns (schedstat): per request, it does not depend
  # on what else the machine runs, as throughput does.
  worker_ns() { awk '{print $1}' "/proc/$(pgrep -n -P "$(cat "$prefix/nginx.pid")")/schedstat"; }
  # wrk -> "req/s p50_us p99_us non2xx active_req/s cpu_us_per_request"
  run_wrk() {
    local before after
    before=$(worker_ns)
    taskset -c 0 wrk -t1 -c8 -d"${SECONDS_EACH}s" --latency "$@" >"$prefix/wrk.out"
    after=$(worker_ns)
    awk -v cpu="$((after - before))" '
      function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
      function n(v) { if (v ~ /k$/) return v * 1000; if (v ~ /M$/) return v * 1000000; return v + 0 }
      /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) } /Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF }
      /^ +Req\/Sec/ { active = n($2) } / requests in / { count = $1 }
      END { printf "%s %.0f %.0f %d %.0f %.1f\n", rps, p50, p99, bad, active, cpu / 1000 / count }' "$prefix/wrk.out"
  }
  local out=$prefix/results
  run_wrk "$url/bare/" >/dev/null # warm up
  run_wrk -H "Cookie: $cookie" "$url/app/warm" >/dev/null
  run_wrk -H "Authorization: Bearer $token" "$url/app/warm" >/dev/null
  for round in $(seq 1 "$ROUNDS"); do # alternating, then medians: one run swings with the machine
    run_wrk "$url/bare/x" >>"$out.bare"
    run_wrk -H "Cookie: $cookie" "$url/bare/x" >>"$out.bare_cookie"
    run_wrk -H "Cookie: $cookie" "$url/app/x" >>"$out.session"
    run_wrk -H "Authorization: Bearer $token" "$url/bare/x" >>"$out.bare_bearer"
    run_wrk -H "Authorization: Bearer $token" "$url/app/x" >>"$out.bearer"
    # a fresh worker (empty token cache), then tokens it has never seen
    kill -HUP "$(cat "$prefix/nginx.pid")"
    sleep 1
    curl -fs -o /dev/null "$url/bare/"
    export TFAUTH_TOKENS="$tokens.fresh"
    # the thread stops when the tokens run out, wrk's clock does not: its
    # requests per second while running (Req/Sec) is the figure
    SECONDS_EACH=30 run_wrk -s bench/wrk-tokens.lua "$url/app/fresh" | awk '{ $1 = $5; print }' >>"$out.fresh"
  done
  local errors
  errors=$(curl -fs "$url/metrics" | awk '/^tfauth_gate_requests_total/ && !/outcome="allowed"/ { n += $2 } END { print n + 0 }')
  errors=$((errors + $(cat "$out".* | awk '{ n += $4 } END { print n + 0 }')))
  median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  col() { awk -v c="$2" '{print $c}' "$out.$1" | median; }
  local bare bare_cookie bare_bearer
  bare=$(col bare 1) bare_cookie=$(col bare_cookie 1) bare_bearer=$(col bare_bearer 1)
  printf '| request (1 worker, 8 connections) | req/s | p50 (µs) | p99 (µs) | guard cost | worker CPU per request (µs) | guard cost by CPU |\n|---|---:|---:|---:|---:|---:|---:|\n'
  for entry in "bare:bare location, no credentials:" "bare_cookie:bare location, with the session cookie:" \
               "session:guarded, session cookie:$bare_cookie" "bare_bearer:bare location, with the bearer token:" \
               "bearer:guarded, bearer token (verified once, cached):$bare_bearer" \
               "fresh:guarded, a bearer token never seen before (RSA verify):$bare_bearer"; do
    local name=${entry%%:*} rest=${entry#*:} rps
    local label=${rest%%:*} base=${rest#*:} base_cpu=""
    rps=$(col "$name" 1)
    case $name in session) base_cpu=$(col bare_cookie 6) ;; bearer|fresh) base_cpu=$(col bare_bearer 6) ;; esac
    printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$label" "$rps" "$(col "$name" 2)" "$(col "$name" 3)" \
      "$(awk -v r="$rps" -v b="$base" 'BEGIN { if (b == "") print "-"; else printf "%.1f%%", 100 * (1 - r / b) }')" \
      "$(col "$name" 6)" \
      "$(awk -v c="$(col "$name" 6)" -v b="$base_cpu" 'BEGIN { if (b == "") print "-"; else printf "%.1f%%", 100 * (1 - b / c) }')"
  done
  echo
  awk -v bc="$bare_cookie" -v bb="$bare_bearer" -v s="$(col session 1)" -v t="$(col bearer 1)" \
      -v cbc="$(col bare_cookie 6)" -v cbb="$(col bare_bearer 6)" -v cs_="$(col session 6)" -v ct_="$(col bearer 6)" \
      -v cf="$(col fresh 6)" 'BEGIN {
    cs = 100 * (1 - s / bc); ct = 100 * (1 - t / bb); ks = 100 * (1 - cbc / cs_); kt = 100 * (1 - cbb / ct_)
    printf "- guard cost, session cookie: %.1f%% of the bare location'"'"'s throughput (by worker CPU: %.1f%%; target < 15%%): %s\n", cs, ks, (cs < 15 || ks < 15 ? "met" : "MISSED")
    printf "- guard cost, bearer token, cached: %.1f%% (by worker CPU: %.1f%%; target < 15%%): %s\n", ct, kt, (ct < 15 || kt < 15 ? "met" : "MISSED")
    printf "- a first-seen bearer token costs the worker %.0f µs more than the same request unguarded (RS256 verify, claims, cache insert)\n", cf - cbb }'
  echo "- first-seen bearer tokens: $(col fresh 1) req/s while running, p99 $(col fresh 3) µs"
  echo "- requests refused or not answered 2xx during the run: $errors (must be 0)"
  echo "- medians of $ROUNDS alternating rounds, ${SECONDS_EACH} s each; first-seen: $((NFRESH - 65)) distinct tokens per round, the worker reloaded before (empty cache)"
  echo "- the guard cost compares requests carrying the same header (cookie or token) to the same location with and without the guard"
  kill "$(cat "$prefix/nginx.pid")"
  sleep 0.3
  rm -rf "$prefix" "$jar" "$tokens" "$tokens.fresh"
}
bash spec/support/with-backend.sh bash -c "$(declare -f inner); root=$root ROUNDS=$ROUNDS SECONDS_EACH=$SECONDS_EACH NFRESH=$NFRESH inner"
