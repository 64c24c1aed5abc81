#!/usr/bin/env bash
# flat_gate.sh: does a first-sight token cost the gate more once its worker
# has seen many? nginx + tfauth.gate (bench/peers/nginx.conf: bearer mode,
# one worker pinned to SERVER_CPU), wrk on CLIENT_CPU, NTOKENS (20,000)
# tokens each sent once, in phases of PHASE (2,000); for each phase the
# worker's CPU time per request (/proc/<pid>/schedstat, ns) and the rate
# while wrk ran: CONNECTIONS / mean latency (Little's law; wrk's own
# requests/s counts the idle time after the tokens ran out). Three runs,
# each on a fresh nginx:
#   valid    distinct valid tokens (bench/peers/mint.py ... late): the same
#            shape, their claims differing only in the jti, which comes after
#            the claims' middle; the cache empty at the start
#   control  distinct invalid tokens (a valid token with its last 8
#            characters varied: a bad signature), after 10,000 valid tokens
#            (a busy gate: its cache full, and the GC's heap with it)
#   collide  the same, but the tokens' bytes are chosen to collide in the
#            string hash of Debian's LuaJIT (OpenResty's luajit2
#            2.1-20230119, x86-64 with SSE4.2): they share their length,
#            all their bytes but 40 characters of the signature, just
#            before its last 8 (the hashes read only the first ~5/8 and the last 8)
# Why these collide (src/lj_str.c, src/lj_str_hash.c of that release): a
# string of 128 bytes or more is hashed first from its length and three
# bytes (first, middle, last: hash_sparse_sse42 -> hash_sparse_1_4); a chain
# with more than 32 collisions is rehashed with the "dense" hash
# (hash_128_above), which reads 8 bytes at 16 per-process random offsets, all
# within the first 8/16 of the string plus two chunks, and the first and last
# 8 bytes: the rest of the string is never read. Strings equal in what both
# hashes read share one chain, and interning a new one compares it (memcmp,
# up to the first difference) with every one in the chain, live or not yet
# swept by the GC. The gate interns the Authorization value and the token.
# RUNS (default "valid control collide") picks the runs.
# Prints the per-phase figures and, for each run, the last phase against the
# first (the target: within 1.3x).
set -eu
cd "$(dirname "$0")/.."
root=$PWD
NTOKENS=${NTOKENS:-20000} PHASE=${PHASE:-2000} CONNECTIONS=${CONNECTIONS:-16}
SERVER_CPU=${SERVER_CPU:-1} CLIENT_CPU=${CLIENT_CPU:-0}
ISSUER=https://kc.example/realms/bench AUDIENCE=fndtn-api
WARM=200 FILL=$((NTOKENS < 10000 ? NTOKENS : 10000))
[ -e build/jit/tfauth/core.so ] || { echo "flat_gate.sh: build/jit/tfauth/core.so is missing (make jit)" >&2; exit 1; }

prefix=$(mktemp -d)
nginx_pid=""
stop_nginx() {
  [ -n "$nginx_pid" ] || return 0
  kill "$nginx_pid" 2>/dev/null || true
  wait "$nginx_pid" 2>/dev/null || true
  nginx_pid=""
}
trap 'stop_nginx; rm -rf "$prefix"' EXIT
mkdir -p "$prefix/logs" "$prefix/tmp" "$prefix/conf" "$prefix/www/app" "$prefix/www/bare"
for f in app/hello.txt bare/hello.txt; do echo "hello from the application" >"$prefix/www/$f"; done

echo "flat_gate.sh: minting $((NTOKENS + WARM)) tokens" >&2
keys=$prefix/keys
/usr/bin/python3 bench/peers/mint.py "$keys" "$((NTOKENS + WARM))" "$ISSUER" "$AUDIENCE" late
head -n "$WARM" "$keys/tokens.txt" >"$keys/warm.txt"
tail -n +"$((WARM + 1))" "$keys/tokens.txt" >"$keys/valid.txt"
# The colliding tokens: one valid token, 40 characters of its signature
# (ending 8 before the end) replaced by a distinct base64url counter.
# The control: the same tokens, but the 8 last characters varied, which
# both hashes read (nothing collides).
/usr/bin/python3 - "$keys/valid.txt" "$NTOKENS" "$keys/collide.txt" "$keys/control.txt" <<'PY'
import sys
source, n, path, control = open(sys.argv[1]).readline().strip(), int(sys.argv[2]), sys.argv[3], sys.argv[4]
alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
width, keep = 40, 8
start = len(source) - keep - width
assert start > len(source) * 3 // 4 and start > source.rindex("."), "the changed bytes must lie in the signature's tail"
with open(path, "w") as out:
    for i in range(n):
        digits, v = [], i
        for _ in range(width):
            digits.append(alphabet[v % 64])
            v //= 64
        out.write(source[:start] + "".join(reversed(digits)) + source[start + width:] + "\n")
with open(control, "w") as out:
    for i in range(n):
        digits, v = [], i
        for _ in range(keep):
            digits.append(alphabet[v % 64])
            v //= 64
        out.write(source[:-keep] + "".join(reversed(digits)) + "\n")
PY

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=""; [ "$(id -u)" -eq 0 ] && user="user root;"
sed -e "s|@PREFIX@|$prefix|g; s|@ROOT@|$root|g; s|@KEYS@|$keys|g; s|@PORT@|$port|g; s|@USER@|$user|" \
    -e "s|@ISSUER@|$ISSUER|g; s|@AUDIENCE@|$AUDIENCE|g; s|@KEY@|$(openssl rand -hex 32)|" \
    bench/peers/nginx.conf >"$prefix/conf/nginx.conf"
