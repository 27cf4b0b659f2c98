#include "agent/result_adapters.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/csv_lines.h"
#include "core/identifiers.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

using nlohmann::json;

// How much of an offending line an error quotes.
constexpr size_t kQuoteBytes = 200;

std::string Quote(absl::string_view text) { return EscapeInvalidUtf8(text.substr(0, kQuoteBytes)); }

// Values one sample may report, from either format. Each costs the agent
// some 500 bytes until the case's result is sent: a million PyTorch lines
// (13 MB) took 1.4 GB, kept for every repeat. PyTorch's benchmarks report
// tens of rows, a large Google Benchmark binary thousands.
constexpr size_t kMaxValuesPerSample = 50'000;

absl::Status TooManyValues(const std::string& source) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": more than ", kMaxValuesPerSample,
                   " result values in one sample; split the benchmarks over several cases"));
}

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

// Units of the counters Google Benchmark itself names (SetBytesProcessed,
// SetItemsProcessed); its JSON carries no unit or flags for user counters.
std::string UnitOfGbenchCounter(const std::string& name) {
  if (name == "bytes_per_second") return "B/s";
  if (name == "items_per_second") return "1/s";
  return "";
}

// Fields of an iteration entry that are not metrics.
bool IsGbenchBookkeeping(const std::string& key) {
  static const std::set<std::string> kFields = {
      "name",      "run_name",   "run_type",       "family_index",   "per_family_instance_index",
      "repetitions", "repetition_index", "threads", "iterations",   "real_time",
      "cpu_time",  "time_unit",  "aggregate_name", "aggregate_unit", "error_occurred",
      "error_message", "label"};
  return kFields.count(key) > 0;
}

}  // namespace

absl::StatusOr<std::vector<v1::MetricValue>> ParsePytorchResults(const std::string& text, const std::string& source) {
  std::vector<v1::MetricValue> values;
  std::map<std::pair<std::string, std::string>, int> first_line;
  for (const CsvLine& line : SplitCsvLines(text)) {
    const auto& fields = line.fields;
    auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line.number, ": ", what, ", got '", Quote(line.text),
                                                     "'"));
    };
    double value;
    if (fields.size() != 3 || fields[0].empty() || fields[1].empty() || !ParseFiniteNumber(fields[2], &value)) {
      return error("expected a PyTorch result line 'name,metric,value' with a number");
    }
    if (value < 0 && !UnitOfPytorchMetric(fields[1]).empty()) {
      return error(
          absl::StrCat("a negative ", UnitOfPytorchMetric(fields[1]) == "s" ? "time" : "count", " is no measurement"));
    }
    if (values.size() == kMaxValuesPerSample) return TooManyValues(source);
    if (!IsValidUtf8(fields[0]) || !IsValidUtf8(fields[1])) return error("benchmark and metric names must be UTF-8");
    if (std::string problem = RowNameProblem(fields[0], fields[1]); !problem.empty()) return error(problem);
    auto [it, inserted] = first_line.emplace(std::make_pair(std::string(fields[0]), std::string(fields[1])), line.number);
    if (!inserted) {
      return error(absl::StrCat("duplicate result for ", fields[0], ",", fields[1], " (first on line ", it->second,
                                "); PyTorch's check_results.py refuses this too"));
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

namespace {

// One iteration entry of a Google Benchmark document, read with every
// field's type checked, so a wrong-typed field is an error naming it rather
// than a json::type_error.
class GbenchEntry {
 public:
  GbenchEntry(const json& entry, std::string where) : entry_(entry), where_(std::move(where)) {}

  const std::string& where() const { return where_; }

  absl::Status WrongType(const std::string& key, const char* wanted) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, ": field '", Quote(key), "' must be ", wanted, ", got ",
                                                   entry_.at(key).type_name()));
  }

  // The string field `key`, or `fallback` when it is absent.
  absl::StatusOr<std::string> String(const std::string& key, const std::string& fallback) const {
    auto it = entry_.find(key);
    if (it == entry_.end()) return fallback;
    if (!it->is_string()) return WrongType(key, "a string");
    return it->get<std::string>();
  }

  absl::StatusOr<bool> Bool(const std::string& key) const {
    auto it = entry_.find(key);
    if (it == entry_.end()) return false;
    if (!it->is_boolean()) return WrongType(key, "true or false");
    return it->get<bool>();
  }

  // The non-negative integer field `key`, or -1 when it is absent.
  absl::StatusOr<int64_t> Index(const std::string& key) const {
    auto it = entry_.find(key);
    if (it == entry_.end()) return -1;
    if (!it->is_number_unsigned()) return WrongType(key, "a whole number >= 0");
    return static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX));
  }

  absl::StatusOr<double> Time(const std::string& key, double scale) const {
    auto it = entry_.find(key);
    if (it == entry_.end()) return absl::InvalidArgumentError(absl::StrCat(where_, ": missing number '", key, "'"));
    if (!it->is_number()) return WrongType(key, "a number");
    const double value = it->get<double>() * scale;
    if (!std::isfinite(value) || value < 0) {
      return absl::InvalidArgumentError(absl::StrCat(where_, ": field '", key, "' must be a finite time >= 0"));
    }
    return value;
  }

  const json& json_value() const { return entry_; }

 private:
  const json& entry_;
  std::string where_;
};

