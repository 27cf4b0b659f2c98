#include "core/suite.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/artifact_tree.h"
#include "core/bounded_read.h"
#include "core/identifiers.h"
#include "core/metric_traits.h"
#include "core/policy.h"
#include "core/units.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

namespace fs = std::filesystem;

// Every error carries file:line:column of the node it is about.
class SuiteError {
 public:
  SuiteError(std::string source) : source_(std::move(source)) {}
  absl::Status At(const YAML::Node& node, const std::string& message) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(source_, ": ", message));
    return absl::InvalidArgumentError(absl::StrCat(source_, ":", mark.line + 1, ":", mark.column + 1, ": ", message));
  }

 private:
  std::string source_;
};

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The candidate nearest `name`, if one is closer than `within` edits; else "".
std::string NearestName(const std::string& name, const std::vector<std::string>& candidates, size_t within) {
  std::string best;
  for (const auto& candidate : candidates) {
    if (const size_t d = EditDistance(name, candidate); d < within) within = d, best = candidate;
  }
  return best;
}

std::string UnknownKeyMessage(const std::string& key, const std::string& where,
                              const std::vector<std::string>& allowed) {
  const std::string best = NearestName(key, allowed, /*within=*/3);  // suggest only close matches
  std::string message = absl::StrCat("unknown key '", key, "' in ", where);
  if (!best.empty()) absl::StrAppend(&message, "; did you mean '", best, "'?");
  absl::StrAppend(&message, " (allowed: ", absl::StrJoin(allowed, ", "), ")");
  return message;
}

// The file's text is checked to be UTF-8 before it is parsed, but yaml-cpp
// writes the escapes \N and \_ as the single bytes 0x85 and 0xA0, which no
// proto string field can carry; so every value is checked again here.
absl::StatusOr<std::string> Scalar(const SuiteError& err, const YAML::Node& node, const std::string& what) {
  if (!node.IsScalar()) return err.At(node, absl::StrCat(what, " must be a single value"));
  if (!IsValidUtf8(node.Scalar())) {
    return err.At(node, absl::StrCat(what, " '", EscapeInvalidUtf8(node.Scalar()),
                                     "' is not UTF-8 text (write the character itself, not the escape \\N or \\_)"));
  }
  return node.Scalar();
}

// A map's key, as text checked like any value.
absl::StatusOr<std::string> Key(const SuiteError& err, const YAML::Node& key, const std::string& where) {
  return Scalar(err, key, absl::StrCat("a key in ", where));
}

// Rejects a key given twice in any map of the document: yaml-cpp keeps the
// first, so a `command:` or `repeats:` written again lower down was ignored
// and the case ran as first written. Run once the suite has parsed, so the
// document is as shallow as a suite is (aliases nested ten deep would
// otherwise be walked 10^9 times); iterative, and bounded all the same.
constexpr size_t kMaxSuiteNodes = 10'000'000;

absl::Status CheckNoRepeatedKeys(const SuiteError& err, const YAML::Node& root) {
  std::vector<YAML::Node> pending = {root};
  for (size_t visited = 0; !pending.empty(); ++visited) {
    if (visited > kMaxSuiteNodes) return err.At(root, "too many YAML nodes (aliases of aliases?)");
    const YAML::Node node = pending.back();
    pending.pop_back();
    if (node.IsSequence()) {
      for (const auto& item : node) pending.push_back(item);
      continue;
    }
    if (!node.IsMap()) continue;
    std::map<std::string, int> first_line;
    for (const auto& kv : node) {
      if (kv.first.IsScalar()) {
        auto [it, fresh] = first_line.emplace(kv.first.Scalar(), kv.first.Mark().line + 1);
        if (!fresh) {
          return err.At(kv.first,
                        absl::StrCat("'", EscapeInvalidUtf8(kv.first.Scalar()), "' is given twice (first on line ",
                                     it->second, "); which one is meant? Keep one"));
        }
      }
      pending.push_back(kv.second);
    }
  }
  return absl::OkStatus();
}

// Rejects keys of `map` outside `allowed`.
absl::Status CheckKeys(const SuiteError& err, const YAML::Node& map, const std::string& where,
                       const std::vector<std::string>& allowed) {
  for (const auto& kv : map) {
    auto key = Key(err, kv.first, where);
    if (!key.ok()) return key.status();
    if (std::find(allowed.begin(), allowed.end(), *key) == allowed.end()) {
      return err.At(kv.first, UnknownKeyMessage(*key, where, allowed));
    }
  }
  return absl::OkStatus();
}

