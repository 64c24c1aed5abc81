#!/usr/bin/env bash
# examples.sh LUA: runs each example against the reference backend (already
# started by with-backend.sh) and checks it succeeds without printing a
# secret. Prints TAP.
set -u
lua=$1
cd "$(dirname "$0")/../.."
examples=(examples/*.lua)
echo "1..${#examples[@]}"
n=0
for ex in "${examples[@]}"; do
  n=$((n + 1))
  log=$(mktemp)
  if curl -fsS -o /dev/null -X POST "$TFAUTH_TEST_URL/_test/reset" && "$lua" "$ex" >"$log" 2>&1 \
     && ! grep -qE 'eyJ[A-Za-z0-9_-]{10,}|Secret-[0-9]' "$log"; then
    echo "ok $n - $ex"
  else
    echo "not ok $n - $ex"; sed 's/^/# /' "$log"
  fi
  rm -f "$log"
done
