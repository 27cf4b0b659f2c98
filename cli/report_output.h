// Where a finished run's report goes: the terminal table on stdout, and the
// files the flags name. Shared by `gate` and `run`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/status.h"
#include "core/report.h"

namespace perfgate {

struct ReportFlags {
  std::string json_path;
  std::string markdown_path;
  std::string junit_path;
  bool metrics = false;
  bool no_color = false;
};

// Registers --json, --markdown, --junit, --metrics and --no-color on `cmd`.
void AddReportFlags(CLI::App* cmd, ReportFlags* flags, bool metrics_default);

// An error naming the flag of the first report file that could not be
// written (its folder missing or not writable, the path a folder): checked
// before a run, so that hours of cases do not end in "cannot write".
absl::Status CheckReportPaths(const ReportFlags& flags);

// Prints and writes the report; appends the Markdown to $GITHUB_STEP_SUMMARY
// when that is set. Returns false (after saying why on stderr) if a file
// could not be written. `table`: what people read instead of the terminal table.
bool EmitReport(const GateReport& report, const ReportFlags& flags, const Reporter* table = nullptr);

}  // namespace perfgate