// A whole number from `min` to `max`; `why_max` (if any) says where the upper bound comes from.
absl::StatusOr<uint32_t> Count(const SuiteError& err, const YAML::Node& node, const std::string& what, uint32_t min,
                               uint32_t max, const char* why_max = "") {
  auto text = Scalar(err, node, what);
  if (!text.ok()) return text.status();
  static const std::regex kInteger("[0-9]+");
  if (!std::regex_match(*text, kInteger)) {
    return err.At(node, absl::StrCat(what, " must be a whole number >= ", min, ", got '", *text, "'"));
  }
  // Past twelve digits (leading zeros aside) every bound is passed: a number
  // of 10 digits or more was refused as "not a whole number".
  const std::string digits = text->substr(std::min(text->find_first_not_of('0'), text->size() - 1));
  const uint64_t value = digits.size() > 12 ? std::numeric_limits<uint64_t>::max() : std::stoull(digits);
  if (value > max) return err.At(node, absl::StrCat(what, " must be at most ", max, why_max, ", got ", *text));
  if (value < min) {
    return err.At(node, absl::StrCat(what, " must be a whole number >= ", min, ", got '", *text, "'"));
  }
  return static_cast<uint32_t>(value);
}

template <typename Enum>
absl::StatusOr<Enum> Choice(const SuiteError& err, const YAML::Node& node, const std::string& what,
                            const std::vector<std::pair<std::string, Enum>>& choices) {
  auto text = Scalar(err, node, what);
  if (!text.ok()) return text.status();
  std::vector<std::string> names;
  for (const auto& [name, value] : choices) {
    if (name == *text) return value;
    names.push_back(name);
  }
  return err.At(node, absl::StrCat(what, " must be one of ", absl::StrJoin(names, ", "), ", got '", *text, "'"));
}

std::string ExpandSuiteDir(const std::string& text, const std::string& base_dir) {
  std::string out = text;
  const std::string token = "${SUITE_DIR}";
  for (size_t pos = out.find(token); pos != std::string::npos; pos = out.find(token, pos)) {
    out.replace(pos, token.size(), base_dir);
    pos += base_dir.size();
  }
  return out;
}

std::string Anchor(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path[0] == '/' || path[0] == '$') return path;
  return (fs::path(base_dir) / path).lexically_normal().string();
}

const std::vector<std::string> kCaseKeys = {"name",         "description",  "command",  "env",     "cwd",
                                            "timeout",      "warmup",       "repeats",  "results", "results_from",
                                            "instructions", "output_limit", "requires", "judge",   "expected_duration"};
const std::vector<std::string> kDefaultsKeys = {"env",          "cwd",      "timeout",      "warmup",
                                                "repeats",      "results",  "results_from", "instructions",
                                                "output_limit", "requires", "judge"};

// Applies the keys present in `node` to `spec`. Used for `defaults` and for each case.
// What runs: description, command, env and cwd, with ${SUITE_DIR} expanded
// and relative paths anchored at the suite's folder.
absl::Status ApplyCommandFields(const SuiteError& err, const YAML::Node& node, const std::string& base_dir,
                                v1::CaseSpec* spec) {
  if (const auto n = node["description"]) {
    auto v = Scalar(err, n, "description");
    if (!v.ok()) return v.status();
    spec->set_description(*v);
  }
  if (const auto n = node["command"]) {
    if (!n.IsSequence() || n.size() == 0) {
      return err.At(n, "command must be a non-empty list of strings: [program, arg, ...]");
    }
    spec->clear_argv();
    for (const auto& arg : n) {
      auto v = Scalar(err, arg, "each command argument");
      if (!v.ok()) return v.status();
      std::string expanded = ExpandSuiteDir(*v, base_dir);
      if (spec->argv_size() == 0 && expanded.find('/') != std::string::npos) {
        expanded = Anchor(expanded, base_dir);
      }
      spec->add_argv(expanded);
    }
  }
  if (const auto n = node["env"]) {
    if (!n.IsMap()) return err.At(n, "env must be a map of NAME: value");
    static const std::regex kEnvName("[A-Za-z_][A-Za-z0-9_]*");
    for (const auto& kv : n) {
      auto key = Key(err, kv.first, "env");
      if (!key.ok()) return key.status();
      if (!std::regex_match(*key, kEnvName)) {
        return err.At(kv.first, absl::StrCat("env name '", *key, "' is not a valid variable name"));
      }
      auto v = Scalar(err, kv.second, absl::StrCat("env ", *key));
      if (!v.ok()) return v.status();
      (*spec->mutable_env())[*key] = ExpandSuiteDir(*v, base_dir);
    }
  }
  if (const auto n = node["cwd"]) {
    auto v = Scalar(err, n, "cwd");
    if (!v.ok()) return v.status();
    spec->set_cwd(Anchor(ExpandSuiteDir(*v, base_dir), base_dir));
  }
  return absl::OkStatus();
}

