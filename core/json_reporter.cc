#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "core/report.h"

namespace perfgate {

void JsonReporter::Write(const GateReport& report, std::ostream& out) const {
  nlohmann::json doc;
  doc["run_id"] = report.run.run_id();
  doc["suite"] = report.run.suite_name();
  doc["commit"] = report.run.commit();
  doc["passed"] = report.passed;
  doc["exit_code"] = report.exit_code;
  doc["failed_rules"] = report.failed_rules;
  doc["cases"] = nlohmann::json::array();
  for (const auto& c : report.cases) {
    nlohmann::json jc = {{"name", c.name},         {"verdict", VerdictName(c.verdict)},
                         {"outcome", c.outcome},   {"detail", c.detail},
                         {"agent_id", c.agent_id}, {"attempts", c.attempts},
                         {"notes", c.notes},       {"metrics", nlohmann::json::array()}};
    for (const auto& m : c.metrics) {
      jc["metrics"].push_back({{"benchmark", m.series.benchmark},
                               {"metric", m.series.metric},
                               {"unit", m.series.unit},
                               {"source", m.series.source},
                               {"n", m.summary.n},
                               {"median", m.summary.median},
                               {"mad", m.summary.mad},
                               {"min", m.summary.min},
                               {"max", m.summary.max},
                               {"samples", m.series.values}});
    }
    doc["cases"].push_back(std::move(jc));
  }
  std::string raw;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (google::protobuf::util::MessageToJsonString(report.run, &raw, options).ok()) {
    doc["run"] = nlohmann::json::parse(raw);
  }
  out << doc.dump(2) << "\n";
}

}  // namespace perfgate
