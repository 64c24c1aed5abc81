#!/usr/bin/env bash
# peers.sh (`make bench-peers`): tfauth.gate against its peers, side by side,
# on the same RS256 tokens and key (one realm, bench/peers/mint.py):
#   gate     nginx + tfauth.gate, bearer mode, error_log at warn (bench/peers/nginx.conf)
#   haproxy  HAProxy 2.6, jwt_verify and http-request rules (bench/peers/haproxy.cfg)
#   apache   Apache 2.4 + mod_auth_openidc, OAuth 2.0 resource server (bench/peers/apache.conf)
# Each checks the signature, alg, exp, iss, aud and typ (proved before the
# rounds: a valid token is let through, one token per check is refused),
# and answers the same static 27 bytes; each also serves them unguarded
# (/bare/, the baseline). Every server runs on core SERVER_CPU (1), wrk on
# CLIENT_CPU (0); only one is loaded at a time. For each server, five cases:
#   bare    the same request (same token) to the unguarded answer
#   same    one valid token on every request
#   fresh   a new valid token on every request (bench/peers/rotate.lua going
#           round NTOKENS distinct tokens, more than the gate caches)
#   badsig  one token with a bad signature on every request (the gate's
#           keyset remembers the signatures it refused: a retried bad token)
#   badsigs a new bad signature on every request (NTOKENS distinct ones,
#           more than the gate remembers: each costs the public-key operation)
# ROUNDS alternating rounds (7) of wrk -t1 -cCONNECTIONS(16) -dSECONDS_EACH(5)s,
# every server and case in each; medians of req/s, p99 and the server's CPU
# per request (utime + stime of its processes from /proc/<pid>/stat over the
# round, divided by the requests wrk counted). Prints a Markdown table.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
ROUNDS=${ROUNDS:-7} SECONDS_EACH=${SECONDS_EACH:-5} CONNECTIONS=${CONNECTIONS:-16} NTOKENS=${NTOKENS:-20000}
SERVER_CPU=${SERVER_CPU:-1} CLIENT_CPU=${CLIENT_CPU:-0}
ISSUER=https://kc.example/realms/bench AUDIENCE=fndtn-api
SERVERS="gate haproxy apache" CASES="bare same fresh badsig badsigs"
for tool in nginx haproxy apache2 wrk taskset; do
  command -v "$tool" >/dev/null || { echo "peers.sh: $tool is missing (make deps: the bench group)" >&2; exit 1; }
done
[ -e build/jit/tfauth/core.so ] || { echo "peers.sh: build/jit/tfauth/core.so is missing (make jit)" >&2; exit 1; }

prefix=$(mktemp -d)
chmod 755 "$prefix" # Apache's children run as www-data
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$prefix"
}
trap cleanup EXIT
mkdir -p "$prefix/logs" "$prefix/tmp" "$prefix/conf" "$prefix/www/app" "$prefix/www/bare" "$prefix/results"
for f in hello.txt app/hello.txt bare/hello.txt; do echo "hello from the application" >"$prefix/www/$f"; done

echo "peers.sh: minting $NTOKENS tokens" >&2
keys=$prefix/keys
/usr/bin/python3 bench/peers/mint.py "$keys" "$NTOKENS" "$ISSUER" "$AUDIENCE"
chmod -R a+rX "$keys"
token=$(head -1 "$keys/tokens.txt") bad=$(cat "$keys/bad_sig.txt")

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A port pid
for s in $SERVERS; do port[$s]=$(free_port); done
nginx_user="" apache_user=""
[ "$(id -u)" -eq 0 ] && nginx_user="user root;" apache_user="User www-data\nGroup www-data"
render() { # template server
  sed -e "s|@PREFIX@|$prefix|g; s|@ROOT@|$root|g; s|@KEYS@|$keys|g; s|@PORT@|${port[$2]}|g" \
      -e "s|@ISSUER@|$ISSUER|g; s|@AUDIENCE@|$AUDIENCE|g; s|@KEY@|$(openssl rand -hex 32)|" \
      -e "s|@USER@|$([ "$2" = apache ] && echo "$apache_user" || echo "$nginx_user")|" "$1"
}
render bench/peers/nginx.conf gate >"$prefix/conf/nginx.conf"
render bench/peers/haproxy.cfg haproxy >"$prefix/conf/haproxy.cfg"
render bench/peers/apache.conf apache >"$prefix/conf/apache.conf"