// How it runs: timeout, warm-up runs and repeats.
absl::Status ApplyRunFields(const SuiteError& err, const YAML::Node& node, const std::string& base_dir,
                            v1::CaseSpec* spec) {
  if (const auto n = node["timeout"]) {
    auto v = Scalar(err, n, "timeout");
    if (!v.ok()) return v.status();
    auto ms = ParseDurationMs(*v);
    if (!ms || *ms == 0 || *ms > 24ull * 3600 * 1000) {
      return err.At(n, absl::StrCat("timeout must be a duration like 500ms, 30s or 5m (at most 24h), got '", *v, "'"));
    }
    spec->set_timeout_ms(static_cast<uint32_t>(*ms));
  }
  if (const auto n = node["expected_duration"]) {
    // The scheduler starts the longest cases first; without this it learns durations from history.
    auto v = Scalar(err, n, "expected_duration");
    if (!v.ok()) return v.status();
    auto ms = ParseDurationMs(*v);
    if (!ms || *ms == 0) {
      return err.At(n, absl::StrCat("expected_duration must be a duration like 500ms, 30s or 5m, got '", *v, "'"));
    }
    spec->set_expected_duration_ms(*ms);
  }
  if (const auto n = node["warmup"]) {
    auto v = Count(err, n, "warmup", 0, kMaxWarmup);
    if (!v.ok()) return v.status();
    spec->set_warmup(*v);
  }
  if (const auto n = node["repeats"]) {
    auto v = Count(err, n, "repeats", 1, kMaxSamplesPerResult, " (the samples one result may carry)");
    if (!v.ok()) return v.status();
    spec->set_repeats(*v);
  }
  return absl::OkStatus();
}

// What it measures: its own results, instruction counts, output cap, judged metrics.
absl::Status ApplyMeasureFields(const SuiteError& err, const YAML::Node& node, const std::string& base_dir,
                                v1::CaseSpec* spec) {
  if (const auto n = node["results"]) {
    auto v = Choice<v1::ResultFormat>(err, n, "results",
                                      {{"none", v1::RESULT_FORMAT_NONE},
                                       {"pytorch", v1::RESULT_FORMAT_PYTORCH_CSV},
                                       {"gbench", v1::RESULT_FORMAT_GBENCH_JSON}});
    if (!v.ok()) return v.status();
    spec->set_result_format(*v);
  }
  if (const auto n = node["results_from"]) {
    auto v = Choice<v1::ResultSource>(err, n, "results_from",
                                      {{"stdout", v1::RESULT_SOURCE_STDOUT}, {"file", v1::RESULT_SOURCE_FILE}});
    if (!v.ok()) return v.status();
    spec->set_result_source(*v);
  }
  if (const auto n = node["instructions"]) {
    auto v = Choice<v1::InstructionCounter>(err, n, "instructions",
                                            {{"off", v1::INSTRUCTION_COUNTER_OFF},
                                             {"auto", v1::INSTRUCTION_COUNTER_AUTO},
                                             {"perf", v1::INSTRUCTION_COUNTER_PERF},
                                             {"callgrind", v1::INSTRUCTION_COUNTER_CALLGRIND},
                                             {"region", v1::INSTRUCTION_COUNTER_REGION}});
    if (!v.ok()) return v.status();
    spec->set_instructions(*v);
  }
  if (const auto n = node["output_limit"]) {
    auto v = Scalar(err, n, "output_limit");
    if (!v.ok()) return v.status();
    auto bytes = ParseBytes(*v);
    if (!bytes || *bytes == 0 || *bytes > kMaxOutputLimitBytes) {
      return err.At(
          n, absl::StrCat("output_limit must be a size like 65536, 64KiB or 8MiB, at most 1GiB, got '", *v, "'"));
    }
    spec->set_output_limit_bytes(*bytes);
  }
  if (const auto n = node["judge"]) {
    if (!n.IsSequence() || n.size() == 0) {
      return err.At(n, "judge must be a non-empty list of metric names (the metrics compared with baselines)");
    }
    spec->clear_judged_metrics();
    for (const auto& m : n) {
      auto v = Scalar(err, m, "each judged metric");
      if (!v.ok()) return v.status();
      spec->add_judged_metrics(*v);
    }
  }
  return absl::OkStatus();
}

