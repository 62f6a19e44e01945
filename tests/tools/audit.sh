#!/usr/bin/env bash
# gbx-audit against the trail of a real gbxd (gbxd --home, moved to a free
# port; checkpoints every 10 records or 1 s; a peer node peer-2 added to the
# registry for countersignatures):
#   - messages accepted, refused, delivered and acked; `verify` exit 0 beside
#     the running gbxd; query finds the message's ACCEPTED, DELIVERED, ACKED;
#     show --message prints its life
#   - the live feed: tail -f --count 3 (op.viewer) gets the records of a
#     message sent after it subscribed, in order
#   - prove --message, then check-proof with only demo-1.pub (no config, no
#     store): exit 0; the proof with one character of its record changed,
#     or with a checkpoint re-signed by another key: exit 1
#   - consistency --old (an earlier checkpoint from gbxctl audit status)
#     checks; against a checkpoint of the same size with another root: exit 1
#   - cosign: gbx-audit cosign with peer-2's key, gbxctl audit cosign (op.viewer
#     refused, op.admin stored, a corrupted cosig refused), verify counts it
#   - export JSONL verifies; CSV has the header and one row per record;
#     exports with a record edited, deleted, two swapped, the tail cut: exit 1,
#     naming the record
#   - gbxd stopped; on copies of the data dir (audit-tamper): a record edited,
#     deleted, two swapped, the tail truncated, a record edited with its chain
#     rebuilt, a forged checkpoint: verify exit 1 at the right record; a trail
#     cut cleanly (head and checkpoints rewritten) passes alone but not with
#     --checkpoint (a checkpoint the auditor kept)
#   - retention: gbxctl audit prune --upto a checkpoint (op.admin); verify
#     still passes from the anchor, proofs of kept records still check, and
#     an AUDIT_PRUNED record names op.admin
#   - retention by policy: tools/audit-archive.sh --keep-ms 0 exports the
#     old records, the archive verifies, gbxd pruned them, the trail still
#     verifies; with nothing old enough it does nothing
# Usage: audit.sh GBXD GBX-AUDIT GBXCTL GBX-SEND GBX-RECV AUDIT-TAMPER GBX-KEYGEN ARCHIVE-SCRIPT
set -euo pipefail
gbxd=$1 audit=$2 ctl=$3 send=$4 recv=$5 tamper=$6 keygen=$7 archive=$8
dir=$(mktemp -d) # short: the control and feed sockets are unix socket paths
pid=
tailpid=
cleanup() {
    [ -n "$tailpid" ] && kill "$tailpid" 2>/dev/null
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$dir/gbxd.log" ] && tail -20 "$dir/gbxd.log" >&2; exit 1; }
py() { /usr/bin/python3 "$@"; }

# AUDIT ARGS: gbx-audit with a bounded time; RC, OUT, ERR
run() {
    rc=0
    timeout 60 "$audit" "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    out=$(cat "$dir/out") err=$(cat "$dir/err")
}
ctl() {
    rc=0
    timeout 30 "$ctl" -c "$cfg" "$@" >"$dir/out" 2>"$dir/err" || rc=$?
    out=$(cat "$dir/out") err=$(cat "$dir/err")
}
expect() { [ "$rc" -eq "$1" ] || fail "$2: exit $rc, want $1 (stdout: $out; stderr: $err)"; }
start_gbxd() {
    "$gbxd" --home "$dir" 2>>"$dir/gbxd.log" &
    pid=$!
    for _ in $(seq 1 200); do grep -q "GBX-START" "$dir/gbxd.log" && break; sleep 0.05; done
    grep -q GBX-START "$dir/gbxd.log" || fail "gbxd did not start"
}
covered() { # waits (at most 20 s) until a checkpoint covers every record
    local st
    for _ in $(seq 1 200); do
        st=$(timeout 30 "$ctl" -c "$cfg" --as op.viewer --json audit status) || true
        grep -q '"uncovered":0,' <<<"$st" && return 0
        sleep 0.1
    done
    fail "no checkpoint covers the trail: $st"
}
stop_gbxd() {
    kill -TERM "$pid"
    local st=0
    wait "$pid" || st=$?
    pid=
    [ "$st" -eq 0 ] || fail "gbxd exited $st after SIGTERM"
    : >"$dir/gbxd.log"
}

# the demo home, on a free port, with frequent checkpoints and a peer node
port=$(py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$gbxd" --home "$dir" --init >/dev/null 2>"$dir/gbxd.log" || fail "gbxd --init"
cfg="$dir/gbxd.yaml"
"$keygen" -d "$dir/keys" peer-2 >/dev/null
sed -i -e "s#tcp://127.0.0.1:7400#tcp://127.0.0.1:$port#" -e "s#metrics: 127.0.0.1:9400#metrics: off#" "$cfg"
sed -i 's#^    - {id: demo-1, jurisdiction: HK, pub: keys/demo-1.pub}$#&\n    - {id: peer-2, jurisdiction: GD, pub: keys/peer-2.pub}#' "$cfg"
grep -q 'id: peer-2' "$cfg" || fail "could not add peer-2 to the registry"
printf 'audit:\n  checkpoint_records: 10\n  checkpoint_interval_ms: 1s\n' >>"$cfg"
start_gbxd

PAYCERT="--purpose SI-CERT --route GBA_STANDARD_CONTRACT --route-ref GBA-SC-2024-0193
 --consent SEPARATE_CONSENT --consent-ref PA-2026-55120 --impact-ref PIA-GD-2025-031
 --end-user iamsmart:5f3c9a"
head -c 1000 /dev/urandom >"$dir/request.bin"
send_one() { # prints the accepted message id
    local o
    # shellcheck disable=SC2086
    o=$(timeout 30 "$send" -c "$cfg" --as hk.kiosk --to gd.tax --service GD-SI-PAYCERT $PAYCERT \
        -f "$dir/request.bin") || fail "gbx-send exited $?"
    sed -nE 's/^accepted id=([0-9a-f]{32}) .*/\1/p' <<<"$o"
}
ids=()
for _ in 1 2 3 4 5; do ids+=("$(send_one)"); done
# refused: no consent (REJECTED with the policy's reason)
timeout 30 "$send" -c "$cfg" --as hk.kiosk --to gd.tax --service GD-SI-PAYCERT \
    -f "$dir/request.bin" >/dev/null 2>&1 && fail "a paycert request without consent was accepted"
mkdir "$dir/gd"
timeout 30 "$recv" -c "$cfg" --as gd.tax -n 5 -t 10000 -o "$dir/gd" >/dev/null 2>&1 ||
    fail "gbx-recv did not get the 5 messages"
id=${ids[0]}
covered # a checkpoint after the records (audit.checkpoint_interval_ms)

# verify beside the running broker
run -c "$cfg" verify
expect 0 "verify"
grep -q '^gbx-audit: verify: OK: store of node demo-1' <<<"$out" || fail "verify: $out"
run -c "$cfg" --json verify
expect 0 "--json verify"
py -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not (d["ok"] and d["records"] >= 30 and d["checkpoints"] >= 3))' <<<"$out" ||
    fail "--json verify: $out"

# query and show
run -c "$cfg" --json query --message "$id"
expect 0 "query --message"
for ev in ACCEPTED DELIVERED ACKED; do
    grep -q "\"event\": *\"$ev\"" <<<"$out" || fail "query --message: no $ev: $out"
done
run -c "$cfg" query --event REJECTED --reason POLICY_DENIED
expect 0 "query REJECTED"
run -c "$cfg" show --message "$id"
expect 0 "show --message"
grep -q "event=ACCEPTED" <<<"$out" && grep -q "payload_hash=" <<<"$out" && grep -q "rule_id=" <<<"$out" ||
    fail "show --message: $out"
run -c "$cfg" query --message 0000000000000000
expect 1 "query that matches nothing"

# the live feed: subscribe, then messages' records come, in order (sent
# until the subscriber has two: a subscription takes a moment to settle,
# longer under sanitizers, and ZeroMQ drops what a PUB sends before it)
"$audit" -c "$cfg" tail -n 0 -f --count 2 --as op.viewer >"$dir/tail.txt" 2>"$dir/tail.err" &
tailpid=$!
fids=""
for _ in $(seq 1 20); do
    sleep 0.5
    kill -0 "$tailpid" 2>/dev/null || break
    fids="$fids $(send_one)"
    timeout 30 "$recv" -c "$cfg" --as gd.tax -n 1 -t 10000 -o "$dir/gd" >/dev/null 2>&1 ||
        fail "gbx-recv of a feed message"
done
for _ in $(seq 1 100); do kill -0 "$tailpid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$tailpid" 2>/dev/null && fail "tail -f --count 2 did not end: $(cat "$dir/tail.txt")"
wait "$tailpid" || fail "tail -f exited $?: $(cat "$dir/tail.err")"
tailpid=
mapfile -t seen < <(sed -nE 's/.* i=([0-9]+) chain=[0-9a-f]{64}$/\1/p' "$dir/tail.txt")
[ "${#seen[@]}" -eq 2 ] && [ "${seen[1]}" -eq $((seen[0] + 1)) ] || fail "feed: $(cat "$dir/tail.txt")"
fid=$(sed -nE 's/.*message_id=([0-9a-f]{32}).*/\1/p' "$dir/tail.txt" | head -1)
[ -n "$fid" ] && grep -q "$fid" <<<"$fids" || fail "feed: not our messages: $(cat "$dir/tail.txt")"
# a viewer key that is not an operator's gets nothing: no such key file
run -c "$cfg" tail -n 0 -f --count 1 --as nobody
expect 2 "tail -f as nobody"

# an inclusion proof, checked with only the node's public key
covered
run -c "$cfg" prove --message "$id" --event ACKED -o "$dir/proof.json"
expect 0 "prove"
cp "$dir/keys/demo-1.pub" "$dir/demo-1.pub"
run --data /nonexistent --node-key "$dir/demo-1.pub" check-proof "$dir/proof.json"
expect 0 "check-proof"
grep -q "check-proof: OK: record [0-9]* is in node demo-1's trail" <<<"$out" || fail "check-proof: $out"
py - "$dir/proof.json" "$dir/proof-bad.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["record"] = p["record"].replace("event=ACKED", "event=ACKEd")
json.dump(p, open(sys.argv[2], "w"))
EOF
run --data /nonexistent --node-key "$dir/demo-1.pub" check-proof "$dir/proof-bad.json"
expect 1 "check-proof of an edited record"
mkdir "$dir/other" && "$keygen" -d "$dir/other" demo-1 >/dev/null # another key, same node id
run --data /nonexistent --node-key "$dir/other/demo-1.pub" check-proof "$dir/proof.json"
expect 1 "check-proof under another key"
grep -q "forged" <<<"$out" || fail "check-proof under another key: $out"

# consistency with an earlier checkpoint the auditor kept
ctl --as op.viewer --json audit status
expect 0 "audit status"
py -c 'import json,sys; print(json.load(sys.stdin)["checkpoint"]["text"])' <<<"$out" >"$dir/cp-old.txt"
for _ in 1 2 3; do send_one >/dev/null; done
covered
run -c "$cfg" consistency --old "$dir/cp-old.txt" -o "$dir/cons.json"
expect 0 "consistency"
run --data /nonexistent --node-key "$dir/demo-1.pub" check-proof "$dir/cons.json"
expect 0 "check-proof of a consistency proof"
py - "$dir/cons.json" "$dir/cons-bad.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
h = p["proof"][0]
p["proof"][0] = ("0" if h[0] != "0" else "1") + h[1:]
json.dump(p, open(sys.argv[2], "w"))
EOF
run --data /nonexistent --node-key "$dir/demo-1.pub" check-proof "$dir/cons-bad.json"
expect 1 "check-proof of a broken consistency proof"

# countersignatures by the peer node
cpt=$(cat "$dir/cp-old.txt")
run -c "$cfg" cosign --key "$dir/keys/peer-2.secret" "$cpt"
expect 0 "cosign"
cosigned=$out
grep -q " cosig=peer-2:[0-9a-f]\{128\}$" <<<"$cosigned" || fail "cosign: $cosigned"
ctl --as op.viewer audit cosign "$cosigned"
expect 1 "audit cosign as viewer"
grep -q NOT_AUTHORIZED <<<"$err" || fail "audit cosign as viewer: $err"
bad=$(py -c '
import sys
t = sys.argv[1]
at = t.index("cosig=peer-2:") + len("cosig=peer-2:")
print(t[:at] + ("1" if t[at] == "0" else "0") + t[at + 1:])' "$cosigned")
ctl --as op.admin audit cosign "$bad"
expect 1 "audit cosign with a corrupted countersignature"
ctl --as op.admin audit cosign "$cosigned"
expect 0 "audit cosign"
run -c "$cfg" --json verify
expect 0 "verify with a countersignature"
py -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["cosignatures"] != 1)' <<<"$out" || fail "verify: $out"

# exports
run -c "$cfg" export -o "$dir/trail.jsonl"
expect 0 "export"
run -c "$cfg" verify --export "$dir/trail.jsonl"
expect 0 "verify --export"
# the same records as CSV (--to: a checkpoint may come between the two exports)
to=$(head -1 "$dir/trail.jsonl" | py -c 'import json,sys; print(json.load(sys.stdin)["to"])')
run -c "$cfg" export --format csv --to "$to" -o "$dir/trail.csv"
expect 0 "export csv"
head -1 "$dir/trail.csv" | grep -q '^i,at_ms,event,message_id,from,to,service,data_class,decision,rule_id,reason,by,other,chain' ||
    fail "csv header: $(head -1 "$dir/trail.csv")"
nrec=$(grep -c '"type": *"record"' "$dir/trail.jsonl")
[ "$(($(wc -l <"$dir/trail.csv") - 1))" -eq "$nrec" ] || fail "csv rows != $nrec records"
# export tampering: ACTION edits the JSONL; verify must fail naming record K
export_tamper() { # ACTION K
    py - "$dir/trail.jsonl" "$dir/bad.jsonl" "$1" "$2" <<'EOF'
import json, sys
src, dst, action, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lines = open(src).read().splitlines()
recs = [n for n, l in enumerate(lines) if json.loads(l)["type"] == "record" and json.loads(l)["i"] >= k]
at = recs[0]
if action == "edit":
    o = json.loads(lines[at]); o["sealed"] = o["sealed"].replace("event=", "event=X", 1)
    lines[at] = json.dumps(o)
elif action == "delete":
    del lines[at]
elif action == "swap":
    lines[at], lines[recs[1]] = lines[recs[1]], lines[at]
elif action == "truncate":
    lines = lines[:at]
open(dst, "w").write("\n".join(lines) + "\n")
EOF
    run -c "$cfg" verify --export "$dir/bad.jsonl"
    expect 1 "verify of an export, $1 at $2"
    grep -q "FAILED at record $2:" <<<"$out" || fail "export $1 at $2: $out"
}
export_tamper edit 7
export_tamper delete 12
export_tamper swap 15
export_tamper truncate 20

# store tampering, gbxd stopped, on copies of the data dir
ctl --as op.viewer --json audit status
py -c 'import json,sys; print(json.load(sys.stdin)["checkpoint"]["text"])' <<<"$out" >"$dir/cp-last.txt"
stop_gbxd
store_tamper() { # WANT-INDEX ACTION ARGS...
    local want=$1
    shift
    rm -rf "$dir/copy" && cp -a "$dir/data" "$dir/copy"
    "$tamper" "$dir/copy" "$@" || fail "audit-tamper $*"
    run --data "$dir/copy" --node-key "$dir/demo-1.pub" verify
    expect 1 "verify after $*"
    grep -q "FAILED at record $want:" <<<"$out" || fail "after $*: want record $want: $out"
}
# the checkpoints' sizes, from an export of the stopped node's trail
run --data "$dir/data" --node-key "$dir/demo-1.pub" export -o "$dir/final.jsonl"
expect 0 "export of the stopped node"
mapfile -t cps < <(py -c '
import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["type"] == "checkpoint": print(o["size"])' "$dir/final.jsonl")
[ "${#cps[@]}" -ge 4 ] || fail "want at least 4 checkpoints, have ${cps[*]}"
store_tamper 5 edit 5
store_tamper 9 delete 9
store_tamper 13 swap 13 14
store_tamper 25 truncate 25
# a record edited and every chain line after it rebuilt: the chain holds, the
# next checkpoint's signed root does not
store_tamper $((cps[2] - 1)) rechain $((cps[2] - 2))
store_tamper $((cps[3] - 1)) forge-cp "${cps[3]}"
# a cleanly cut trail passes on its own, not against a checkpoint the auditor kept
rm -rf "$dir/copy" && cp -a "$dir/data" "$dir/copy"
"$tamper" "$dir/copy" cut $((cps[-1] - 3)) || fail "audit-tamper cut"
run --data "$dir/copy" --node-key "$dir/demo-1.pub" verify
expect 0 "verify of a cleanly cut trail, alone"
run --data "$dir/copy" --node-key "$dir/demo-1.pub" verify --checkpoint "$dir/cp-last.txt"
expect 1 "verify of a cut trail against a kept checkpoint"
grep -q "truncated" <<<"$out" || fail "cut: $out"
run --data "$dir/data" --node-key "$dir/demo-1.pub" verify --checkpoint "$dir/cp-last.txt"
expect 0 "verify of the real trail against the kept checkpoint"

# retention
start_gbxd
upto=$(sed -E 's/.* size=([0-9]+) .*/\1/' "$dir/cp-old.txt")
ctl --as op.approver audit prune --upto "$upto"
expect 1 "audit prune by an approver"
grep -q NOT_AUTHORIZED <<<"$err" || fail "audit prune by an approver: $err"
ctl --as op.admin audit prune --upto "$upto"
expect 0 "audit prune"
grep -q "^pruned $upto records; the trail now starts at record $upto$" <<<"$out" || fail "prune: $out"
covered
run -c "$cfg" verify
expect 0 "verify after a prune"
run -c "$cfg" query --event AUDIT_PRUNED --json
expect 0 "query AUDIT_PRUNED"
grep -q '"by": *"op.admin"' <<<"$out" || fail "AUDIT_PRUNED: $out"
last=$(sed -E 's/.* size=([0-9]+) .*/\1/' "$dir/cp-last.txt")
run -c "$cfg" prove --index $((last - 1)) -o "$dir/proof2.json"
expect 0 "prove after a prune"
run --data /nonexistent --node-key "$dir/demo-1.pub" check-proof "$dir/proof2.json"
expect 0 "check-proof after a prune"
run -c "$cfg" show 0
expect 1 "show of a pruned record"

# retention by policy: tools/audit-archive.sh exports what is older than
# KEEP, verifies the export, then prunes
for _ in 1 2; do send_one >/dev/null; done
covered
ctl --as op.viewer --json audit status
first=$(py -c 'import json,sys; print(json.load(sys.stdin)["first"])' <<<"$out")
rc=0
"$archive" -c "$cfg" --as op.admin --keep-ms 0 --dir "$dir/archive" --bin "$(dirname "$audit")" \
    >"$dir/out" 2>"$dir/err" || rc=$?
out=$(cat "$dir/out") err=$(cat "$dir/err")
expect 0 "audit-archive"
arch=$(ls "$dir"/archive/demo-1-audit-"$first"-*.jsonl) || fail "no archive: $out $err"
run -c "$cfg" verify --export "$arch"
expect 0 "verify of the archive"
ctl --as op.viewer --json audit status
py -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not d["first"] > '"$first"')' <<<"$out" ||
    fail "archive did not prune: $out"
run -c "$cfg" verify
expect 0 "verify after the archive"
"$archive" -c "$cfg" --as op.admin --keep-ms 3600000 --dir "$dir/archive" --bin "$(dirname "$audit")" |
    grep -q "nothing older" || fail "audit-archive with nothing old enough"
stop_gbxd
# after prunes: the retention anchor moved forward by a forger, keeping or
# deleting the records below it; a checkpoint value made unreadable
mapfile -t cps < <("$audit" --data "$dir/data" --node-key "$dir/demo-1.pub" --json checkpoints |
    sed -E 's/.*"size":([0-9]+).*/\1/')
kept=$("$audit" --data "$dir/data" --node-key "$dir/demo-1.pub" --json verify |
    py -c 'import json,sys; print(json.load(sys.stdin)["from"])')
later=""
for c in "${cps[@]}"; do [ "$c" -gt "$kept" ] && { later=$c; break; }; done
[ -n "$later" ] || fail "no checkpoint beyond the anchor $kept: ${cps[*]}"
for how in keep drop; do
    rm -rf "$dir/copy" && cp -a "$dir/data" "$dir/copy"
    "$tamper" "$dir/copy" move-anchor "$later" "$how" || fail "audit-tamper move-anchor"
    run --data "$dir/copy" --node-key "$dir/demo-1.pub" verify
    expect 1 "verify after the anchor moved ($how)"
    grep -q "anchor was moved" <<<"$out" || fail "anchor moved ($how): $out"
done
rm -rf "$dir/copy" && cp -a "$dir/data" "$dir/copy"
"$tamper" "$dir/copy" junk-cp $((later + 1)) || fail "audit-tamper junk-cp"
run --data "$dir/copy" --node-key "$dir/demo-1.pub" verify
expect 1 "verify with an unreadable checkpoint"
grep -q "unreadable" <<<"$out" || fail "junk checkpoint: $out"

# exports nobody signed: made up from nothing (chained, no checkpoint), and a
# real one with a countersignature by the node itself
py - "$dir/forged.jsonl" <<'EOF'
import hashlib, json, sys
def h(b): return hashlib.blake2b(b, digest_size=32).digest()
lines = [{"type": "export", "v": 1, "node": "demo-1", "from": 0, "to": 2},
         {"type": "anchor", "first": 0, "chain": "00" * 32, "peaks": []}]
chain = bytes(32)
for i in range(2):
    body = "v=1\nevent=ACCEPTED\nat_ms=1\nfrom=hk.kiosk\nto=gd.tax\ni=%d\n" % i
    chain = h(b"\x02" + chain + h(b"\x00" + body.encode()))
    lines.append({"type": "record", "i": i, "sealed": body + "chain=" + chain.hex() + "\n"})
open(sys.argv[1], "w").write("".join(json.dumps(l) + "\n" for l in lines))
EOF
run --data /nonexistent --node-key "$dir/demo-1.pub" verify --export "$dir/forged.jsonl"
expect 1 "verify of an export nobody signed"
grep -q "signed by no checkpoint" <<<"$out" || fail "forged export: $out"
lastcp=$(py -c '
import json, sys
t = [json.loads(l)["text"] for l in open(sys.argv[1]) if json.loads(l)["type"] == "checkpoint"]
print(t[-1])' "$dir/trail.jsonl")
run --data /nonexistent --node-key "$dir/demo-1.pub" cosign --key "$dir/keys/demo-1.secret" "$lastcp"
expect 0 "cosign with the node's own key (the tool signs; verify must refuse it)"
selfcp=$out
py - "$dir/trail.jsonl" "$dir/self.jsonl" "$selfcp" <<'EOF'
import json, sys
size = int(sys.argv[3].split(" size=")[1].split(" ")[0])
out = []
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["type"] == "checkpoint" and o["size"] == size:
        o["text"] = sys.argv[3]
    out.append(json.dumps(o))
open(sys.argv[2], "w").write("\n".join(out) + "\n")
EOF
grep -q "cosig=demo-1" "$dir/self.jsonl" || fail "the self-countersigned checkpoint is not in the export"
run --data /nonexistent --node-key "$dir/demo-1.pub" verify --export "$dir/self.jsonl"
expect 1 "verify of an export countersigned by the node itself"
grep -q "countersigned by the node itself" <<<"$out" || fail "self cosign: $out"
echo "audit: ok"
