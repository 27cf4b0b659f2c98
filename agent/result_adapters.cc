#include "agent/result_adapters.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/csv_lines.h"

namespace perfgate {
namespace {

std::string UnitOfPytorchMetric(std::string_view metric) {
  if (metric.find("instruction") != std::string_view::npos) return "count";
  if (metric.ends_with("_s") || metric.ends_with("_time")) return "s";
  return "";
}

double SecondsPerUnit(const std::string& unit) {
  if (unit == "ns") return 1e-9;
  if (unit == "us") return 1e-6;
  if (unit == "ms") return 1e-3;
  if (unit == "s") return 1;
  return 0;
}

}  // namespace

absl::StatusOr<std::vector<v1::MetricValue>> ParsePytorchResults(const std::string& text, const std::string& source) {
  std::vector<v1::MetricValue> values;
  for (const CsvLine& line : SplitCsvLines(text)) {
    const auto& fields = line.fields;
    double value;
    if (fields.size() != 3 || fields[0].empty() || fields[1].empty() || !ParseFiniteNumber(fields[2], &value)) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line.number,
                                                     ": expected a PyTorch result line 'name,metric,value' with a "
                                                     "number, got '",
                                                     line.text.substr(0, 200), "'"));
    }
    v1::MetricValue v;
    v.set_benchmark(std::string(fields[0]));
    v.set_metric(std::string(fields[1]));
    v.set_value(value);
    v.set_unit(UnitOfPytorchMetric(v.metric()));
    v.set_source("case:pytorch");
    values.push_back(std::move(v));
  }
  if (values.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no result lines (expected 'name,metric,value')"));
  }
  return values;
}

absl::StatusOr<std::vector<v1::MetricValue>> ParseGbenchJson(const std::string& text, const std::string& source) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not Google Benchmark JSON (byte ", e.byte, "): ", e.what()));
  }
  if (!doc.is_object() || !doc.contains("benchmarks") || !doc["benchmarks"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no 'benchmarks' array in Google Benchmark JSON"));
  }
  static const std::set<std::string> kNotMetrics = {"name",
                                                    "run_name",
                                                    "run_type",
                                                    "family_index",
                                                    "per_family_instance_index",
                                                    "repetitions",
                                                    "repetition_index",
                                                    "threads",
                                                    "iterations",
                                                    "real_time",
                                                    "cpu_time",
                                                    "time_unit",
                                                    "aggregate_name",
                                                    "aggregate_unit",
                                                    "error_occurred",
                                                    "error_message",
                                                    "label"};
  std::vector<v1::MetricValue> values;
  size_t index = 0;
  for (const auto& entry : doc["benchmarks"]) {
    const std::string where = absl::StrCat(source, ": benchmarks[", index++, "]");
    if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": entry without a 'name'"));
    }
    const std::string name = entry["name"];
    if (entry.value("error_occurred", false)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " (", name, ") reported an error: ", entry.value("error_message", std::string("?"))));
    }
    if (entry.value("run_type", std::string("iteration")) == "aggregate") continue;
    const std::string run_name = entry.value("run_name", name);
    const double scale = SecondsPerUnit(entry.value("time_unit", std::string("ns")));
    if (scale == 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, " (", name, "): unknown time_unit"));
    }
    auto add = [&](const std::string& metric, double value, const std::string& unit) {
      v1::MetricValue v;
      v.set_benchmark(run_name);
      v.set_metric(metric);
      v.set_value(value);
      v.set_unit(unit);
      v.set_source("case:gbench");
      values.push_back(std::move(v));
    };
    for (const char* key : {"real_time", "cpu_time"}) {
      if (!entry.contains(key) || !entry[key].is_number()) {
        return absl::InvalidArgumentError(absl::StrCat(where, " (", name, "): missing number '", key, "'"));
      }
      add(key, entry[key].get<double>() * scale, "s");
    }
    for (const auto& [key, value] : entry.items()) {
      if (value.is_number() && !kNotMetrics.count(key)) add(key, value.get<double>(), "");
    }
  }
  if (values.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": Google Benchmark JSON with no benchmark runs"));
  }
  return values;
}

absl::StatusOr<std::vector<v1::MetricValue>> ParseCaseResults(v1::ResultFormat format, const std::string& text,
                                                              const std::string& source) {
  switch (format) {
    case v1::RESULT_FORMAT_PYTORCH_CSV:
      return ParsePytorchResults(text, source);
    case v1::RESULT_FORMAT_GBENCH_JSON:
      return ParseGbenchJson(text, source);
    default:
      return std::vector<v1::MetricValue>{};
  }
}

}  // namespace perfgate
