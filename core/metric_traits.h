// What perfgate knows about a metric before it judges one: which way is
// better, and whether a change in it says anything about the case at all.
// Directions come from one table of built-in metrics and known fields, or
// from the suite's `metrics:` section; they are never guessed from a name.
// A metric of unknown direction, or one that measures the instrument rather
// than the case, is shown and never judged, and the report says why.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "perfgate/v1/common.pb.h"

namespace perfgate {

enum class Direction { kLowerIsBetter, kHigherIsBetter, kUnknown };

// "lower", "higher", "unknown": the words a suite's `better:` uses.
const char* DirectionName(Direction direction);
// "lower" or "higher"; nullopt for anything else ("unknown" cannot be declared).
std::optional<Direction> ParseDirection(std::string_view name);

// A suite's `metrics: {NAME: {better: higher, unit: 1/s}}` entry.
struct MetricDeclaration {
  Direction better = Direction::kUnknown;
  std::string unit;  // empty: as the case reports it
};
using MetricDeclarations = std::map<std::string, MetricDeclaration>;

// Whether `metric` (reported in `unit`) counts work, which no load moves:
// the built-in instruction counts, and any metric in unit "count". Times,
// rates (1/s, B/s), memory and unitless counters move with the load.
bool IsCount(const std::string& metric, const std::string& unit);
// The built-in instruction counts: the agent's (perf, callgrind, the region
// counter) and PyTorch's.
bool IsInstructionCount(const std::string& metric);

// The metrics whose direction perfgate knows without a declaration.
std::vector<std::string> BuiltInMetricNames();
// What is wrong with a suite's `metrics:` entry for `metric`, or "": a
// built-in metric may be declared only as it is (the same direction, and for
// one the agent measures, its unit or none), since a declaration wins over
// the table, and `wall_time: {better: higher}` passed a 4x slowdown.
std::string BuiltInDeclarationProblem(const std::string& metric, Direction better, const std::string& unit);

// The suite's `metrics:` section (validated when the suite was loaded).
MetricDeclarations DeclaredMetrics(const v1::Suite& suite);
// The declared unit of `metric`, or `reported` when none is declared.
std::string UnitOf(const std::string& metric, const std::string& reported, const MetricDeclarations& declared);

struct MetricTraits {
  Direction direction = Direction::kUnknown;
  // False for metrics that measure the instrument rather than the case; then
  // `why_not_judged` says so.
  bool judgeable = true;
  std::string why_not_judged;
  // The wall-clock span of a whole process (spawn to reap): below
  // kShortestJudgedWallTime it is shown only, unless the case lists it.
  bool process_wall_time = false;
  // The smallest change the instrument can see, in the metric's unit; 0 when
  // it reads exactly. A smaller change is never a regression nor an improvement.
  double resolution = 0;
};

// Below this a process's wall time is dominated by spawn, exec, exit and the
// scheduler: one 4 ms tick of a loaded 2-core machine is 20% of it, more than
// twice the 10% change the gate must detect. Measured (bench/gate_error_rates):
// the demo's millisecond cases vary by 10-40% run to run under load.
inline constexpr double kShortestJudgedWallTime = 0.020;  // seconds

// A case whose baseline is shorter than kShortestJudgedWallTime is judged all
// the same once its run's median reaches this: load stretches a short
// process by scheduler ticks, and the median of its repeats not by 80 ms,
// while a 4 ms case that now takes half a second is a regression to catch.
inline constexpr double kShortBaselineJudgedFrom = 5 * kShortestJudgedWallTime;

// The wall time the too-short rule looks at: the shorter of the run's median
// and its baseline (a run slowed to 30 ms by load is still a 4 ms case), or
// the median alone once it reaches kShortBaselineJudgedFrom.
double SpanJudgedForShortness(double median, std::optional<double> baseline);

// A cgroup's peak memory (v2 memory.peak, v1 memory.max_usage_in_bytes) is a
// page counter the kernel charges in per-CPU batches of 64 pages
// (MEMCG_CHARGE_BATCH: 256 KiB of 4 KiB pages); the unused rest of a batch
// stays charged in that CPU's stock. So a peak reads up to one batch per CPU
// the case ran on above what it used, and a small case that migrates once
// between the two cores reads anywhere from its use to two batches above it.
// Measured: `spin 2000000` in a fresh v1 group, 40 runs, read 256 KiB 25
// times and 340-416 KiB 15 times; two readings of unchanged code differing
// by 144 KiB failed main-branch gate runs (bench/gate_error_rates).
inline constexpr double kMemcgChargeBatch = 64 * 4096;                   // bytes
inline constexpr double kCgroupPeakMemoryResolution = 2 * kMemcgChargeBatch;  // bytes

// Declared traits win over the built-in table; `source` is where the value
// came from ("agent:clock", "agent:callgrind", "case:gbench", ...).
MetricTraits TraitsOf(const std::string& metric, const std::string& source, const MetricDeclarations& declared);

// Why a series is shown and not judged, or nullopt when it is judged.
// `listed`: the case's `judge:` names the metric, which overrides the
// short-wall-time rule (not an unknown direction, nor an instrument metric).
// `median` is this run's median of the series.
std::optional<std::string> ShownOnlyReason(const std::string& metric, const std::string& source, double median,
                                           bool listed, const MetricDeclarations& declared);

}  // namespace perfgate
