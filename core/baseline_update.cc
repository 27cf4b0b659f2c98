#include "core/baseline_update.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/bounded_read.h"
#include "core/identifiers.h"
#include "core/metric_traits.h"
#include "core/names.h"
#include "core/report.h"
#include "core/units.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

// Below 2^62 the difference of two such integers fits in int64, so integer
// values follow Python's exact int arithmetic.
constexpr double kExactIntegerLimit = 4611686018427387904.0;

std::optional<int64_t> ExactInteger(double v) {
  if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) >= kExactIntegerLimit) return std::nullopt;
  return static_cast<int64_t>(v);
}

// Python's a // b for b > 0: rounds towards negative infinity.
int64_t FloorDivide(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && a < 0) --q;
  return q;
}

// The shortest decimal that reads back as `value` (what Python's repr is
// built from): its significant digits and the power of ten of the first.
struct Decimal {
  bool negative = false;
  std::string digits;
  int exponent = 0;
};

Decimal ShortestDecimal(double value) {
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  Decimal d;
  const char* p = buf;
  if (*p == '-') {
    d.negative = true;
    ++p;
  }
  for (; p < end && *p != 'e'; ++p) {
    if (*p != '.') d.digits += *p;
  }
  if (p < end) d.exponent = std::stoi(std::string(p + 1, static_cast<const char*>(end)));  // no NUL from to_chars
  return d;
}

// Four significant digits of a value that is not an integer, the rest
// dropped with floor semantics like replace_with_zeros.
double KeepLeadingFourDecimalDigits(double value) {
  const Decimal d = ShortestDecimal(value);
  if (d.digits.size() <= 4) return value;
  int64_t kept = std::stoll(d.digits.substr(0, 4));
  if (d.negative && d.digits.find_first_not_of('0', 4) != std::string::npos) ++kept;
  const std::string text = absl::StrCat(d.negative ? "-" : "", kept, "e", d.exponent - 3);
  return std::strtod(text.c_str(), nullptr);
}

// csv.writer's QUOTE_MINIMAL: quote a field holding the delimiter, a quote or a line break.
std::string CsvField(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string FormatExpectedValue(double value) {
  if (std::isfinite(value) && value == std::floor(value)) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.0f", value);
    return buf;
  }
  return PythonFloatRepr(value);
}

double RelativeMove(double expected, double result) {
  return expected == 0 ? NAN : (result - expected) / std::fabs(expected);
}

// The median a row takes. A count's median of an even number of samples
// may end in .5; PyTorch writes counts as integers and reads them back with
// int(), which refuses "999.5".
double WrittenMedian(const nlohmann::json& metric) {
  const double median = metric.value("median", 0.0);
  return metric.value("unit", "") == "count" ? std::round(median) : median;
}

// The one pool whose results update the file: `wanted`, else the only pool
// that ran a case. Two pools' results in one file would mix machines.
absl::StatusOr<std::string> PoolToUpdate(const std::string& path, const nlohmann::json& report,
                                         const std::string& wanted) {
  std::set<std::string> pools;
  for (const auto& c : report.value("cases", nlohmann::json::array())) {
    if (c.value("ran", false)) pools.insert(c.value("pool", ""));
  }
  if (!wanted.empty()) {
    if (pools.count(wanted)) return wanted;
    return absl::InvalidArgumentError(absl::StrCat(path, ": no case ran on pool '", wanted, "' (pools that ran: ",
                                                   pools.empty() ? "none" : absl::StrJoin(pools, ", "), ")"));
  }
  if (pools.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cases ran on ", pools.size(), " pools (",
                                                   absl::StrJoin(pools, ", "),
                                                   "); give --pool NAME, the pool this expected file is for"));
  }
  return pools.empty() ? std::string() : *pools.begin();
}

