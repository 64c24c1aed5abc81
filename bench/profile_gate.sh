#!/usr/bin/env bash
# profile_gate.sh: where a first-sight bearer token's instructions go in
# tfauth.gate. One nginx process (bench/peers/nginx.conf, master_process
# off) under callgrind; a sequential client on one kept-alive connection.
# Instrumentation is on, the counters zeroed before and dumped after, for
# NCOUNT (2,000) requests of each kind: unguarded (the same token, /bare/),
# one cached token, a new valid token every request (each sent once), a bad
# signature, and new tokens again after FILL (12,000) more (the cache full).
# Prints instructions per request for each kind, and for the first-sight
# one the inclusive cost of the functions that make up the verify path
# (callgrind_annotate --inclusive=yes; LuaJIT's interpreted and compiled
# Lua has no symbols: it is what remains), and the same by object. Then
# HAProxy (bench/peers/haproxy.cfg) on the same first-sight tokens. perf's hardware counters are not
# available on this VM (`perf stat -e instructions` says not supported).
set -eu
cd "$(dirname "$0")/.."
root=$PWD
NCOUNT=${NCOUNT:-2000} WARM=200 FILL=${FILL:-12000}
ISSUER=https://kc.example/realms/bench AUDIENCE=fndtn-api
prefix=$(mktemp -d)
vg=""
trap '[ -n "$vg" ] && kill "$vg" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$prefix"' EXIT
mkdir -p "$prefix/logs" "$prefix/tmp" "$prefix/conf" "$prefix/www/app" "$prefix/www/bare"
for f in app/hello.txt bare/hello.txt; do echo "hello from the application" >"$prefix/www/$f"; done
keys=$prefix/keys
/usr/bin/python3 bench/peers/mint.py "$keys" "$((2 * NCOUNT + 2 * WARM + FILL))" "$ISSUER" "$AUDIENCE"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user="master_process off;"; [ "$(id -u)" -eq 0 ] && user="user root;\\nmaster_process off;"
sed -e "s|@PREFIX@|$prefix|g; s|@ROOT@|$root|g; s|@KEYS@|$keys|g; s|@PORT@|$port|g; s|@USER@|$user|" \
    -e "s|@ISSUER@|$ISSUER|g; s|@AUDIENCE@|$AUDIENCE|g; s|@KEY@|$(openssl rand -hex 32)|" \
    bench/peers/nginx.conf >"$prefix/conf/nginx.conf"
valgrind --tool=callgrind --smc-check=all-non-file --instr-atstart=no --callgrind-out-file="$prefix/cg.out" \
  nginx -p "$prefix" -c conf/nginx.conf >"$prefix/logs/callgrind.log" 2>&1 &
vg=$!
for _ in $(seq 1 600); do curl -fs -o /dev/null "http://127.0.0.1:$port/bare/hello.txt" 2>/dev/null && break; sleep 0.1; done

drive() { # path count tokens-file first-line (each request the next line)
  /usr/bin/python3 - "$port" "$@" <<'PY'
import http.client, sys
port, path, n, tokens, first = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
lines = open(tokens).read().split()
c = http.client.HTTPConnection("127.0.0.1", port)
for i in range(n):
    c.request("GET", path, headers={"Authorization": "Bearer " + lines[first + i]})
    r = c.getresponse()
    r.read()
    assert r.status == (401 if "bad_sig" in tokens else 200), (path, r.status)
PY
}
count() { # name path tokens-file first-line
  callgrind_control -i on "$vg" >/dev/null 2>&1
  callgrind_control -z "$vg" >/dev/null 2>&1
  drive "$2" "$NCOUNT" "$3" "$4"
  callgrind_control -d "$1" "$vg" >/dev/null 2>&1
  callgrind_control -i off "$vg" >/dev/null 2>&1
  local dump=""
  for _ in $(seq 1 100); do
    dump=$(grep -lE "^desc: Trigger: (Client Request: |dump )$1\$" "$prefix"/cg.out.* 2>/dev/null | head -1)
    [ -n "$dump" ] && grep -q "^totals:" "$dump" && break
    sleep 0.1
  done
  mv "$dump" "$prefix/$1.cg"
}
one=$prefix/one.txt
yes "$(head -1 "$keys/tokens.txt")" | head -n "$((NCOUNT + WARM))" >"$one" || true
yes "$(cat "$keys/bad_sig.txt")" | head -n "$((NCOUNT + WARM))" >"$prefix/bad_sig.txt" || true
# warm: the key set fetched, the code compiled; then the counted runs
drive /app/hello.txt "$WARM" "$keys/tokens.txt" 1
drive /bare/hello.txt "$WARM" "$one" 0
drive /app/hello.txt "$WARM" "$prefix/bad_sig.txt" 0
count bare /bare/hello.txt "$one" 0
count cached /app/hello.txt "$one" 0
count fresh /app/hello.txt "$keys/tokens.txt" "$((2 * WARM))"
count badsig /app/hello.txt "$prefix/bad_sig.txt" 0
# a busy gate: FILL more first-sight tokens (its cache, 10,000, full), then
# NCOUNT more, counted
drive /app/hello.txt "$FILL" "$keys/tokens.txt" "$((2 * WARM + NCOUNT))"
count busy /app/hello.txt "$keys/tokens.txt" "$((2 * WARM + NCOUNT + FILL))"
kill "$vg"
wait "$vg" 2>/dev/null || true
vg=""
# The same first-sight tokens through HAProxy's jwt_verify (bench/peers/haproxy.cfg).
sed -e "s|@PREFIX@|$prefix|g; s|@KEYS@|$keys|g; s|@PORT@|$port|g; s|@ISSUER@|$ISSUER|g; s|@AUDIENCE@|$AUDIENCE|g" \
    bench/peers/haproxy.cfg >"$prefix/conf/haproxy.cfg"
