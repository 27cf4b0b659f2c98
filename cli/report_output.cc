#include "cli/report_output.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/whole_file.h"

namespace perfgate {

void AddReportFlags(CLI::App* cmd, ReportFlags* flags, bool metrics_default) {
  flags->metrics = metrics_default;
  cmd->add_option("--json", flags->json_path,
                  "also write the full report (verdicts, summaries, raw samples) as JSON (docs/report-json.md); "
                  "'-' writes it to stdout and the table to stderr");
  cmd->add_option("--markdown", flags->markdown_path, "also write the report as Markdown (a PR comment)");
  cmd->add_option("--junit", flags->junit_path, "also write JUnit XML: one test case per case and metric");
  cmd->add_flag("--metrics,!--no-metrics", flags->metrics,
                std::string("list every measured metric, not only one row per case (default: ") +
                    (metrics_default ? "on" : "off") + ")");
  cmd->add_flag("--no-color", flags->no_color,
                "no colour even on a terminal (NO_COLOR in the environment does the same)");
}

namespace {

absl::Status CheckWritable(const char* flag, const std::string& path) {
  if (path.empty() || path == "-") return absl::OkStatus();
  const auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": ", why));
  };
  struct stat st;
  if (stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return refuse("is a folder; name a file");
    if (access(path.c_str(), W_OK) != 0) return refuse(absl::StrCat("cannot be written (", std::strerror(errno), ")"));
    return absl::OkStatus();
  }
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  if (stat(folder.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return refuse(absl::StrCat("no folder ", folder));
  if (access(folder.c_str(), W_OK | X_OK) != 0) {
    return refuse(absl::StrCat("cannot write in ", folder, " (", std::strerror(errno), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckReportPaths(const ReportFlags& flags) {
  std::vector<std::string> to_stdout;
  for (const auto& [flag, path] : {std::pair{"--json", &flags.json_path}, std::pair{"--markdown", &flags.markdown_path},
                                   std::pair{"--junit", &flags.junit_path}}) {
    if (absl::Status s = CheckWritable(flag, *path); !s.ok()) return s;
    if (*path == "-") to_stdout.push_back(absl::StrCat(flag, " -"));
  }
  if (to_stdout.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(absl::StrJoin(to_stdout, " and "),
                                                   ": only one report can go to stdout; write the others to files"));
  }
  // Checked before the run too: found only at the end, a passing run exited 3.
  if (const char* summary = std::getenv("GITHUB_STEP_SUMMARY"); summary && *summary) {
    return CheckWritable("GITHUB_STEP_SUMMARY", summary);
  }
  return absl::OkStatus();
}

bool EmitReport(const GateReport& report, const ReportFlags& flags, const Reporter* table_reporter) {
  // With `--json -` (or --markdown -, --junit -) stdout is for that report
  // alone (a pipe into jq); people read the table on stderr.
  const bool report_to_stdout = flags.json_path == "-" || flags.markdown_path == "-" || flags.junit_path == "-";
  std::ostream& table = report_to_stdout ? std::cerr : std::cout;
  const int table_fd = report_to_stdout ? STDERR_FILENO : STDOUT_FILENO;
  const bool color = !flags.no_color && isatty(table_fd) && !std::getenv("NO_COLOR");
  if (table_reporter) {
    table_reporter->Write(report, table);
  } else {
    TerminalReporter(color, flags.metrics).Write(report, table);
  }
  table.flush();
  auto write = [&](const std::string& path, const Reporter& reporter, std::ios::openmode mode) {
    if (path.empty()) return true;
    if (path == "-") {
      reporter.Write(report, std::cout);
      std::cout.flush();
      if (!std::cout) std::cerr << "perfgate: cannot write the report to stdout\n";
      return static_cast<bool>(std::cout);
    }
    if (mode & std::ios::app) {  // a step summary gathers every step's: appended to
      errno = 0;
      std::ofstream out(path, mode);
      reporter.Write(report, out);
      out.close();
      if (!out)
        std::cerr << "perfgate: cannot write " << path << (errno ? absl::StrCat(" (", std::strerror(errno), ")") : "")
                  << "\n";
      return static_cast<bool>(out);
    }
    // Whole or not at all: a report cut short by a full disk or a kill reads as another one (or as no JSON).
    std::ostringstream text;
    reporter.Write(report, text);
    if (absl::Status written = WriteFileWhole(path, text.str()); !written.ok()) {
      std::cerr << "perfgate: " << written.message() << "\n";
      return false;
    }
    return true;
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
