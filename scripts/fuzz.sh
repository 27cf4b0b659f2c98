#!/usr/bin/env bash
# Fuzzes perfgate's parsers with libFuzzer (clang-14, ASan + UBSan).
#   scripts/fuzz.sh [TARGET|all] [SECONDS]
# TARGET: suite, expected_file, pytorch_results, gbench_json, complete_lease, submit_run, or all (default).
# SECONDS per target, default 10 (what CI runs); a long run is 600.
# Builds the targets in build-fuzz (only what they link), seeds each corpus
# from the bundled files, keeps what libFuzzer finds in build-fuzz/corpus/TARGET,
# and exits non-zero on the first crash, leak, timeout or out-of-memory, leaving
# the reproducer in build-fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${1:-all}
SECONDS_EACH=${2:-10}
BUILD=${PERFGATE_FUZZ_BUILD:-$ROOT/build-fuzz}
ALL=(suite expected_file pytorch_results gbench_json complete_lease submit_run)

if [ "$TARGET" = all ]; then TARGETS=("${ALL[@]}"); else TARGETS=("$TARGET"); fi
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (one of: ${ALL[*]}, all)" >&2; exit 2; }
done
command -v clang++-14 >/dev/null || { echo "fuzz.sh: clang++-14 missing; run scripts/install-deps.sh" >&2; exit 2; }

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPERFGATE_FUZZ=ON \
    -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null
fi
cmake --build "$BUILD" -j "${PERFGATE_FUZZ_JOBS:-2}" --target $(printf 'fuzz_%s ' "${TARGETS[@]}")

# Seeds: the bundled suites, expected files, result samples and requests.
seed() {
  local t=$1 dir=$BUILD/seeds/$1
  rm -rf "$dir" && mkdir -p "$dir"
  case $t in
    suite) cp bench_cases/*.yaml fuzz/seeds/suite/* "$dir"/ ;;
    expected_file) cp bench_cases/baselines/*.csv fuzz/seeds/expected_file/* "$dir"/ ;;
    complete_lease)
      for f in fuzz/seeds/complete_lease/*.txtpb; do
        protoc --encode=perfgate.v1.CompleteLeaseRequest -I proto perfgate/v1/agent.proto <"$f" >"$dir/$(basename "$f" .txtpb)"
      done ;;
    submit_run)
      for f in fuzz/seeds/submit_run/*.txtpb; do
        protoc --encode=perfgate.v1.SubmitRunRequest -I proto perfgate/v1/gate.proto <"$f" >"$dir/$(basename "$f" .txtpb)"
      done ;;
    *) cp fuzz/seeds/$t/* "$dir"/ ;;
  esac
  echo "$dir"
}

mkdir -p "$BUILD/artifacts"
for t in "${TARGETS[@]}"; do
  seeds=$(seed "$t")
  corpus=$BUILD/corpus/$t
  mkdir -p "$corpus"
  echo "fuzz.sh: fuzz_$t for ${SECONDS_EACH}s"
  log=$BUILD/fuzz_$t.log
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: unbounded memory is a finding.
  set +e
  "$BUILD/fuzz/fuzz_$t" "$corpus" "$seeds" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/fuzz_$t-" >"$log" 2>&1
  rc=$?
  set -e
  grep -E '^#[0-9]+\s+DONE|^stat::(number_of_executed_units|peak_rss_mb)|Done [0-9]+ runs' "$log" || true
  if [ $rc -ne 0 ]; then
    tail -n 60 "$log" >&2
    echo "fuzz.sh: fuzz_$t found a problem (exit $rc); reproducer in $BUILD/artifacts, log $log" >&2
    exit 1
  fi
done
echo "fuzz.sh: ${TARGETS[*]}: no findings"
