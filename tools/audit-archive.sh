#!/usr/bin/env bash
# Retention of the audit trail by policy, for cron or a systemd timer: the
# records older than KEEP are exported to DIR as JSON Lines, the export is
# verified (chain, tree, checkpoint signatures), and only then does gbxd
# prune them (gbxctl audit prune, an admin's). What stays still verifies
# from the retention anchor (docs/audit.md, "Retention").
#
#   tools/audit-archive.sh -c CONFIG --as OPERATOR --keep-ms MS --dir DIR [--bin DIR]
#
# The cut is the newest checkpoint signed at least MS ms ago. The archive
# is DIR/<node>-audit-<first>-<upto>.jsonl (written to .tmp and renamed);
# an archive that does not verify is left as .bad and nothing is pruned.
# Exit: 0 archived and pruned, or nothing old enough; 1 a step failed.
set -euo pipefail
cfg= op= keep= dir= bin=
while [ $# -gt 0 ]; do
    case $1 in
    -c) cfg=$2; shift 2 ;;
    --as) op=$2; shift 2 ;;
    --keep-ms) keep=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "usage: $0 -c CONFIG --as OPERATOR --keep-ms MS --dir DIR [--bin DIR]" >&2; exit 1 ;;
    esac
done
[ -n "$cfg" ] && [ -n "$op" ] && [ -n "$dir" ] && [[ "$keep" =~ ^[0-9]+$ ]] || {
    echo "usage: $0 -c CONFIG --as OPERATOR --keep-ms MS --dir DIR [--bin DIR]" >&2
    exit 1
}
bin=${bin:-$(cd "$(dirname "$0")/.." && pwd)/build/tools}
audit="$bin/gbx-audit" ctl="$bin/gbxctl"
mkdir -p "$dir"

status=$("$ctl" -c "$cfg" --as "$op" --json audit status)
first=$(sed -E 's/.*"first":([0-9]+).*/\1/' <<<"$status")
now=$(($(date +%s%N) / 1000000))
upto=0
while read -r size at; do # the newest checkpoint at least KEEP old, beyond FIRST
    [ "$size" -gt "$first" ] && [ $((at + keep)) -le "$now" ] && upto=$size
done < <("$audit" -c "$cfg" --json checkpoints |
    sed -E 's/.*"size":([0-9]+),"at_ms":([0-9]+).*/\1 \2/')
if [ "$upto" -eq 0 ]; then
    echo "audit-archive: nothing older than $keep ms beyond record $first"
    exit 0
fi
node=$("$ctl" -c "$cfg" --as "$op" --json status | sed -E 's/.*"node":"([a-z0-9.-]+)".*/\1/')
out="$dir/${node:-node}-audit-$first-$upto.jsonl"
"$audit" -c "$cfg" export --from "$first" --to "$upto" -o "$out"
if ! "$audit" -c "$cfg" verify --export "$out"; then
    mv "$out" "$out.bad"
    echo "audit-archive: $out.bad does not verify: nothing pruned" >&2
    exit 1
fi
"$ctl" -c "$cfg" --as "$op" audit prune --upto "$upto"
echo "audit-archive: records $first..$((upto - 1)) in $out, pruned from the store"