url="http://127.0.0.1:$port"

start_nginx() {
  taskset -c "$SERVER_CPU" nginx -p "$prefix" -c conf/nginx.conf >"$prefix/logs/stderr.log" 2>&1 &
  nginx_pid=$!
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "$url/bare/hello.txt" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "flat_gate.sh: nginx did not start" >&2
  cat "$prefix/logs/"* >&2
  exit 1
}
worker_ns() { awk '{ print $1 }' "/proc/$(pgrep -n -P "$nginx_pid")/schedstat"; }
# send file from to: lines from..to, each once (wrk runs again for the rest
# when its time ran out first); prints "cpu_us_per_request req_per_s non2xx"
# with the rate while wrk ran: CONNECTIONS / mean latency
send() {
  local file=$1 from=$2 to=$3 before after got ns=0 lat_sum=0 bad=0 runs=0 seconds=2 out
  while [ "$from" -le "$to" ]; do
    before=$(worker_ns)
    TFAUTH_TOKENS=$file TFAUTH_FROM=$from TFAUTH_TO=$to taskset -c "$CLIENT_CPU" \
      wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" -s bench/peers/once.lua "$url/app/hello.txt" >"$prefix/wrk.out"
    after=$(worker_ns)
    ns=$((ns + after - before))
    out=$(awk '
      function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
      /^ +Latency/ { latency = us($2) } /Non-2xx/ { bad = $NF } / requests in / { count = $1 }
      END { printf "%d %.0f %d\n", count, latency, bad }' "$prefix/wrk.out")
    read -r got latency more <<<"$out"
    bad=$((bad + more)) runs=$((runs + 1))
    lat_sum=$((lat_sum + latency))
    # all sent unless wrk's time ran out with more than the requests in flight left
    [ "$got" -ge $((to - from + 1 - CONNECTIONS)) ] && break
    [ "$got" -gt 0 ] || { echo "flat_gate.sh: no answer from the gate" >&2; exit 1; }
    from=$((from + got)) seconds=$((seconds * 2))
  done
  awk -v ns="$ns" -v n="$(($3 - $2 + 1))" -v c="$CONNECTIONS" -v lat="$((lat_sum / runs))" -v bad="$bad" \
    'BEGIN { printf "%.1f %.0f %d\n", ns / 1000 / n, c * 1e6 / lat, bad }'
}

declare -A first last worst sum label
label[valid]="distinct valid tokens (jti after the claims' middle), empty cache at the start"
label[control]="distinct invalid tokens (bad signature, bytes varied where the hash reads), $FILL tokens cached"
label[collide]="invalid tokens chosen to collide in LuaJIT's string hash, $FILL tokens cached"
for run in ${RUNS:-valid control collide}; do
  start_nginx
  # warm up: the key set fetched, the code compiled (tokens not counted)
  send "$keys/warm.txt" 1 "$WARM" >/dev/null
  # a busy gate: its cache full of verified tokens (the GC's heap with them)
  [ "$run" = valid ] || send "$keys/valid.txt" 1 "$FILL" >/dev/null
  echo "$run: worker CPU per request (µs) and req/s while wrk ran, by phase of $PHASE tokens:"
  from=1 n=0
  while [ "$from" -le "$NTOKENS" ]; do
    to=$((from + PHASE - 1))
    [ "$to" -gt "$NTOKENS" ] && to=$NTOKENS
    read -r cpu rate bad <<<"$(send "$keys/$run.txt" "$from" "$to")"
    n=$((n + 1))
    # every valid token let through; every invalid one refused (wrk does
    # not wait for the answers in flight when it stops: up to CONNECTIONS)
    if [ "$run" = valid ] && [ "$bad" -ne 0 ] || [ "$run" != valid ] && [ "$bad" -lt $((to - from + 1 - CONNECTIONS)) ]; then
      echo "flat_gate.sh: $run tokens $from-$to: $bad refused" >&2
      exit 1
    fi
    printf '  tokens %6d-%6d  %8.1f µs  %6d req/s\n' "$from" "$to" "$cpu" "$rate"
    [ "$n" -eq 1 ] && first[$run]=$cpu worst[$run]=$cpu sum[$run]=0
    last[$run]=$cpu
    worst[$run]=$(awk -v a="${worst[$run]}" -v b="$cpu" 'BEGIN { print (b > a ? b : a) }')
    sum[$run]=$(awk -v a="${sum[$run]}" -v b="$cpu" 'BEGIN { print a + b }')
    from=$((to + 1))
  done
  stop_nginx
done
echo
echo "| tokens, each sent once ($NTOKENS, 1 worker) | first $PHASE | last $PHASE | last / first | worst $PHASE | worst / first | mean of all |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for run in ${RUNS:-valid control collide}; do
  awk -v l="${label[$run]}" -v f="${first[$run]}" -v z="${last[$run]}" -v w="${worst[$run]}" -v m="${sum[$run]}" -v k="$n" 'BEGIN {
    printf "| %s | %.1f µs | %.1f µs | %.2fx | %.1f µs | %.2fx | %.1f µs |\n", l, f, z, z / f, w, w / f, m / k }'
done
echo
echo "(the worker's CPU time per request, whose inverse is the rate it can sustain on its core; the target:"
echo "the last $PHASE within 1.3x of the first. The cost swings with the GC's cycles, which free the chains:"
echo "hence the worst phase and the mean.)"
[ -n "${sum[control]:-}" ] && [ -n "${sum[collide]:-}" ] && awk -v a="${sum[control]}" -v b="${sum[collide]}" 'BEGIN { printf "colliding against non-colliding invalid tokens, the same gate state: %.1fx the CPU per request (mean of all phases)\n", b / a }'
