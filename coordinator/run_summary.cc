#include "coordinator/run_summary.h"

#include <algorithm>

namespace perfgate {

int64_t DurationMs(const v1::CaseResult& result, int64_t lease_span_ms) {
  if (result.busy_us() == 0) return lease_span_ms;
  const uint64_t busy_ms = result.busy_us() / 1000 + (result.busy_us() % 1000 != 0);
  return static_cast<int64_t>(std::min<uint64_t>(busy_ms, static_cast<uint64_t>(std::max<int64_t>(lease_span_ms, 0))));
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::vector<std::pair<int64_t, double>> Medians(std::vector<std::pair<int64_t, double>> values) {
  std::sort(values.begin(), values.end());
  std::vector<std::pair<int64_t, double>> medians;
  for (size_t first = 0; first < values.size();) {
    size_t end = first;
    while (end < values.size() && values[end].first == values[first].first) ++end;
    const size_t n = end - first;
    const double mid = values[first + n / 2].second;
    medians.emplace_back(values[first].first, n % 2 ? mid : (values[first + n / 2 - 1].second + mid) / 2);
    first = end;
  }
  return medians;
}

std::map<std::tuple<std::string, std::string, std::string>, std::vector<double>> HistoryValues(
    const v1::CaseResult& result) {
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<double>> out;
  // A failed, crashed or timed-out case's samples are counted (its case is
  // done) but measured nothing the main branch should be judged against.
  if (result.outcome() != v1::CaseResult::OUTCOME_OK) return out;
  for (const auto& sample : result.samples()) {
    if (!sample.variant().empty() && sample.variant() != "head") continue;
    for (const auto& v : sample.values()) out[{v.benchmark(), v.metric(), v.source()}].push_back(v.value());
  }
  return out;
}

}  // namespace perfgate
