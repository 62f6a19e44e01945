#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time (not part of CI).
#   tools/fuzz.sh envelope|payload|frame [SECONDS]     default 60 s
# Builds with clang into build-fuzz/ (ASan + UBSan); the corpus is kept in
# build-fuzz/corpus-<target>/, seeded with real envelopes and payloads.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: tools/fuzz.sh envelope|payload|frame [SECONDS]}
seconds=${2:-60}
command -v clang >/dev/null || apt-get install -y -qq clang >/dev/null
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DGBX_FUZZ=ON -DGBX_SANITIZE=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "fuzz_$target" fuzz_seeds
corpus=build-fuzz/corpus-$target
mkdir -p "$corpus"
build-fuzz/tests/fuzz/fuzz_seeds "$target" "$corpus"
exec "build-fuzz/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -max_len=65536 "$corpus"
