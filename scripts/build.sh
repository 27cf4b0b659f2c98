#!/usr/bin/env bash
# Installs dependencies (Debian packages) and builds perfgate into build/.
# Usage: scripts/build.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
bash scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# Two cores and heavy gRPC headers: two jobs keep memory in check.
cmake --build "$BUILD_DIR" -j "$(nproc)"
