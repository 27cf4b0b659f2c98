#include "core/series.h"

#include <map>
#include <tuple>

namespace perfgate {

std::vector<Series> CollectSeries(const v1::CaseResult& result) {
  std::vector<Series> out;
  std::map<std::tuple<std::string, std::string, std::string, std::string>, size_t> index;
  for (const auto& sample : result.samples()) {
    for (const auto& v : sample.values()) {
      auto key = std::make_tuple(v.benchmark(), v.metric(), v.source(), sample.variant());
      auto [it, inserted] = index.emplace(key, out.size());
      if (inserted) out.push_back(Series{v.benchmark(), v.metric(), v.unit(), v.source(), sample.variant(), {}});
      out[it->second].values.push_back(v.value());
    }
  }
  return out;
}

void AddValue(v1::Sample* sample, const std::string& benchmark, const char* metric, double value, const char* unit,
              const char* source) {
  auto* v = sample->add_values();
  v->set_benchmark(benchmark);
  v->set_metric(metric);
  v->set_value(value);
  v->set_unit(unit);
  v->set_source(source);
}

}  // namespace perfgate