// This run's medians by "benchmark,metric", in report order, from the cases
// that ran to the end on the chosen pool (a case that failed on a later
// repeat has medians of a broken run; A/B base sides are not results). The
// same key from two cases is an error, as a duplicate line is for
// check_results.py.
// "benchmark,metric" -> value of every judgeable series of the pool's cases;
// `skipped` gets a line for each series whose instrument cannot be judged
// (peak memory from rusage holds the agent's own): a row of it would compare
// one instrument's reading with another's.
absl::StatusOr<std::vector<std::pair<std::string, double>>> ReportResults(const std::string& path,
                                                                          const std::string& wanted_pool,
                                                                          std::vector<std::string>* skipped) {
  // A folder threw out of ifstream's read and aborted the process, and a
  // FIFO nothing wrote to waited for ever.
  absl::StatusOr<std::string> text = ReadFileBounded(path, kMaxReportBytes, "JSON report");
  if (!text.ok()) return absl::InvalidArgumentError(text.status().message());
  nlohmann::json report;
  try {
    report = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a perfgate JSON report: ", e.what()));
  }
  std::vector<std::pair<std::string, double>> results;
  std::map<std::string, std::string> reported_by;
  try {
    const int version = report.is_object() ? report.value("schema_version", 0) : 0;
    if (version != kJsonReportSchemaVersion) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": a report of schema_version ", version, "; this perfgate reads version ", kJsonReportSchemaVersion,
          " (write the report with `perfgate gate --json` of this version)"));
    }
    auto pool = PoolToUpdate(path, report, wanted_pool);
    if (!pool.ok()) return pool.status();
    for (const auto& c : report.value("cases", nlohmann::json::array())) {
      if (!c.value("ran", false) || c.value("pool", "") != *pool) continue;
      for (const auto& m : c.value("metrics", nlohmann::json::array())) {
        if (m.value("variant", "") == SideName(Side::kBase) || m.value("n", 0) == 0) continue;
        const std::string key = m.value("benchmark", "") + "," + m.value("metric", "");
        const std::string case_name = c.value("name", "");
        if (const MetricTraits traits = TraitsOf(m.value("metric", ""), m.value("source", ""), {}); !traits.judgeable) {
          skipped->push_back(absl::StrCat("skipped ", key, ": ", traits.why_not_judged));
          continue;
        }
        // The suite that ran declared no direction: a row of it would be an
        // error in the next run (reports before "better" have none: kept).
        if (m.value("better", "") == DirectionName(Direction::kUnknown)) {
          skipped->push_back(absl::StrCat("skipped ", key, ": direction unknown; declare it under metrics: (",
                                          m.value("metric", ""), ": {better: lower|higher}) and run again"));
          continue;
        }
        // A row written for such a name would read back as another row or none.
        if (std::string problem = RowNameProblem(m.value("benchmark", ""), m.value("metric", "")); !problem.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": '", EscapeControls(key), "' of case ", EscapeControls(case_name), ": ", problem));
        }
        auto [it, inserted] = reported_by.emplace(key, case_name);
        if (!inserted) {
          return absl::InvalidArgumentError(absl::StrCat(path, ": ", key, " is reported twice (cases ", it->second,
                                                         " and ", case_name, "); which one is the result?"));
        }
        results.emplace_back(key, WrittenMedian(m));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a perfgate JSON report: ", e.what()));
  }
  return results;
}

}  // namespace

double KeepLeadingFourDigits(double value) {
  if (auto n = ExactInteger(value)) {
    const size_t digits = std::to_string(*n < 0 ? -*n : *n).size();  // len(str(abs(num)))
    if (digits <= 4) return value;
    int64_t unit = 1;
    for (size_t i = 4; i < digits; ++i) unit *= 10;
    return static_cast<double>(FloorDivide(*n, unit) * unit);
  }
  if (!std::isfinite(value)) return value;
  return KeepLeadingFourDecimalDigits(value);
}

bool MovedMoreThanAThirdOfMargin(double expected, double result, double margin) {
  if (expected == 0) return result != 0;
  const auto e = ExactInteger(expected), r = ExactInteger(result);
  // float(R - E): Python subtracts the integers exactly, then converts.
  const double difference = e && r ? static_cast<double>(*r - *e) : result - expected;
  const double ratio = difference * 100 / expected;
  return std::fabs(ratio) > margin * 100 / 3;
}

