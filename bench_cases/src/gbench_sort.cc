// A Google Benchmark binary: sorting, for the gbench result adapter.
// PERFGATE_SLOWDOWN_PCT=N also sorts N% more elements in the timed part
// (bench/gate_error_rates).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <vector>

static void BM_SortInts(benchmark::State& state) {
  std::mt19937 rng(42);
  const char* slowdown = std::getenv("PERFGATE_SLOWDOWN_PCT");
  std::vector<int> data(static_cast<size_t>(state.range(0)));
  std::vector<int> extra(data.size() * static_cast<size_t>(slowdown ? std::atoi(slowdown) : 0) / 100);
  for (auto _ : state) {
    state.PauseTiming();
    for (auto& v : data) v = static_cast<int>(rng());
    for (auto& v : extra) v = static_cast<int>(rng());
    state.ResumeTiming();
    std::sort(data.begin(), data.end());
    std::sort(extra.begin(), extra.end());
    benchmark::DoNotOptimize(data.data());
    benchmark::DoNotOptimize(extra.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SortInts)->Arg(1 << 10)->Arg(1 << 14);

BENCHMARK_MAIN();
