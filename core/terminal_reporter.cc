#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "core/report.h"
#include "core/units.h"

namespace perfgate {
namespace {

const char* Colour(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "\033[32m";
    case Verdict::kImprovement: return "\033[36m";
    case Verdict::kNoBaseline: return "\033[33m";
    default: return "\033[31m";
  }
}

// Column-aligned rows; widths count UTF-8 characters, not bytes.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row, const char* colour_of_second = nullptr) {
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

std::string Percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", fraction * 100);
  return buf;
}

const MetricReport* FindMetric(const CaseReport& c, const char* metric) {
  for (const auto& m : c.metrics) {
    if (m.series.benchmark == c.name && m.series.metric == metric) return &m;
  }
  return nullptr;
}

}  // namespace

void TerminalReporter::Write(const GateReport& report, std::ostream& out) const {
  Table cases({"CASE", "VERDICT", "OUTCOME", "WALL (median ± MAD)", "N", "AGENT", "DETAIL"});
  for (const auto& c : report.cases) {
    std::string wall = "-", n = "-";
    if (const MetricReport* m = FindMetric(c, "wall_time")) {
      wall = absl::StrCat(FormatDurationSeconds(m->summary.median), " ± ", FormatDurationSeconds(m->summary.mad));
      n = std::to_string(m->summary.n);
    }
    std::string agent = c.agent_id.empty() ? "-" : c.agent_id;
    if (c.attempts > 1) absl::StrAppend(&agent, " (", c.attempts, " attempts)");
    std::string detail = c.detail.size() > 100 ? c.detail.substr(0, 97) + "..." : c.detail;
    cases.Add({c.name, VerdictName(c.verdict), c.outcome, wall, n, agent, detail},
              color_ ? Colour(c.verdict) : nullptr);
  }
  out << "\nrun " << report.run.run_id() << "  suite " << report.run.suite_name();
  if (!report.run.commit().empty()) out << "  commit " << report.run.commit();
  out << "\n\n";
  cases.Print(out);

  if (metrics_) {
    Table metrics({"CASE", "BENCHMARK", "METRIC", "MEDIAN", "MAD", "MIN", "MAX", "N", "SOURCE"});
    for (const auto& c : report.cases) {
      for (const auto& m : c.metrics) {
        const std::string& unit = m.series.unit;
        metrics.Add({c.name, m.series.benchmark == c.name ? "-" : m.series.benchmark, m.series.metric,
                     FormatValue(m.summary.median, unit), Percent(RelativeSpread(m.summary)),
                     FormatValue(m.summary.min, unit), FormatValue(m.summary.max, unit), std::to_string(m.summary.n),
                     m.series.source});
      }
    }
    out << "\n";
    metrics.Print(out);
  }
  for (const auto& c : report.cases) {
    for (const auto& note : c.notes) out << "note: " << c.name << ": " << note << "\n";
  }

  out << "\n";
  if (report.passed) {
    out << (color_ ? "\033[32mGATE PASSED\033[0m" : "GATE PASSED") << " (" << report.cases.size() << " cases)\n";
  } else {
    out << (color_ ? "\033[31mGATE FAILED\033[0m" : "GATE FAILED");
    if (report.run.state() == v1::RUN_STATE_CANCELLED) out << ": the run was cancelled";
    out << "\n";
    for (const auto& rule : report.failed_rules) out << "  - " << rule << "\n";
  }
}

}  // namespace perfgate
