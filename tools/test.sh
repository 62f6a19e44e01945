#!/usr/bin/env bash
# Quick start, second command: set up (tools/setup.sh), then run the whole
# test suite with ctest. Extra arguments go to ctest (e.g. -L unit).
#   tools/test.sh --sanitize   the same in an ASan+UBSan build (build-asan/)
#   tools/test.sh --valgrind   the unit and tool tests under valgrind memcheck
#                              (build-valgrind/; the 64 MiB case is skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
--sanitize)
  shift
  # the kill -9 run with 10,000 messages (100,000 in the plain run)
  export GBX_SANITIZE=ON GBX_BUILD=${GBX_BUILD:-build-asan} GBX_CRASH_N=${GBX_CRASH_N:-10000}
  ;;
--valgrind)
  shift
  export GBX_VALGRIND=ON GBX_BUILD=${GBX_BUILD:-build-valgrind} GBX_TEST_QUICK=1
  set -- -L 'unit|integration' "$@"
  ;;
esac
./tools/setup.sh
cd "${GBX_BUILD:-build}"
ctest --output-on-failure -j"$(nproc)" "$@"
