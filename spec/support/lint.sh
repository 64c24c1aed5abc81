#!/usr/bin/env bash
# lint.sh: luacheck (per .luacheckrc) over lua/, spec/, examples/, bench/;
# the C sources compiled for Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT with -Wall
# -Wextra -Werror; the rockspecs list every C source; and the calls between
# the files of src/ form no cycle. Prints TAP.
set -u
export LC_ALL=C # sort and join must agree
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
targets=("lua5.4 src/*.c fuzz/*.c" "lua5.3 src/*.c" "lua5.2 src/*.c" "lua5.1 src/*.c" "luajit src/*.c")
rockspecs=(tfauth-*.rockspec)
echo "1..$((1 + ${#targets[@]} + ${#rockspecs[@]} + 6))"
out=$(luacheck --no-color --formatter plain lua spec examples bench 2>&1)
if [ $? -eq 0 ]; then echo "ok 1 - luacheck: lua/ spec/ examples/ bench/ clean"
else echo "not ok 1 - luacheck"; echo "$out" | sed 's/^/# /'; fi
n=2
# The fuzz harness is built for Lua 5.4 only.
for target in "${targets[@]}"; do
  set -- $target
  inc=$(pkg-config --cflags "$1")
  shift
  out=$(cc -std=c99 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror -fsyntax-only \
          $inc $(pkg-config --cflags libcurl) "$@" 2>&1)
  if [ $? -eq 0 ]; then echo "ok $n - cc -Wall -Wextra -Werror ($inc)"
  else echo "not ok $n - cc -Wall -Wextra -Werror ($inc)"; echo "$out" | sed 's/^/# /'; fi
  n=$((n + 1))
done
# luarocks builds only what the rockspec names: every C source and Lua
# module must be there.
for spec in "${rockspecs[@]}"; do
  missing=$(for f in src/*.c $(find lua -name '*.lua' | sort); do grep -q "\"$f\"" "$spec" || echo "$f"; done)
  if ! out=$(luarocks lint "$spec" 2>&1); then echo "not ok $n - luarocks lint $spec"; echo "$out" | sed 's/^/# /'
  elif [ -z "$missing" ]; then echo "ok $n - $spec passes luarocks lint, lists every src/*.c and lua/**/*.lua"
  else echo "not ok $n - $spec misses:" $missing; fi
  n=$((n + 1))
done
# The Lua half's requires: every dependency points down the layers of
# spec/support/layers.txt (core <- client <- nginx <- gate) or is a listed
# exception with its reason, and there is no cycle.
if out=$(lua5.4 spec/support/lua-deps.lua spec/support/layers.txt $(find lua -name '*.lua' | sort) 2>&1); then
  echo "ok $n - the requires of lua/ point down the layers of spec/support/layers.txt, no cycle (${out##*, })"
else echo "not ok $n - the requires of lua/ break spec/support/layers.txt:"; echo "$out" | sed 's/^/# /'; fi
n=$((n + 1))
# The release rockspec is the scm one at a tag: nothing else may differ.
strip() { sed '1,/^rockspec_format/{/^--/d}; /^version = /d; /^  tag = /d' "$1"; }
release=$(ls tfauth-*.rockspec | grep -v scm | head -1)
if out=$(diff <(strip tfauth-scm-1.rockspec) <(strip "$release") 2>&1); then
  echo "ok $n - $release and tfauth-scm-1.rockspec differ only in version and tag"
else echo "not ok $n - $release and tfauth-scm-1.rockspec differ:"; echo "$out" | sed 's/^/# /'; fi
n=$((n + 1))
# No file may name a folder of a particular machine (a checkout, a home, a
# temporary folder): the repository must work wherever it is cloned.
dirs="work|root|home|tmp|Users" scheme="file:"
if out=$(git grep --untracked -nIE "(^|[[:space:]\"'=(:,])/($dirs)(/|\$|[[:space:]\"')])|$scheme//" -- . ':!doc' ':!.gitignore'); then
  echo "not ok $n - files name a path of a particular machine:"; echo "$out" | sed 's/^/# /'
else echo "ok $n - no file names a path of a particular machine"; fi
n=$((n + 1))
# `make demo` on a fresh machine: the packages it would install (deps.sh
# run as a user on which nothing is installed, so it lists them all) are
# the build and demo sets: what the quickstart needs, no test tool.
mkdir "$tmp/fake"
printf '#!/bin/sh\nexit 1\n' >"$tmp/fake/dpkg-query"
printf '#!/bin/sh\necho 1000\n' >"$tmp/fake/id"
chmod +x "$tmp/fake/dpkg-query" "$tmp/fake/id"
demo=$(make -n --no-print-directory demo 2>/dev/null | grep 'deps.sh' | sed 's/^@//')
wants=$(PATH="$tmp/fake:$PATH" bash -c "$demo" 2>&1 | sed -n 's/.*install them): //p')
extra=$(for p in $wants; do case $p in lua-busted|luarocks|clang*|valgrind|wrk|redis-server|nginx|lua-ldoc|lua-check|chromium*|lua5.[123]|luajit2) echo "$p";; esac; done)
need=$(for p in liblua5.4-dev libcurl4-openssl-dev lua-cjson python3-fastapi python3-uvicorn curl openssl; do
         grep -qw -- "$p" <<<"$wants" || echo "$p"; done)
