// Comparing a run's samples with a baseline. Three sources, one result type:
//  - a PyTorch expected file row (PyTorch's own rule, limits inclusive);
//  - history: per-run medians of the main branch on the same testbed, with a
//    threshold from the noise of both sides (the history's run-to-run spread
//    and this run's own sample spread) and a floor;
//  - A/B: base and head samples from the same machine, interleaved, judged by
//    a Mann-Whitney U test plus a minimum effect size.
// Improvements are reported, never failed.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "core/expected_file.h"
#include "core/metric_traits.h"
#include "core/names.h"
#include "core/verdict.h"

namespace perfgate {

struct CompareOptions {
  // History: need this many main-branch runs, use at most history_runs of them.
  uint32_t history_min_runs = 5;
  uint32_t history_runs = 30;
  // Threshold = max(history_floor, history_k * noise), noise from both sides
  // (see CompareWithHistory). With k = 4 a 10% slowdown is caught in >= 95%
  // of runs only while a metric strays <= ~1.2% from run to run (2%: 62%);
  // k = 3 still misses at 2% (83%) and doubles the false alarms
  // (bench/stat_power --between). Gate timed cases that are that steady.
  double history_k = 4.0;
  // The smallest threshold. Counts (instructions, iterations, bytes) read
  // exactly, so 1% is all they need: +2% of work fails every time.
  double history_floor = 0.01;
  // The smallest threshold of a metric measured in time. A load rise between
  // building the history and the PR run moves even the thread CPU time of a
  // fixed loop by 1-2% on this 2-core VM (steady_kernel's kernel_cpu_min read
  // +1.6% and +2.0% on unchanged code, against a run-to-run spread of 0.2-0.3%:
  // bench/gate_error_rates), a shift no history's spread foresees. 5% leaves
  // that drift 2.5 times over and still catches a 10% slowdown measured 2%
  // low. Smaller timed changes are for A/B mode, where both sides share the load.
  double history_time_floor = 0.05;
  // A/B: significance and the smallest relative change worth failing a PR for.
  // 0.01, not 0.05: a demo-sized suite judges about ten metrics, and a gate
  // must cry wolf in at most 1 of 100 runs; with confirmation each metric
  // needs two significant results, 0.01^2 each (bench/stat_power,
  // bench/gate_error_rates).
  double ab_alpha = 0.01;
  double ab_min_effect = 0.01;
  // A/B runs take at least this many samples per side: with fewer, a rank
  // test at ab_alpha cannot see a 2% shift reliably (bench/stat_power).
  uint32_t ab_min_samples = 10;
  // The suite's `metrics:` section: declared directions and units.
  MetricDeclarations declared;
};

struct Comparison {
  Verdict verdict = Verdict::kNoBaseline;
  Method method = Method::kExpected;
  double baseline = 0;    // expected value, history median, or base median
  double result = 0;      // this run's median (head's, for A/B)
  double change = NAN;    // (result - baseline) / |baseline|; NaN when the baseline is 0
  double threshold = 0;   // the relative limit applied
  double noise = 0;       // the relative noise it was judged against
  double p_value = NAN;   // A/B only
  size_t baseline_n = 0;  // history runs, or base samples
};

// Its one-line explanation, with units, is ExplainComparison (core/report.h).

// Each comparison takes the metric's direction (core/metric_traits.h).
// REQUIRES: better != kUnknown; such metrics are shown, never compared
// (given one anyway, the comparison passes). REQUIRES: finite values (the
// judge calls a series with a NaN an error before it compares).
// Against a baseline of 0 a change has no percentage. An expected 0 and an
// A/B base of 0 (once significant) make any step to the worse side a
// regression (PyTorch's rule for an expected 0); a history median of 0 makes
// a regression of a result worse than every run of the window.

// PyTorch's check: low = E - |E|*m, high = E + |E|*m (E*m in PyTorch, the
// same for E >= 0); beyond them (strictly) is a
// change; the worse side is a regression. `result` is this run's median.
Comparison CompareWithExpected(Direction better, double result, const ExpectedRow& row);

// The relative noise of (this run's median - history median), the larger of
//   s_h * sqrt(1 + pi/2 / N)   and   1.2533 * s_r / sqrt(n)
// s_h: scaled MAD of the N history medians over their median: how far one
//   run's median strays from the next on this testbed (load, drift, and a
//   typical run's own sampling error); pi/2 / N adds the uncertainty of the
//   history median itself.
// s_r: scaled MAD of this run's n samples over their median; 1.2533 / sqrt(n)
//   turns it into the standard error of their median. A run measured in a
//   burst of noise is spread out, and when its own error exceeds the
//   history's run-to-run spread its threshold widens with it. The larger,
//   not the root sum of squares: s_h already holds a typical run's sampling
//   error, and adding it twice cost a third of the power to see a 10%
//   slowdown at 2% noise (bench/stat_power: 88% -> 94% with confirmation,
//   false alarms unchanged at 0%). A `count` (instructions; IsCount in
//   metric_traits.h) has no second term: no load moves a count, so its
//   run's spread is the code's, and a change that made it vary widened its
//   own limit. Times and rates keep it: load moves them.
// A deterministic counter has s_h = 0 and meets the floor alone; a timed
// metric has history_time_floor as its floor.
// REQUIRES: current non-empty. No baseline below history_min_runs runs.
Comparison CompareWithHistory(Direction better, const std::vector<double>& current,
                              const std::vector<double>& history_run_medians, const CompareOptions& options,
                              bool timed = false, bool count = false);

// Fewer than ab_min_samples samples on a side, unless both sides are
// deterministic, is an error: the rank test could not fail anything. A
// `count` (moved by no load) with few samples passes within ab_min_effect,
// and is judged when the sides' samples lie apart.
// REQUIRES: base and head non-empty.
Comparison CompareAB(Direction better, const std::vector<double>& base, const std::vector<double>& head,
                     const CompareOptions& options, bool count = false);

// A change smaller than the instrument's resolution (MetricTraits::resolution,
// in the metric's unit) is no change, whatever the baseline: a regression or
// an improvement within it becomes a pass. Returns whether it did.
bool PassWithinResolution(double resolution, Comparison* c);

// Two-sided p-value of the Mann-Whitney U test: exact for small samples
// without ties, normal approximation with tie and continuity correction
// otherwise. 1 when every value is equal; NaN when a value is not finite.
double MannWhitneyPValue(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace perfgate
