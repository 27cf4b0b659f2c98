#include "core/expected_file.h"

#include <cmath>
#include <cstdio>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/bounded_read.h"
#include "core/csv_lines.h"
#include "core/identifiers.h"
#include "core/utf8.h"

namespace perfgate {

absl::StatusOr<std::vector<ExpectedRow>> ParseExpectedFile(const std::string& text, const std::string& source) {
  std::vector<ExpectedRow> rows;
  std::map<std::string, int> seen;
  // A byte-order mark (spreadsheets write one) would be part of the first
  // benchmark's name, invisible in every message that names it.
  absl::string_view body = text;
  absl::ConsumePrefix(&body, "\xEF\xBB\xBF");
  const std::string without_mark(body);  // the lines view into it
  for (const CsvLine& line : SplitCsvLines(without_mark)) {
    const auto& fields = line.fields;
    const int line_number = line.number;
    auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_number, ": ", what, " (got '", EscapeInvalidUtf8(line.text.substr(0, 200)), "')"));
    };
    if (fields.size() != 4) {
      return error(absl::StrCat("expected 4 columns benchmark_name,metric_name,expected_value,noise_margin, found ",
                                fields.size()));
    }
    ExpectedRow row;
    row.benchmark = std::string(fields[0]);
    row.metric = std::string(fields[1]);
    row.line = line_number;
    if (row.benchmark.empty() || row.metric.empty()) return error("empty benchmark or metric name");
    if (!IsValidUtf8(row.benchmark) || !IsValidUtf8(row.metric)) return error("benchmark and metric names must be UTF-8");
    if (std::string problem = SeriesNameProblem(row.benchmark, row.metric); !problem.empty()) return error(problem);
    // One mark at the start of the file is dropped; a name that still begins
    // with one would lose it when the file is written back (as the file's mark).
    if (absl::StartsWith(row.benchmark, "\xEF\xBB\xBF")) {
      return error("the benchmark name begins with a byte-order mark (U+FEFF); remove it");
    }
    if (!ParseFiniteNumber(fields[2], &row.expected)) {
      return error("expected_value is not a number");
    }
    if (!ParseFiniteNumber(fields[3], &row.margin) || row.margin < 0) {
      return error("noise_margin must be a number >= 0 (0.1 means 10%)");
    }
    auto [it, inserted] = seen.emplace(row.Key(), line_number);
    if (!inserted) {
      return error(absl::StrCat("duplicate row for ", row.Key(), " (first on line ", it->second, ")"));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

absl::StatusOr<std::vector<ExpectedRow>> LoadExpectedFile(const std::string& path) {
  auto text = ReadFileBounded(path, kMaxExpectedFileBytes, "expected-results file");
  if (!text.ok()) return text.status();
  return ParseExpectedFile(*text, path);
}

}  // namespace perfgate
