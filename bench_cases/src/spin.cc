// A fixed amount of integer work: `spin N` runs N rounds of a hash mix.
// Deterministic, so its instruction count is the same every run.
// PERFGATE_SLOWDOWN_PCT=N adds N% more rounds (bench/gate_error_rates).
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "perfgate_region.h"

int main(int argc, char** argv) {
  const uint64_t rounds = perfgate_region::WithSlowdown(argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000);
  volatile uint64_t x = 0x9E3779B97F4A7C15ull;
  for (uint64_t i = 0; i < rounds; ++i) {
    uint64_t v = x + i;
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    x = v;
  }
  std::printf("%llu\n", static_cast<unsigned long long>(x));
  return 0;
}
