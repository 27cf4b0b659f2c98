#include "core/compare.h"

#include <algorithm>
#include <map>
#include <utility>

#include "core/stats.h"

namespace perfgate {
namespace {

// MAD scaled to estimate a normal distribution's standard deviation.
constexpr double kMadToSigma = 1.4826;
// The standard error of a normal sample's median is sqrt(pi/2) times its mean's.
constexpr double kMedianEfficiency = 1.2533;

double RelativeChange(double result, double baseline) {
  return baseline == 0 ? NAN : (result - baseline) / std::fabs(baseline);
}

// Regression, improvement or pass of `result` against `baseline`, from their
// relative change and a threshold. A zero baseline has no relative change
// (PyTorch's check_results.py divides by it and stops): any step to the
// worse side is a regression (a count such as graph breaks going from 0 to
// 5 must not pass).
Verdict Judge(Direction better, const Comparison& c) {
  if (better == Direction::kUnknown) return Verdict::kPass;
  const double sign = better == Direction::kHigherIsBetter ? -1 : 1;
  if (c.baseline == 0) {
    const double worse = sign * (c.result - c.baseline);
    return worse > 0 ? Verdict::kRegression : worse < 0 ? Verdict::kImprovement : Verdict::kPass;
  }
  const double worse = sign * c.change;
  if (worse > c.threshold) return Verdict::kRegression;
  if (-worse > c.threshold) return Verdict::kImprovement;
  return Verdict::kPass;
}

// The worst and the best run of `window` as `better` sees them, leaving out
// the single worst and best of three runs or more: one outlier run (a bad
// commit on main, since fixed) cannot widen what is usual.
std::pair<double, double> UsualWorstAndBest(Direction better, std::vector<double> window) {
  std::sort(window.begin(), window.end());
  const size_t n = window.size(), skip = n >= 3 ? 1 : 0;
  const double high = window[n - 1 - skip], low = window[skip];
  return better == Direction::kLowerIsBetter ? std::pair{high, low} : std::pair{low, high};
}

bool Worse(Direction better, double a, double b) { return better == Direction::kLowerIsBetter ? a > b : a < b; }

// Against a history whose median is 0 (a count that is mostly zero) nothing
// is relative: a result is a regression only if it is worse than the usual
// worst run, an improvement only if better than the usual best. Against the
// very worst, 40 graph breaks passed against [0 x 9, 50] for as long as the
// 50 stayed in the window.
Verdict JudgeAgainstZeroHistory(Direction better, double result, const std::vector<double>& window) {
  if (better == Direction::kUnknown) return Verdict::kPass;
  const auto [worst, best] = UsualWorstAndBest(better, window);
  if (Worse(better, result, worst)) return Verdict::kRegression;
  if (Worse(better, best, result)) return Verdict::kImprovement;
  return Verdict::kPass;
}

// Number of arrangements of n1 + n2 items giving each U, for the exact test.
double ExactTwoSidedP(size_t n1, size_t n2, double u) {
  // counts[i][j][k]: ways for i and j items to give U = k. Built up layer by layer.
  const size_t max_u = n1 * n2;
  std::vector<std::vector<std::vector<double>>> counts(n1 + 1, std::vector<std::vector<double>>(n2 + 1));
  for (size_t i = 0; i <= n1; ++i) {
    for (size_t j = 0; j <= n2; ++j) {
      counts[i][j].assign(i * j + 1, 0);
      if (i == 0 || j == 0) {
        counts[i][j][0] = 1;
        continue;
      }
      // The largest item is from sample 1 (adds j to U) or from sample 2.
      for (size_t k = 0; k <= i * j; ++k) {
        double ways = 0;
        if (k >= j && k - j <= (i - 1) * j) ways += counts[i - 1][j][k - j];
        if (k <= i * (j - 1)) ways += counts[i][j - 1][k];
        counts[i][j][k] = ways;
      }
    }
  }
  const auto& dist = counts[n1][n2];
  double total = 0;
  for (double w : dist) total += w;
  const double mean = static_cast<double>(max_u) / 2;
  const double distance = std::fabs(u - mean);
  double tail = 0;
  for (size_t k = 0; k <= max_u; ++k) {
    if (std::fabs(static_cast<double>(k) - mean) >= distance - 1e-9) tail += dist[k];
  }
  return std::min(1.0, tail / total);
}

}  // namespace

Comparison CompareWithExpected(Direction better, double result, const ExpectedRow& row) {
  Comparison c;
  c.method = Method::kExpected;
  c.baseline = row.expected;
  c.result = result;
  c.change = RelativeChange(result, row.expected);
  c.threshold = row.margin;
  c.noise = row.margin;
  c.baseline_n = 1;
  // PyTorch's arithmetic, so boundary cases agree with check_results.py, but
  // with |E|: a negative expected value (a score, a delta) would otherwise
  // make low > high, and a result equal to it both above and below.
  const double low = row.expected - std::fabs(row.expected) * row.margin;
  const double high = row.expected + std::fabs(row.expected) * row.margin;
  const bool above = result > high, below = result < low;
  if ((!above && !below) || better == Direction::kUnknown) {
    c.verdict = Verdict::kPass;
  } else if (better == Direction::kHigherIsBetter) {
    c.verdict = above ? Verdict::kImprovement : Verdict::kRegression;
  } else {
    c.verdict = above ? Verdict::kRegression : Verdict::kImprovement;
  }
  return c;
}

Comparison CompareWithHistory(Direction better, const std::vector<double>& current,
                              const std::vector<double>& history_run_medians, const CompareOptions& options,
                              bool timed, bool count) {
  Comparison c;
  c.method = Method::kHistory;
  const Summary run = Summarize(current);
  c.result = run.median;
  std::vector<double> window = history_run_medians;
  if (window.size() > options.history_runs) window.resize(options.history_runs);
  c.baseline_n = window.size();
  if (window.size() < options.history_min_runs) return c;  // no baseline yet
  const Summary h = Summarize(window);
  c.baseline = h.median;
  c.change = RelativeChange(c.result, c.baseline);
  const double n_history = static_cast<double>(window.size()), n_run = static_cast<double>(run.n);
  const double history_noise = kMadToSigma * RelativeSpread(h);
  // A run's own spread is mostly the load it ran under, so its median is
  // that much less sure. No load moves a count: its spread is the code's,
  // and a change that made a count vary widened the limit past the
  // regression it carried (+25% passed, limit 33%). The history's spread
  // alone says what a count's noise is.
  const double run_median_error = count ? 0 : kMedianEfficiency * kMadToSigma * RelativeSpread(run) / std::sqrt(n_run);
  c.noise = std::max(history_noise * std::sqrt(1 + M_PI / 2 / n_history), run_median_error);
  const double floor = timed ? options.history_time_floor : options.history_floor;
  c.threshold = std::max(floor, options.history_k * c.noise);
  c.verdict = h.median == 0 ? JudgeAgainstZeroHistory(better, c.result, window) : Judge(better, c);
  // A MAD of 0 says nothing of a history whose runs tie in more than half
  // and differ in the rest ([1000 x 6, 1030 x 2, 970 x 2]): the floor alone
  // failed a run of 1030, a value main measured twice. A result no worse
  // than the usual worst run of main is no regression.
  if (c.verdict == Verdict::kRegression && h.mad == 0 && better != Direction::kUnknown &&
      !Worse(better, c.result, UsualWorstAndBest(better, window).first)) {
    c.verdict = Verdict::kPass;
  }
  return c;
}

Comparison CompareAB(Direction better, const std::vector<double>& base, const std::vector<double>& head,
                     const CompareOptions& options, bool count) {
  Comparison c;
  c.method = Method::kAB;
  const Summary b = Summarize(base), h = Summarize(head);
  c.baseline = b.median;
  c.result = h.median;
  c.baseline_n = base.size();
  c.change = RelativeChange(h.median, b.median);
  const double pooled_mad = (b.mad + h.mad) / 2;
  c.noise = b.median == 0 ? 0 : kMadToSigma * pooled_mad / std::fabs(b.median);
  c.threshold = options.ab_min_effect;
  // Deterministic counters (callgrind) give identical samples on each side:
  // any difference is real, and a rank test on three samples could not say so.
  const bool exact = b.min == b.max && h.min == h.max;
  c.p_value = exact ? (b.min == h.min ? 1.0 : 0.0) : MannWhitneyPValue(base, head);
  if (!exact && std::min(base.size(), head.size()) < options.ab_min_samples) {
    // With 3 samples a side no arrangement reaches p < 0.01: a test that
    // can see nothing must not pass. But a count (callgrind runs three a
    // side) is moved by no load, only by the code: an interpreter's varies
    // 0.1% run to run, which is no change, and sides apart by more than the
    // smallest effect are a change. Between those, nothing can be said.
    const bool apart = h.min > b.max || h.max < b.min;
    if (count && std::isfinite(c.change) && std::fabs(c.change) < options.ab_min_effect) {
      c.verdict = Verdict::kPass;
    } else if (count && apart) {
      c.verdict = Judge(better, c);
    } else {
      c.verdict = Verdict::kError;
    }
    return c;
  }
  c.verdict = c.p_value < options.ab_alpha ? Judge(better, c) : Verdict::kPass;
  return c;
}

bool PassWithinResolution(double resolution, Comparison* c) {
  const bool changed = c->verdict == Verdict::kRegression || c->verdict == Verdict::kImprovement;
  if (!changed || !(std::fabs(c->result - c->baseline) < resolution)) return false;
  c->verdict = Verdict::kPass;
  return true;
}

double MannWhitneyPValue(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n1 = a.size(), n2 = b.size();
  if (n1 == 0 || n2 == 0) return 1;
  auto finite = [](double v) { return std::isfinite(v); };
  if (!std::all_of(a.begin(), a.end(), finite) || !std::all_of(b.begin(), b.end(), finite)) return NAN;
  // Midranks over the pooled sample.
  std::vector<std::pair<double, int>> pooled;
  for (double v : a) pooled.emplace_back(v, 0);
  for (double v : b) pooled.emplace_back(v, 1);
  std::sort(pooled.begin(), pooled.end());
  const size_t n = pooled.size();
  double rank_sum_a = 0, tie_term = 0;
  bool ties = false;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && pooled[j].first == pooled[i].first) ++j;
    const double t = static_cast<double>(j - i);
    if (t > 1) ties = true;
    tie_term += t * t * t - t;
    const double midrank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (pooled[k].second == 0) rank_sum_a += midrank;
    }
    i = j;
  }
  const double u = rank_sum_a - static_cast<double>(n1 * (n1 + 1)) / 2;
  if (!ties && n1 <= 20 && n2 <= 20) return ExactTwoSidedP(n1, n2, u);
  const double mean = static_cast<double>(n1 * n2) / 2;
  const double dn = static_cast<double>(n);
  const double variance = static_cast<double>(n1 * n2) / 12 * ((dn + 1) - tie_term / (dn * (dn - 1)));
  if (variance <= 0) return 1;  // every value equal
  const double z = (std::fabs(u - mean) - 0.5) / std::sqrt(variance);
  return std::min(1.0, std::erfc(std::max(0.0, z) / std::sqrt(2.0)));
}

}  // namespace perfgate
