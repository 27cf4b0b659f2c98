// Comparing a run's samples with a baseline. Three sources, one result type:
//  - a PyTorch expected file row (PyTorch's own rule, limits inclusive);
//  - history: per-run medians of the main branch on the same testbed, with a
//    threshold from the history's own noise (scaled MAD) and a floor;
//  - A/B: base and head samples from the same machine, interleaved, judged by
//    a Mann-Whitney U test plus a minimum effect size.
// Improvements are reported, never failed.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "core/expected_file.h"
#include "core/verdict.h"

namespace perfgate {

struct CompareOptions {
  // History: need this many main-branch runs, use at most history_runs of them.
  uint32_t history_min_runs = 5;
  uint32_t history_runs = 30;
  // Threshold = max(history_floor, history_k * scaled MAD / median).
  double history_k = 4.0;
  double history_floor = 0.01;
  // A/B: significance and the smallest relative change worth failing a PR for.
  double ab_alpha = 0.05;
  double ab_min_effect = 0.01;
  // A/B runs take at least this many samples per side: with fewer, a rank
  // test at ab_alpha cannot see a 2% shift reliably (bench/stat_power).
  uint32_t ab_min_samples = 10;
};

struct Comparison {
  Verdict verdict = Verdict::kNoBaseline;
  std::string method;     // "expected", "history", "a/b"
  double baseline = 0;    // expected value, history median, or base median
  double result = 0;      // this run's median (head's, for A/B)
  double change = NAN;    // (result - baseline) / |baseline|; NaN when the baseline is 0
  double threshold = 0;   // the relative limit applied
  double noise = 0;       // the relative noise it was judged against
  double p_value = NAN;   // A/B only
  size_t baseline_n = 0;  // history runs, or base samples

  // One line: "1032 (+3.20%) vs expected 1000 (margin 10.00%)".
  std::string Explain() const;
};

// Times, counts and memory get worse as they grow; rates ("..._per_second") as they shrink.
bool HigherIsBetter(const std::string& metric);

// PyTorch's check: low = E - E*m, high = E + E*m; beyond them (strictly) is a
// change; the worse side is a regression. `result` is this run's median.
Comparison CompareWithExpected(const std::string& metric, double result, const ExpectedRow& row);

// REQUIRES: current non-empty. No baseline below history_min_runs runs.
Comparison CompareWithHistory(const std::string& metric, const std::vector<double>& current,
                              const std::vector<double>& history_run_medians, const CompareOptions& options);

// REQUIRES: base and head non-empty.
Comparison CompareAB(const std::string& metric, const std::vector<double>& base, const std::vector<double>& head,
                     const CompareOptions& options);

// Two-sided p-value of the Mann-Whitney U test: exact for small samples
// without ties, normal approximation with tie and continuity correction
// otherwise. 1 when every value is equal.
double MannWhitneyPValue(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace perfgate
