#include "core/stats.h"

#include <algorithm>
#include <cmath>

namespace perfgate {
namespace {

double MedianOfSorted(const std::vector<double>& v) {
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

Summary Summarize(std::vector<double> values) {
  Summary s;
  s.n = values.size();
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.min = values.front();
  s.max = values.back();
  s.median = MedianOfSorted(values);
  for (auto& v : values) v = std::fabs(v - s.median);
  std::sort(values.begin(), values.end());
  s.mad = MedianOfSorted(values);
  return s;
}

double RelativeSpread(const Summary& s) { return s.median == 0 ? 0 : s.mad / std::fabs(s.median); }

}  // namespace perfgate
