// The report for tools, in one naming style: snake_case keys and snake_case
// words for closed sets (verdicts, methods, states). docs/report-json.md
// documents every field; `schema_version` changes when a field changes
// meaning or goes away (adding one does not).
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_replace.h"
#include "core/names.h"
#include "core/report.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

// "missing result" -> "missing_result": a token tools can compare.
std::string Token(const std::string& words) { return absl::StrReplaceAll(words, {{" ", "_"}, {"/", ""}}); }
std::string Token(Verdict v) { return Token(VerdictName(v)); }
std::string Token(Method m) { return Token(MethodName(m)); }

const char* RunStateToken(v1::RunState state) {
  switch (state) {
    case v1::RUN_STATE_RUNNING:
      return "running";
    case v1::RUN_STATE_FINISHED:
      return "finished";
    case v1::RUN_STATE_CANCELLED:
      return "cancelled";
    default:
      return "unspecified";
  }
}

// NaN (a change against a zero baseline, no p-value) is null, never a string.
nlohmann::json Number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); }

nlohmann::json ComparisonJson(const Comparison& cmp, const Series& series) {
  return {{"verdict", Token(cmp.verdict)},    {"method", Token(cmp.method)},
          {"baseline", Number(cmp.baseline)}, {"result", Number(cmp.result)},
          {"change", Number(cmp.change)},     {"threshold", Number(cmp.threshold)},
          {"noise", Number(cmp.noise)},       {"p_value", Number(cmp.p_value)},
          {"baseline_n", cmp.baseline_n},     {"explain", ExplainComparison(cmp, series)}};
}

nlohmann::json SummaryJson(const Summary& s) {
  return {
      {"n", s.n}, {"median", Number(s.median)}, {"mad", Number(s.mad)}, {"min", Number(s.min)}, {"max", Number(s.max)}};
}

nlohmann::json MetricJson(const MetricReport& m) {
  nlohmann::json jm = {{"benchmark", m.series.benchmark},
                       {"metric", m.series.metric},
                       {"unit", m.series.unit},
                       {"source", m.series.source},
                       {"variant", m.series.variant},
                       {"verdict", Token(m.verdict)},
                       {"judged", m.judged},
                       {"fails", m.fails},
                       {"better", DirectionName(m.better)},
                       {"note", m.note},
                       {"samples", m.series.values}};
  jm.update(SummaryJson(m.summary));
  if (m.base) jm["base"] = SummaryJson(*m.base);
  if (m.comparison) jm["comparison"] = ComparisonJson(*m.comparison, m.series);
  jm["confirmations"] = nlohmann::json::array();
  for (const auto& re : m.confirmations) jm["confirmations"].push_back(ComparisonJson(re, m.series));
  return jm;
}

// Every sample as measured, in order (A/B: base and head interleaved).
nlohmann::json RawSamples(const v1::CaseResult& result) {
  nlohmann::json samples = nlohmann::json::array();
  for (const auto& s : result.samples()) {
    nlohmann::json values = nlohmann::json::array();
    for (const auto& v : s.values()) {
      values.push_back({{"benchmark", v.benchmark()},
                        {"metric", v.metric()},
                        {"value", Number(v.value())},
                        {"unit", v.unit()},
                        {"source", v.source()}});
    }
    samples.push_back({{"index", s.index()}, {"variant", s.variant()}, {"values", std::move(values)}});
  }
  return samples;
}

nlohmann::json CaseJson(const CaseReport& c, const v1::CaseResult* result) {
  nlohmann::json jc = {{"name", c.name},
                       {"verdict", Token(c.verdict)},
                       {"fails", c.fails},
                       {"ran", c.ran},
                       {"pool", c.pool},
                       {"outcome", c.outcome},
                       {"detail", c.detail},
                       {"agent_id", c.agent_id},
                       {"attempts", c.attempts},
                       {"notes", c.notes},
                       {"metrics", nlohmann::json::array()}};
  for (const auto& m : c.metrics) jc["metrics"].push_back(MetricJson(m));
  // Case output is bytes; shown as text with invalid UTF-8 escaped (\xNN).
  jc["stdout_tail"] = result ? EscapeInvalidUtf8(result->stdout_tail()) : "";
  jc["stderr_tail"] = result ? EscapeInvalidUtf8(result->stderr_tail()) : "";
  jc["raw_samples"] = result ? RawSamples(*result) : nlohmann::json::array();
  return jc;
}

}  // namespace

void JsonReporter::Write(const GateReport& report, std::ostream& out) const {
  nlohmann::json doc;
  doc["schema_version"] = kJsonReportSchemaVersion;
  doc["run_id"] = report.run.run_id();
  doc["suite"] = report.run.suite_name();
  doc["commit"] = report.run.commit();
  doc["branch"] = report.run.branch();
  doc["state"] = RunStateToken(report.run.state());
  doc["passed"] = report.passed;
  doc["exit_code"] = report.exit_code;
  doc["failed_rules"] = report.failed_rules;
  doc["warnings"] = report.warnings;
  doc["missing_rows"] = report.missing_rows;
  doc["baseline_patch"] = nlohmann::json::array();
  for (const auto& row : report.baseline_patch) {
    doc["baseline_patch"].push_back(
        {{"benchmark", row.benchmark}, {"metric", row.metric}, {"expected", row.expected}, {"margin", row.margin}});
  }
  std::map<std::string, const v1::CaseResult*> results;
  for (const auto& status : report.run.cases()) {
    if (status.has_result()) results[status.name()] = &status.result();
  }
  doc["cases"] = nlohmann::json::array();
  for (const auto& c : report.cases) {
    auto it = results.find(c.name);
    doc["cases"].push_back(CaseJson(c, it == results.end() ? nullptr : it->second));
  }
  // Every string above is UTF-8 by construction (proto string fields are
  // validated, case output is escaped); should one slip through, replacing
  // its bad bytes with U+FFFD beats throwing away the whole report.
  out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace perfgate
