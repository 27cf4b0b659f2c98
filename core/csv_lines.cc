#include "core/csv_lines.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace perfgate {

std::vector<CsvLine> SplitCsvLines(const std::string& text) {
  std::vector<CsvLine> lines;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    CsvLine out{number, line, {}};
    for (absl::string_view field : absl::StrSplit(line, ',')) out.fields.push_back(absl::StripAsciiWhitespace(field));
    lines.push_back(std::move(out));
  }
  return lines;
}

bool ParseFiniteNumber(absl::string_view field, double* out) {
  return absl::SimpleAtod(field, out) && std::isfinite(*out);
}

}  // namespace perfgate
