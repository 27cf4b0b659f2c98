#include "gate/requests.h"

#include "core/series.h"
#include "core/verdict.h"

namespace perfgate {

v1::HistoryRequest HistoryRequestFor(const v1::Run& run, const Policy& policy, int64_t now_ms) {
  v1::HistoryRequest request;
  request.set_branch(policy.main_branch);
  request.set_max_runs(policy.compare.history_runs);
  request.set_exclude_run_id(run.run_id());
  request.set_since_ms(now_ms - static_cast<int64_t>(policy.history_max_age_ms));
  for (const auto& c : run.cases()) {
    if (c.state() != v1::CASE_STATE_DONE || c.result().outcome() != v1::CaseResult::OUTCOME_OK) continue;
    for (const auto& series : CollectSeries(c.result())) {
      if (!series.variant.empty() || !policy.Judged(c.name(), series.metric)) continue;
      auto* key = request.add_keys();
      key->set_pool(c.result().pool());
      key->set_benchmark(series.benchmark);
      key->set_metric(series.metric);
      key->set_source(series.source);
    }
  }
  return request;
}

v1::ReportVerdictRequest VerdictRequestFor(const GateReport& report) {
  v1::ReportVerdictRequest verdict;
  verdict.set_run_id(report.run.run_id());
  verdict.set_passed(report.passed);
  for (const auto& c : report.cases) {
    auto* cv = verdict.add_cases();
    cv->set_case_name(c.name);
    cv->set_verdict(VerdictName(c.verdict));
  }
  for (const auto& rule : report.failed_rules) verdict.add_failed_rules(rule);
  return verdict;
}

}  // namespace perfgate
