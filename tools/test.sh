#!/usr/bin/env bash
# Quick start, second command: set up (tools/setup.sh), then run the whole
# test suite with ctest. Extra arguments go to ctest (e.g. -L unit).
#   tools/test.sh --sanitize   the same in an ASan+UBSan build (build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--sanitize" ]; then
  shift
  export GBX_SANITIZE=ON GBX_BUILD=${GBX_BUILD:-build-asan}
fi
./tools/setup.sh
cd "${GBX_BUILD:-build}"
ctest --output-on-failure -j"$(nproc)" "$@"
