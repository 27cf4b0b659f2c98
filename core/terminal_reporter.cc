#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/baseline_update.h"
#include "core/report.h"
#include "core/units.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

const char* Colour(Verdict v) {
  switch (v) {
    case Verdict::kPass:
      return "\033[32m";
    case Verdict::kImprovement:
      return "\033[36m";
    case Verdict::kNoBaseline:
      return "\033[33m";
    default:
      return "\033[31m";
  }
}

// Column-aligned rows; widths count UTF-8 characters, not bytes.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  // Cells hold names from suites, agents and cases' output: escaped here.
  void Add(std::vector<std::string> row, const char* colour_of_second = nullptr) {
    for (auto& cell : row) cell = EscapeControls(cell);
    rows_.push_back(std::move(row));
    colours_.resize(rows_.size());
    colours_.back() = colour_of_second;
  }
  void Print(std::ostream& out) const {
    std::vector<size_t> width;
    for (const auto& row : rows_) {
      width.resize(std::max(width.size(), row.size()));
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], Width(row[i]));
    }
    for (size_t r = 0; r < rows_.size(); ++r) {
      const auto& row = rows_[r];
      const char* colour = r < colours_.size() ? colours_[r] : nullptr;
      for (size_t i = 0; i < row.size(); ++i) {
        if (colour && i == 1) out << colour;
        out << row[i];
        if (colour && i == 1) out << "\033[0m";
        if (i + 1 < row.size()) out << std::string(width[i] - Width(row[i]) + 2, ' ');
      }
      out << "\n";
    }
  }

 private:
  static size_t Width(const std::string& s) {
    return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char ch) { return (ch & 0xC0) != 0x80; }));
  }
  std::vector<std::vector<std::string>> rows_;
  std::vector<const char*> colours_;
};

// The metric that decided a case's verdict, for the DETAIL column.
const MetricReport* Decisive(const CaseReport& c) {
  for (Verdict v : {Verdict::kRegression, Verdict::kMissingResult, Verdict::kImprovement}) {
    for (const auto& m : c.metrics) {
      if (m.verdict == v) return &m;
    }
  }
  return nullptr;
}

std::string Shorten(const std::string& s, size_t max) {
  return s.size() > max ? absl::StrCat(CutAtCharacter(s, max - 3), "...") : s;
}

// The run, then a row a case: its verdict, outcome, wall time and who ran it.
void WriteCases(const GateReport& report, bool color, std::ostream& out) {
  Table cases({"CASE", "VERDICT", "OUTCOME", "WALL (median ± MAD)", "N", "AGENT", "DETAIL"});
  for (const auto& c : report.cases) {
    std::string wall = "-", n = "-";
    if (const MetricReport* m = FindMeasured(c, "wall_time")) {
      wall = absl::StrCat(FormatDurationSeconds(m->summary.median), " ± ", FormatDurationSeconds(m->summary.mad));
      n = std::to_string(m->summary.n);
    }
    std::string agent = c.agent_id.empty() ? "-" : c.agent_id;
    if (c.attempts > 1) absl::StrAppend(&agent, " (", c.attempts, " attempts)");
    std::string detail = c.detail;
    if (const MetricReport* m = Decisive(c); m && c.ran) {
      detail = DescribeMetricOfCase(c, *m);
    }
    cases.Add({c.name, VerdictName(c.verdict), c.outcome, wall, n, agent, Shorten(detail, 110)},
              color ? Colour(c.verdict) : nullptr);
  }
  out << "\nrun " << EscapeControls(report.run.run_id()) << "  suite " << EscapeControls(report.run.suite_name());
  if (!report.run.commit().empty()) out << "  commit " << EscapeControls(report.run.commit());
  out << "\n\n";
  cases.Print(out);
}

