#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/baseline_update.h"
#include "core/report.h"
#include "core/units.h"

namespace perfgate {
namespace {

// Table cells must not break the row, and text must not turn into markup.
std::string Cell(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"|", "\\|"}, {"\n", " "}});
}

const char* Icon(Verdict v) {
  switch (v) {
    case Verdict::kPass:
      return "✅";
    case Verdict::kImprovement:
      return "🚀";
    case Verdict::kNoBaseline:
      return "⚪";
    case Verdict::kCancelled:
      return "⏹️";
    default:
      return "❌";
  }
}

}  // namespace

void MarkdownReporter::Write(const GateReport& report, std::ostream& out) const {
  out << "## perfgate: " << (report.passed ? "✅ passed" : "❌ failed") << "\n\n";
  out << "Suite `" << report.run.suite_name() << "`, run `" << report.run.run_id() << "`";
  if (!report.run.commit().empty()) out << ", commit `" << report.run.commit() << "`";
  out << ".\n\n";
  for (const auto& rule : report.failed_rules) out << "- **" << Cell(rule) << "**\n";
  for (const auto& w : report.warnings) out << "- warning: " << Cell(w) << "\n";
  if (!report.failed_rules.empty() || !report.warnings.empty()) out << "\n";

  out << "| case | verdict | outcome | wall (median) | agent |\n|---|---|---|---:|---|\n";
  for (const auto& c : report.cases) {
    const MetricReport* wall_time = FindMeasured(c, "wall_time");
    const std::string wall = wall_time ? FormatDurationSeconds(wall_time->summary.median) : "-";
    out << "| `" << Cell(c.name) << "` | " << Icon(c.verdict) << " " << VerdictName(c.verdict) << " | "
        << Cell(c.outcome) << (c.detail.empty() ? "" : ": " + Cell(c.detail)) << " | " << wall << " | "
        << Cell(c.agent_id.empty() ? "-" : c.agent_id) << " |\n";
  }

  bool header = false;
  for (const auto& c : report.cases) {
    for (const auto& m : c.metrics) {
      if (!m.comparison && m.verdict != Verdict::kMissingResult) continue;
      if (!header) {
        out << "\n### Compared metrics\n\n"
               "| case | metric | verdict | baseline | result | change | threshold | noise | method |\n"
               "|---|---|---|---:|---:|---:|---:|---:|---|\n";
        header = true;
      }
      const std::string metric =
          m.series.benchmark == c.name ? m.series.metric : m.series.benchmark + " " + m.series.metric;
      if (!m.comparison) {
        out << "| `" << Cell(c.name) << "` | `" << Cell(metric) << "` | " << Icon(m.verdict) << " "
            << VerdictName(m.verdict) << " | | | | | | " << Cell(m.note) << " |\n";
        continue;
      }
      const Comparison& cmp = *m.comparison;
      out << "| `" << Cell(c.name) << "` | `" << Cell(metric) << "` | " << Icon(m.verdict) << " "
          << VerdictName(m.verdict) << " | " << FormatValue(cmp.baseline, m.series.unit, m.series.metric) << " | "
          << FormatValue(cmp.result, m.series.unit, m.series.metric) << " | "
          << FormatPercent(cmp.change, /*sign=*/true) << " | " << FormatPercent(cmp.threshold) << " | "
          << FormatPercent(cmp.noise) << " | " << MethodName(cmp.method);
      for (const auto& re : m.confirmations) out << "; re-measured " << FormatPercent(re.change, /*sign=*/true);
      out << " |\n";
    }
  }
  if (!report.baseline_patch.empty()) {
    out << "\n<details><summary>Improvements: expected-file rows to apply</summary>\n\n```\n";
    for (const auto& row : report.baseline_patch) out << FormatExpectedRow(row) << "\n";
    out << "```\n</details>\n";
  }
}

}  // namespace perfgate
