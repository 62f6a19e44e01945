#!/usr/bin/env bash
# gbxctl as an operator uses it, against a real gbxd on its default config
# (gbxd --home, moved to a free port; the sample policy; the demo operators
# op.admin, op.approver, op.viewer):
#   - exit 0: status (text names the node and the operator), policy show;
#     --json output of status, policy show, policy check and holds list is
#     one JSON object that python's json module parses
#   - exit 1: op.viewer approving (NOT_AUTHORIZED on stderr); approving an
#     id nobody holds (NOT_FOUND)
#   - exit 2: no command, an unknown command, holds approve without an id,
#     holds reject with two ids, an operator without a key file
#   - a held message: gbx-send of the paycert request marked RESTRICTED
#     with --release-ref says status=HELD; holds list (text and --json)
#     shows its id; gd.tax's gbx-recv gets nothing while it is held; holds
#     approve ID as op.approver: exit 0, "approved ID"; holds list no longer
#     shows it; gd.tax's gbx-recv gets it; approving again: exit 1 NOT_FOUND
#   - exit 3: gbxd stopped (SIGTERM, exit 0), status with --timeout-ms 1000
# Usage: gbxctl.sh GBXD GBXCTL GBX-SEND GBX-RECV
set -euo pipefail
gbxd=$1 ctl=$2 send=$3 recv=$4
dir=$(mktemp -d) # short: listen.control (DIR/gbxd.ctl) is a unix socket path
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$dir/gbxd.log" ] && tail -20 "$dir/gbxd.log" >&2; exit 1; }
json_ok() { /usr/bin/python3 -c 'import json,sys; json.load(sys.stdin)'; }

# runs gbxctl with a bounded time; RC gets its exit code, OUT and ERR its output
run() {
    rc=0
    timeout 30 "$ctl" -c "$cfg" "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    out=$(cat "$dir/out") err=$(cat "$dir/err")
}
expect() { # CODE WHAT
    [ "$rc" -eq "$1" ] || fail "$2: exit $rc, want $1 (stdout: $out; stderr: $err)"
}

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$gbxd" --home "$dir" --init >/dev/null 2>"$dir/gbxd.log" || fail "gbxd --init"
sed -i -e "s#tcp://127.0.0.1:7400#tcp://127.0.0.1:$port#" -e "s#metrics: 127.0.0.1:9400#metrics: off#" "$dir/gbxd.yaml"
"$gbxd" --home "$dir" 2>"$dir/gbxd.log" &
pid=$!
for _ in $(seq 1 100); do grep -q GBX-START "$dir/gbxd.log" && break; sleep 0.05; done
grep -q GBX-START "$dir/gbxd.log" || fail "gbxd did not start"
cfg="$dir/gbxd.yaml"

# 0: done
run --as op.viewer status
expect 0 "status"
grep -q '^node *demo-1$' <<<"$out" || fail "status output: $out"
grep -q '^you *op.viewer (viewer)$' <<<"$out" || fail "status output: $out"
run --as op.viewer policy show
expect 0 "policy show"
grep -q '^version *2026-11-22.1$' <<<"$out" || fail "policy show output: $out"
for cmd in "status" "policy show" "holds list"; do
    # shellcheck disable=SC2086
    run --as op.viewer --json $cmd
    expect 0 "--json $cmd"
    [ "$(wc -l <<<"$out")" -eq 1 ] || fail "--json $cmd: not one line: $out"
    json_ok <<<"$out" || fail "--json $cmd: not JSON: $out"
done
run --as op.viewer --json policy check --from hk.kiosk --to gd.tax --service GD-SI-PAYCERT \
    --purpose SI-CERT --route GBA_STANDARD_CONTRACT --route-ref GBA-SC-2024-0193 \
    --consent SEPARATE_CONSENT --consent-ref PA-2026-55120 --end-user iamsmart:5f3c9a
expect 0 "--json policy check"
json_ok <<<"$out" || fail "--json policy check: not JSON: $out"
/usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not (d["outcome"]=="ALLOW" and d["rule_id"]=="sp-hk-gd-paycert-request"))' <<<"$out" ||
    fail "policy check: $out"

