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
echo
echo "== hk.kiosk -> gd.tax: a tax certificate request (signed, sealed to gd.tax)"
echo "certificate of tax residence 2026, taxpayer ref 4403-XXXX" |
    "$bin/tools/gbx-send" -c "$cfg" --as hk.kiosk --to gd.tax --service GD-TAX-CERT
echo "== gd.tax receives it and answers"
"$bin/tools/gbx-recv" -c "$cfg" --as gd.tax --count 1 --timeout-ms 10000 \
    --reply "certificate issued: GD-TAX-2026-000123"
echo
echo "== hk.kiosk receives the answer"
"$bin/tools/gbx-recv" -c "$cfg" --as hk.kiosk --count 1 --timeout-ms 10000
echo

if [ -n "${GBX_RUN_DEMO_ONLY:-}" ]; then
    stop
    exit 0
fi
echo "gbxd is running (config $cfg). Try: $bin/tools/gbx-send --help. Ctrl-C stops it."
wait "$gbxd"
