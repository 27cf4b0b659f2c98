// How reports put a comparison and a metric into words (declared in core/report.h).
#include "core/report.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/units.h"

namespace perfgate {

const MetricReport* FindMeasured(const CaseReport& c, const std::string& metric) {
  for (const auto& m : c.metrics) {
    if (m.series.benchmark == c.name && m.series.metric == metric && m.summary.n > 0) return &m;
  }
  return nullptr;
}

std::string ExplainComparison(const Comparison& c, const Series& series) {
  auto value = [&](double v) { return FormatValue(v, series.unit, series.metric); };
  std::string out = absl::StrCat(value(c.result), " (", FormatPercent(c.change, /*sign=*/true), ")");
  switch (c.method) {
    case Method::kExpected:
      absl::StrAppend(&out, " vs expected ", value(c.baseline), " (margin ", FormatPercent(c.threshold), ")");
      break;
    case Method::kHistory:
      absl::StrAppend(&out, " vs main-branch median ", value(c.baseline), " of ", c.baseline_n, " runs (limit ",
                      FormatPercent(c.threshold), ", noise ", FormatPercent(c.noise), ")");
      break;
    case Method::kAB: {
      char p[32];
      std::snprintf(p, sizeof p, "%.4f", c.p_value);
      absl::StrAppend(&out, " vs base median ", value(c.baseline), " (p=", p, ", min effect ",
                      FormatPercent(c.threshold), ", noise ", FormatPercent(c.noise), ")");
      break;
    }
  }
  return out;
}

std::string DescribeMetricOfCase(const CaseReport& c, const MetricReport& m) {
  std::string out =
      m.series.benchmark == c.name ? m.series.metric : absl::StrCat(m.series.benchmark, " ", m.series.metric);
  if (m.comparison) absl::StrAppend(&out, " ", ExplainComparison(*m.comparison, m.series));
  if (!m.note.empty()) absl::StrAppend(&out, m.comparison ? "; " : " ", m.note);
  return out;
}

std::string DescribeMetric(const CaseReport& c, const MetricReport& m) {
  return absl::StrCat(c.name, ": ", DescribeMetricOfCase(c, m));
}

}  // namespace perfgate
