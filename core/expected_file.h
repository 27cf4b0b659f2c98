// PyTorch pr_time_benchmarks expected-results files, as they are:
//   benchmark_name,metric_name,expected_value,noise_margin
// No header; blank lines allowed (PyTorch keeps rows apart for merges).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace perfgate {

// The most an expected-results file may hold (PyTorch's is ~10 KiB).
inline constexpr uint64_t kMaxExpectedFileBytes = 16ull << 20;

struct ExpectedRow {
  std::string benchmark;
  std::string metric;
  double expected = 0;
  double margin = 0;  // relative: 0.1 is 10%
  int line = 0;       // where it came from, for messages

  std::string Key() const { return benchmark + "," + metric; }
};

// Rows in file order. A duplicate key, a wrong column count, a value that is
// not a number, a negative margin or a name that is not UTF-8 is an error
// naming the file and line. LoadExpectedFile refuses files over
// kMaxExpectedFileBytes, also endless ones such as /dev/zero.
absl::StatusOr<std::vector<ExpectedRow>> ParseExpectedFile(const std::string& text, const std::string& source);
absl::StatusOr<std::vector<ExpectedRow>> LoadExpectedFile(const std::string& path);

}  // namespace perfgate
