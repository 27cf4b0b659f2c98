#include "core/csv_lines.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/utf8.h"

namespace perfgate {

namespace {

// One line's fields as PyTorch's check_results.py reads them: csv.reader
// (the excel dialect, not strict), then each field stripped. A field that
// starts with a quote runs to the closing quote and "" inside it is one
// quote; a quote inside an unquoted field is literal; text after a closing
// quote is kept. A quote left open ends with the line: rows never span lines
// here. Stripped of Python's whitespace, Unicode's too: with ASCII only, a
// name ending in a no-break space matched no row that Python matched.
std::vector<std::string> SplitCsvFields(absl::string_view line) {
  std::vector<std::string> fields;
  size_t i = 0;
  while (true) {
    std::string field;
    if (i < line.size() && line[i] == '"') {
      for (++i; i < line.size(); ++i) {
        if (line[i] != '"') {
          field += line[i];
        } else if (i + 1 < line.size() && line[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          ++i;
          break;
        }
      }
    }
    for (; i < line.size() && line[i] != ','; ++i) field += line[i];
    fields.emplace_back(StripPythonWhitespace(field));
    if (i >= line.size()) return fields;
    ++i;  // the comma
  }
}

}  // namespace

std::vector<CsvLine> SplitCsvLines(const std::string& text) {
  std::vector<CsvLine> lines;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (StripPythonWhitespace(line).empty()) continue;
    if (absl::EndsWith(line, "\r")) line.remove_suffix(1);  // CRLF files, read as Python's universal newlines do
    CsvLine out{number, StripPythonWhitespace(line), SplitCsvFields(line)};
    lines.push_back(std::move(out));
  }
  return lines;
}

bool ParseFiniteNumber(absl::string_view field, double* out) {
  // SimpleAtod reads hexadecimal too ("0x400", "0x1p-3"), which Python's
  // int() and float() in check_results.py refuse.
  if (field.find_first_of("xX") != absl::string_view::npos) return false;
  return absl::SimpleAtod(field, out) && std::isfinite(*out);
}

}  // namespace perfgate
