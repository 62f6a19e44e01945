#!/usr/bin/env bash
# Quick start, first command: set up (tools/setup.sh), then run the main job.
# Until the broker lands the main job is gbx-selfcheck: it creates two agency
# identities in $GBX_HOME (default ./.gbx) and walks a signed, end-to-end
# encrypted request and its response through every check a broker makes.
set -euo pipefail
cd "$(dirname "$0")/.."
./tools/setup.sh
exec "${GBX_BUILD:-build}/tools/gbx-selfcheck" "$@"
