#!/usr/bin/env bash
# fuzz.sh SECONDS: runs the libFuzzer harness (build/fuzz_tfauth) from the
# seed corpus for a bounded time. Prints TAP.
set -u
cd "$(dirname "$0")/../.."
seconds=${1:-20}
corpus=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$corpus" "$log"' EXIT
echo "1..1"
if ./build/fuzz_tfauth -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
     "$corpus" fuzz/corpus >"$log" 2>&1; then
  runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*')
  echo "ok 1 - fuzz: ${runs:-?} inputs through prepare, map, jwt_keyset and jwt_verify in ${seconds} s, no finding"
else
  echo "not ok 1 - fuzz: a finding (crash, sanitizer report or broken invariant)"
  grep -E 'invariant|ERROR|SUMMARY|Test unit written' "$log" | sed 's/^/# /'
  exit 1
fi
