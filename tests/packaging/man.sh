#!/usr/bin/env bash
# The manual pages (docs/man):
#   - gbxd.yaml.5 documents every setting of docs/config.md's table (which
#     gbxd's settings table generates), each as a tagged paragraph
#   - each page renders without a warning (groff -man -ww -z; skipped when
#     groff is not installed)
# Usage: man.sh SOURCE_DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: man.sh SOURCE_DIR" >&2; exit 2; }
src=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

# shellcheck disable=SC2016 # backquotes of markdown
settings=$(sed -n 's/^| `\([a-z_]*\.[a-z_.]*\)` |.*/\1/p' "$src/docs/config.md")
[ "$(wc -l <<<"$settings")" -ge 20 ] || fail "docs/config.md: no settings table found"
missing=()
for s in $settings; do
    grep -q "^\.BR $s " "$src/docs/man/gbxd.yaml.5" || missing+=("$s")
done
((${#missing[@]} == 0)) || fail "docs/man/gbxd.yaml.5 does not document: ${missing[*]}"

pages=(gbxd.8 gbxctl.8 gbx-audit.1 gbx-keygen.1 gbxd.yaml.5)
for p in "${pages[@]}"; do
    [ -s "$src/docs/man/$p" ] || fail "docs/man/$p missing"
done
if command -v groff >/dev/null; then
    for p in "${pages[@]}"; do
        out=$(groff -man -ww -z -Tutf8 "$src/docs/man/$p" 2>&1) || fail "$p: groff: $out"
        [ -z "$out" ] || fail "$p: $out"
    done
else
    echo "man: groff not installed, pages not rendered"
fi
echo "man: ${#pages[@]} pages ok"
