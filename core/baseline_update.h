// `perfgate baseline update`: the new expected-results file, written exactly
// as PyTorch's benchmarks/dynamo/pr_time_benchmarks/check_results.py writes
// its reference file for the same expected file and results:
//  - a row changes only when abs(float(R - E) * 100 / E) > m * 100 / 3, in
//    that order of floating-point steps (it differs from |R - E| / |E| > m / 3
//    at margins such as 0.003, 0.006, 0.012, 0.15 and 0.3);
//  - a changed integer keeps its leading four digits, the rest zeros, with
//    Python's floor division (replace_with_zeros);
//  - margins are written as Python prints a float (repr);
//  - rows keep the expected file's order, each followed by three empty rows,
//    every line ending "\r\n" (csv.writer's default);
//  - a row without a result stops the update (PyTorch exits 1 and writes
//    nothing); results without a row are not added.
// perfgate's additions: rows for chosen metrics can be added, rows without a
// result can be kept unchanged, and non-integer values (PyTorch's files hold
// integers) keep four significant digits the same way.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/expected_file.h"

namespace perfgate {

// A JSON report larger than this is refused, not read. The gate writes
// reports of any size (10,000 cases of 30 repeats and 4 metrics are some
// 300 MB): the bound is for endless sources such as /dev/zero.
inline constexpr uint64_t kMaxReportBytes = 4ull << 30;

// PyTorch's replace_with_zeros: 3058123456 -> 3058000000, -12345 -> -12350.
double KeepLeadingFourDigits(double value);

// Whether check_results.py replaces expected value `expected` with `result`.
// An expected 0 (a ZeroDivisionError in PyTorch) changes when the result is not 0.
bool MovedMoreThanAThirdOfMargin(double expected, double result, double margin);

// How Python's repr() prints a float: "0.015", "0.1", "1.0", "1e-05", "1e+16".
std::string PythonFloatRepr(double value);

// One row as csv.writer writes [benchmark, metric, value, margin], without
// the line end: integers in full, other values and margins as Python floats.
std::string FormatExpectedRow(const ExpectedRow& row);

// The whole file, byte for byte as check_results.py writes it.
std::string FormatExpectedFile(const std::vector<ExpectedRow>& rows);

struct BaselineUpdateOptions {
  std::set<std::string> add_metrics;  // results of these metrics without a row get one
  double new_margin = 0.1;            // the margin of added rows
  bool keep_missing = false;          // keep rows without a result instead of stopping
  std::string pool;                   // the pool whose results count; empty: the only one that ran
};

struct BaselineUpdate {
  std::vector<ExpectedRow> rows;  // the new file: the old rows in order, then added ones
  std::vector<ExpectedRow> without_result;
  int changed = 0;
  int added = 0;
  std::vector<std::string> log;  // one line per skipped series, and per changed, added or kept row
};

// `results`: "benchmark,metric" -> this run's value, in the order the run
// reported them. If `without_result` is not empty and !keep_missing, the
// update must not be written.
BaselineUpdate UpdateExpectedRows(const std::vector<ExpectedRow>& rows,
                                  const std::vector<std::pair<std::string, double>>& results,
                                  const BaselineUpdateOptions& options);

// The update of the expected file at `expected_path` (none there: only
// rows for options.add_metrics) with the medians of the JSON report at
// `report_path` (perfgate gate/run --json) of the cases that ran to the end
// on one pool (options.pool, or the only pool that ran); A/B base sides are
// not results, nor are a failed case's. Errors are bad input
// (InvalidArgument) naming the file: an unreadable report or expected file,
// results of several pools and no options.pool, the same "benchmark,metric"
// reported by two cases (a duplicate line is an error for check_results.py
// too).
absl::StatusOr<BaselineUpdate> UpdateExpectedFileFromReport(const std::string& report_path,
                                                            const std::string& expected_path,
                                                            const BaselineUpdateOptions& options);

}  // namespace perfgate
