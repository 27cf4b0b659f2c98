#include "gate/requests.h"

#include <algorithm>

#include "core/series.h"
#include "core/suite.h"
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

std::vector<v1::HistoryRequest> SplitHistoryRequest(const v1::HistoryRequest& all, uint64_t max_request_bytes,
                                                    uint64_t max_reply_bytes) {
  v1::HistoryRequest empty = all;
  empty.clear_keys();
  // Each key adds its bytes with a tag and a length (at most 5 bytes here)
  // to the request, and up to max_runs medians to the reply.
  const uint64_t reply_per_key = 9 * uint64_t{all.max_runs()} + 8;
  std::vector<v1::HistoryRequest> calls = {empty};
  uint64_t request_bytes = empty.ByteSizeLong();
  for (const auto& key : all.keys()) {
    const uint64_t key_bytes = key.ByteSizeLong() + 6;
    v1::HistoryRequest* call = &calls.back();
    const bool fits = request_bytes + key_bytes <= max_request_bytes &&
                      request_bytes + key_bytes + (call->keys_size() + 1) * reply_per_key <= max_reply_bytes;
    if (!fits && call->keys_size() > 0) {
      call = &calls.emplace_back(empty);
      request_bytes = empty.ByteSizeLong();
    }
    *call->add_keys() = key;
    request_bytes += key_bytes;
  }
  return calls;
}

uint32_t ConfirmationRepeats(const v1::CaseSpec& c, uint64_t bytes, uint64_t max_result_bytes) {
  const uint64_t first = std::max<uint32_t>(1, c.repeats());
  const uint64_t variants = std::max(c.variants_size(), 1);
  uint64_t repeats = std::min<uint64_t>(2 * first, uint64_t{kMaxSamplesPerResult} / variants);
  if (bytes > 0) repeats = std::min<uint64_t>(repeats, max_result_bytes * 3 / 4 * first / bytes);
  return static_cast<uint32_t>(std::max(repeats, first));
}

v1::Suite ConfirmationSuite(const v1::Suite& suite, const GateReport& report, const std::vector<std::string>& suspects,
                            uint64_t max_result_bytes) {
  v1::Suite again = suite;
  again.clear_cases();
  for (const auto& c : suite.cases()) {
    if (std::find(suspects.begin(), suspects.end(), c.name()) == suspects.end()) continue;
    v1::CaseSpec* spec = again.add_cases();
    *spec = c;
    uint64_t bytes = 0;
    for (const auto& ran : report.run.cases()) {
      if (ran.name() == c.name()) bytes = ran.result().ByteSizeLong();
    }
    spec->set_repeats(ConfirmationRepeats(c, bytes, max_result_bytes));
    for (const auto& first : report.cases) {
      if (first.name == c.name()) spec->mutable_requirements()->set_pool(first.pool);
    }
  }
  return again;
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