// Every measured series: its summary and how it compared.
void WriteMetrics(const GateReport& report, std::ostream& out) {
  const bool any_metric =
      std::any_of(report.cases.begin(), report.cases.end(), [](const CaseReport& c) { return !c.metrics.empty(); });
  if (!any_metric) return;
  Table metrics({"CASE", "BENCHMARK", "METRIC", "MEDIAN", "MAD", "MIN", "MAX", "N", "SOURCE", "VS BASELINE"});
  for (const auto& c : report.cases) {
    for (const auto& m : c.metrics) {
      if (m.summary.n == 0) continue;
      auto value = [&](double v) { return FormatValue(v, m.series.unit, m.series.metric); };
      std::string versus =
          m.comparison ? absl::StrCat(VerdictName(m.verdict), " ", ExplainComparison(*m.comparison, m.series)) : "-";
      metrics.Add({c.name, m.series.benchmark == c.name ? "-" : m.series.benchmark,
                   m.series.variant.empty() ? m.series.metric : m.series.metric + " (" + m.series.variant + ")",
                   value(m.summary.median), FormatPercent(RelativeSpread(m.summary)), value(m.summary.min),
                   value(m.summary.max), std::to_string(m.summary.n), m.series.source, versus});
    }
  }
  out << "\n";
  metrics.Print(out);
}

// Every judged metric that did not simply pass, with its numbers.
void WriteNotable(const GateReport& report, bool color, std::ostream& out) {
  bool header = false;
  for (const auto& c : report.cases) {
    for (const auto& m : c.metrics) {
      if (m.verdict == Verdict::kPass && m.note.empty()) continue;
      if (m.verdict == Verdict::kNoBaseline) continue;
      if (!header) out << "\n";
      header = true;
      out << "  " << (color ? Colour(m.verdict) : "") << VerdictName(m.verdict) << (color ? "\033[0m" : "") << "  "
          << EscapeControls(DescribeMetric(c, m)) << "\n";
    }
  }
}

// The expected rows to update, the cases' notes and the report's warnings.
void WriteAdvice(const GateReport& report, bool color, std::ostream& out) {
  if (!report.baseline_patch.empty()) {
    out << "\nImprovements pass. To lock them in, update the expected file with these rows:\n";
    for (const auto& row : report.baseline_patch) {
      out << "  " << EscapeControls(FormatExpectedRow(row)) << "\n";
    }
  }
  for (const auto& c : report.cases) {
    for (const auto& note : c.notes) out << "note: " << EscapeControls(c.name) << ": " << EscapeControls(note) << "\n";
  }
  for (const auto& w : report.warnings) {
    out << (color ? "\033[33mwarning:\033[0m " : "warning: ") << EscapeControls(w) << "\n";
  }
}

// GATE PASSED, or GATE FAILED and each rule that failed it.
void WriteVerdict(const GateReport& report, bool color, std::ostream& out) {
  out << "\n";
  if (report.passed) {
    // By hand a case this machine cannot run is skipped: "2 cases" where none ran would read as measured.
    size_t ran = 0;
    for (const CaseReport& c : report.cases) ran += c.ran;
    out << (color ? "\033[32mGATE PASSED\033[0m" : "GATE PASSED") << " (";
    if (ran != report.cases.size()) out << ran << " of ";
    out << report.cases.size() << (report.cases.size() == 1 ? " case" : " cases");
    if (ran != report.cases.size()) out << " ran";
    out << ")\n";
    return;
  }
  out << (color ? "\033[31mGATE FAILED\033[0m" : "GATE FAILED");
  if (report.run.state() == v1::RUN_STATE_CANCELLED) out << ": the run was cancelled";
  out << "\n";
  for (const auto& rule : report.failed_rules) out << "  - " << EscapeControls(rule) << "\n";
}

}  // namespace

void TerminalReporter::Write(const GateReport& report, std::ostream& out) const {
  WriteCases(report, color_, out);
  if (metrics_) WriteMetrics(report, out);
  WriteNotable(report, color_, out);
  WriteAdvice(report, color_, out);
  WriteVerdict(report, color_, out);
}

}  // namespace perfgate