// A case's text quoted in a note: at most 200 bytes, cut at a character.
std::string Shortened(const std::string& text) {
  constexpr size_t kMost = 200;
  if (text.size() <= kMost) return text;
  size_t end = kMost;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return absl::StrCat(text.substr(0, end), "...");
}

class GbenchReader {
 public:
  // Notes of what a document left out, beyond which they are counted.
  static constexpr size_t kMaxNotes = 10;

  explicit GbenchReader(const std::string& source) : source_(source) {}

  absl::Status Read(const json& entry, size_t index) {
    const std::string where = absl::StrCat(source_, ": benchmarks[", index, "]");
    if (!entry.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, ": entry is not an object"));
    if (!entry.contains("name") || !entry["name"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": entry without a string 'name'"));
    }
    const std::string name = entry["name"].get<std::string>();
    const GbenchEntry e(entry, absl::StrCat(where, " (", name, ")"));
    auto error = e.Bool("error_occurred");
    if (!error.ok()) return error.status();
    if (*error) {
      auto message = e.String("error_message", "?");
      return absl::InvalidArgumentError(
          absl::StrCat(e.where(), " reported an error: ", message.ok() ? *message : "?"));
    }
    auto run_type = e.String("run_type", "iteration");
    if (!run_type.ok()) return run_type.status();
    auto run_name = e.String("run_name", name);
    if (!run_name.ok()) return run_name.status();
    if (*run_type == "aggregate") {
      aggregated_.insert(*run_name);
      return absl::OkStatus();
    }
    // SkipWithMessage (Google Benchmark 1.8): times of 0 that measured nothing.
    auto skipped = e.Bool("skipped");
    if (!skipped.ok()) return skipped.status();
    if (*skipped) {
      auto message = e.String("skip_message", "");
      if (!message.ok()) return message.status();
      notes_.insert(absl::StrCat("Google Benchmark: ", Shortened(*run_name), " skipped itself",
                                 message->empty() ? "" : absl::StrCat(" (", Shortened(*message), ")"), ": no values"));
      return absl::OkStatus();
    }
    auto iterations = e.Index("iterations");
    if (!iterations.ok()) return iterations.status();
    if (*iterations == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          e.where(), ": 0 iterations, so its times measure nothing (a skip Google Benchmark did not mark?)"));
    }
    measured_.insert(*run_name);
    if (auto s = CheckNotRepeated(e, name); !s.ok()) return s;
    auto time_unit = e.String("time_unit", "ns");
    if (!time_unit.ok()) return time_unit.status();
    const double scale = SecondsPerUnit(*time_unit);
    if (scale == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(e.where(), ": unknown time_unit '", *time_unit, "' (expected ns, us, ms or s)"));
    }
    for (const char* key : {"real_time", "cpu_time"}) {
      auto value = e.Time(key, scale);
      if (!value.ok()) return value.status();
      Add(*run_name, key, *value, "s");
    }
    for (const auto& [key, value] : entry.items()) {
      if (!value.is_number() || IsGbenchBookkeeping(key)) continue;
      const double number = value.get<double>();
      if (!std::isfinite(number)) {
        return absl::InvalidArgumentError(absl::StrCat(e.where(), ": counter '", key, "' is not finite"));
      }
      Add(*run_name, key, number, UnitOfGbenchCounter(key));
    }
    return absl::OkStatus();
  }

  std::vector<v1::MetricValue> Take() { return std::move(values_); }
  bool Full() const { return values_.size() >= kMaxValuesPerSample; }

  // What the document left out, each said once: skipped benchmarks, and
  // benchmarks that reported their aggregates only (ReportAggregatesOnly),
  // whose repetitions perfgate takes as samples and so has none of.
  std::vector<std::string> TakeNotes() {
    for (const std::string& name : aggregated_) {
      if (measured_.count(name)) continue;
      notes_.insert(absl::StrCat("Google Benchmark: ", Shortened(name),
                                 " reported aggregates only (ReportAggregatesOnly): not read; perfgate takes each "
                                 "repetition as a sample, so let it report them"));
    }
    std::vector<std::string> notes(notes_.begin(), notes_.end());
    if (notes.size() > kMaxNotes) {
      const size_t more = notes.size() - kMaxNotes;
      notes.resize(kMaxNotes);
      notes.push_back(absl::StrCat("Google Benchmark: ", more, " more benchmarks skipped or reported aggregates only"));
    }
    return notes;
  }

 private:
  // Repetitions of one benchmark are samples; the same repetition twice is
  // a document stitched together wrongly.
  absl::Status CheckNotRepeated(const GbenchEntry& e, const std::string& name) {
    auto repetition = e.Index("repetition_index");
    if (!repetition.ok()) return repetition.status();
    if (*repetition < 0) return absl::OkStatus();  // older versions do not number repetitions
    auto [it, inserted] = first_entry_.emplace(std::make_pair(name, *repetition), e.where());
    if (inserted) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(e.where(), ": duplicate entry with repetition_index ", *repetition, " (first at ", it->second, ")"));
  }

  void Add(const std::string& benchmark, const std::string& metric, double value, const std::string& unit) {
    v1::MetricValue v;
    v.set_benchmark(benchmark);
    v.set_metric(metric);
    v.set_value(value);
    v.set_unit(unit);
    v.set_source("case:gbench");
    values_.push_back(std::move(v));
  }

  const std::string& source_;
  std::map<std::pair<std::string, int64_t>, std::string> first_entry_;
  std::vector<v1::MetricValue> values_;
  std::set<std::string> measured_;
  std::set<std::string> aggregated_;
  std::set<std::string> notes_;
};

