// Raw samples regrouped per measured quantity: one series per (benchmark,
// metric, source, variant). Comparisons and tables work on series.
#pragma once

#include <string>
#include <vector>

#include "perfgate/v1/common.pb.h"

namespace perfgate {

struct Series {
  std::string benchmark;
  std::string metric;
  std::string unit;
  std::string source;
  std::string variant;         // A/B side ("base", "head"), empty for a plain run
  std::vector<double> values;  // in sample order

  // "benchmark,metric": the key of a PyTorch expected-results row.
  std::string Key() const { return benchmark + "," + metric; }
};

// In first-seen order, so tables follow the order a case reports.
std::vector<Series> CollectSeries(const v1::CaseResult& result);

// Appends one measured value to a sample: the agent's measurements, the load
// agent's results and tests all build samples this way.
void AddValue(v1::Sample* sample, const std::string& benchmark, const char* metric, double value, const char* unit,
              const char* source);

}  // namespace perfgate