// Where it may run: `requires:` (device, GPU memory and capability, labels).
absl::Status ApplyRequirements(const SuiteError& err, const YAML::Node& node, const std::string& base_dir,
                               v1::CaseSpec* spec) {
  if (const auto n = node["requires"]) {
    if (!n.IsMap()) return err.At(n, "requires must be a map");
    if (auto s = CheckKeys(err, n, "requires", {"device", "min_gpu_memory", "min_compute_capability", "labels"});
        !s.ok()) {
      return s;
    }
    auto* req = spec->mutable_requirements();
    if (const auto d = n["device"]) {
      auto v = Choice<v1::Requirements::Device>(err, d, "requires.device",
                                                {{"any", v1::Requirements::DEVICE_ANY},
                                                 {"cpu", v1::Requirements::DEVICE_CPU},
                                                 {"gpu", v1::Requirements::DEVICE_GPU}});
      if (!v.ok()) return v.status();
      req->set_device(*v);
    }
    if (const auto m = n["min_gpu_memory"]) {
      auto v = Scalar(err, m, "requires.min_gpu_memory");
      if (!v.ok()) return v.status();
      auto bytes = ParseBytes(*v);
      if (!bytes) return err.At(m, absl::StrCat("requires.min_gpu_memory must be a size like 16GiB, got '", *v, "'"));
      req->set_min_gpu_memory_bytes(*bytes);
    }
    if (const auto c = n["min_compute_capability"]) {
      auto v = Scalar(err, c, "requires.min_compute_capability");
      if (!v.ok()) return v.status();
      static const std::regex kCapability("([0-9]{1,2})\\.([0-9])");
      std::smatch m;
      if (!std::regex_match(*v, m, kCapability)) {
        return err.At(c, absl::StrCat("requires.min_compute_capability must look like 8.0, got '", *v, "'"));
      }
      req->set_min_compute_capability(std::stoul(m[1]) * 10 + std::stoul(m[2]));
    }
    if (const auto l = n["labels"]) {
      if (!l.IsSequence()) return err.At(l, "requires.labels must be a list of strings");
      req->clear_labels();
      for (const auto& label : l) {
        auto v = Scalar(err, label, "each label");
        if (!v.ok()) return v.status();
        // An agent's labels are held to this (Register): another could never be met.
        if (std::string problem = AgentNameProblem("label", *v); !problem.empty()) {
          return err.At(label, absl::StrCat("requires.labels: '", *v, "': ", problem, "; no agent could have it"));
        }
        req->add_labels(*v);
      }
    }
  }
  return absl::OkStatus();
}

