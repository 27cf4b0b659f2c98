// Touches `alloc MIB` mebibytes, so peak RSS has something to measure.
// PERFGATE_SLOWDOWN_PCT=N touches N% more (bench/gate_error_rates).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  const char* slowdown = std::getenv("PERFGATE_SLOWDOWN_PCT");
  const size_t base_mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 64;
  const size_t mib = base_mib + base_mib * (slowdown ? std::strtoull(slowdown, nullptr, 10) : 0) / 100;
  std::vector<char> block(mib << 20);
  std::memset(block.data(), 1, block.size());
  unsigned sum = 0;
  for (size_t i = 0; i < block.size(); i += 4096) sum += static_cast<unsigned char>(block[i]);
  std::printf("%u pages\n", sum);
  return 0;
}
