#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/report.h"
#include "core/utf8.h"

namespace perfgate {

void JsonReporter::Write(const GateReport& report, std::ostream& out) const {
  nlohmann::json doc;
  doc["run_id"] = report.run.run_id();
  doc["suite"] = report.run.suite_name();
  doc["commit"] = report.run.commit();
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
  // Case output is bytes; the report shows it as text with invalid UTF-8
  // escaped (\xNN). The raw bytes stay in "run", base64 as proto JSON has it.
  std::map<std::string, const v1::CaseResult*> results;
  for (const auto& status : report.run.cases()) results[status.name()] = &status.result();
  doc["cases"] = nlohmann::json::array();
  for (const auto& c : report.cases) {
    nlohmann::json jc = {{"name", c.name},
                         {"verdict", VerdictName(c.verdict)},
                         {"pool", c.pool},
                         {"outcome", c.outcome},
                         {"detail", c.detail},
                         {"agent_id", c.agent_id},
                         {"attempts", c.attempts},
                         {"notes", c.notes},
                         {"metrics", nlohmann::json::array()}};
    if (auto it = results.find(c.name); it != results.end()) {
      jc["stdout_tail"] = EscapeInvalidUtf8(it->second->stdout_tail());
      jc["stderr_tail"] = EscapeInvalidUtf8(it->second->stderr_tail());
    }
    auto comparison = [](const Comparison& cmp, const Series& series) {
      auto number = [](double v) { return std::isnan(v) ? nlohmann::json() : nlohmann::json(v); };
      return nlohmann::json{{"verdict", VerdictName(cmp.verdict)},
                            {"method", MethodName(cmp.method)},
                            {"baseline", cmp.baseline},
                            {"result", cmp.result},
                            {"change", number(cmp.change)},
                            {"threshold", cmp.threshold},
                            {"noise", cmp.noise},
                            {"p_value", number(cmp.p_value)},
                            {"baseline_n", cmp.baseline_n},
                            {"explain", ExplainComparison(cmp, series)}};
    };
    for (const auto& m : c.metrics) {
      nlohmann::json jm = {{"benchmark", m.series.benchmark},
                           {"metric", m.series.metric},
                           {"unit", m.series.unit},
                           {"source", m.series.source},
                           {"variant", m.series.variant},
                           {"verdict", VerdictName(m.verdict)},
                           {"note", m.note},
                           {"n", m.summary.n},
                           {"median", m.summary.median},
                           {"mad", m.summary.mad},
                           {"min", m.summary.min},
                           {"max", m.summary.max},
                           {"samples", m.series.values}};
      if (m.comparison) jm["comparison"] = comparison(*m.comparison, m.series);
      jm["confirmations"] = nlohmann::json::array();
      for (const auto& re : m.confirmations) jm["confirmations"].push_back(comparison(re, m.series));
      jc["metrics"].push_back(std::move(jm));
    }
    doc["cases"].push_back(std::move(jc));
  }
  std::string raw;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (google::protobuf::util::MessageToJsonString(report.run, &raw, options).ok()) {
    nlohmann::json run = nlohmann::json::parse(raw, nullptr, /*allow_exceptions=*/false);
    if (!run.is_discarded()) doc["run"] = std::move(run);
  }
  // Every string above is UTF-8 by construction (proto string fields are
  // validated, case output is escaped); should one slip through, replacing
  // its bad bytes with U+FFFD beats throwing away the whole report.
  out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
}

}  // namespace perfgate
