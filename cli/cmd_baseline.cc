// `perfgate baseline update`: a new PyTorch expected-results file from a
// run's JSON report; the rule and the file's layout are core/baseline_update.
#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "core/baseline_update.h"
#include "core/exit_codes.h"
#include "core/metric_traits.h"
#include "core/utf8.h"
#include "core/whole_file.h"

namespace perfgate {

void AddBaselineCommand(CLI::App& app, int* exit_code) {
  auto* baseline = app.add_subcommand("baseline", "Maintain PyTorch-format expected-results files.");
  baseline->require_subcommand(1);
  auto* cmd = baseline->add_subcommand(
      "update",
      "Write a new expected file from a run's JSON report (perfgate gate/run --json), byte for byte\n"
      "as PyTorch's check_results.py writes its reference file: a row changes only when the result\n"
      "moved by more than a third of its noise margin, new values keep their leading four digits,\n"
      "and each row is followed by three empty rows (CRLF line ends). A row without a result stops\n"
      "the update (exit 1, nothing written) unless --keep-missing.");
  struct Flags {
    std::string report;
    std::string expected;
    std::string output;
    std::string add;
    double new_margin = 0.1;
    bool keep_missing = false;
    std::string pool;
  };
  auto flags = std::make_shared<Flags>();
  cmd->add_option("--report", flags->report, "JSON report of the run")->required();
  cmd->add_option("--expected", flags->expected, "current expected file (created if missing and --add is given)")
      ->required();
  cmd->add_option("--output", flags->output, "where to write (default: overwrite --expected)");
  cmd->add_option("--add", flags->add, "comma-separated metric names to add rows for when a result has none");
  cmd->add_option("--new-margin", flags->new_margin, "noise margin of added rows")->capture_default_str();
  cmd->add_option("--pool", flags->pool,
                  "the pool this expected file is for: only its cases' results count (needed when the report's "
                  "cases ran on several pools)");
  cmd->add_flag("--keep-missing", flags->keep_missing,
                "keep rows the report has no result for (a partial run) instead of stopping");
  cmd->footer(kExitCodesHelp);
  cmd->callback([flags, exit_code] {
    UnblockTerminationSignals();  // nothing to shut down before the write below
    auto fail = [&](int code, const std::string& message) {
      std::cerr << "perfgate baseline update: " << message << "\n";
      *exit_code = code;
    };
    if (!std::isfinite(flags->new_margin) || flags->new_margin < 0) {
      return fail(kExitBadInput, "--new-margin must be a finite number >= 0 (0.1 means 10%)");
    }
    BaselineUpdateOptions options;
    for (const auto& m : absl::StrSplit(flags->add, ',', absl::SkipEmpty())) {
      // A row of a metric that is only ever shown would fail every gate run (core/judge.cc).
      if (const MetricTraits traits = TraitsOf(std::string(m), "", {}); !traits.judgeable) {
        return fail(kExitBadInput, absl::StrCat("--add ", m, ": it is shown, never judged (", traits.why_not_judged,
                                                "), so a row for it cannot gate anything"));
      }
      options.add_metrics.insert(std::string(m));
    }
    options.new_margin = flags->new_margin;
    options.keep_missing = flags->keep_missing;
    options.pool = flags->pool;
    auto updated = UpdateExpectedFileFromReport(flags->report, flags->expected, options);
    if (!updated.ok()) return fail(kExitBadInput, std::string(updated.status().message()));
    const BaselineUpdate& update = *updated;
    for (const auto& line : update.log) std::cout << EscapeControls(line) << "\n";  // names from the report
    if (!update.without_result.empty() && !options.keep_missing) {
      std::vector<std::string> missing;
      for (const auto& row : update.without_result)
        missing.push_back(absl::StrCat(row.Key(), " (line ", row.line, ")"));
      return fail(kExitGateFailed, absl::StrCat(flags->report, " has no result for ", missing.size(), " row",
                                                missing.size() == 1 ? "" : "s", " of ", flags->expected, ": ",
                                                absl::StrJoin(missing, ", "),
                                                "; nothing written (as check_results.py). Run the whole suite, or "
                                                "give --keep-missing to keep those rows as they are."));
    }
    const std::string out_path = flags->output.empty() ? flags->expected : flags->output;
    // Written whole or not at all: a Ctrl-C or a full disk halfway through
    // the file it replaces left the expected file cut short.
    BlockTerminationSignals();
    if (absl::Status written = WriteFileWhole(out_path, FormatExpectedFile(update.rows)); !written.ok()) {
      return fail(kExitInfra, std::string(written.message()));
    }
    std::cout << "wrote " << out_path << ": " << update.changed << " changed, " << update.added << " added, "
              << update.rows.size() << " rows\n";
    *exit_code = kExitPassed;
  });
}

}  // namespace perfgate
