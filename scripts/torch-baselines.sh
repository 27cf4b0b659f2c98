#!/usr/bin/env bash
# Writes bench_cases/baselines/torch*_local.csv from real runs with
# `perfgate baseline update`: runs every torch suite (scripts/torch-suites.sh),
# then per suite adds the deterministic counts with a tight margin (1%) and
# the times with a margin from their measured spread in this run (three
# times the largest (max - min) / median of any timed row, at least 10%).
# Existing rows are updated by PyTorch's rules; remove a file to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
for suite in ${PERFGATE_TORCH_SUITES:-torch_runtime_overhead torch torch_function torch_inline torch_many_io}; do
  file=bench_cases/baselines/${suite}_local.csv
  [ -e "$file" ] || : > "$file"
done
PERFGATE_REPORT_DIR=$reports scripts/torch-suites.sh || true
for report in "$reports"/*.json; do
  suite=$(basename "$report" .json)
  file=bench_cases/baselines/${suite}_local.csv
  build/perfgate baseline update --report "$report" --expected "$file" --keep-missing \
    --add instruction_count,compile_time_instruction_count --new-margin 0.01
  read -r metrics margin < <(/usr/bin/python3 - "$report" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
timed, spread = set(), 0.0
for case in report["cases"]:
    for m in case.get("metrics", []):
        if m["metric"].endswith("_ns") and "warmup" not in m["metric"] and m.get("median"):
            timed.add(m["metric"])
            spread = max(spread, (m["max"] - m["min"]) / m["median"])
print(",".join(sorted(timed)) or "-", round(max(0.10, 3 * spread), 2))
PY
)
  [ "$metrics" = "-" ] && continue
  build/perfgate baseline update --report "$report" --expected "$file" --keep-missing --add "$metrics" --new-margin "$margin"
  echo "$file: times $metrics with margin $margin"
done