std::string PythonFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value < 0 ? "-inf" : "inf";
  const Decimal d = ShortestDecimal(value);
  const int n = static_cast<int>(d.digits.size());
  const int point = d.exponent + 1;  // digits before the decimal point
  std::string out = d.negative ? "-" : "";
  // Python switches to an exponent below 1e-4 and from 1e16 on.
  if (point > -4 && point <= 16) {
    if (point <= 0) return out + "0." + std::string(-point, '0') + d.digits;
    if (point >= n) return out + d.digits + std::string(point - n, '0') + ".0";
    return out + d.digits.substr(0, point) + "." + d.digits.substr(point);
  }
  char exponent[16];
  std::snprintf(exponent, sizeof exponent, "e%+03d", d.exponent);
  out += d.digits.substr(0, 1);
  if (n > 1) out += "." + d.digits.substr(1);
  return out + exponent;
}

std::string FormatExpectedRow(const ExpectedRow& row) {
  return absl::StrCat(CsvField(row.benchmark), ",", CsvField(row.metric), ",", FormatExpectedValue(row.expected), ",",
                      PythonFloatRepr(row.margin));
}

std::string FormatExpectedFile(const std::vector<ExpectedRow>& rows) {
  std::string out;
  // "Three empty rows for merge conflicts."
  for (const auto& row : rows) absl::StrAppend(&out, FormatExpectedRow(row), "\r\n\r\n\r\n\r\n");
  return out;
}

BaselineUpdate UpdateExpectedRows(const std::vector<ExpectedRow>& rows,
                                  const std::vector<std::pair<std::string, double>>& results,
                                  const BaselineUpdateOptions& options) {
  BaselineUpdate update;
  std::map<std::string, double> by_key(results.begin(), results.end());
  std::set<std::string> present;
  for (const auto& row : rows) {
    present.insert(row.Key());
    update.rows.push_back(row);
    auto it = by_key.find(row.Key());
    if (it == by_key.end()) {
      update.without_result.push_back(row);
      update.log.push_back(absl::StrCat("kept    ", row.Key(), ": no result in this run (line ", row.line, ")"));
      continue;
    }
    if (!MovedMoreThanAThirdOfMargin(row.expected, it->second, row.margin)) continue;
    ExpectedRow& changed = update.rows.back();
    changed.expected = KeepLeadingFourDigits(it->second);
    update.log.push_back(absl::StrCat("changed ", row.Key(), ": ", FormatExpectedValue(row.expected), " -> ",
                                      FormatExpectedValue(changed.expected), " (moved ",
                                      FormatPercent(RelativeMove(row.expected, it->second), /*sign=*/true), ", margin ",
                                      FormatPercent(row.margin), ")"));
    ++update.changed;
  }
  for (const auto& [key, value] : results) {
    const size_t comma = key.rfind(',');  // metric names have none; benchmark names may (BM_F<int, float>)
    const std::string metric = key.substr(comma + 1);
    if (present.count(key) || !options.add_metrics.count(metric)) continue;
    present.insert(key);
    ExpectedRow row{key.substr(0, comma), metric, KeepLeadingFourDigits(value), options.new_margin, 0};
    update.log.push_back(absl::StrCat("added   ", key, ": ", FormatExpectedValue(row.expected), " (margin ",
                                      FormatPercent(row.margin), ")"));
    update.rows.push_back(std::move(row));
    ++update.added;
  }
  return update;
}

absl::StatusOr<BaselineUpdate> UpdateExpectedFileFromReport(const std::string& report_path,
                                                            const std::string& expected_path,
                                                            const BaselineUpdateOptions& options) {
  std::vector<std::string> skipped;
  auto results = ReportResults(report_path, options.pool, &skipped);
  if (!results.ok()) return results.status();
  std::vector<ExpectedRow> rows;
  if (std::filesystem::exists(expected_path)) {
    auto loaded = LoadExpectedFile(expected_path);
    if (!loaded.ok()) return loaded.status();
    rows = *std::move(loaded);
  } else if (options.add_metrics.empty()) {
    return absl::InvalidArgumentError(expected_path + " does not exist; give --add to start one");
  }
  BaselineUpdate update = UpdateExpectedRows(rows, *results, options);
  update.log.insert(update.log.begin(), skipped.begin(), skipped.end());
  return update;
}

}  // namespace perfgate