// Every case field present in `node` onto `spec` (a case, or the defaults).
absl::Status ApplyCaseFields(const SuiteError& err, const YAML::Node& node, const std::string& base_dir,
                             v1::CaseSpec* spec) {
  for (auto apply : {ApplyCommandFields, ApplyRunFields, ApplyMeasureFields, ApplyRequirements}) {
    if (auto s = apply(err, node, base_dir, spec); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<double> Fraction(const SuiteError& err, const YAML::Node& node, const std::string& what) {
  auto text = Scalar(err, node, what);
  if (!text.ok()) return text.status();
  auto value = ParseFraction(*text);
  if (!value)
    return err.At(node, absl::StrCat(what, " must be a fraction like 0.01 or a percentage like 1%, got '", *text, "'"));
  return *value;
}

// A number in the range `check` allows (core/policy.h).
absl::StatusOr<double> Number(const SuiteError& err, const YAML::Node& node, const std::string& what,
                              std::string (*check)(double)) {
  auto text = Scalar(err, node, what);
  if (!text.ok()) return text.status();
  char* end = nullptr;
  double v = std::strtod(text->c_str(), &end);
  if (end == text->c_str() || *end != '\0') v = NAN;  // not a number: the range says what is wanted
  if (auto why = check(v); !why.empty()) return err.At(node, absl::StrCat(what, " ", why, ", got '", *text, "'"));
  return v;
}

// The `gate:` section: how runs of this suite are judged.
absl::Status ParseGate(const SuiteError& err, const YAML::Node& node, const std::string& base_dir,
                       v1::GateConfig* gate) {
  if (!node.IsMap()) return err.At(node, "gate must be a map");
  if (auto s = CheckKeys(err, node, "gate", {"fail_on", "expected", "main_branch", "history", "ab", "confirm"});
      !s.ok()) {
    return s;
  }
  if (const auto n = node["fail_on"]) {
    if (!n.IsSequence()) return err.At(n, "gate.fail_on must be a list of verdicts");
    for (const auto& v : n) {
      auto name = Scalar(err, v, "each gate.fail_on entry");
      if (!name.ok()) return name.status();
      if (!ParseFailOnVerdict(*name)) {
        return err.At(v, absl::StrCat("gate.fail_on: unknown verdict '", *name,
                                      "' (allowed: ", absl::StrJoin(FailOnVerdictKeys(), ", "), ")"));
      }
      gate->add_fail_on(*name);
    }
  }
  if (const auto n = node["expected"]) {
    if (!n.IsMap())
      return err.At(n, "gate.expected must map a testbed (agent pool, or *) to a PyTorch expected-results file");
    for (const auto& kv : n) {
      auto testbed = Key(err, kv.first, "gate.expected");
      if (!testbed.ok()) return testbed.status();
      auto path = Scalar(err, kv.second, "gate.expected file");
      if (!path.ok()) return path.status();
      (*gate->mutable_expected())[*testbed] = Anchor(ExpandSuiteDir(*path, base_dir), base_dir);
    }
  }
  if (const auto n = node["main_branch"]) {
    auto v = Scalar(err, n, "gate.main_branch");
    if (!v.ok()) return v.status();
    gate->set_main_branch(*v);
  }
  if (const auto n = node["history"]) {
    if (!n.IsMap()) return err.At(n, "gate.history must be a map");
    if (auto s = CheckKeys(err, n, "gate.history", {"min_runs", "runs", "k", "floor", "time_floor", "max_age"});
        !s.ok())
      return s;
    if (const auto m = n["min_runs"]) {
      auto v = Count(err, m, "gate.history.min_runs", 2, kMaxHistoryRuns);
      if (!v.ok()) return v.status();
      gate->set_history_min_runs(*v);
    }
    if (const auto m = n["runs"]) {
      // Every judged series asks for this many medians, and the reply has a size limit.
      auto v = Count(err, m, "gate.history.runs", 2, kMaxHistoryRuns);
      if (!v.ok()) return v.status();
      gate->set_history_runs(*v);
    }
    if (const auto m = n["k"]) {
      auto v = Number(err, m, "gate.history.k", CheckHistoryK);
      if (!v.ok()) return v.status();
      gate->set_history_k(*v);
    }
    if (const auto m = n["floor"]) {
      auto v = Fraction(err, m, "gate.history.floor");
      if (!v.ok()) return v.status();
      gate->set_history_floor(*v);
    }
    if (const auto m = n["time_floor"]) {
      auto v = Fraction(err, m, "gate.history.time_floor");
      if (!v.ok()) return v.status();
      gate->set_history_time_floor(*v);
    }
    const uint32_t min_runs = gate->history_min_runs() ? gate->history_min_runs() : CompareOptions().history_min_runs;
    const uint32_t runs = gate->history_runs() ? gate->history_runs() : CompareOptions().history_runs;
    if (runs < min_runs) {
      return err.At(n["runs"] ? n["runs"] : n["min_runs"],
                    absl::StrCat("gate.history.runs (", runs, ") is below min_runs (", min_runs,
                                 "): history could never be enough to judge anything; raise runs or lower min_runs"));
    }
    if (const auto m = n["max_age"]) {
      auto text = Scalar(err, m, "gate.history.max_age");
      if (!text.ok()) return text.status();
      auto ms = ParseDurationMs(*text);
      if (!ms || *ms == 0)
        return err.At(m, absl::StrCat("gate.history.max_age must be a duration like 30d, got '", *text, "'"));
      gate->set_history_max_age_ms(*ms);
    }
  }
  if (const auto n = node["ab"]) {
    if (!n.IsMap()) return err.At(n, "gate.ab must be a map");
    if (auto s = CheckKeys(err, n, "gate.ab", {"alpha", "min_effect"}); !s.ok()) return s;
    if (const auto m = n["alpha"]) {
      auto v = Fraction(err, m, "gate.ab.alpha");
      if (!v.ok()) return v.status();
      if (auto why = CheckAlpha(*v); !why.empty()) return err.At(m, absl::StrCat("gate.ab.alpha ", why, ", got ", *v));
      gate->set_ab_alpha(*v);
    }
    if (const auto m = n["min_effect"]) {
      auto v = Fraction(err, m, "gate.ab.min_effect");
      if (!v.ok()) return v.status();
      if (auto why = CheckMinEffect(*v); !why.empty())
        return err.At(m, absl::StrCat("gate.ab.min_effect ", why, ", got ", *v));
      gate->set_ab_min_effect(*v);
    }
  }
  if (const auto n = node["confirm"]) {
    auto v = Count(err, n, "gate.confirm", 0, kMaxConfirmRounds);
    if (!v.ok()) return v.status();
    gate->set_confirm(*v);
  }
  return absl::OkStatus();
}

// The `metrics:` section: directions (and units) of metrics perfgate does not
// know, e.g. a Google Benchmark user counter `elem_rate: {better: higher, unit: 1/s}`.
absl::Status ParseMetrics(const SuiteError& err, const YAML::Node& node,
                          google::protobuf::Map<std::string, v1::MetricDeclaration>* metrics) {
  if (!node.IsMap()) return err.At(node, "metrics must map a metric name to {better: lower|higher, unit: ...}");
  for (const auto& kv : node) {
    auto key = Key(err, kv.first, "metrics");
    if (!key.ok()) return key.status();
    const std::string& name = *key;
    const std::string where = absl::StrCat("metrics.", name);
    if (!kv.second.IsMap()) return err.At(kv.second, absl::StrCat(where, " must be a map like {better: higher}"));
    if (auto s = CheckKeys(err, kv.second, where, {"better", "unit"}); !s.ok()) return s;
    v1::MetricDeclaration declaration;
    const auto better = kv.second["better"];
    if (!better) return err.At(kv.second, absl::StrCat(where, " needs 'better: lower' or 'better: higher'"));
    auto word = Scalar(err, better, absl::StrCat(where, ".better"));
    if (!word.ok()) return word.status();
    if (!ParseDirection(*word)) {
      return err.At(better, absl::StrCat(where, ".better must be 'lower' or 'higher', got '", *word, "'"));
    }
    declaration.set_better(*word);
    if (const auto unit = kv.second["unit"]) {
      auto text = Scalar(err, unit, absl::StrCat(where, ".unit"));
      if (!text.ok()) return text.status();
      declaration.set_unit(*text);
    }
    const std::string problem = BuiltInDeclarationProblem(name, *ParseDirection(*word), declaration.unit());
    if (!problem.empty()) return err.At(kv.first, absl::StrCat(where, ": ", problem));
    (*metrics)[name] = std::move(declaration);
  }
  return absl::OkStatus();
}

// The `artifacts:` section: a folder for ${PERFGATE_ARTIFACTS}, or a map
// NAME: folder for ${PERFGATE_ARTIFACTS_NAME}; folders relative to the suite.
absl::Status ParseArtifacts(const SuiteError& err, const YAML::Node& node, const std::string& base_dir,
                            v1::Suite* suite) {
  std::vector<std::pair<YAML::Node, std::string>> entries;  // (node, name)
  if (node.IsScalar()) {
    entries.emplace_back(node, "");
  } else if (node.IsMap()) {
    for (const auto& kv : node) {
      auto key = Key(err, kv.first, "artifacts");
      if (!key.ok()) return key.status();
      const std::string& name = *key;
      if (!IsArtifactName(name)) {
        return err.At(kv.first, absl::StrCat("artifacts: the name '", name,
                                             "' may use only letters, digits and '_' (not first a digit)"));
      }
      entries.emplace_back(kv.second, name);
    }
  } else {
    return err.At(node, "artifacts must be a folder, or a map NAME: folder");
  }
  for (const auto& [value, name] : entries) {
    auto path = Scalar(err, value, name.empty() ? "artifacts" : absl::StrCat("artifacts.", name));
    if (!path.ok()) return path.status();
    const std::string dir = Anchor(ExpandSuiteDir(*path, base_dir), base_dir);
    std::error_code ec;
    if (path->empty() || !fs::is_directory(dir, ec)) {
      return err.At(value,
                    absl::StrCat("artifacts: '", dir, "' is not a folder (paths are relative to the suite file)"));
    }
    v1::ArtifactDir* entry = suite->add_artifact_dirs();
    entry->set_name(name);
    entry->set_path(dir);
  }
  return absl::OkStatus();
}

// A suite file is UTF-8 text without control characters other than tab,
// line feed and carriage return, as YAML requires. yaml-cpp guesses other
// encodings from NUL bytes and lets bytes through that are not UTF-8, which
// no proto string field can carry, so such input is refused up front.
absl::Status CheckSuiteText(const std::string& text, const std::string& source) {
  size_t bad = FirstInvalidUtf8(text);
  for (size_t i = 0; i < std::min(bad, text.size()); ++i) {
    const unsigned char c = text[i];
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      bad = i;
      break;
    }
  }
  if (bad == absl::string_view::npos) return absl::OkStatus();
  const absl::string_view before = absl::string_view(text).substr(0, bad);
  const size_t line_start = before.rfind('\n') == absl::string_view::npos ? 0 : before.rfind('\n') + 1;
  return absl::InvalidArgumentError(
      absl::StrCat(source, ":", std::count(before.begin(), before.end(), '\n') + 1, ":", bad - line_start + 1,
                   ": byte 0x", absl::Hex(static_cast<unsigned char>(text[bad]), absl::kZeroPad2),
                   " is not allowed (a suite file is UTF-8 text without control characters)"));
}

absl::StatusOr<YAML::Node> LoadYaml(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1,
                                                   ": not valid YAML: ", EscapeInvalidUtf8(e.msg)));
  } catch (const std::exception& e) {  // yaml-cpp also lets std::bad_alloc and others through
    return absl::InvalidArgumentError(absl::StrCat(source, ": cannot read the suite: ", EscapeInvalidUtf8(e.what())));
  }
}

