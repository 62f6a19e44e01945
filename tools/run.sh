#!/usr/bin/env bash
# Quick start, first command: set up (tools/setup.sh), then run the main job,
# the broker gbxd, on its embedded default configuration.
#
# gbxd creates $GBX_HOME/gbxd.yaml (default ./.gbx) on first run: one node
# (demo-1) serving six demo agencies, each with generated keys in
# $GBX_HOME/keys. Once it listens, this script walks one real exchange
# through it with the command-line adapters: the Hong Kong e-kiosk (hk.kiosk)
# asks the Guangdong tax bureau (gd.tax) for a tax certificate, gd.tax
# receives it and answers, hk.kiosk receives the answer. Then gbxd keeps
# running in the foreground until Ctrl-C (SIGINT: a clean stop).
#
#   GBX_RUN_DEMO_ONLY=1   stop gbxd after the exchange (scripts, CI)
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh
bin="${GBX_BUILD:-build}"
home="${GBX_HOME:-./.gbx}"
mkdir -p "$home"

"$bin/broker/gbxd" --home "$home" &
gbxd=$!
stop() { kill -INT "$gbxd" 2>/dev/null || true; wait "$gbxd" 2>/dev/null || true; }
trap 'stop; exit 130' INT TERM

# wait until the config exists and the adapter port answers (bounded)
for _ in $(seq 1 100); do
    [ -f "$home/gbxd.yaml" ] && kill -0 "$gbxd" 2>/dev/null && break
    sleep 0.1
done
kill -0 "$gbxd" 2>/dev/null || { echo "run.sh: gbxd did not start" >&2; wait "$gbxd"; exit 1; }
sleep 0.5

cfg="$home/gbxd.yaml"
# what the sample policy (policy.yaml beside the config) asks of this
# service: the GBA Standard Contract filing, separate consent, the impact
# assessment and the iAM Smart subject
PAYCERT="--purpose SI-CERT --route GBA_STANDARD_CONTRACT --route-ref GBA-SC-2024-0193
 --consent SEPARATE_CONSENT --consent-ref PA-2026-55120 --impact-ref PIA-GD-2025-031
 --end-user iamsmart:5f3c9a"
echo
echo "== hk.kiosk -> gd.tax: a social-insurance certificate request without consent: the policy refuses it"
echo "contribution certificate 2026, Home Return Permit H0000000" |
    "$bin/tools/gbx-send" -c "$cfg" --as hk.kiosk --to gd.tax --service GD-SI-PAYCERT \
        --route GBA_STANDARD_CONTRACT --route-ref GBA-SC-2024-0193 || true
echo
echo "== hk.kiosk -> gd.tax: the same with the resident's separate consent (signed, sealed to gd.tax)"
echo "contribution certificate 2026, Home Return Permit H0000000" |
    "$bin/tools/gbx-send" -c "$cfg" --as hk.kiosk --to gd.tax --service GD-SI-PAYCERT $PAYCERT
echo "== gd.tax receives it and answers"
"$bin/tools/gbx-recv" -c "$cfg" --as gd.tax --count 1 --timeout-ms 10000 \
    --reply "certificate issued: GD-SI-2026-000917"
echo
echo "== hk.kiosk receives the answer"
"$bin/tools/gbx-recv" -c "$cfg" --as hk.kiosk --count 1 --timeout-ms 10000
echo
echo "== the audit trail: the refusal, the request and the answer, each event in the same write as"
echo "   its change, chained and signed; an auditor checks it with gbx-audit (docs/audit.md)"
"$bin/tools/gbx-audit" -c "$cfg" query --event REJECTED --limit 1 || true
"$bin/tools/gbx-audit" -c "$cfg" verify || true
echo
echo "== what an operator sees: gbxctl (docs/control.md) and the node's health (docs/metrics.md)"
"$bin/tools/gbxctl" -c "$cfg" --as op.viewer status || true
metrics=$(sed -n 's/^ *metrics: *\([^ #]*\).*/\1/p' "$cfg" | head -1)
if [ -n "$metrics" ] && [ "$metrics" != off ]; then
    /usr/bin/python3 - "$metrics" <<'PY' || true
import sys, urllib.request
base = "http://" + sys.argv[1]
for path in ("/readyz", "/metrics"):
    with urllib.request.urlopen(base + path, timeout=5) as r:
        text = r.read().decode()
    if path == "/readyz":
        print(base + path + ": " + text.strip())
    else:
        keep = [l for l in text.splitlines() if l.startswith(("gbx_messages_accepted_total", "gbx_messages_rejected_total{reason=\"POLICY_DENIED\"}"))
                and not l.endswith(" 0")]
        print(base + path + " (of " + str(len(text.splitlines())) + " lines):")
        print("  " + "\n  ".join(keep))
PY
fi
echo

if [ -n "${GBX_RUN_DEMO_ONLY:-}" ]; then
    stop
    exit 0
fi
echo "gbxd is running (config $cfg). Try: $bin/tools/gbx-send --help, $bin/tools/gbxctl help."
echo "Ctrl-C stops it."
wait "$gbxd"