// What the JSON parser would have to build, checked before it builds it: a
// case's 64 MiB of '[' is 67 million nested arrays, 5 GB of the agent's
// memory. Google Benchmark's JSON nests four deep, and holds some twenty
// values per benchmark.
constexpr size_t kMaxJsonDepth = 64;
constexpr size_t kMaxJsonValues = 2'000'000;

// A parser callback that notes the first key an object repeats (the parser
// keeps the last value, silently): "real_time" twice in one entry is a
// document that does not say which time is the result.
json::parser_callback_t DuplicateKeyFinder(std::string* duplicate) {
  auto keys = std::make_shared<std::vector<std::set<std::string>>>();
  return [keys, duplicate](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      keys->emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!keys->empty()) keys->pop_back();
    } else if (event == json::parse_event_t::key && !keys->empty() && duplicate->empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!keys->back().insert(key).second) *duplicate = key;
    }
    return true;
  };
}

absl::Status CheckJsonShape(std::string_view text, const std::string& source) {
  size_t depth = 0, values = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": JSON nested more than ", kMaxJsonDepth, " deep; not Google Benchmark JSON"));
      }
    } else if (c == ']' || c == '}') {
      depth -= depth > 0;
    }
    if ((c == ',' || c == '[' || c == '{') && ++values > kMaxJsonValues) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": more than ", kMaxJsonValues,
                                                     " JSON values; split the benchmarks over several cases"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<v1::MetricValue>> ParseGbenchJson(const std::string& text, const std::string& source,
                                                             std::vector<std::string>* notes) {
  if (absl::Status shape = CheckJsonShape(text, source); !shape.ok()) return shape;
  // The JSON parser rejects invalid UTF-8, so every string below is valid.
  json doc;
  std::string duplicate;
  try {
    doc = json::parse(text, DuplicateKeyFinder(&duplicate));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not Google Benchmark JSON: ", EscapeInvalidUtf8(e.what())));
  }
  if (!duplicate.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": key '", Quote(duplicate), "' twice in one object: which value is the result?"));
  }
  if (!doc.is_object() || !doc.contains("benchmarks") || !doc["benchmarks"].is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no 'benchmarks' array in Google Benchmark JSON"));
  }
  GbenchReader reader(source);
  size_t index = 0;
  for (const auto& entry : doc["benchmarks"]) {
    if (auto s = reader.Read(entry, index++); !s.ok()) return s;
    if (reader.Full()) return TooManyValues(source);
  }
  std::vector<v1::MetricValue> values = reader.Take();
  std::vector<std::string> left_out = reader.TakeNotes();
  if (values.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": Google Benchmark JSON with no benchmark runs",
                     left_out.empty() ? "" : absl::StrCat(" (", absl::StrJoin(left_out, "; "), ")")));
  }
  if (notes) notes->insert(notes->end(), left_out.begin(), left_out.end());
  return values;
}

absl::StatusOr<std::vector<v1::MetricValue>> ParseCaseResults(v1::ResultFormat format, const std::string& text,
                                                              const std::string& source,
                                                              std::vector<std::string>* notes) {
  switch (format) {
    case v1::RESULT_FORMAT_PYTORCH_CSV:
      return ParsePytorchResults(text, source);
    case v1::RESULT_FORMAT_GBENCH_JSON: {
      auto values = ParseGbenchJson(text, source, notes);
      if (!values.ok()) return values;
      for (const auto& v : *values) {
        if (std::string problem = RowNameProblem(v.benchmark(), v.metric()); !problem.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(source, ": benchmark '", Quote(v.benchmark()), "', ", v.metric(), ": ", problem));
        }
      }
      return values;
    }
    default:
      return std::vector<v1::MetricValue>{};
  }
}

}  // namespace perfgate