// The suite's name and its sections other than cases: metrics, artifacts, gate.
absl::Status ParseSuiteSections(const SuiteError& err, const YAML::Node& root, const std::string& base_dir,
                                v1::Suite* suite) {
  if (auto s = CheckKeys(err, root, "the suite file", {"suite", "defaults", "cases", "gate", "metrics", "artifacts"});
      !s.ok()) {
    return s;
  }
  if (const auto m = root["metrics"]) {
    if (auto s = ParseMetrics(err, m, suite->mutable_metrics()); !s.ok()) return s;
  }
  if (const auto a = root["artifacts"]) {
    if (auto s = ParseArtifacts(err, a, base_dir, suite); !s.ok()) return s;
  }
  if (const auto g = root["gate"]) {
    if (auto s = ParseGate(err, g, base_dir, suite->mutable_gate()); !s.ok()) return s;
  }
  const auto name = root["suite"];
  if (!name) return err.At(root, "missing key 'suite' (the suite's name)");
  auto name_value = Scalar(err, name, "suite");
  if (!name_value.ok()) return name_value.status();
  if (std::string problem = SuiteNameProblem(*name_value); !problem.empty()) return err.At(name, problem);
  suite->set_name(*name_value);
  return absl::OkStatus();
}

// What every case starts from: perfgate's defaults, then the suite's `defaults:`.
absl::StatusOr<v1::CaseSpec> ParseDefaults(const SuiteError& err, const YAML::Node& root, const std::string& base_dir) {
  v1::CaseSpec defaults;
  defaults.set_warmup(kDefaultWarmup);
  defaults.set_repeats(kDefaultRepeats);
  defaults.set_timeout_ms(kDefaultTimeoutMs);
  defaults.set_output_limit_bytes(kDefaultOutputLimitBytes);
  if (const auto d = root["defaults"]) {
    if (!d.IsMap()) return err.At(d, "defaults must be a map");
    if (auto s = CheckKeys(err, d, "defaults", kDefaultsKeys); !s.ok()) return s;
    if (auto s = ApplyCaseFields(err, d, base_dir, &defaults); !s.ok()) return s;
  }
  return defaults;
}

