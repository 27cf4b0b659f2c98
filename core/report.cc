#include "core/report.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "core/exit_codes.h"

namespace perfgate {

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPass: return "pass";
    case Verdict::kRegression: return "regression";
    case Verdict::kImprovement: return "improvement";
    case Verdict::kError: return "error";
    case Verdict::kMissingResult: return "missing result";
    case Verdict::kNoBaseline: return "no baseline";
    case Verdict::kNoCapableAgent: return "no capable agent";
    case Verdict::kCancelled: return "cancelled";
  }
  return "?";
}

namespace {

std::string OutcomeText(const v1::CaseResult& r) {
  switch (r.outcome()) {
    case v1::CaseResult::OUTCOME_OK: return "ok";
    case v1::CaseResult::OUTCOME_FAILED: return absl::StrCat("exit ", r.exit_code());
    case v1::CaseResult::OUTCOME_TIMED_OUT: return "timed out";
    case v1::CaseResult::OUTCOME_CRASHED: return absl::StrCat("signal ", r.signal());
    case v1::CaseResult::OUTCOME_ERROR: return "error";
    case v1::CaseResult::OUTCOME_CANCELLED: return "cancelled";
    case v1::CaseResult::OUTCOME_SKIPPED: return "skipped";
    default: return "?";
  }
}

}  // namespace

GateReport BuildGateReport(const v1::Run& run) {
  GateReport report;
  report.run = run;
  std::map<Verdict, int> failing;
  for (const auto& c : run.cases()) {
    CaseReport cr;
    cr.name = c.name();
    cr.agent_id = c.agent_id();
    cr.attempts = c.attempts();
    cr.detail = c.error();
    const bool has_result = c.has_result() && c.result().outcome() != v1::CaseResult::OUTCOME_UNSPECIFIED;
    cr.outcome = has_result ? OutcomeText(c.result()) : "not run";
    if (has_result) {
      cr.notes.assign(c.result().notes().begin(), c.result().notes().end());
      for (auto& series : CollectSeries(c.result())) {
        Summary summary = Summarize(series.values);
        cr.metrics.push_back(MetricReport{std::move(series), summary});
      }
    }
    switch (c.state()) {
      case v1::CASE_STATE_DONE:
        if (c.result().outcome() == v1::CaseResult::OUTCOME_OK) {
          cr.verdict = Verdict::kPass;
        } else {
          cr.verdict = Verdict::kError;
          if (cr.detail.empty()) cr.detail = c.result().error();
        }
        break;
      case v1::CASE_STATE_NO_CAPABLE_AGENT: cr.verdict = Verdict::kNoCapableAgent; break;
      case v1::CASE_STATE_CANCELLED: cr.verdict = Verdict::kCancelled; break;
      case v1::CASE_STATE_ERROR: cr.verdict = Verdict::kError; break;
      default: cr.verdict = Verdict::kMissingResult; if (cr.detail.empty()) cr.detail = "the run ended before this case did";
    }
    if (cr.verdict != Verdict::kPass) ++failing[cr.verdict];
    report.cases.push_back(std::move(cr));
  }
  for (const auto& [verdict, count] : failing) {
    report.failed_rules.push_back(
        absl::StrCat(VerdictName(verdict), " fails the gate: ", count, " case", count == 1 ? "" : "s"));
  }
  report.passed = report.failed_rules.empty();
  if (run.state() == v1::RUN_STATE_CANCELLED) {
    report.passed = false;
    report.exit_code = kExitInterrupted;
  } else {
    report.exit_code = report.passed ? kExitPassed : kExitGateFailed;
  }
  return report;
}

}  // namespace perfgate
