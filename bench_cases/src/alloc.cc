// Touches `alloc MIB` mebibytes, so peak RSS has something to measure.
// PERFGATE_SLOWDOWN_PCT=N touches N% more (bench/gate_error_rates).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "perfgate_region.h"

int main(int argc, char** argv) {
  const size_t mib = perfgate_region::WithSlowdown(argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 64);
  std::vector<char> block(mib << 20);
  std::memset(block.data(), 1, block.size());
  unsigned sum = 0;
  for (size_t i = 0; i < block.size(); i += 4096) sum += static_cast<unsigned char>(block[i]);
  std::printf("%u pages\n", sum);
  return 0;
}
