#!/usr/bin/env bash
# gbx-send and gbx-recv as a script uses them, against a real gbxd on its
# default config (moved to a free port): a request and its answer, the
# payload bytes intact both ways, exit codes, refusals (TTL, and the sample
# policy's refusal of a request without consent), nothing delivered twice.
set -euo pipefail
gbxd=$1 send=$2 recv=$3
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$dir/gbxd.log" ] && tail -20 "$dir/gbxd.log" >&2; exit 1; }

# a free port: let the kernel pick one
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$gbxd" --home "$dir" --init >/dev/null 2>"$dir/gbxd.log" || fail "gbxd --init"
sed -i -e "s#tcp://127.0.0.1:7400#tcp://127.0.0.1:$port#" -e "s#metrics: 127.0.0.1:9400#metrics: off#" "$dir/gbxd.yaml"
"$gbxd" --home "$dir" 2>"$dir/gbxd.log" &
pid=$!
for _ in $(seq 1 100); do grep -q GBX-START "$dir/gbxd.log" && break; sleep 0.05; done
grep -q GBX-START "$dir/gbxd.log" || fail "gbxd did not start"
cfg="$dir/gbxd.yaml"
# what the sample policy asks of a social-insurance certificate request
# (rule sp-hk-gd-paycert-request) and, copied into the answer, of the
# answer (rule sp-gd-hk-gba): route, its filing, consent, impact assessment
PAYCERT="--purpose SI-CERT --route GBA_STANDARD_CONTRACT --route-ref GBA-SC-2024-0193
 --consent SEPARATE_CONSENT --consent-ref PA-2026-55120 --impact-ref PIA-GD-2025-031
 --end-user iamsmart:5f3c9a"

head -c 3000 /dev/urandom >"$dir/request.bin"
out=$(timeout 30 "$send" -c "$cfg" --as hk.kiosk --to gd.tax --service GD-SI-PAYCERT $PAYCERT -f "$dir/request.bin") ||
    fail "gbx-send exited $?"
grep -Eq '^accepted id=[0-9a-f]{32} seq=[0-9]+ status=ACCEPTED dup=0$' <<<"$out" || fail "send output: $out"
id=$(sed -E 's/^accepted id=([0-9a-f]{32}).*/\1/' <<<"$out")

mkdir "$dir/gd" "$dir/hk"
timeout 30 "$recv" -c "$cfg" --as gd.tax -n 1 -t 10000 -o "$dir/gd" --reply "certificate issued" \
    >"$dir/recv1.txt" 2>&1 || fail "gbx-recv (gd.tax) exited $?"
cmp "$dir/request.bin" "$dir/gd/$id" || fail "request payload differs"
grep -q "from=hk.kiosk id=$id" "$dir/recv1.txt" || fail "recv summary: $(cat "$dir/recv1.txt")"

timeout 30 "$recv" -c "$cfg" --as hk.kiosk -n 1 -t 10000 >"$dir/answer.txt" 2>/dev/null ||
    fail "gbx-recv (hk.kiosk) exited $?"
[ "$(cat "$dir/answer.txt")" = "certificate issued" ] || fail "answer: $(cat "$dir/answer.txt")"

# acked: nothing comes again
timeout 30 "$recv" -c "$cfg" --as gd.tax -t 1500 -o "$dir/gd" >"$dir/recv2.txt" 2>&1 || true
[ ! -s "$dir/recv2.txt" ] || ! grep -q "id=" "$dir/recv2.txt" || fail "delivered again: $(cat "$dir/recv2.txt")"

# a refusal: exit 1 and the reason
if out=$(echo x | timeout 30 "$send" -c "$cfg" --as hk.kiosk --to gd.tax --service GD-SI-PAYCERT $PAYCERT \
    --ttl-ms 999999999999 2>/dev/null); then fail "TTL_TOO_LONG accepted"; fi
grep -q "reason=TTL_TOO_LONG" <<<"$out" || fail "refusal output: $out"

# the policy: without the separate consent the answer could not cross, and
# the request alone needs consent: refused, with the rule and why
if out=$(echo x | timeout 30 "$send" -c "$cfg" --as hk.kiosk --to gd.tax --service GD-SI-PAYCERT \
    --route GBA_STANDARD_CONTRACT --route-ref GBA-SC-2024-0193 --end-user iamsmart:5f3c9a \
    2>/dev/null); then fail "a request without consent accepted"; fi
grep -q "reason=POLICY_DENIED detail=rule sp-hk-gd-paycert-request: needs CONSENT" <<<"$out" ||
    fail "policy refusal output: $out"
echo "sendrecv: ok"
