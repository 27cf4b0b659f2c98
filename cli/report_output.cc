#include "cli/report_output.h"

#include <unistd.h>

#include <fstream>
#include <iostream>

namespace perfgate {

void AddReportFlags(CLI::App* cmd, ReportFlags* flags, bool metrics_default) {
  flags->metrics = metrics_default;
  cmd->add_option("--json", flags->json_path, "also write the full report (verdicts, summaries, raw samples) as JSON");
  cmd->add_flag("--metrics,!--no-metrics", flags->metrics, "list every measured metric, not only one row per case")
      ->capture_default_str();
  cmd->add_flag("--no-color", flags->no_color, "no colour even on a terminal (NO_COLOR in the environment does the same)");
}

bool EmitReport(const GateReport& report, const ReportFlags& flags) {
  const bool color = !flags.no_color && isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
  TerminalReporter(color, flags.metrics).Write(report, std::cout);
  std::cout.flush();
  if (!flags.json_path.empty()) {
    std::ofstream out(flags.json_path);
    JsonReporter().Write(report, out);
    out.close();
    if (!out) {
      std::cerr << "perfgate: cannot write " << flags.json_path << "\n";
      return false;
    }
  }
  return true;
}

}  // namespace perfgate
