#!/usr/bin/env bash
# Runs every CPU torch family through a gate run against its checked-in
# baselines (bench_cases/baselines/torch*_local.csv), one suite after the
# other, and fails on the first that does not pass. Needs
# scripts/install-torch.sh and a build (scripts/build.sh).
#   scripts/torch-suites.sh [EXTRA GATE FLAGS...]     e.g. --json-dir DIR is not a flag; use --junit etc. per suite
set -euo pipefail
cd "$(dirname "$0")/.."
perfgate=build/perfgate
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
for suite in torch_runtime_overhead torch torch_inline torch_many_io; do
  echo "== $suite"
  "$perfgate" gate --suite "bench_cases/$suite.yaml" --agent-label torch --state-dir "$state/$suite" "$@"
done
