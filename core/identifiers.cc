#include "core/identifiers.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

// C0 and DEL; C1 (U+0080-U+009F, NEL among them) and the line and paragraph
// separators U+2028 and U+2029 as UTF-8: each breaks a line or a record
// somewhere names go (a terminal, YAML, a JavaScript or Python reader of
// the JSON report, a Grafana legend).
bool HasControl(absl::string_view name) {
  const auto at = [&](size_t i) { return i < name.size() ? static_cast<unsigned char>(name[i]) : 0; };
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char u = at(i);
    if (u < 0x20 || u == 0x7f) return true;
    if (u == 0xC2 && at(i + 1) >= 0x80 && at(i + 1) <= 0x9F) return true;
    if (u == 0xE2 && at(i + 1) == 0x80 && (at(i + 2) == 0xA8 || at(i + 2) == 0xA9)) return true;
  }
  return false;
}

// "" or what is wrong with a name of 1..max bytes (min 0: may be empty).
std::string SizeAndControl(absl::string_view what, absl::string_view name, size_t min, size_t max) {
  if (name.size() < min) return absl::StrCat(what, " must not be empty");
  if (name.size() > max) return absl::StrCat(what, " must be at most ", max, " bytes, not ", name.size());
  if (HasControl(name))
    return absl::StrCat(what,
                        " must not hold control characters or line breaks (newline, tab, NUL, U+0085, U+2028...)");
  return "";
}

bool IsCaseNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
         c == ':' || c == '-';
}

}  // namespace

std::string SuiteNameProblem(absl::string_view name) {
  return SizeAndControl("a suite name", name, 1, kMaxSuiteNameBytes);
}

std::string CaseNameProblem(absl::string_view name) {
  if (name.empty() || name.size() > kMaxCaseNameBytes || !std::all_of(name.begin(), name.end(), IsCaseNameChar)) {
    return absl::StrCat("a case name must be 1 to ", kMaxCaseNameBytes, " letters, digits and _ . : -");
  }
  return "";
}

std::string AgentNameProblem(absl::string_view what, absl::string_view name) {
  if (name.empty() || name.size() > kMaxAgentNameBytes || !std::all_of(name.begin(), name.end(), IsCaseNameChar)) {
    return absl::StrCat("an agent's ", what, " must be 1 to ", kMaxAgentNameBytes, " letters, digits and _ . : -");
  }
  return "";
}

std::string SeriesNameProblem(absl::string_view benchmark, absl::string_view metric) {
  if (std::string p = SizeAndControl("a benchmark name", benchmark, 0, kMaxBenchmarkNameBytes); !p.empty()) return p;
  if (std::string p = SizeAndControl("a metric name", metric, 1, kMaxMetricNameBytes); !p.empty()) return p;
  if (metric.find(',') != absl::string_view::npos) return "a metric name must not hold a comma";
  return "";
}

std::string RowNameProblem(absl::string_view benchmark, absl::string_view metric) {
  if (std::string p = SeriesNameProblem(benchmark, metric); !p.empty()) return p;
  if (benchmark.empty()) return "a benchmark name must not be empty";
  // An expected file's reader strips both names (as PyTorch's check_results.py
  // does): such a series could match no row, and the row written for it
  // would read back as another series' (or, empty, as no row at all).
  if (HasEdgeWhitespace(benchmark) || HasEdgeWhitespace(metric)) {
    return "a benchmark or metric name must not begin or end with whitespace, which expected files strip";
  }
  return "";
}

}  // namespace perfgate