// One entry of `cases:` over the defaults. `seen` holds the names before it.
absl::StatusOr<v1::CaseSpec> ParseCase(const SuiteError& err, const YAML::Node& node, const v1::CaseSpec& defaults,
                                       const std::string& base_dir, std::set<std::string>* seen) {
  if (!node.IsMap()) return err.At(node, "each case must be a map with at least 'name' and 'command'");
  const auto case_name = node["name"];
  if (!case_name) return err.At(node, "case without 'name'");
  auto case_name_value = Scalar(err, case_name, "name");
  if (!case_name_value.ok()) return case_name_value.status();
  const std::string where = absl::StrCat("case '", *case_name_value, "'");
  if (auto s = CheckKeys(err, node, where, kCaseKeys); !s.ok()) return s;
  if (!CaseNameProblem(*case_name_value).empty()) {
    return err.At(case_name,
                  absl::StrCat("case name '", *case_name_value, "' may use only letters, digits and _ . : -"));
  }
  if (!seen->insert(*case_name_value).second) {
    return err.At(case_name, absl::StrCat("duplicate case name '", *case_name_value, "'"));
  }
  if (!node["command"]) return err.At(node, absl::StrCat(where, " has no 'command'"));
  v1::CaseSpec spec = defaults;
  spec.set_name(*case_name_value);
  if (auto s = ApplyCaseFields(err, node, base_dir, &spec); !s.ok()) return s;
  return spec;
}

