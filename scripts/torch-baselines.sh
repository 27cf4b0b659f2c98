#!/usr/bin/env bash
# Writes bench_cases/baselines/torch*_local.csv from real runs with
# `perfgate baseline update`: runs every torch suite (scripts/torch-suites.sh)
# PERFGATE_BASELINE_RUNS times (default 3), checks that every region count
# came out identical in all of them, then per suite writes the last run's
# values: counts with a tight margin (1% for C++; 2% for Python, whose region
# count moves by up to 0.6% with the checkout's path, which CPython keeps in
# memory: two clones at different paths), times with
# a margin from their measured spread: three times the largest relative range
# of a timed row's run medians over the runs, and at least
# PERFGATE_TIME_MARGIN_FLOOR (default 0.25, what a loaded 2-core testbed
# needs; see README, "PyTorch families").
# Existing rows are updated by PyTorch's rules; remove a file to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${PERFGATE_BASELINE_RUNS:-3}
floor=${PERFGATE_TIME_MARGIN_FLOOR:-0.25}
suites=${PERFGATE_TORCH_SUITES:-torch_runtime_overhead torch torch_function torch_inline torch_many_io}
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
for suite in $suites; do
  file=bench_cases/baselines/${suite}_local.csv
  [ -e "$file" ] || : > "$file"
done
for run in $(seq "$runs"); do
  mkdir -p "$reports/$run"
  echo "== run $run of $runs (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  # The gate fails while rows are new or off; the reports are what counts here.
  PERFGATE_REPORT_DIR=$reports/$run scripts/torch-suites.sh > "$reports/$run.log" 2>&1 || true
done
for suite in $suites; do
  file=bench_cases/baselines/${suite}_local.csv
  last=$reports/$runs/$suite.json
  [ -e "$last" ] || { echo "$suite: no report (see the runs' output)"; cat "$reports/$runs.log"; exit 1; }
  read -r metrics margin < <(/usr/bin/python3 - "$suite" "$floor" "$reports"/*/"$suite".json <<'PY'
import json, sys
suite, floor, paths = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
medians = {}  # (benchmark, metric) -> one median per run
for path in paths:
    for case in json.load(open(path))["cases"]:
        for m in case.get("metrics", []):
            if m.get("median") is not None:
                medians.setdefault((m.get("benchmark", case["name"]), m["metric"]), []).append(m["median"])
timed, spread = set(), 0.0
for (benchmark, metric), values in sorted(medians.items()):
    if metric.endswith("instruction_count") and len(set(values)) > 1:
        sys.exit(f"{suite}: {benchmark},{metric} differs between runs: {values}")
    if metric.endswith("_ns") and "warmup" not in metric:
        timed.add(metric)
        spread = max(spread, (max(values) - min(values)) / min(values))
        print(f"{suite}: {benchmark},{metric} run medians {[round(v) for v in values]}", file=sys.stderr)
print(",".join(sorted(timed)) or "-", round(max(floor, 3 * spread) + 0.005, 2))
PY
)
  count_margin=0.02
  [ "$suite" = torch_runtime_overhead ] && count_margin=0.01
  build/perfgate baseline update --report "$last" --expected "$file" --keep-missing \
    --add instruction_count,compile_time_instruction_count --new-margin "$count_margin"
  [ "$metrics" = "-" ] && continue
  build/perfgate baseline update --report "$last" --expected "$file" --keep-missing --add "$metrics" --new-margin "$margin"
  echo "$file: times $metrics with margin $margin"
done
