// Metrics that a case reports itself, read from its output.
//
// The output is hostile input: whatever a case prints, the parsers return a
// value or an error naming the line or field and what was wrong; they never
// throw, and error text quotes case output with invalid UTF-8 escaped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

// The most a result file ($PERFGATE_RESULT_FILE) may hold.
inline constexpr uint64_t kMaxResultFileBytes = 64ull << 20;

// PyTorch pr_time_benchmarks result lines, "name,metric,value", one per
// line, as BenchmarkBase.append_results writes them. Blank lines are
// skipped. A malformed line, a name that is not UTF-8, or the same
// name,metric twice (PyTorch's check_results.py asserts on that) is an
// error naming `source` and the line number(s).
absl::StatusOr<std::vector<v1::MetricValue>> ParsePytorchResults(const std::string& text, const std::string& source);

// Google Benchmark JSON (--benchmark_format=json or --benchmark_out). Each
// iteration entry, one per repetition, becomes values for real_time and
// cpu_time (seconds) and its user counters; aggregates (mean, median,
// stddev, cv, BigO) are derived and skipped. Counters keep their names;
// bytes_per_second gets unit "B/s", items_per_second "1/s", others no unit
// (the JSON carries no counter flags). A benchmark that reported an error,
// an entry of 0 iterations, a field of the wrong type, a non-finite or
// negative time, or the same name and repetition_index twice makes the
// whole document an error. A benchmark that skipped itself
// (SkipWithMessage) gives no values, nor does one that reported aggregates
// only; each such is said once in `notes` (when not null).
absl::StatusOr<std::vector<v1::MetricValue>> ParseGbenchJson(const std::string& text, const std::string& source,
                                                             std::vector<std::string>* notes = nullptr);

// Dispatches on `format`; RESULT_FORMAT_NONE gives no values. What the
// output left out is added to `notes` (when not null).
absl::StatusOr<std::vector<v1::MetricValue>> ParseCaseResults(v1::ResultFormat format, const std::string& text,
                                                              const std::string& source,
                                                              std::vector<std::string>* notes = nullptr);

}  // namespace perfgate
