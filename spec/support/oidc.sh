#!/usr/bin/env bash
# oidc.sh PORT_FILE: the OpenID Provider of spec/oidc_spec.lua. Installs the
# provider (oidc-provider, as pinned by spec/oidc/package-lock.json) into
# build/oidc with `npm ci` when that copy is missing or older than the lock
# file, then runs spec/oidc/provider.mjs in its place (exec: this process
# becomes the provider), which writes its loopback port to PORT_FILE.
# Needs node and npm (spec/support/deps.sh test).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
lock=$root/spec/oidc/package-lock.json
dir=$root/build/oidc
if ! cmp -s "$lock" "$dir/package-lock.json" || [ ! -d "$dir/node_modules/oidc-provider" ]; then
  mkdir -p "$dir"
  cp "$root/spec/oidc/package.json" "$lock" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
exec node "$root/spec/oidc/provider.mjs" "$dir/node_modules" "$1"