taskset -c "$SERVER_CPU" nginx -p "$prefix" -c conf/nginx.conf >"$prefix/logs/nginx-stderr.log" 2>&1 &
pid[gate]=$!
pids+=("$!")
taskset -c "$SERVER_CPU" haproxy -db -f "$prefix/conf/haproxy.cfg" >"$prefix/logs/haproxy.log" 2>&1 &
pid[haproxy]=$!
pids+=("$!")
taskset -c "$SERVER_CPU" apache2 -f "$prefix/conf/apache.conf" -DFOREGROUND >"$prefix/logs/apache-stderr.log" 2>&1 &
pid[apache]=$!
pids+=("$!")

url() { echo "http://127.0.0.1:${port[$1]}/$2/hello.txt"; }
status() { # server token [door]: the HTTP status of one request
  curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "$(url "$1" "${3:-app}")"
}
for s in $SERVERS; do
  for _ in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$(url "$s" bare)")" = 200 ] && break
    kill -0 "${pid[$s]}" 2>/dev/null || break
    sleep 0.1
  done
  [ "$(status "$s" "$token" bare)" = 200 ] || { echo "peers.sh: $s did not start" >&2; cat "$prefix"/logs/* >&2; exit 1; }
done

# Each guard checks what the gate checks: a valid token passes, each of
# these is refused with 401; otherwise the comparison would be unfair.
for s in $SERVERS; do
  [ "$(status "$s" "$token")" = 200 ] || { echo "peers.sh: $s refused a valid token" >&2; exit 1; }
  for _ in 1 2; do # the second time, the gate's keyset remembers it
    [ "$(status "$s" "$bad")" = 401 ] || { echo "peers.sh: $s did not refuse a bad signature" >&2; exit 1; }
  done
  for f in "$keys"/refused/*.txt; do
    [ "$(status "$s" "$(cat "$f")")" = 401 ] || { echo "peers.sh: $s did not refuse $(basename "$f" .txt)" >&2; exit 1; }
  done
done
echo "peers.sh: each guard lets a valid token through and refuses a bad signature, $(ls "$keys/refused" | sed 's/\.txt$//' | tr '\n' ' ')" >&2

# The CPU time (clock ticks) of a server: its process, its reaped children
# and its live children (nginx's worker, Apache's child); threads included.
server_ticks() {
  local p total=0 main=1
  for p in "$1" $(pgrep -P "$1" || true); do
    # the fields after the command's closing parenthesis: utime is the 12th,
    # then stime, cutime, cstime (reaped children: the main process only)
    [ -r "/proc/$p/stat" ] && total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk -v main=$main '{ print $12 + $13 + (main ? $14 + $15 : 0) }')))
    main=0
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)
declare -A offset
for s in $SERVERS; do offset[$s]=0; done
# run server case -> "req/s p99_us cpu_us_per_request requests non2xx errors"
run() {
  local s=$1 case=$2 before after args=()
  case $case in
    bare) args=(-H "Authorization: Bearer $token" "$(url "$s" bare)") ;;
    same) args=(-H "Authorization: Bearer $token" "$(url "$s" app)") ;;
    badsig) args=(-H "Authorization: Bearer $bad" "$(url "$s" app)") ;;
    fresh | badsigs) args=(-s bench/peers/rotate.lua "$(url "$s" app)") ;;
  esac
  local tokens=$keys/tokens.txt
  [ "$case" = badsigs ] && tokens=$keys/bad_sigs.txt
  before=$(server_ticks "${pid[$s]}")
  TFAUTH_TOKENS=$tokens TFAUTH_OFFSET=${offset[$s]} taskset -c "$CLIENT_CPU" \
    wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency "${args[@]}" >"$prefix/wrk.out"
  after=$(server_ticks "${pid[$s]}")
  awk -v ticks="$((after - before))" -v hz="$hz" '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
    /^ +99%/ { p99 = us($2) } /Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF } / requests in / { count = $1 }
    /Socket errors/ { gsub(/[^0-9 ]/, " "); errors = $1 + $2 + $3 + $4 }
    END { printf "%.0f %.0f %.2f %d %d %d\n", rps, p99, ticks / hz * 1e6 / count, count, bad, errors }' "$prefix/wrk.out"
}
record() { # server case
  local line
  line=$(run "$1" "$2")
  echo "$line" >>"$prefix/results/$1.$2"
  [ "$2" = fresh ] && offset[$1]=$(((offset[$1] + $(echo "$line" | awk '{ print $4 }')) % NTOKENS))
  return 0
}

echo "peers.sh: warming up" >&2
for s in $SERVERS; do for c in $CASES; do SECONDS_EACH=1 run "$s" "$c" >/dev/null; done; done
for r in $(seq 1 "$ROUNDS"); do
  echo "peers.sh: round $r/$ROUNDS" >&2
  for s in $SERVERS; do for c in $CASES; do record "$s" "$c"; done; done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
col() { awk -v c="$3" '{ print $c }' "$prefix/results/$1.$2" | median; }
# Every answer as expected: 2xx for valid tokens, 401 for the bad signature.
problems=""
for s in $SERVERS; do
  for c in $CASES; do
    n=$(awk -v c="$c" '{ if (c ~ /^badsig/) wrong += $4 - $5; else wrong += $5; err += $6 } END { print wrong + err }' \
      "$prefix/results/$s.$c")
    [ "$n" -eq 0 ] || problems="$problems $s/$c:$n"
  done
done

declare -A label=([gate]="nginx + tfauth.gate" [haproxy]="HAProxy $(haproxy -v | awk 'NR == 1 { print $3 }' | cut -d- -f1) jwt_verify"
  [apache]="Apache $(apache2 -v | awk -F/ 'NR == 1 { print $2 }' | cut -d' ' -f1) + mod_auth_openidc $(dpkg-query -W -f='${Version}' libapache2-mod-auth-openidc | cut -d- -f1)")
echo
echo "| guard | case | req/s | vs unguarded | p99 (µs) | server CPU per request (µs) | guard CPU per request (µs) |"
echo "|---|---|---:|---:|---:|---:|---:|"
for s in $SERVERS; do
  base_rps=$(col "$s" bare 1) base_cpu=$(col "$s" bare 3)
  for c in $CASES; do
    rps=$(col "$s" "$c" 1) cpu=$(col "$s" "$c" 3)
    case $c in bare) name="unguarded (static 200)" ;; same) name="same token every request" ;;
      fresh) name="a new valid token every request" ;; badsig) name="bad signature" ;;
      badsigs) name="a new bad signature every request" ;; esac
    awk -v l="${label[$s]}" -v n="$name" -v r="$rps" -v br="$base_rps" -v p="$(col "$s" "$c" 2)" -v cpu="$cpu" \
      -v bc="$base_cpu" -v c="$c" 'BEGIN {
        if (c == "bare") printf "| %s | %s | %d | - | %d | %.1f | - |\n", l, n, r, p, cpu
        else printf "| %s | %s | %d | %+.0f%% | %d | %.1f | %.1f |\n", l, n, r, 100 * (r / br - 1), p, cpu, cpu - bc }'
  done
done
echo
echo "The gate against HAProxy (req/s ratio, medians; CPU per request ratio, HAProxy / gate):"
for c in same fresh badsig badsigs; do
  awk -v c="$c" -v g="$(col gate "$c" 1)" -v h="$(col haproxy "$c" 1)" -v a="$(col apache "$c" 1)" \
    -v gc="$(col gate "$c" 3)" -v hc="$(col haproxy "$c" 3)" 'BEGIN {
      printf "- %s: %.2fx HAProxy by req/s, %.2fx by CPU per request; %.1fx Apache by req/s\n", c, g / h, hc / gc, g / a }'
done
echo "- wrk -t1 -c$CONNECTIONS -d${SECONDS_EACH}s, medians of $ROUNDS alternating rounds; servers on core $SERVER_CPU, wrk on core $CLIENT_CPU; $NTOKENS distinct tokens for 'a new valid token every request' and 'a new bad signature every request'"
if [ -n "$problems" ]; then
  echo "- unexpected answers or socket errors (server/case:count):$problems"
  exit 1
fi
echo "- every answer as expected: 2xx for valid tokens, 401 for the bad signature; no socket errors"
