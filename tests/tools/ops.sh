#!/usr/bin/env bash
# The operator's surface of issue 6 against a real gbxd over CURVE on
# loopback: every gbxctl command, the roles, /metrics, /healthz, /readyz and
# the log. gbxd runs on its demo config (gbxd --home DIR --init: operators
# op.admin, op.approver, op.viewer; the sample policy), moved to free ports,
# with limits.max_attempts 2, ack_timeout_ms 2s, redelivery_backoff_ms 10ms
# (a fast dead letter) and --log-level debug (more lines for the log checks).
#   - gbxctl, text and --json (one JSON object that parses, its key fields):
#     status (node demo-1, ready, version as in GBX-START), peers (none: the
#     demo registry has one node), config show (listen.adapter: our port,
#     from gbxd.yaml:LINE; an unset setting: default), holds list, policy
#     show / check / reload (op.admin), audit status, agencies (hk.kiosk;
#     gd.tax never seen, then connected or seen after a gbx-recv session),
#     queues (3 messages gd.qh-amr -> hk.cr, which nobody receives: 3
#     messages, bytes, the oldest's age past 1 s, in_total 3), messages show
#     (a message received and acked: ACCEPTED, DELIVERED, ACKED in that
#     order, state done; an unknown id: exit 1 NOT_FOUND; a malformed one:
#     exit 1 BAD_REQUEST), dlq list / replay / purge, drain / --wait /
#     --cancel
#   - the dead letters, made deterministically: two messages hk.cr -> gd.amr
#     and a gbx-recv for gd.amr whose -o directory does not exist: it gets
#     each delivery, cannot write it, so never acks it (tools/recv.c), and
#     stays connected; gbxd redelivers after the ack timeout and dead-letters
#     both after the second. (A gbx-recv that just exits would not do: no
#     session ends before session_timeout_ms, and a Deliver that finds its
#     session gone is not counted as an attempt.) Polled with dlq list.
#     Then as op.admin: replay one (a plain gbx-recv gets and acks it), purge
#     the other (messages show: PURGED); purging it again: NOT_FOUND
#   - roles: op.viewer gets exit 1 NOT_AUTHORIZED for holds approve, dlq
#     purge, dlq replay, drain, policy reload, audit prune; op.approver for
#     dlq purge and drain; nothing changed (the dead letters stay); each is
#     logged GBX-CONTROL-REFUSED and audited CONTROL_REFUSED (gbx-audit
#     query --event CONTROL_REFUSED --json); 30 more refused drains leave at
#     most 2 records (one per operator and command each 10 s)
#   - listen.control_tcp: gbxctl --connect tcp://... answers status and
#     refuses a viewer's drain, as on the unix socket
#   - /metrics parses (tests/tools/ops_check.py with the sample dashboard and
#     alerts: exit 0, for every scrape taken) and counts the traffic:
#     accepted by class and direction, POLICY_DENIED (a paycert request
#     without consent), deliveries, redeliveries, acks, dead letters,
#     replays, purges, the delivery latency and fsync histograms, the queue
#     gauge equal to gbxctl queues, the refused dlq.purge in
#     gbx_control_commands_total. /healthz 200 "ok", /readyz 200 "ready",
#     an unknown path 404, POST 405
#   - drain: /readyz 503 "draining: ...", gbx_ready 0, gbx_draining 1,
#     /healthz 200, gbx-send refused DRAINING (exit 1), status draining.on;
#     drain --wait exit 0; drain again exit 1 ALREADY; drain --cancel: ready,
#     gbx-send accepted
#   - disk: gbxd restarted with limits.min_free_disk_bytes 1PiB: within 3 s
#     /readyz 503 "disk: ...", /healthz 200, gbx_store_disk_free_bytes below
#     gbx_store_disk_free_min_bytes, gbx-send refused RETRY_LATER, the log
#     line GBX-DISK-LOW; restarted without it: ready, gbx-send accepted
#   - the log: every line gbxd wrote on stderr (all its runs) is logfmt
#     "ts=... level=... id=GBX-..."; stdout has only the start banners; the
#     marker in a payload (SECRET-PAYLOAD-...) is in no line
# Every wait is a bounded poll (20 s at most, 3 s for the disk check).
# Usage: ops.sh GBXD GBXCTL GBX-SEND GBX-RECV GBX-AUDIT SOURCE_DIR
set -euo pipefail
[ $# -eq 6 ] || { echo "usage: ops.sh GBXD GBXCTL GBX-SEND GBX-RECV GBX-AUDIT SOURCE_DIR" >&2; exit 2; }
gbxd=$1 ctl=$2 send=$3 recv=$4 audit=$5 src=$6
py=/usr/bin/python3
dir=$(mktemp -d) # short: listen.control (DIR/gbxd.ctl) is a unix socket path
pid='' rpid='' rc=0 out='' err='' code='' body='' last=''
cleanup() {
    if [ -n "$rpid" ]; then kill -TERM "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true; fi
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$dir"
}
trap cleanup EXIT
healthz_ok() { # WHEN
    http /healthz
    if [ "$code" != 200 ] || [ "$body" != ok ]; then fail "/healthz $1: $code $body"; fi
}
fail() { echo "FAIL: $*" >&2; [ -f "$dir/gbxd.log" ] && tail -20 "$dir/gbxd.log" >&2; exit 1; }

# runs a command with a bounded time; RC gets its exit code, OUT and ERR its output
runx() {
    rc=0
    timeout 60 "$@" >"$dir/out" 2>"$dir/err" </dev/null || rc=$?
    out=$(cat "$dir/out") err=$(cat "$dir/err")
    last="exit $rc, stdout: $out, stderr: $err"
}
run() { runx "$ctl" -c "$cfg" "$@"; }              # gbxctl ...
snd() { runx "$send" -c "$cfg" "$@"; }             # gbx-send ...
expect() { # CODE WHAT
    [ "$rc" -eq "$1" ] || fail "$2: exit $rc, want $1 (stdout: $out; stderr: $err)"
}
refused() { # CODE WHAT: exit 1 with CODE on stderr
    expect 1 "$2"
    grep -q "$1" <<<"$err" || fail "$2: stderr $err, want $1"
}
# jt EXPR: whether the python EXPR holds, d being $OUT parsed as JSON (one
# object on one line) and E the environment
jt() {
    [ "$(wc -l <<<"$out")" -eq 1 ] || return 1
    $py -c '
import json, os, sys
d = json.load(sys.stdin); E = os.environ
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" <<<"$out" 2>/dev/null
}
jtrue() { jt "$1" || fail "$2: not $1: $out"; } # EXPR WHAT
# poll WHAT CMD...: CMD until it succeeds, at most 20 s
poll() {
    local what=$1
    shift
    for _ in $(seq 1 100); do
        "$@" && return 0
        sleep 0.2
    done
    fail "$what (waited 20 s; last $last)"
}

# HTTP on listen.metrics: http [METHOD] PATH -> CODE and BODY
http() {
    local method=GET
    if [ $# -eq 2 ]; then method=$1; shift; fi
    code=$($py - "$mport" "$method" "$1" "$dir/body" <<'EOF'
import sys, urllib.request, urllib.error
port, method, path, out = sys.argv[1:]
req = urllib.request.Request("http://127.0.0.1:%s%s" % (port, path), method=method,
                             data=b"x" if method == "POST" else None)
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        code, body = r.status, r.read()
except urllib.error.HTTPError as e:
    code, body = e.code, e.read()
except OSError as e:
    code, body = 0, str(e).encode()
open(out, "wb").write(body)
print(code)
EOF
    )
    body=$(cat "$dir/body")
    last="HTTP $code: $body"
}
# metrics NAME 'SERIES OP VALUE'...: scrapes /metrics until every condition
# holds (at most 20 s; VALUE a number or a series), saves the scrape as
# DIR/NAME and checks it with ops_check.py
metrics() {
    local name=$1
    shift
    $py - "$mport" "$dir/$name" "$@" >"$dir/mcheck" 2>&1 <<'EOF' || fail "metrics ($name): $(cat "$dir/mcheck")"
import operator, sys, time, urllib.request
port, save, conds = sys.argv[1], sys.argv[2], sys.argv[3:]
ops = {"==": operator.eq, ">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le}
def value(m, tok):
    try:
        return float(tok)
    except ValueError:
        return m.get(tok)
deadline, text, bad = time.monotonic() + 20, "", ["no scrape"]
while True:
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=10) as r:
            text = r.read().decode()
        m = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                m[k] = float(v)
        bad = []
        for c in conds:
            a, op, b = c.split(" ")
            va, vb = value(m, a), value(m, b)
            if va is None or vb is None or not ops[op](va, vb):
                bad.append("%s (is %s %s %s)" % (c, va, op, vb))
    except OSError as e:
        bad = ["scrape: %s" % e]
    if not bad or time.monotonic() > deadline:
        break
    time.sleep(0.2)
open(save, "w").write(text)
if bad:
    print("; ".join(bad))
    sys.exit(1)
EOF
    local st=0
    $py "$src/tests/tools/ops_check.py" "$dir/$name" "$src/docs/ops/grafana-dashboard.json" \
        "$src/docs/ops/gbx-alerts.yml" >"$dir/opscheck" 2>&1 || st=$?
    [ "$st" -ne 77 ] || fail "ops_check.py needs python3-yaml (apt-get install python3-yaml)"
    [ "$st" -eq 0 ] || fail "ops_check.py on scrape $name: exit $st: $(cat "$dir/opscheck")"
}

starts=0
start_gbxd() { # gbxd on DIR/gbxd.yaml; stderr and stdout appended to DIR/gbxd.log and DIR/gbxd.out
    "$gbxd" --home "$dir" --log-level debug 2>>"$dir/gbxd.log" >>"$dir/gbxd.out" &
    pid=$!
    starts=$((starts + 1))
    for _ in $(seq 1 200); do
        [ "$(grep -c ' id=GBX-START ' "$dir/gbxd.log" || true)" -ge "$starts" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    fail "gbxd did not start"
}
stop_gbxd() {
    kill -TERM "$pid"
    local st=0
    wait "$pid" || st=$?
    pid=
    [ "$st" -eq 0 ] || fail "gbxd exited $st after SIGTERM"
}

freeport() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(freeport)
mport=$(freeport)
while [ "$mport" = "$port" ]; do mport=$(freeport); done
cport=$(freeport)
while [ "$cport" = "$port" ] || [ "$cport" = "$mport" ]; do cport=$(freeport); done
"$gbxd" --home "$dir" --init >"$dir/init.out" 2>>"$dir/gbxd.log" || fail "gbxd --init"
cfg="$dir/gbxd.yaml"
grep -q '^limits:$' "$cfg" || fail "the demo config has no limits: section"
sed -i -e "s#tcp://127.0.0.1:7400#tcp://127.0.0.1:$port#" -e "s#metrics: 127.0.0.1:9400#metrics: 127.0.0.1:$mport#" \
    -e '/^limits:$/a\  max_attempts: 2\n  ack_timeout_ms: 2s\n  redelivery_backoff_ms: 10ms' \
    -e "s#^listen:\$#listen:\n  control_tcp: tcp://127.0.0.1:$cport#" "$cfg"
grep -q "^  control_tcp: tcp://127.0.0.1:$cport\$" "$cfg" || fail "could not set listen.control_tcp"
grep -q "^  adapter: tcp://127.0.0.1:$port\$" "$cfg" || fail "could not move listen.adapter"
grep -q "^  metrics: 127.0.0.1:$mport " "$cfg" || fail "could not move listen.metrics"
adapter_line=$(grep -n "^  adapter: tcp://127.0.0.1:$port\$" "$cfg" | cut -d: -f1)
attempts_line=$(grep -n '^  max_attempts: 2$' "$cfg" | cut -d: -f1)
start_gbxd

# what the sample policy asks of a paycert request (see sendrecv.sh), of a
# hk.cr request of GD-AMR-USCC (rule pi-hk-gd-notified) and of a gd.qh-amr
# request of HK-CR-COEXTRACT (rule pi-gd-hk-gba)
PAYCERT=(--service GD-SI-PAYCERT --purpose SI-CERT --route GBA_STANDARD_CONTRACT
    --route-ref GBA-SC-2024-0193 --consent SEPARATE_CONSENT --consent-ref PA-2026-55120
    --impact-ref PIA-GD-2025-031 --end-user iamsmart:5f3c9a)
USCC=(--service GD-AMR-USCC --purpose CR-GD-ENTITY-CHECK --route GBA_STANDARD_CONTRACT
    --route-ref GBA-SC-2024-0193)
COEXTRACT=(--service HK-CR-COEXTRACT --route GBA_STANDARD_CONTRACT --route-ref GBA-SC-2024-0193
    --consent NOTICE --consent-ref PN-2026-1 --impact-ref PIA-GD-2025-031)
marker="SECRET-PAYLOAD-$RANDOM$RANDOM-$$"
printf 'certificate request %s\n' "$marker" >"$dir/secret.bin"
head -c 500 /dev/urandom >"$dir/small.bin"
ids_of() { sed -nE 's/^accepted id=([0-9a-f]{32}) .*/\1/p' <<<"$out"; }

# --- the control socket over TCP (listen.control_tcp): the same CURVE and roles
run --connect "tcp://127.0.0.1:$cport" --as op.viewer --json status
expect 0 "status over listen.control_tcp"
run --connect "tcp://127.0.0.1:$cport" --as op.viewer drain
expect 1 "a viewer's drain over listen.control_tcp"
grep -q NOT_AUTHORIZED <<<"$err" || fail "drain over tcp as a viewer: $err"

# --- health at start
readyz_is() { http /readyz; [ "$code" = "$1" ]; }
poll "/readyz not 200 after the start" readyz_is 200
[ "$body" = "ready" ] || fail "/readyz body: $body"
healthz_ok "at the start"
http /nope
[ "$code" = 404 ] || fail "GET /nope: $code $body, want 404"
http POST /healthz
[ "$code" = 405 ] || fail "POST /healthz: $code $body, want 405"

# --- status, peers, config show, holds list, policy, audit status
version=$(sed -nE 's/.* id=GBX-START .* version=([^ ]+) .*/\1/p' "$dir/gbxd.log" | head -1)
[ -n "$version" ] || fail "no version= in GBX-START"
run --as op.viewer status
expect 0 "status"
grep -q '^node *demo-1$' <<<"$out" || fail "status: $out"
grep -q "^version *$version\$" <<<"$out" || fail "status does not say version $version: $out"
grep -q '^state *ready$' <<<"$out" || fail "status not ready: $out"
grep -q '^you *op.viewer (viewer)$' <<<"$out" || fail "status: $out"
run --as op.viewer --json status
expect 0 "--json status"
VERSION=$version jtrue 'd["node"] == "demo-1" and d["ready"] is True and d["version"] == E["VERSION"] and d["draining"]["on"] is False and d["jurisdiction"] == "HK" and d["role"] == "viewer"' "--json status"

run --as op.viewer peers
expect 0 "peers"
[ "$out" = "no peer nodes in the registry" ] || fail "peers: $out"
run --as op.viewer --json peers
expect 0 "--json peers"
jtrue 'd["peers"] == []' "--json peers"

run --as op.viewer config show
expect 0 "config show"
grep -Eq "^listen\.adapter +\= tcp://127\.0\.0\.1:$port +# (.*/)?gbxd\.yaml:$adapter_line\$" <<<"$out" ||
    fail "config show: listen.adapter not tcp://127.0.0.1:$port from gbxd.yaml:$adapter_line: $out"
grep -Eq "^limits\.max_attempts +\= 2 +# (.*/)?gbxd\.yaml:$attempts_line\$" <<<"$out" ||
    fail "config show: limits.max_attempts not 2 from gbxd.yaml:$attempts_line: $out"
grep -Eq '^limits\.session_timeout_ms += 30000 +# default$' <<<"$out" ||
    fail "config show: limits.session_timeout_ms not the default: $out"
run --as op.viewer --json config show
expect 0 "--json config show"
PORT=$port LINE=$adapter_line jtrue '[(s["value"], s["source"].split("/")[-1]) for s in d["settings"] if s["name"] == "listen.adapter"] == [("tcp://127.0.0.1:" + E["PORT"], "gbxd.yaml:" + E["LINE"])]' "--json config show (listen.adapter)"
jtrue '[s["source"] for s in d["settings"] if s["name"] == "limits.session_timeout_ms"] == ["default"]' "--json config show (a default)"

run --as op.viewer holds list
expect 0 "holds list"
grep -q '^(0 held)$' <<<"$out" || fail "holds list: $out"
run --as op.viewer --json holds list
expect 0 "--json holds list"
jtrue 'd["holds"] == [] and d["total"] == 0' "--json holds list"

run --as op.viewer policy show
expect 0 "policy show"
grep -q '^version *2026-11-22.1$' <<<"$out" || fail "policy show: $out"
run --as op.viewer --json policy show
expect 0 "--json policy show"
jtrue 'd["version"] == "2026-11-22.1" and d["rules"] > 0 and len(d["hash"]) == 64' "--json policy show"
run --as op.viewer policy check --from hk.kiosk --to gd.tax "${PAYCERT[@]}"
expect 0 "policy check"
grep -q '^ALLOW .*rule sp-hk-gd-paycert-request' <<<"$out" || fail "policy check: $out"
run --as op.viewer --json policy check --from hk.kiosk --to gd.tax --service GD-SI-PAYCERT
expect 0 "--json policy check"
jtrue 'd["outcome"] == "DENY" and d["reason"] == "POLICY_DENIED"' "--json policy check without consent"

run --as op.viewer audit status
expect 0 "audit status"
grep -Eq '^records +[1-9][0-9]* ' <<<"$out" || fail "audit status: $out"
grep -Eq '^chain head +[0-9a-f]{64}$' <<<"$out" || fail "audit status: $out"
run --as op.viewer --json audit status
expect 0 "--json audit status"
jtrue 'd["records"] > 0 and d["durable"] <= d["records"] and len(d["chain"]) == 64' "--json audit status"

# --- agencies: gd.tax never seen yet
run --as op.viewer agencies
expect 0 "agencies"
grep -Eq '^hk\.kiosk +HK +demo-1 +yes ' <<<"$out" || fail "agencies: no hk.kiosk: $out"
run --as op.viewer --json agencies
expect 0 "--json agencies"
jtrue 'any(a["id"] == "hk.kiosk" and a["jurisdiction"] == "HK" and a["local"] is True for a in d["agencies"])' "--json agencies (hk.kiosk)"
jtrue '[(a["connected"], a["sessions"], a["last_seen_ago_ms"]) for a in d["agencies"] if a["id"] == "gd.tax"] == [(False, 0, None)]' "--json agencies (gd.tax before any session)"

# --- queues: 3 messages for hk.cr, which nobody receives
snd --as gd.qh-amr --to hk.cr "${COEXTRACT[@]}" -n 3 -f "$dir/small.bin"
expect 0 "gbx-send of 3 messages to hk.cr"
[ "$(grep -c '^accepted id=.* status=ACCEPTED dup=0$' <<<"$out")" -eq 3 ] || fail "gbx-send to hk.cr: $out"
hkcr_aged() {
    run --as op.viewer --json queues
    [ "$rc" -eq 0 ] && jt '[q for q in d["queues"] if q["agency"] == "hk.cr" and (q["oldest_age_ms"] or 0) >= 1000]'
}
poll "queues: hk.cr's oldest message not 1 s old" hkcr_aged
jtrue '[(q["messages"], q["in_total"], q["inflight"], q["dead_letters"]) for q in d["queues"] if q["agency"] == "hk.cr"] == [(3, 3, 0, 0)]' "--json queues (hk.cr)"
jtrue '[q for q in d["queues"] if q["agency"] == "hk.cr" and q["bytes"] > 0]' "--json queues (hk.cr bytes)"
run --as op.viewer queues
expect 0 "queues"
grep -Eq '^hk\.cr +3 +[0-9.]+[KMG]?i?B +[0-9]' <<<"$out" || fail "queues: hk.cr: $out"

# --- messages show: a message received and acked (its payload carries the marker)
snd --as hk.kiosk --to gd.tax "${PAYCERT[@]}" -f "$dir/secret.bin"
expect 0 "gbx-send of the paycert request"
id=$(ids_of)
[ -n "$id" ] || fail "gbx-send: $out"
mkdir "$dir/gd"
runx "$recv" -c "$cfg" --as gd.tax -n 1 -t 15000 -o "$dir/gd"
expect 0 "gbx-recv (gd.tax)"
cmp -s "$dir/secret.bin" "$dir/gd/$id" || fail "gd.tax did not get $id: $out $err"
acked() {
    run --as op.viewer --json messages show "$id"
    [ "$rc" -eq 0 ] && jt 'd["last_event"] == "ACKED"'
}
poll "messages show $id: not ACKED" acked
ID=$id jtrue 'd["message_id"] == E["ID"] and d["state"].startswith("done")' "--json messages show"
jtrue '(lambda ev: "ACCEPTED" in ev and "DELIVERED" in ev and "ACKED" in ev and ev.index("ACCEPTED") < ev.index("DELIVERED") < ev.index("ACKED"))([r["event"] for r in d["records"]])' "--json messages show: ACCEPTED, DELIVERED, ACKED in order"
run --as op.viewer messages show "$id"
expect 0 "messages show"
grep -q "^message *$id\$" <<<"$out" || fail "messages show: $out"
grep -q '^state *done' <<<"$out" || fail "messages show: $out"
order=$(grep -Eo ' (ACCEPTED|DELIVERED|ACKED) ' <<<"$out" | tr -d ' ' | uniq | tr '\n' ' ')
[ "$order" = "ACCEPTED DELIVERED ACKED " ] || fail "messages show: events $order: $out"
run --as op.viewer messages show 00112233445566778899aabbccddeeff
refused NOT_FOUND "messages show of an unknown id"
run --as op.viewer messages show not-a-message-id
refused BAD_REQUEST "messages show of a malformed id"
run --as op.viewer --json agencies
expect 0 "--json agencies"
jtrue '[a for a in d["agencies"] if a["id"] == "gd.tax" and (a["connected"] or a["sessions"] > 0 or a["last_seen_ago_ms"] is not None)]' "--json agencies (gd.tax after its gbx-recv)"

# --- a refusal by the policy: a paycert request without consent
snd --as hk.kiosk --to gd.tax --service GD-SI-PAYCERT --route GBA_STANDARD_CONTRACT \
    --route-ref GBA-SC-2024-0193 --end-user iamsmart:5f3c9a -f "$dir/small.bin"
expect 1 "gbx-send without consent"
grep -q 'reason=POLICY_DENIED' <<<"$out" || fail "gbx-send without consent: $out"

# --- dead letters: a gd.amr receiver that never acks (see the header)
snd --as hk.cr --to gd.amr "${USCC[@]}" -n 2 -f "$dir/small.bin"
expect 0 "gbx-send of 2 messages to gd.amr"
mapfile -t dl < <(ids_of)
[ "${#dl[@]}" -eq 2 ] || fail "gbx-send to gd.amr: $out"
timeout 60 "$recv" -c "$cfg" --as gd.amr -t 30000 -o "$dir/nowhere" >"$dir/noack.out" 2>&1 &
rpid=$!
two_dead() {
    run --as op.viewer --json dlq list --agency gd.amr
    [ "$rc" -eq 0 ] && jt 'd["total"] == 2'
}
poll "dlq list: not 2 dead letters of gd.amr" two_dead
kill -TERM "$rpid" 2>/dev/null || true
wait "$rpid" 2>/dev/null || true
rpid=
for m in "${dl[@]}"; do
    grep -q "id=$m .*attempt=1" "$dir/noack.out" || fail "the never-acking gbx-recv did not get $m: $(cat "$dir/noack.out")"
done
D1=${dl[0]} D2=${dl[1]} jtrue 'sorted(e["message_id"] for e in d["dead_letters"]) == sorted([E["D1"], E["D2"]]) and all(e["attempts"] == 2 and e["from"] == "hk.cr" and e["to"] == "gd.amr" for e in d["dead_letters"])' "--json dlq list"
run --as op.viewer dlq list
expect 0 "dlq list"
for m in "${dl[@]}"; do
    grep -Eq "^$m +[0-9]+ hk\.cr +gd\.amr +2 " <<<"$out" || fail "dlq list does not show $m: $out"
done
grep -q '^(2 dead letters)$' <<<"$out" || fail "dlq list: $out"
run --as op.viewer --json status
expect 0 "--json status"
jtrue 'd["totals"]["dead_lettered"] >= 2 and d["queues"]["dead_letters"] == 2 and d["totals"]["redelivered"] >= 2' "--json status after the dead letters"
grep -q " id=GBX-DEAD-LETTERED .*message_id=${dl[0]}" "$dir/gbxd.log" || fail "no GBX-DEAD-LETTERED line for ${dl[0]}"

# --- roles: refused, nothing done, logged and audited
refuse() { # OPERATOR COMMAND...
    run --as "$@"
    refused NOT_AUTHORIZED "$* (as a refusal)"
}
refuse op.viewer holds approve 00112233445566778899aabbccddeeff
refuse op.viewer dlq purge "${dl[0]}"
refuse op.viewer dlq replay "${dl[0]}"
refuse op.viewer drain
refuse op.viewer policy reload
refuse op.viewer audit prune --upto 1
refuse op.approver dlq purge "${dl[1]}"
refuse op.approver drain
run --as op.viewer --json dlq list
expect 0 "--json dlq list after the refusals"
jtrue 'd["total"] == 2' "dead letters after refused replays and purges"
run --as op.viewer --json status
expect 0 "--json status after the refusals"
jtrue 'd["draining"]["on"] is False' "draining after refused drains"
for w in "op.viewer role=viewer cmd=holds.approve" "op.viewer role=viewer cmd=dlq.purge" \
    "op.viewer role=viewer cmd=dlq.replay" "op.viewer role=viewer cmd=drain" \
    "op.viewer role=viewer cmd=policy.reload" "op.viewer role=viewer cmd=audit.prune" \
    "op.approver role=approver cmd=dlq.purge" "op.approver role=approver cmd=drain"; do
    grep -q " id=GBX-CONTROL-REFUSED operator=$w refused=[0-9]*\$" "$dir/gbxd.log" || fail "no log line GBX-CONTROL-REFUSED operator=$w"
done
all_audited() {
    runx "$audit" -c "$cfg" --json query --event CONTROL_REFUSED
    [ "$rc" -eq 0 ] || return 1
    $py -c '
import json, sys
seen = {(r["fields"].get("by"), r["fields"].get("role"), r["fields"].get("cmd"))
        for r in map(json.loads, filter(None, sys.stdin.read().splitlines()))}
want = {("op.viewer", "viewer", c) for c in
        ("holds.approve", "dlq.purge", "dlq.replay", "drain", "policy.reload", "audit.prune")}
want |= {("op.approver", "approver", "dlq.purge"), ("op.approver", "approver", "drain")}
sys.exit(0 if want <= seen else 1)' <<<"$out"
}
poll "gbx-audit query --event CONTROL_REFUSED: not every refusal" all_audited
# a flood of refusals is counted, not written one by one: 30 more refused
# drains leave at most 2 records for (op.viewer, drain) in all
for _ in $(seq 1 30); do run --as op.viewer drain; done
expect 1 "the 30th refused drain"
runx "$audit" -c "$cfg" --json query --event CONTROL_REFUSED
$py -c '
import json, sys
n = sum(1 for r in map(json.loads, filter(None, sys.stdin.read().splitlines()))
        if r["fields"].get("by") == "op.viewer" and r["fields"].get("cmd") == "drain")
sys.exit(0 if 1 <= n <= 2 else 1)' <<<"$out" || fail "31 refused drains wrote more than 2 records: $out"

# --- dlq replay and purge as op.admin (the demo's operator-role operator)
run --as op.admin dlq replay "${dl[0]}"
expect 0 "dlq replay"
grep -q "^replayed ${dl[0]} (seq [0-9]*, hk.cr -> gd.amr)$" <<<"$out" || fail "dlq replay: $out"
run --as op.admin --json dlq purge "${dl[1]}"
expect 0 "--json dlq purge"
D=${dl[1]} jtrue 'd["message_id"] == E["D"] and d["decision"] == "purged" and d["to"] == "gd.amr"' "--json dlq purge"
run --as op.admin dlq purge "${dl[1]}"
refused NOT_FOUND "purging it again"
run --as op.admin dlq purge
expect 2 "dlq purge without an id or --all"
mkdir "$dir/amr"
runx "$recv" -c "$cfg" --as gd.amr -n 1 -t 15000 -o "$dir/amr"
expect 0 "gbx-recv (gd.amr) of the replayed message"
[ -f "$dir/amr/${dl[0]}" ] || fail "the replayed ${dl[0]} was not delivered: $out"
run --as op.viewer dlq list
expect 0 "dlq list after replay and purge"
grep -q '^(0 dead letters)$' <<<"$out" || fail "dlq list after replay and purge: $out"
purged() {
    run --as op.viewer --json messages show "${dl[1]}"
    [ "$rc" -eq 0 ] && jt 'd["last_event"] == "PURGED"'
}
poll "messages show ${dl[1]}: not PURGED" purged
jtrue '[r["event"] for r in d["records"]].count("DEAD_LETTERED") == 1 and d["state"].startswith("purged")' "--json messages show of the purged one"
replayed_acked() {
    run --as op.viewer --json messages show "${dl[0]}"
    [ "$rc" -eq 0 ] && jt 'd["last_event"] == "ACKED"'
}
poll "messages show ${dl[0]}: not ACKED after its replay" replayed_acked
jtrue '(lambda ev: ev.index("DEAD_LETTERED") < ev.index("REPLAYED") < len(ev) - 1)([r["event"] for r in d["records"]])' "--json messages show of the replayed one"

# --- policy reload as op.admin
run --as op.admin policy reload
expect 0 "policy reload"
grep -q '^version *2026-11-22.1$' <<<"$out" || fail "policy reload: $out"

# --- the metrics after that traffic
run --as op.viewer --json queues
expect 0 "--json queues"
hkcr=$($py -c 'import json,sys; print([q["messages"] for q in json.load(sys.stdin)["queues"] if q["agency"] == "hk.cr"][0])' <<<"$out")
[ "$hkcr" -eq 3 ] || fail "queues: hk.cr has $hkcr messages"
metrics traffic.txt \
    'gbx_ready == 1' 'gbx_draining == 0' \
    'gbx_messages_accepted_total{data_class="SENSITIVE_PERSONAL",direction="hk_to_gd"} >= 1' \
    'gbx_messages_accepted_total{data_class="PERSONAL",direction="hk_to_gd"} >= 2' \
    'gbx_messages_accepted_total{data_class="PERSONAL",direction="gd_to_hk"} >= 3' \
    'gbx_messages_rejected_total{reason="POLICY_DENIED"} >= 1' \
    'gbx_messages_delivered_total >= 6' 'gbx_messages_redelivered_total >= 2' \
    'gbx_messages_acked_total >= 2' 'gbx_messages_dead_lettered_total >= 2' \
    'gbx_messages_replayed_total >= 1' 'gbx_messages_purged_total >= 1' \
    'gbx_delivery_latency_seconds_count >= 1' 'gbx_store_fsync_seconds_count > 0' \
    "gbx_queue_messages{agency=\"hk.cr\"} == $hkcr" 'gbx_queue_bytes{agency="hk.cr"} > 0' \
    'gbx_queue_oldest_age_seconds{agency="hk.cr"} >= 1' 'gbx_dlq_messages{agency="gd.amr"} == 0' \
    'gbx_control_commands_total{command="dlq.purge",result="NOT_AUTHORIZED"} >= 1' \
    'gbx_control_commands_total{command="drain",result="NOT_AUTHORIZED"} >= 1' \
    'gbx_control_commands_total{command="dlq.replay",result="ok"} >= 1'
grep -q "^gbx_build_info{version=\"$version\",node=\"demo-1\",jurisdiction=\"HK\"} 1\$" "$dir/traffic.txt" ||
    fail "gbx_build_info: $(grep '^gbx_build_info' "$dir/traffic.txt")"

# --- drain
run --as op.admin drain
expect 0 "drain"
grep -q '^draining: .*(by op.admin)$' <<<"$out" || fail "drain: $out"
http /readyz
[ "$code" = 503 ] || fail "/readyz while draining: $code $body"
grep -q '^draining:' <<<"$body" || fail "/readyz while draining: $body"
healthz_ok "while draining"
snd --as gd.qh-amr --to hk.cr "${COEXTRACT[@]}" -f "$dir/small.bin"
expect 1 "gbx-send while draining"
grep -q '^rejected id=[0-9a-f]* reason=DRAINING ' <<<"$out" || fail "gbx-send while draining: $out"
metrics draining.txt 'gbx_ready == 0' 'gbx_draining == 1' 'gbx_messages_rejected_total{reason="DRAINING"} >= 1'
run --as op.viewer --json status
expect 0 "--json status while draining"
jtrue 'd["draining"]["on"] is True and d["draining"]["by"] == "op.admin" and d["ready"] is False' "--json status while draining"
run --as op.viewer status
expect 0 "status while draining"
grep -q '^state *DRAINING since .* by op.admin' <<<"$out" || fail "status while draining: $out"
run --as op.admin --timeout-ms 20000 drain --wait
expect 0 "drain --wait"
grep -q '^drained: nothing in flight$' <<<"$out" || fail "drain --wait: $out"
run --as op.admin drain
refused ALREADY "drain again"
run --as op.admin drain --cancel
expect 0 "drain --cancel"
grep -q '^resumed: .*(by op.admin)$' <<<"$out" || fail "drain --cancel: $out"
poll "/readyz not 200 after drain --cancel" readyz_is 200
[ "$body" = "ready" ] || fail "/readyz after drain --cancel: $body"
snd --as gd.qh-amr --to hk.cr "${COEXTRACT[@]}" -f "$dir/small.bin"
expect 0 "gbx-send after drain --cancel"
metrics resumed.txt 'gbx_ready == 1' 'gbx_draining == 0'
grep -q ' id=GBX-DRAINING by=op.admin$' "$dir/gbxd.log" || fail "no GBX-DRAINING line"
grep -q ' id=GBX-RESUMED by=op.admin$' "$dir/gbxd.log" || fail "no GBX-RESUMED line"

# --- the disk below limits.min_free_disk_bytes (1 PiB, the most allowed)
stop_gbxd
sed -i '/^limits:$/a\  min_free_disk_bytes: 1125899906842624' "$cfg"
start_gbxd
t0=$(date +%s%N)
for _ in $(seq 1 100); do
    http /readyz
    [ "$code" = 503 ] && break
    [ $(($(date +%s%N) - t0)) -lt 3000000000 ] || break
    sleep 0.1
done
[ "$code" = 503 ] || fail "/readyz with the disk below the minimum: $code $body (3 s after the start)"
grep -q '^disk:' <<<"$body" || fail "/readyz with the disk below the minimum: $body"
healthz_ok "with the disk below the minimum"
metrics disk.txt 'gbx_ready == 0' 'gbx_draining == 0' 'gbx_store_disk_free_min_bytes == 1125899906842624' \
    'gbx_store_disk_free_bytes < gbx_store_disk_free_min_bytes'
snd --as gd.qh-amr --to hk.cr "${COEXTRACT[@]}" -f "$dir/small.bin"
expect 1 "gbx-send with the disk below the minimum"
grep -q '^rejected id=[0-9a-f]* reason=RETRY_LATER ' <<<"$out" || fail "gbx-send with the disk below the minimum: $out"
run --as op.viewer --json status
expect 0 "--json status with the disk below the minimum"
jtrue 'd["ready"] is False and d["not_ready_because"].startswith("disk:") and d["disk"]["free_bytes"] < d["disk"]["min_free_bytes"]' "--json status with the disk below the minimum"
grep -q ' id=GBX-DISK-LOW .*min_free_bytes=1125899906842624' "$dir/gbxd.log" || fail "no GBX-DISK-LOW line"
stop_gbxd
sed -i '/^  min_free_disk_bytes: 1125899906842624$/d' "$cfg"
start_gbxd
poll "/readyz not 200 after the restart with the default minimum" readyz_is 200
snd --as gd.qh-amr --to hk.cr "${COEXTRACT[@]}" -f "$dir/small.bin"
expect 0 "gbx-send after the restart with the default minimum"
run --as op.viewer --json queues
expect 0 "--json queues after the restarts"
jtrue '[q["messages"] for q in d["queues"] if q["agency"] == "hk.cr"] == [5]' "hk.cr's queue after the restarts"
stop_gbxd

# --- the log: logfmt, every line; no payload
[ "$(wc -l <"$dir/gbxd.log")" -gt 20 ] || fail "gbxd's log is short: $(cat "$dir/gbxd.log")"
if grep -Ev '^ts=[^ ]+ level=(debug|info|warn|error) id=GBX-[A-Z0-9-]+( |$)' "$dir/gbxd.log" >"$dir/badlines"; then
    fail "gbxd's log lines not in logfmt: $(head -5 "$dir/badlines")"
fi
[ "$(grep -c ' id=GBX-START ' "$dir/gbxd.log")" -eq 3 ] || fail "not 3 GBX-START lines"
[ "$(grep -c ' id=GBX-STOP ' "$dir/gbxd.log")" -eq 3 ] || fail "not 3 GBX-STOP lines"
if [ "$(grep -c . "$dir/gbxd.out")" -ne 3 ] || grep -qv '^gbxd: ' "$dir/gbxd.out"; then
    fail "gbxd's stdout is not its 3 banners: $(cat "$dir/gbxd.out")"
fi
grep -q "$marker" "$dir/gd/$id" || fail "the marker is not in the payload"
! grep -qF "$marker" "$dir/gbxd.log" "$dir/gbxd.out" || fail "the payload's marker $marker is in gbxd's log"
echo "ops: ok"
