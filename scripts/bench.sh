#!/usr/bin/env bash
# Builds and runs perfgate's own benchmarks; JSON results go to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh build
mkdir -p bench/results
build/bench/agent_overhead --json bench/results/agent_overhead.json
build/bench/stat_power --json bench/results/stat_power.json
build/bench/dispatch --json bench/results/dispatch.json