if [ -n "$wants" ] && [ -z "$extra$need" ]; then
  echo "ok $n - make demo installs the build and demo sets only ($(wc -w <<<"$wants") packages)"
else
  echo "not ok $n - make demo's packages: extra [$(echo $extra)], missing [$(echo $need)] in: $wants"
fi
n=$((n + 1))
# The file-level call graph of src/: an edge a -> b when a.o uses a symbol
# b.o defines. Dependencies must point one way only (tfauth.h's map), so
# tsort must find an order; it names the files of any cycle.
for f in src/*.c; do
  cc -std=c99 -D_GNU_SOURCE -c $(pkg-config --cflags lua5.4 libcurl) "$f" -o "$tmp/$(basename "$f" .c).o" \
    2>>"$tmp/cc.log"
done
for o in "$tmp"/*.o; do
  nm -g --defined-only "$o" | awk -v f="$(basename "$o" .o)" 'NF == 3 { print $3, f }'
done | sort >"$tmp/defined"
for o in "$tmp"/*.o; do
  nm -u "$o" | awk -v f="$(basename "$o" .o)" '{ print $NF, f }'
done | sort >"$tmp/used"
# "user provider" pairs; self-edges dropped; every file also stands alone.
join "$tmp/used" "$tmp/defined" | awk '$2 != $3 { print $2, $3 } $2 == $3 { print $2, $2 }' >"$tmp/edges"
for o in "$tmp"/*.o; do b=$(basename "$o" .o); echo "$b $b"; done >>"$tmp/edges"
if [ -s "$tmp/cc.log" ]; then
  echo "not ok $n - the call graph of src/: a file did not compile"; sed 's/^/# /' "$tmp/cc.log"
elif tsort "$tmp/edges" >/dev/null 2>"$tmp/tsort.log"; then
  echo "ok $n - the calls between the files of src/ form no cycle ($(awk '$1 != $2' "$tmp/edges" | sort -u | wc -l) edges)"
else
  echo "not ok $n - the calls between the files of src/ form a cycle (move the helper down):"
  # tsort names each loop's files, one per line, after "input contains a loop:".
  awk '/contains a loop/ { if (l) print l; l = "# loop:"; next } { sub(/^tsort: /, ""); l = l " " $0 }
       END { if (l) print l }' "$tmp/tsort.log" | sort -u
fi
n=$((n + 1))
# libcurl is the transport's: only the files src/tfauth.h's map lists on its
# "libcurl:" line may include curl/curl.h (directly; a header that does
# counts for every file including it).
allowed=$(sed -n 's|^ \*   libcurl: ||p' src/tfauth.h)
using=$(grep -l '#include <curl/curl.h>' src/*.c src/*.h | xargs -n1 basename | sort)
for h in $(grep -l '#include <curl/curl.h>' src/*.h | xargs -rn1 basename); do
  using="$using $(grep -l "#include \"$h\"" src/*.c src/*.h | xargs -rn1 basename)"
done
extra=$(for f in $using; do grep -qw -- "$f" <<<"$allowed" || echo "$f"; done | sort -u)
if [ -z "$allowed" ]; then echo "not ok $n - src/tfauth.h's map has no \"libcurl:\" line"
elif [ -z "$extra" ]; then echo "ok $n - only the files src/tfauth.h lists include curl/curl.h ($allowed)"
else echo "not ok $n - files include curl/curl.h that src/tfauth.h's \"libcurl:\" line does not list:" $extra; fi

