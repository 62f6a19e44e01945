#!/usr/bin/env bash
# gbx-keygen as an operator uses it: files and modes, refusal of loose
# permissions, refusal to overwrite, the printed registry entry.
set -euo pipefail
keygen=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$keygen" -d "$dir" hk.immd)
[ "$(stat -c %a "$dir/hk.immd.secret")" = 600 ] || fail "secret file mode is not 0600"
[ -f "$dir/hk.immd.pub" ] || fail "no .pub file"
grep -q '^id: hk.immd$' <<<"$out" || fail "printed entry lacks the id"
grep -Eq '^fingerprint: "[0-9a-f]{4}(-[0-9a-f]{4}){3}"$' <<<"$out" || fail "no fingerprint printed"
diff <(printf '%s\n' "$out") "$dir/hk.immd.pub" >/dev/null || fail "printed entry differs from .pub"
[ "$("$keygen" --show "$dir/hk.immd.secret")" = "$out" ] || fail "--show of .secret differs"
[ "$("$keygen" --show "$dir/hk.immd.pub")" = "$out" ] || fail "--show of .pub differs"

if "$keygen" -d "$dir" hk.immd 2>/dev/null; then fail "overwrote without -f"; fi
"$keygen" -d "$dir" -f hk.immd >/dev/null || fail "-f did not overwrite"
[ "$("$keygen" --show "$dir/hk.immd.pub")" != "$out" ] || fail "-f kept the old keys"

chmod 0640 "$dir/hk.immd.secret"
if err=$("$keygen" --show "$dir/hk.immd.secret" 2>&1); then fail "loaded a group-readable secret"; fi
grep -q KEY_PERMS <<<"$err" || fail "no KEY_PERMS reason: $err"

if "$keygen" -d "$dir" 'HK.Bad' 2>/dev/null; then fail "accepted an invalid id"; fi
echo "keygen: ok"
