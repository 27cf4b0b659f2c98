#!/usr/bin/env bash
# Runs every CPU torch family through a real gate run against its
# checked-in baselines (bench_cases/baselines/torch*_local.csv): a
# coordinator and two agents labelled `torch` in pool `local` on loopback,
# then one `perfgate gate` per suite, all submitted at once. Needs scripts/install-torch.sh and a
# build (scripts/build.sh). Not part of scripts/test.sh: see README,
# "PyTorch families".
#   scripts/torch-suites.sh [GATE FLAGS...]   e.g. --head-env PERFGATE_SLOWDOWN_PCT=5
# PERFGATE_TORCH_SUITES="torch torch_inline" picks suites; PERFGATE_REPORT_DIR
# keeps each suite's JSON report there (for `perfgate baseline update`).
# PERFGATE_TORCH_AB_SLOW="runtime_overhead torch_function" makes it the A/B
# check: every case runs base against head, and only the named cases' heads
# get PERFGATE_SLOWDOWN_PCT=${PERFGATE_TORCH_AB_PCT:-5} (`--head-env
# CASE:NAME=VALUE`); the others have the variable at 0 on both sides, so
# their two sides are identical.
set -euo pipefail
cd "$(dirname "$0")/.."
perfgate=$PWD/build/perfgate
suites=${PERFGATE_TORCH_SUITES:-torch_runtime_overhead torch torch_function torch_inline torch_many_io}
state=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT

# A unix socket in mktemp's private folder: a plaintext address the agents and the gate trust.
address="unix:$state/coordinator.sock"
"$perfgate" coordinator --listen "$address" --db "$state/perfgate.db" > "$state/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  grep -q "listening on" "$state/coordinator.log" && break
  sleep 0.2
done
grep -q "listening on" "$state/coordinator.log" || { cat "$state/coordinator.log"; exit 3; }
for i in 1 2; do
  "$perfgate" agent --coordinator "$address" --id "torch-$i" --pool local --label torch > "$state/agent-$i.log" 2>&1 &
  pids+=($!)
done

for i in 1 2; do
  for _ in $(seq 300); do grep -q "registered with" "$state/agent-$i.log" && break; sleep 0.2; done
  grep -q "registered with" "$state/agent-$i.log" || { cat "$state/agent-$i.log"; exit 3; }
done

# All suites at once: the two agents take cases from every run.
gates=()
for suite in $suites; do
  report=()
  [ -n "${PERFGATE_REPORT_DIR:-}" ] && report=(--json "$PERFGATE_REPORT_DIR/$suite.json")
  ab=()
  if [ -n "${PERFGATE_TORCH_AB_SLOW:-}" ]; then
    ab=(--base-env PERFGATE_SLOWDOWN_PCT=0 --head-env PERFGATE_SLOWDOWN_PCT=0)
    for slow in $PERFGATE_TORCH_AB_SLOW; do
      grep -q "^  - name: $slow\$" "bench_cases/$suite.yaml" &&
        ab+=(--head-env "$slow:PERFGATE_SLOWDOWN_PCT=${PERFGATE_TORCH_AB_PCT:-5}")
    done
  fi
  "$perfgate" gate --suite "bench_cases/$suite.yaml" --coordinator "$address" "${report[@]}" "${ab[@]}" "$@" \
    > "$state/$suite.out" 2>&1 &
  gates+=("$suite:$!")
done
status=0
for entry in "${gates[@]}"; do
  suite=${entry%%:*}
  code=0
  wait "${entry#*:}" || code=$?
  echo "== $suite: exit $code"
  cat "$state/$suite.out"
  [ "$code" -eq 0 ] || status=$code
done
exit $status
