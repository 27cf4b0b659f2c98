// Reports its own metrics the way PyTorch's pr_time_benchmarks do: lines
// "name,metric,value" appended to the file named on the command line.
// PERFGATE_SLOWDOWN_PCT=N runs N% more iterations (bench/gate_error_rates).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: pytorch_style RESULT_FILE\n");
    return 2;
  }
  std::FILE* out = std::fopen(argv[1], "a");
  if (!out) {
    std::perror(argv[1]);
    return 1;
  }
  const char* slowdown = std::getenv("PERFGATE_SLOWDOWN_PCT");
  const int rounds = 2'000'000 + 20'000 * (slowdown ? std::atoi(slowdown) : 0);
  const auto start = std::chrono::steady_clock::now();
  volatile double acc = 0;
  for (int i = 1; i < rounds; ++i) acc = acc + 1.0 / i;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(out, "harmonic_sum,loop_time_s,%.9f\n", seconds);
  std::fprintf(out, "harmonic_sum,iterations,%d\n", rounds - 1);
  std::fclose(out);
  return 0;
}
