// The line format of PyTorch's benchmark files (results and expected
// results): comma-separated fields, no header, blank lines allowed, quoting
// as Python's csv module reads and writes it (PyTorch's check_results.py uses
// csv.reader and csv.writer). One splitter for both, so they agree on what a
// line is, and what `perfgate baseline update` writes reads back the same.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace perfgate {

struct CsvLine {
  int number;                             // 1-based, counting blank lines
  absl::string_view text;                 // trimmed; views into the input
  std::vector<std::string> fields;        // unquoted and trimmed, as PyTorch reads them
};

// Non-blank lines of `text`. REQUIRES: `text` outlives the result.
std::vector<CsvLine> SplitCsvLines(const std::string& text);

// A finite decimal number, or false: never hexadecimal, which Python's int()
// and float() refuse.
bool ParseFiniteNumber(absl::string_view field, double* out);

}  // namespace perfgate
