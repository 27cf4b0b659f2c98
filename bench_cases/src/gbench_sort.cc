// A Google Benchmark binary: sorting, for the gbench result adapter.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

static void BM_SortInts(benchmark::State& state) {
  std::mt19937 rng(42);
  std::vector<int> data(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    state.PauseTiming();
    for (auto& v : data) v = static_cast<int>(rng());
    state.ResumeTiming();
    std::sort(data.begin(), data.end());
    benchmark::DoNotOptimize(data.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_SortInts)->Arg(1 << 10)->Arg(1 << 14);

BENCHMARK_MAIN();