cp "$prefix/www/app/hello.txt" "$prefix/www/hello.txt"
rm -f "$prefix"/cg.out*
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$prefix/cg.out" \
  haproxy -db -f "$prefix/conf/haproxy.cfg" >"$prefix/logs/haproxy-callgrind.log" 2>&1 &
vg=$!
for _ in $(seq 1 600); do curl -fs -o /dev/null "http://127.0.0.1:$port/bare/hello.txt" 2>/dev/null && break; sleep 0.1; done
drive /app/hello.txt "$WARM" "$keys/tokens.txt" "$WARM"
count haproxy_bare /bare/hello.txt "$one" 0
count haproxy_fresh /app/hello.txt "$keys/tokens.txt" "$((2 * WARM))"
kill "$vg"
wait "$vg" 2>/dev/null || true
vg=""
for name in bare cached fresh badsig busy haproxy_bare haproxy_fresh; do
  callgrind_annotate --inclusive=yes --threshold=100 "$prefix/$name.cg" >"$prefix/$name.txt"
done
/usr/bin/python3 - "$prefix" "$NCOUNT" "$FILL" <<'PY'
import re, sys
prefix, n, fill = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def read(name):
    total, funcs = 0, {}
    for line in open(f"{prefix}/{name}.txt"):
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line)
        if not m:
            continue
        value = int(m.group(1).replace(",", ""))
        rest = m.group(2)
        if rest.startswith("PROGRAM TOTALS"):
            total = value
            continue
        fn = rest.split(" [")[0].split(":")[-1].strip()
        funcs[fn] = max(funcs.get(fn, 0), value)
    return total, funcs
totals = {k: read(k) for k in ("bare", "cached", "fresh", "badsig", "busy", "haproxy_bare", "haproxy_fresh")}
print("instructions per request (callgrind, %d requests each, one connection):" % n)
for k, label in (("bare", "unguarded (static answer)"), ("cached", "guarded, one cached token"),
                 ("fresh", "guarded, a new valid token every request"), ("badsig", "guarded, a bad signature"),
                 ("busy", "the same, after %d more (the cache full)" % fill),
                 ("haproxy_bare", "HAProxy, unguarded (static answer)"),
                 ("haproxy_fresh", "HAProxy jwt_verify, a new valid token every request")):
    print("  %-44s %9.0f" % (label, totals[k][0] / n))
total, f = totals["fresh"]
def inc(*names):
    return sum(f.get(x, 0) for x in names) / n
rows = [
    ("the whole request", total / n),
    ("  nginx outside the access handler (serving the static answer)", total / n - inc("ngx_http_lua_access_handler")),
    ("  access_by_lua (the gate)", inc("ngx_http_lua_access_handler")),
    ("    core.jwt_verify (C: all that follows, to claims checks)", inc("jwt_verify")),
    ("      RSA-2048 public operation (EVP_PKEY_verify)", inc("EVP_PKEY_verify")),
    ("      SHA-256 of the signing input (EVP_Digest*)", inc("EVP_DigestInit_ex2", "EVP_DigestUpdate", "EVP_DigestFinal_ex")),
    ("      base64url decoding (tf_b64url_decode)", inc("tf_b64url_decode")),
    ("      JSON, header and claims (tf_json_decode: lua-cjson)", inc("tf_json_decode")),
    ("      claims checks (check_claims)", inc("check_claims")),
    ("    string interning, everywhere (lj_str_new)", inc("lj_str_new")),
    ("      of which memcmp", inc("memcmp", "__memcmp_avx2_movbe", "__memcmp_evex_movbe", "__memcmp_sse4_1")),
    ("    garbage collector (lj_gc_step, gc_onestep)", max(inc("lj_gc_step"), inc("gc_onestep"))),
    ("    the nginx Lua API (ngx.var, set_header, get_headers ...)", inc("ngx_http_lua_ffi_var_get") + inc("ngx_http_lua_ffi_req_get_headers") + inc("ngx_http_lua_ffi_req_header_set_single_value") + inc("ngx_http_lua_ffi_req_set_header")),
]
print()
print("a new valid token every request: inclusive instructions per request")
for label, value in rows:
    print("  %-66s %9.0f  %5.1f%%" % (label, value, 100 * value / (total / n)))
h = totals["haproxy_fresh"][1]
print()
print("HAProxy jwt_verify, a new valid token every request: top inclusive functions")
for v, k in sorted(((v, k) for k, v in h.items()), reverse=True)[:40]:
    print("  %-60s %9.0f" % (k[:60], v / n))
top = sorted(((v, k) for k, v in f.items()), reverse=True)[:45]
print()
print("top inclusive functions (first-sight):")
for v, k in top:
    print("  %-60s %9.0f" % (k[:60], v / n))
PY
echo
echo "the gate, a new valid token every request, by object (self cost):"
/usr/bin/python3 bench/callgrind_objects.py "$prefix/fresh.cg" "$NCOUNT" | sed 's/^/  /'
