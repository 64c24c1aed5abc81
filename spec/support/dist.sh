#!/usr/bin/env bash
# dist.sh OUTDIR: writes tfauth-<version>-1.src.rock into OUTDIR, made from
# this checkout's files as they are (tracked, and new ones git does not
# ignore), offline: what `luarocks pack tfauth-<version>-1.rockspec` makes
# from the release tag, without cloning it. The version is TFAUTH_VERSION
# (src/tfauth.h); its rockspec must exist.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/../.."
version=$(sed -n 's/^#define TFAUTH_VERSION "\(.*\)"/\1/p' src/tfauth.h)
spec=tfauth-$version-1.rockspec
rock=tfauth-$version-1.src.rock
[ -f "$spec" ] || { echo "dist.sh: no $spec for TFAUTH_VERSION $version" >&2; exit 1; }
grep -q "^version = \"$version-1\"" "$spec" || { echo "dist.sh: $spec is not version $version-1" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A git source unpacks into a folder named after the repository (luarocks:
# the URL's base name without .git); a source rock holds that folder and
# the rockspec side by side.
dir=$(sed -n 's|^ *url = "git+[^"]*/\([^/"]*\)"*,*$|\1|p' "$spec" | sed 's/\.git$//')
[ -n "$dir" ] || { echo "dist.sh: $spec has no git source url" >&2; exit 1; }
mkdir "$tmp/$dir"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$tmp/$dir"
cp "$spec" "$tmp/"
rm -f "$out/$rock"
(cd "$tmp" && zip -qr "$out/$rock" "$spec" "$dir")
echo "$out/$rock"
