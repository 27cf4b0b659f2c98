#include "bench/dispatch/gaps.h"

#include <algorithm>
#include <cmath>

namespace perfgate::dispatch {
namespace {

double CallP50Ms(const Spans& calls) {
  std::vector<double> ms;
  for (const auto& [b, e] : calls) ms.push_back((e - b) / 1e6);
  return Percentile(ms, 0.5);
}

}  // namespace

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

bool Overlaps(const Spans& spans, int64_t lo, int64_t hi) {
  for (const auto& [b, e] : spans) {
    if (b < hi && e > lo) return true;
  }
  return false;
}

double RateRatio(const std::vector<int64_t>& times, const Spans& calls) {
  if (times.size() < 2 || calls.empty()) return 0;
  const int64_t first = times.front(), last = times.back();
  double inside_ns = 0, inside_n = 0;
  for (const auto& [b, e] : calls) {
    const int64_t lo = std::max(b, first), hi = std::min(e, last);
    if (hi <= lo) continue;
    inside_ns += static_cast<double>(hi - lo);
    inside_n += static_cast<double>(std::upper_bound(times.begin(), times.end(), hi) -
                                    std::lower_bound(times.begin(), times.end(), lo));
  }
  const double outside_ns = static_cast<double>(last - first) - inside_ns;
  const double outside_n = static_cast<double>(times.size()) - inside_n;
  if (inside_ns <= 0 || outside_ns <= 0 || outside_n <= 0) return 0;
  return (inside_n / inside_ns) / (outside_n / outside_ns);
}

void SetChance(const std::vector<int64_t>& starts, HistoryFigures* f) {
  if (starts.size() < 2 || starts.back() == starts.front()) return;
  const double gaps = static_cast<double>(starts.size() - 1);
  const double rate = gaps / ((starts.back() - starts.front()) / 1e9);
  constexpr double kEulerGamma = 0.5772156649;
  const double harmonic = std::log(gaps) + kEulerGamma + 1 / (2 * gaps);
  f->starts_per_s = rate;
  f->chance_max_ms = harmonic / rate * 1e3;
}

HistoryFigures LeaseFigures(std::vector<int64_t> arrivals, const Spans& calls) {
  std::sort(arrivals.begin(), arrivals.end());
  HistoryFigures f;
  f.calls = static_cast<int>(calls.size());
  f.rate_ratio = RateRatio(arrivals, calls);
  SetChance(arrivals, &f);
  for (size_t i = 1; i < arrivals.size(); ++i) {
    const double gap_ms = (arrivals[i] - arrivals[i - 1]) / 1e6;
    if (gap_ms > f.idle_max_ms) f.idle_max_at_ms = (arrivals[i - 1] - arrivals.front()) / 1e6;
    f.idle_max_ms = std::max(f.idle_max_ms, gap_ms);
    if (!Overlaps(calls, arrivals[i - 1], arrivals[i])) f.idle_max_outside_ms = std::max(f.idle_max_outside_ms, gap_ms);
  }
  f.call_ms_p50 = CallP50Ms(calls);
  return f;
}

HistoryFigures CaseFigures(Spans cases, const Spans& calls) {
  std::sort(cases.begin(), cases.end());
  HistoryFigures f;
  f.calls = static_cast<int>(calls.size());
  std::vector<int64_t> starts;
  for (const auto& c : cases) starts.push_back(c.first);
  f.rate_ratio = RateRatio(starts, calls);
  SetChance(starts, &f);
  int64_t running_until = cases.empty() ? 0 : cases.front().second;
  for (size_t i = 1; i < cases.size(); ++i) {
    if (cases[i].first > running_until) {
      const double gap_ms = (cases[i].first - running_until) / 1e6;
      if (gap_ms > f.idle_max_ms) f.idle_max_at_ms = (running_until - cases.front().first) / 1e6;
      f.idle_max_ms = std::max(f.idle_max_ms, gap_ms);
      if (!Overlaps(calls, running_until, cases[i].first)) {
        f.idle_max_outside_ms = std::max(f.idle_max_outside_ms, gap_ms);
      }
    }
    running_until = std::max(running_until, cases[i].second);
  }
  f.call_ms_p50 = CallP50Ms(calls);
  return f;
}

}  // namespace perfgate::dispatch
