#include "cli/report_output.h"

#include <unistd.h>

#include <fstream>
#include <iostream>

namespace perfgate {

void AddReportFlags(CLI::App* cmd, ReportFlags* flags, bool metrics_default) {
  flags->metrics = metrics_default;
  cmd->add_option("--json", flags->json_path, "also write the full report (verdicts, summaries, raw samples) as JSON");
  cmd->add_option("--markdown", flags->markdown_path, "also write the report as Markdown (a PR comment)");
  cmd->add_option("--junit", flags->junit_path, "also write JUnit XML: one test case per case and metric");
  cmd->add_flag("--metrics,!--no-metrics", flags->metrics,
                std::string("list every measured metric, not only one row per case (default: ") +
                    (metrics_default ? "on" : "off") + ")");
  cmd->add_flag("--no-color", flags->no_color,
                "no colour even on a terminal (NO_COLOR in the environment does the same)");
}

bool EmitReport(const GateReport& report, const ReportFlags& flags) {
  const bool color = !flags.no_color && isatty(STDOUT_FILENO) && !std::getenv("NO_COLOR");
  TerminalReporter(color, flags.metrics).Write(report, std::cout);
  std::cout.flush();
  auto write = [&](const std::string& path, const Reporter& reporter, std::ios::openmode mode) {
    if (path.empty()) return true;
    std::ofstream out(path, mode);
    reporter.Write(report, out);
    out.close();
    if (!out) std::cerr << "perfgate: cannot write " << path << "\n";
    return static_cast<bool>(out);
  };
  bool ok = write(flags.json_path, JsonReporter(), std::ios::out);
  ok &= write(flags.markdown_path, MarkdownReporter(), std::ios::out);
  ok &= write(flags.junit_path, JunitReporter(), std::ios::out);
  if (const char* summary = std::getenv("GITHUB_STEP_SUMMARY"); summary && *summary) {
    ok &= write(summary, MarkdownReporter(), std::ios::app);
  }
  return ok;
}

}  // namespace perfgate