# 1: refused by gbxd
run --as op.viewer holds approve 00112233445566778899aabbccddeeff
expect 1 "op.viewer approving"
grep -q NOT_AUTHORIZED <<<"$err" || fail "op.viewer approving: stderr $err"
run --as op.approver holds approve 00112233445566778899aabbccddeeff
expect 1 "approving an unknown id"
grep -q NOT_FOUND <<<"$err" || fail "approving an unknown id: stderr $err"

# 2: usage or configuration
run --as op.viewer
expect 2 "no command"
run --as op.viewer frobnicate
expect 2 "an unknown command"
run --as op.approver holds approve
expect 2 "holds approve without an id"
run --as op.approver holds reject 00112233445566778899aabbccddeeff 00112233445566778899aabbccddeeff --comment x
expect 2 "holds reject with two ids"
run --as op.nobody status
expect 2 "an operator without a key file"

# a held message: the paycert request, RESTRICTED, with its release authority
PAYCERT="--purpose SI-CERT --route GBA_STANDARD_CONTRACT --route-ref GBA-SC-2024-0193
 --consent SEPARATE_CONSENT --consent-ref PA-2026-55120 --impact-ref PIA-GD-2025-031
 --end-user iamsmart:5f3c9a"
head -c 2000 /dev/urandom >"$dir/request.bin"
# shellcheck disable=SC2086
sent=$(timeout 30 "$send" -c "$cfg" --as hk.kiosk --to gd.tax --service GD-SI-PAYCERT $PAYCERT \
    --marking RESTRICTED --release-ref REL-2026-7 -f "$dir/request.bin") || fail "gbx-send exited $?"
grep -Eq '^accepted id=[0-9a-f]{32} seq=[0-9]+ status=HELD dup=0$' <<<"$sent" || fail "send output: $sent"
id=$(sed -E 's/^accepted id=([0-9a-f]{32}).*/\1/' <<<"$sent")

run --as op.viewer holds list
expect 0 "holds list"
grep -Eq "^$id +[0-9]+ hk.kiosk +gd.tax " <<<"$out" || fail "holds list does not show $id: $out"
grep -q '^(1 held)$' <<<"$out" || fail "holds list: $out"
run --as op.viewer --json holds list
expect 0 "--json holds list"
ID=$id /usr/bin/python3 -c '
import json, os, sys
d = json.load(sys.stdin)
sys.exit(not any(h["message_id"] == os.environ["ID"] and h["from"] == "hk.kiosk" and h["to"] == "gd.tax"
                 for h in d["holds"]))' <<<"$out" || fail "--json holds list does not show $id: $out"

mkdir "$dir/gd"
timeout 30 "$recv" -c "$cfg" --as gd.tax -t 1500 -o "$dir/gd" >"$dir/recv0.txt" 2>&1 || true
! grep -q "id=$id" "$dir/recv0.txt" || fail "delivered while held: $(cat "$dir/recv0.txt")"

run --as op.approver holds approve "$id" --comment "release authority REL-2026-7 checked"
expect 0 "holds approve"
grep -q "^approved $id (seq [0-9]*, hk.kiosk -> gd.tax)$" <<<"$out" || fail "approve output: $out"
run --as op.viewer holds list
expect 0 "holds list after approve"
! grep -q "$id" <<<"$out" || fail "still listed after approve: $out"
grep -q '^(0 held)$' <<<"$out" || fail "holds list after approve: $out"

timeout 30 "$recv" -c "$cfg" --as gd.tax -n 1 -t 10000 -o "$dir/gd" >"$dir/recv1.txt" 2>&1 ||
    fail "gbx-recv (gd.tax) exited $?: $(cat "$dir/recv1.txt")"
grep -q "from=hk.kiosk id=$id" "$dir/recv1.txt" || fail "recv summary: $(cat "$dir/recv1.txt")"
cmp "$dir/request.bin" "$dir/gd/$id" || fail "released payload differs"

run --as op.approver holds approve "$id"
expect 1 "approving again"
grep -q NOT_FOUND <<<"$err" || fail "approving again: stderr $err"

# 3: nobody answers
kill -TERM "$pid"
st=0
wait "$pid" || st=$?
pid=
[ "$st" -eq 0 ] || fail "gbxd exited $st after SIGTERM"
start=$(date +%s%N)
run --as op.viewer --timeout-ms 1000 status
expect 3 "status with gbxd stopped"
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -lt 10000 ] || fail "gbxctl took $ms ms with --timeout-ms 1000"
echo "gbxctl: ok"
