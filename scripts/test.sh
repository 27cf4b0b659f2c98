#!/usr/bin/env bash
# Every test on a fresh machine: install, build, run all tests under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 600
# Every parser fuzzed briefly (clang build in build-fuzz; scripts/fuzz.sh TARGET 600 for a long run).
cd ..
bash scripts/fuzz.sh all "${PERFGATE_FUZZ_SECONDS:-10}"
