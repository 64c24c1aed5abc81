#!/usr/bin/env bash
# docs.sh: builds the LDoc reference into a temporary folder, checks that it
# names every public function, method, field and error kind, and that the
# committed doc/ is what `make docs` makes now; checks that the guides exist,
# that every relative link, section and repository path named in README.md
# and docs/*.md exists, that README.md stays a front page (<= 260 lines),
# and that docs/development.md's floors of the C core match src/'s call graph.
# (Their snippets run in spec/docs_spec.lua.) Prints TAP.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..5"
bash spec/support/ldoc.sh -q -d "$tmp" . >"$tmp.log" 2>&1
text=$(cat "$tmp"/*.html "$tmp"/modules/*.html 2>/dev/null)
missing=()
for name in login refresh logout reset_password change_password admin_change_password \
    login_user_api_iam_login_post refresh_token_api_iam_refresh_post logout_user_api_iam_logout_post \
    reset_password_api_iam_password_reset_post change_password_api_iam_password_change_post \
    admin_change_user_password_api_iam_admin_user_user_id_password_post \
    new configure default_client is_error prepare map close is_open session \
    access_token expires_in claims export DEFAULT_SKEW \
    TokenOpenID expires_at refresh_expires_at \
    kind message operation field status headers body json detail error_description curl_code attempts retryable expired \
    argument validation http timeout network tls response \
    server_url bearer timeout_ms connect_timeout_ms retries http_headers user_agent ca_file ca_path proxy \
    max_response_bytes debug before_request after_success after_error \
    keyset verify kids count reason kid_missing token issuer audience algorithms types leeway \
    fetch prepare_fetch tfauth.jwks min_refresh_interval shared_dict on_fetch \
    guard auth_request metrics local_path login_url public_origin same_site; do
  grep -q -- "$name" <<<"$text" || missing+=("$name")
done
if [ ${#missing[@]} -eq 0 ]; then echo "ok 1 - the reference documents every public name"
else echo "not ok 1 - the reference does not mention: ${missing[*]}"; sed 's/^/# /' "$tmp.log"; fi
rm -f "$tmp.log"
# LDoc stamps each page with the time: compare without that line.
if diff -r -I 'Last updated' "$tmp" doc >/dev/null 2>&1; then echo "ok 2 - doc/ is up to date"
else echo "not ok 2 - doc/ is stale: run 'make docs' and commit it"; fi
guides=(docs/README.md docs/client.md docs/sessions.md docs/tokens.md docs/gate.md docs/openresty.md
  docs/redis.md docs/security.md docs/performance.md docs/development.md)
absent=() problems=""
for g in "${guides[@]}"; do [ -f "$g" ] || absent+=("$g"); done
if [ ${#absent[@]} -eq 0 ] && problems=$(/usr/bin/python3 spec/support/doclinks.py README.md docs/*.md); then
  echo "ok 3 - the guides exist; every link, section and path named in README.md and docs/ exists"
else
  echo "not ok 3 - the documentation names what is not there:"
  for g in "${absent[@]}"; do echo "# missing guide: $g"; done
  sed 's/^/# /' <<<"$problems"
fi
lines=$(wc -l <README.md)
if [ "$lines" -le 260 ]; then echo "ok 4 - README.md is a front page ($lines lines)"
else echo "not ok 4 - README.md has $lines lines (at most 260: move the text into a guide under docs/)"; fi
# docs/development.md draws the C core in floors: every src/*.c once, and
# every call (an edge a -> b when a.o uses a symbol b.o defines, as lint
# derives them) goes from a higher floor to a lower one.
mkdir "$tmp/obj"
for f in src/*.c; do
  cc -std=c99 -D_GNU_SOURCE -c $(pkg-config --cflags lua5.4 libcurl) "$f" -o "$tmp/obj/$(basename "$f" .c).o"
done
for o in "$tmp"/obj/*.o; do nm -g --defined-only "$o" | awk -v f="$(basename "$o" .o)" 'NF == 3 { print $3, f }'; done \
  | sort >"$tmp/defined"
for o in "$tmp"/obj/*.o; do nm -u "$o" | awk -v f="$(basename "$o" .o)" '{ print $NF, f }'; done | sort >"$tmp/used"
join "$tmp/used" "$tmp/defined" | awk '$2 != $3 { print $2, $3 }' | sort -u >"$tmp/edges"
if out=$(/usr/bin/python3 - "$tmp/edges" src/*.c <<'PY'
import re, sys
text = open("docs/development.md").read()
drawing = text.split("### The C core's floors", 1)[1].split("```", 2)[1]
floor = {}
for line in drawing.splitlines():
    m = re.match(r"^\s*(\d+)\s+(.*)$", line)
    for name in re.findall(r"(\w+)\.c\b", m.group(2) if m else ""):
        if name in floor:
            print(f"{name}.c is drawn twice")
        floor[name] = int(m.group(1))
for path in sys.argv[2:]:
    name = path.split("/")[-1][:-2]
    if name not in floor:
        print(f"{name}.c is not drawn")
for line in open(sys.argv[1]):
    a, b = line.split()
    if a in floor and b in floor and floor[a] <= floor[b]:
        print(f"{a}.c (floor {floor[a]}) calls {b}.c (floor {floor[b]})")
PY
) && [ -z "$out" ]; then echo "ok 5 - docs/development.md's floors match the calls between the files of src/"
else echo "not ok 5 - docs/development.md's floors of the C core are out of date:"; sed 's/^/# /' <<<"$out"; fi
