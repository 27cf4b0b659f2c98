// Metrics that a case reports itself, read from its output.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

// PyTorch pr_time_benchmarks result lines, "name,metric,value", one per
// line, as BenchmarkBase.append_results writes them. Blank lines are
// skipped. A malformed line is an error naming `source` and the line number.
absl::StatusOr<std::vector<v1::MetricValue>> ParsePytorchResults(const std::string& text, const std::string& source);

// Google Benchmark JSON (--benchmark_format=json or --benchmark_out). Each
// iteration entry, one per repetition, becomes values for real_time and
// cpu_time (seconds) and its user counters; aggregates (mean, median,
// stddev, cv) are derived and skipped. A benchmark that reported an error
// makes the whole document an error.
absl::StatusOr<std::vector<v1::MetricValue>> ParseGbenchJson(const std::string& text, const std::string& source);

// Dispatches on `format`; RESULT_FORMAT_NONE gives no values.
absl::StatusOr<std::vector<v1::MetricValue>> ParseCaseResults(v1::ResultFormat format, const std::string& text,
                                                              const std::string& source);

}  // namespace perfgate
