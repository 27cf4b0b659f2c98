// A tiny case with marked regions (no torch needed), for the region-count
// tests: `region_spin OUTSIDE INSIDE` spins OUTSIDE rounds before its
// regions (start-up work that must not be counted) and INSIDE rounds in the
// region "spin_region", then twice that in "spin_region_x2,compile_time_instruction_count".
// `region_spin OUTSIDE INSIDE unhandled` runs, under valgrind only, an
// AVX-512 instruction that valgrind 3.19 cannot decode: a host where
// valgrind cannot run the case. `region_spin OUTSIDE INSIDE environ` also
// reads every environment string in "spin_region", as an interpreter does
// at start-up: its count then follows the environment it was given.
#include <valgrind/valgrind.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "perfgate_region.h"

extern char** environ;

namespace {

__attribute__((noinline)) uint64_t Spin(uint64_t rounds) {
  volatile uint64_t x = 0x9E3779B97F4A7C15ull;
  for (uint64_t i = 0; i < rounds; ++i) x = (x ^ (x >> 31)) * 0xff51afd7ed558ccdull + i;
  return x;
}

// One step per character, so the count follows the environment's size.
__attribute__((noinline)) uint64_t EnvironmentCharacters() {
  volatile uint64_t n = 0;
  for (char** e = environ; *e; ++e) {
    for (const char* c = *e; *c; ++c) n = n + 1;
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: region_spin OUTSIDE INSIDE [unhandled|environ]\n");
    return 2;
  }
  const uint64_t outside = std::strtoull(argv[1], nullptr, 10);
  const uint64_t inside = perfgate_region::WithSlowdown(std::strtoull(argv[2], nullptr, 10));
  const bool read_environ = argc > 3 && std::strcmp(argv[3], "environ") == 0;
  if (argc > 3 && std::strcmp(argv[3], "unhandled") == 0 && RUNNING_ON_VALGRIND) {
    asm volatile(".byte 0x62, 0xf1, 0x7d, 0x48, 0xef, 0xc0");  // vpxord zmm0, zmm0, zmm0
  }
  uint64_t sink = Spin(outside);
  perfgate_region::Begin();
  sink += Spin(inside);
  if (read_environ) sink += EnvironmentCharacters();
  perfgate_region::End("spin_region");
  perfgate_region::Begin();
  sink += Spin(2 * inside);
  perfgate_region::End("spin_region_x2,compile_time_instruction_count");
  std::printf("%llu\n", static_cast<unsigned long long>(sink));
  return 0;
}
