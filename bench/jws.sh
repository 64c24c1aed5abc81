#!/usr/bin/env bash
# bench/jws.sh: JWS verifications per second, RS256 (RSA 2048), ES256 (P-256)
# and EdDSA (Ed25519), on one Keycloak-shaped access token each, signed by
# PyJWT: tfauth under Lua 5.4 and LuaJIT (jwt.verify with issuer, audience
# and types checked, the keyset made once), the raw C loop (EVP_DigestVerify
# on the same signing input and key, nothing else: the limit), and PyJWT
# (jwt.decode with the same checks, the key loaded once). Rounds alternate;
# each figure is the median of its rounds, all on core 0. Then instructions
# per verification with callgrind (the difference between two run lengths,
# so start-up and key loading cancel out). Prints a Markdown table.
set -eu
cd "$(dirname "$0")/.."
root=$PWD
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
ROUNDS=${ROUNDS:-5} N=${JWS_N:-20000} NPY=${JWS_NPY:-5000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
/usr/bin/python3 bench/jws_tokens.py "$out"
algs="RS256 ES256 EdDSA"

lua54() { env LUA_CPATH="$root/build/5.4/?.so;;" lua5.4 bench/jws_verify.lua "$out/$1.jwks" "$out/$1.token" "$1" "$2"; }
luajit_() { env LUA_CPATH="$root/build/jit/?.so;;" luajit bench/jws_verify.lua "$out/$1.jwks" "$out/$1.token" "$1" "$2"; }
raw() { build/raw_verify "$1" "$out/$1.pem" "$out/$1.token" "$2"; }
pyjwt() { /usr/bin/python3 bench/jws_pyjwt.py "$out/$1.pem" "$out/$1.token" "$1" "$2"; }

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  for alg in $algs; do
    taskset -c 0 bash -c "$(declare -f raw); out=$out; raw $alg $N" >>"$out/raw.$alg"
    taskset -c 0 bash -c "$(declare -f lua54); out=$out root=$root; lua54 $alg $N" >>"$out/lua54.$alg"
    taskset -c 0 bash -c "$(declare -f luajit_); out=$out root=$root; luajit_ $alg $N" >>"$out/luajit.$alg"
    taskset -c 0 bash -c "$(declare -f pyjwt); out=$out; pyjwt $alg $NPY" >>"$out/pyjwt.$alg"
  done
done

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# instructions per verification: (Ir at 2n - Ir at n) / n
instr() { # command-prefix...: runs it with n, then 2n, as its last argument
  local f1="$out/cg.1" f2="$out/cg.2" n=$CG_N
  valgrind --tool=callgrind --callgrind-out-file="$f1" "$@" "$n" >/dev/null 2>&1
  valgrind --tool=callgrind --callgrind-out-file="$f2" "$@" "$((2 * n))" >/dev/null 2>&1
  awk -v n="$n" '/^summary:/ {v[FILENAME]=$2} END {a=0; b=0; for (f in v) if (f ~ /cg.1$/) a=v[f]; else b=v[f]; printf "%.0f", (b-a)/n}' "$f1" "$f2"
}
CG_N=${JWS_CG_N:-400}
printf '| algorithm | raw C loop (EVP_DigestVerify) | tfauth, Lua 5.4 | × raw | tfauth, LuaJIT | × raw | PyJWT | tfauth 5.4 / PyJWT | instructions per verification: raw / tfauth 5.4 |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for alg in $algs; do
  r=$(median <"$out/raw.$alg") l=$(median <"$out/lua54.$alg") j=$(median <"$out/luajit.$alg") p=$(median <"$out/pyjwt.$alg")
  ir_raw=$(instr build/raw_verify "$alg" "$out/$alg.pem" "$out/$alg.token")
  ir_lua=$(export LUA_CPATH="$root/build/5.4/?.so;;"; instr lua5.4 bench/jws_verify.lua "$out/$alg.jwks" "$out/$alg.token" "$alg")
  awk -v a="$alg" -v r="$r" -v l="$l" -v j="$j" -v p="$p" -v ir="$ir_raw" -v il="$ir_lua" 'BEGIN {
    printf "| %s | %d/s | %d/s | %.2f | %d/s | %.2f | %d/s | %.1f | %d / %d |\n", a, r, l, l / r, j, j / r, p, l / p, ir, il }'
done
