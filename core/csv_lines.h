// The line format of PyTorch's benchmark files (results and expected
// results): comma-separated fields, no header, no quoting, blank lines
// allowed. One splitter for both, so they agree on what a line is.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace perfgate {

struct CsvLine {
  int number;                             // 1-based, counting blank lines
  absl::string_view text;                 // trimmed; views into the input
  std::vector<absl::string_view> fields;  // each trimmed
};

// Non-blank lines of `text`. REQUIRES: `text` outlives the result.
std::vector<CsvLine> SplitCsvLines(const std::string& text);

// A finite number, or false.
bool ParseFiniteNumber(absl::string_view field, double* out);

}  // namespace perfgate
