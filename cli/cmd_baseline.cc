// `perfgate baseline update`: a new PyTorch expected-results file from a
// run's JSON report, changing only rows whose change is significant.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "core/exit_codes.h"
#include "core/expected_file.h"
#include "core/units.h"

namespace perfgate {

void AddBaselineCommand(CLI::App& app, int* exit_code) {
  auto* baseline = app.add_subcommand("baseline", "Maintain PyTorch-format expected-results files.");
  baseline->require_subcommand(1);
  auto* cmd = baseline->add_subcommand(
      "update",
      "Write a new expected file from a run's JSON report (perfgate gate/run --json). As PyTorch's\n"
      "check_results.py: a row changes only when the result moved by more than a third of its noise\n"
      "margin, and new values keep their leading four significant digits, so diffs stay reviewable.");
  struct Flags {
    std::string report;
    std::string expected;
    std::string output;
    std::string add;
    double new_margin = 0.1;
  };
  auto flags = std::make_shared<Flags>();
  cmd->add_option("--report", flags->report, "JSON report of the run")->required();
  cmd->add_option("--expected", flags->expected, "current expected file (created if missing and --add is given)")
      ->required();
  cmd->add_option("--output", flags->output, "where to write (default: overwrite --expected)");
  cmd->add_option("--add", flags->add, "comma-separated metric names to add rows for when a result has none");
  cmd->add_option("--new-margin", flags->new_margin, "noise margin of added rows")->capture_default_str();
  cmd->footer(kExitCodesHelp);
  cmd->callback([flags, exit_code] {
    std::ifstream in(flags->report);
    nlohmann::json report;
    try {
      report = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      std::cerr << "perfgate baseline update: " << flags->report << ": not a perfgate JSON report: " << e.what()
                << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    std::vector<ExpectedRow> rows;
    if (std::filesystem::exists(flags->expected)) {
      auto loaded = LoadExpectedFile(flags->expected);
      if (!loaded.ok()) {
        std::cerr << "perfgate baseline update: " << loaded.status().message() << "\n";
        *exit_code = kExitBadInput;
        return;
      }
      rows = *std::move(loaded);
    } else if (flags->add.empty()) {
      std::cerr << "perfgate baseline update: " << flags->expected << " does not exist; give --add to start one\n";
      *exit_code = kExitBadInput;
      return;
    }
    // Medians of this run, by "benchmark,metric"; A/B base sides are not results.
    std::map<std::string, double> results;
    std::vector<std::string> order;
    for (const auto& c : report.value("cases", nlohmann::json::array())) {
      for (const auto& m : c.value("metrics", nlohmann::json::array())) {
        if (m.value("variant", "") == "base" || m.value("n", 0) == 0) continue;
        const std::string key = m.value("benchmark", "") + "," + m.value("metric", "");
        if (results.emplace(key, m.value("median", 0.0)).second) order.push_back(key);
      }
    }
    int changed = 0, added = 0;
    std::set<std::string> present;
    for (auto& row : rows) {
      present.insert(row.Key());
      auto it = results.find(row.Key());
      if (it == results.end()) {
        std::cout << "kept    " << row.Key() << ": no result in this run\n";
        continue;
      }
      const double r = it->second;
      const double moved =
          row.expected == 0 ? (r == 0 ? 0 : INFINITY) : std::fabs(r - row.expected) / std::fabs(row.expected);
      if (moved > row.margin / 3) {
        const double updated = RoundToFourSignificantDigits(r);
        std::cout << "changed " << row.Key() << ": " << FormatValue(row.expected, "") << " -> "
                  << FormatValue(updated, "") << " (moved " << moved * 100 << "%, margin " << row.margin * 100
                  << "%)\n";
        row.expected = updated;
        ++changed;
      }
    }
    std::set<std::string> add_metrics;
    for (const auto& m : absl::StrSplit(flags->add, ',', absl::SkipEmpty())) add_metrics.insert(std::string(m));
    for (const auto& key : order) {
      const std::string metric = key.substr(key.find(',') + 1);
      if (present.count(key) || !add_metrics.count(metric)) continue;
      ExpectedRow row{key.substr(0, key.find(',')), metric, RoundToFourSignificantDigits(results[key]),
                      flags->new_margin, 0};
      std::cout << "added   " << key << ": " << FormatValue(row.expected, "") << " (margin " << row.margin * 100
                << "%)\n";
      rows.push_back(row);
      ++added;
    }
    const std::string out_path = flags->output.empty() ? flags->expected : flags->output;
    std::ofstream out(out_path);
    out << FormatExpectedFile(rows);
    out.close();
    if (!out) {
      std::cerr << "perfgate baseline update: cannot write " << out_path << "\n";
      *exit_code = kExitInfra;
      return;
    }
    std::cout << "wrote " << out_path << ": " << changed << " changed, " << added << " added, " << rows.size()
              << " rows\n";
    *exit_code = kExitPassed;
  });
}

}  // namespace perfgate
