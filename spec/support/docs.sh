#!/usr/bin/env bash
# docs.sh: builds the LDoc reference into a temporary folder, checks that it
# names every public function, method, field and error kind, and that the
# committed doc/ is what `make docs` makes now. Prints TAP.
set -u
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..2"
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
