#include "core/metric_traits.h"

#include <algorithm>
#include <array>

#include "absl/strings/str_cat.h"
#include "core/units.h"

namespace perfgate {
namespace {

constexpr std::array<std::pair<Direction, const char*>, 3> kDirectionNames = {{
    {Direction::kLowerIsBetter, "lower"},
    {Direction::kHigherIsBetter, "higher"},
    {Direction::kUnknown, "unknown"},
}};

struct BuiltIn {
  const char* metric;
  Direction direction;
  // Empty: judgeable. Otherwise why the metric measures the instrument.
  const char* instrument;
  bool process_wall_time;
  // Measured by the agent around the whole process (clock, rusage).
  bool of_process;
  // The unit the agent gives it; nullptr for metrics that cases report.
  const char* agent_unit;
};

constexpr char kTicks[] = "CPU time from rusage moves in scheduler ticks (4 ms): it measures the instrument, not the case";

// The metrics the agent measures and the fields of the result formats
// perfgate reads (Google Benchmark JSON, PyTorch's pr_time_benchmarks).
constexpr std::array<BuiltIn, 12> kBuiltIns = {{
    {"wall_time", Direction::kLowerIsBetter, "", true, true, "s"},
    {"user_cpu_time", Direction::kLowerIsBetter, kTicks, false, true, "s"},
    {"sys_cpu_time", Direction::kLowerIsBetter, kTicks, false, true, "s"},
    {"peak_rss", Direction::kLowerIsBetter, "", false, true, "bytes"},
    {"instructions", Direction::kLowerIsBetter, "", false, false, "count"},
    {"instructions_callgrind", Direction::kLowerIsBetter, "", false, false, "count"},
    {"compile_time_instruction_count", Direction::kLowerIsBetter, "", false, false, nullptr},
    // PyTorch's benchmark_base.py with enable_instruction_count, and perfgate's region counter.
    {"instruction_count", Direction::kLowerIsBetter, "", false, false, nullptr},
    {"real_time", Direction::kLowerIsBetter, "", false, false, nullptr},
    {"cpu_time", Direction::kLowerIsBetter, "", false, false, nullptr},
    {"bytes_per_second", Direction::kHigherIsBetter, "", false, false, nullptr},
    {"items_per_second", Direction::kHigherIsBetter, "", false, false, nullptr},
}};

}  // namespace

std::vector<std::string> BuiltInMetricNames() {
  std::vector<std::string> names;
  for (const auto& b : kBuiltIns) names.emplace_back(b.metric);
  return names;
}

bool IsInstructionCount(const std::string& metric) {
  static const char* const kCounts[] = {"instructions", "instructions_callgrind", "instruction_count",
                                        "compile_time_instruction_count"};
  return std::find(std::begin(kCounts), std::end(kCounts), metric) != std::end(kCounts);
}

bool IsCount(const std::string& metric, const std::string& unit) {
  return unit == "count" || IsInstructionCount(metric);
}

std::string BuiltInDeclarationProblem(const std::string& metric, Direction better, const std::string& unit) {
  for (const auto& b : kBuiltIns) {
    if (metric != b.metric) continue;
    if (better != b.direction) {
      return absl::StrCat(metric, " is built in, and ", DirectionName(b.direction),
                          " is better: a suite cannot turn it round (a regression would pass as an improvement)");
    }
    if (b.agent_unit != nullptr && !unit.empty() && unit != b.agent_unit) {
      return absl::StrCat(metric, " is measured by the agent in ", b.agent_unit, ", not ", unit,
                          "; leave its unit out");
    }
  }
  return "";
}

const char* DirectionName(Direction direction) {
  for (const auto& [d, name] : kDirectionNames) {
    if (d == direction) return name;
  }
  return "unknown";
}

std::optional<Direction> ParseDirection(std::string_view name) {
  for (const auto& [d, n] : kDirectionNames) {
    if (name == n && d != Direction::kUnknown) return d;
  }
  return std::nullopt;
}

MetricDeclarations DeclaredMetrics(const v1::Suite& suite) {
  MetricDeclarations out;
  for (const auto& [name, d] : suite.metrics()) {
    out[name] = MetricDeclaration{ParseDirection(d.better()).value_or(Direction::kUnknown), d.unit()};
  }
  return out;
}

std::string UnitOf(const std::string& metric, const std::string& reported, const MetricDeclarations& declared) {
  auto it = declared.find(metric);
  return it == declared.end() || it->second.unit.empty() ? reported : it->second.unit;
}

MetricTraits TraitsOf(const std::string& metric, const std::string& source, const MetricDeclarations& declared) {
  MetricTraits traits;
  for (const auto& b : kBuiltIns) {
    if (metric != b.metric) continue;
    traits.direction = b.direction;
    traits.judgeable = *b.instrument == '\0';
    traits.why_not_judged = b.instrument;
    // The agent's clock around the process; a case's own `wall_time` (timed
    // inside it, as PyTorch's benchmarks do) has no spawn in it.
    traits.process_wall_time = b.process_wall_time && source == "agent:clock";
    if (metric == "peak_rss" && source.starts_with("agent:cgroup")) traits.resolution = kCgroupPeakMemoryResolution;
    // The case's process is the agent's until exec, and the kernel carries
    // that memory's peak into the case's ru_maxrss: /bin/true read 14.9 MiB.
    if (metric == "peak_rss" && source == "agent:rusage") {
      traits.judgeable = false;
      traits.why_not_judged =
          "peak memory from rusage includes the agent's own resident set (no cgroup): it measures the instrument, "
          "not the case";
    }
    // Under valgrind the process's time and memory are valgrind's (about
    // 50x native): only the count it makes is the case's.
    if (b.of_process && source == "agent:callgrind") {
      traits.judgeable = false;
      traits.why_not_judged = "measured under callgrind: it measures the instrument, not the case";
    }
  }
  if (auto it = declared.find(metric); it != declared.end() && it->second.better != Direction::kUnknown) {
    traits.direction = it->second.better;
  }
  return traits;
}

std::optional<std::string> ShownOnlyReason(const std::string& metric, const std::string& source, double median,
                                           bool listed, const MetricDeclarations& declared) {
  const MetricTraits traits = TraitsOf(metric, source, declared);
  if (!traits.judgeable) return absl::StrCat("shown only: ", traits.why_not_judged);
  if (traits.direction == Direction::kUnknown) {
    return absl::StrCat("shown only: direction unknown: declare it under metrics: (", metric,
                        ": {better: lower|higher})");
  }
  if (traits.process_wall_time && !listed && median < kShortestJudgedWallTime) {
    return absl::StrCat("shown only: too short to judge (", FormatValue(median, "s"), " < ",
                        FormatValue(kShortestJudgedWallTime, "s"),
                        " of wall time is mostly spawn and scheduler noise); list it under judge: to judge it");
  }
  return std::nullopt;
}

double SpanJudgedForShortness(double median, std::optional<double> baseline) {
  if (!baseline || median >= kShortBaselineJudgedFrom) return median;
  return std::min(median, *baseline);
}

}  // namespace perfgate