// A `judge:` entry names a metric whose direction perfgate knows (built in,
// or declared under `metrics:` with `better:`): any other could never be
// judged, so a misspelt name judged nothing and the gate passed on that.
absl::Status CheckJudgedNames(const SuiteError& err, const YAML::Node& judge, const MetricDeclarations& declared) {
  if (!judge) return absl::OkStatus();
  for (const auto& m : judge) {
    const std::string name = m.Scalar();
    const MetricTraits traits = TraitsOf(name, "", declared);
    if (!traits.judgeable) {
      return err.At(m, absl::StrCat("judge: '", name, "' is shown, never judged: ", traits.why_not_judged));
    }
    if (traits.direction != Direction::kUnknown) continue;
    std::vector<std::string> known = BuiltInMetricNames();
    for (const auto& [d, declaration] : declared) {
      if (declaration.better != Direction::kUnknown) known.push_back(d);
    }
    const std::string best = NearestName(name, known, /*within=*/4);  // metric names are longer than keys
    return err.At(m, absl::StrCat("judge: '", name, "' is not a metric whose direction perfgate knows",
                                  best.empty() ? "" : absl::StrCat("; did you mean '", best, "'?"),
                                  " Declare it under metrics: (", name,
                                  ": {better: lower|higher}), or name one of: ", absl::StrJoin(known, ", ")));
  }
  return absl::OkStatus();
}

absl::Status CheckJudgedNames(const SuiteError& err, const YAML::Node& root, const v1::Suite& suite) {
  const MetricDeclarations declared = DeclaredMetrics(suite);
  if (const auto d = root["defaults"]) {
    if (auto s = CheckJudgedNames(err, d["judge"], declared); !s.ok()) return s;
  }
  for (const auto& node : root["cases"]) {
    if (auto s = CheckJudgedNames(err, node["judge"], declared); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ParseCases(const SuiteError& err, const YAML::Node& root, const std::string& base_dir, v1::Suite* suite) {
  absl::StatusOr<v1::CaseSpec> defaults = ParseDefaults(err, root, base_dir);
  if (!defaults.ok()) return defaults.status();
  const auto cases = root["cases"];
  if (!cases) return err.At(root, "missing key 'cases' (a list of benchmark cases)");
  if (!cases.IsSequence() || cases.size() == 0) return err.At(cases, "cases must be a non-empty list");
  std::set<std::string> seen;
  for (const auto& node : cases) {
    absl::StatusOr<v1::CaseSpec> spec = ParseCase(err, node, *defaults, base_dir, &seen);
    if (!spec.ok()) return spec.status();
    *suite->add_cases() = *std::move(spec);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Suite> ParseSuite(const std::string& text, const std::string& source, const std::string& base_dir) {
  const SuiteError err(source);
  if (auto s = CheckSuiteText(text, source); !s.ok()) return s;
  absl::StatusOr<YAML::Node> root = LoadYaml(text, source);
  if (!root.ok()) return root.status();
  if (!root->IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": a suite file is a map with keys 'suite' and 'cases'"));
  }
  try {
    v1::Suite suite;
    suite.set_source(source);
    if (auto s = ParseSuiteSections(err, *root, base_dir, &suite); !s.ok()) return s;
    if (auto s = ParseCases(err, *root, base_dir, &suite); !s.ok()) return s;
    if (auto s = CheckNoRepeatedKeys(err, *root); !s.ok()) return s;
    if (auto s = CheckJudgedNames(err, *root, suite); !s.ok()) return s;
    return suite;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", EscapeInvalidUtf8(e.msg)));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": cannot read the suite: ", EscapeInvalidUtf8(e.what())));
  }
}

absl::StatusOr<v1::Suite> LoadSuiteFile(const std::string& path) {
  auto text = ReadFileBounded(path, kMaxSuiteFileBytes, "suite file");
  if (!text.ok()) return text.status();
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  const std::string base_dir = absolute.parent_path().lexically_normal().string();
  return ParseSuite(*text, path, base_dir);
}

}  // namespace perfgate
