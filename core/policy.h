// What fails the gate, and the knobs of each baseline source. Defaults here;
// a suite's `gate:` section and the gate's flags override them.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "core/compare.h"
#include "core/expected_file.h"
#include "core/verdict.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

struct Policy {
  // Default: regression, error, missing result and no capable agent fail;
  // improvement passes with a note; no baseline warns.
  std::set<Verdict> fail_on = {Verdict::kRegression, Verdict::kError, Verdict::kMissingResult,
                               Verdict::kNoCapableAgent};
  // A run in which no case was measured fails, whatever fail_on says: a
  // gate that measured nothing has earned no pass. `perfgate run` by hand
  // clears it, so that a machine that can run none of a suite's cases
  // skips them all and says so.
  bool fail_unmeasured_run = true;
  CompareOptions compare;
  std::string main_branch = "main";
  uint64_t history_max_age_ms = 30ull * 24 * 3600 * 1000;
  // Suspected regressions are re-measured this many times; all must agree.
  uint32_t confirm = 1;
  // Testbed (agent pool, or "*") -> PyTorch expected-results file.
  std::map<std::string, std::string> expected_files;
  // Case -> the only metrics compared with baselines (a case's `judge:`).
  std::map<std::string, std::set<std::string>> judged_metrics;

  // Whether `metric` of `case_name` is compared with a baseline at all: the
  // case's `judge:` list when it has one, else every metric but CPU times.
  bool Judged(const std::string& case_name, const std::string& metric) const;
};

// The allowed range of each judging option, one place for the suite's
// `gate:` section and the flags: what is wrong with `value` ("must be ..."),
// or "" when it is allowed. Infinities and NaN are never allowed.
std::string CheckAlpha(double value);         // in (0, 1)
std::string CheckMinEffect(double value);     // > 0
std::string CheckHistoryK(double value);      // > 0
std::string CheckHistoryFloor(double value);  // >= 0

// The suite's `gate:` section and its cases' `judge:` lists over the defaults.
Policy PolicyForSuite(const v1::Suite& suite);

// Metrics judged unless a case lists its own. CPU times from rusage move in
// scheduler ticks (4 ms here), so they are shown, not gated, by default.
bool JudgedByDefault(const std::string& metric);

// (pool, benchmark, metric, source)
using HistoryKey = std::tuple<std::string, std::string, std::string, std::string>;

struct Baselines {
  // Testbed -> rows; "*" applies to testbeds without their own file.
  std::map<std::string, std::vector<ExpectedRow>> expected;
  // Per-run medians of the main branch, newest first.
  std::map<HistoryKey, std::vector<double>> history;
  // Pools agents have ever registered with, when a coordinator said so; an
  // expected file for a known pool that took no part in a run gets a warning.
  std::optional<std::set<std::string>> known_pools;
};

// Reads every expected file the policy names; errors name file and line.
absl::StatusOr<Baselines> LoadExpectedBaselines(const Policy& policy);

}  // namespace perfgate
