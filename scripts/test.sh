#!/usr/bin/env bash
# Every test on a fresh machine: install, build, run all tests under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 600
