// The PR comment: what a reviewer needs first (the verdict, then what failed
// the gate with its numbers), everything else folded away. At most six
// columns so a table fits a PR page; no run id, time of day or elapsed time,
// so the same results always give the same text (a sticky comment that is
// edited, not re-posted, stays quiet when nothing changed). Its tables keep
// to a budget, so that GitHub takes the report of any suite (below).
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/baseline_update.h"
#include "core/names.h"
#include "core/report.h"
#include "core/units.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

// GitHub takes at most 65,536 characters in a comment and 1 MiB in a step
// summary, and shows nothing of a report past either: a suite of thousands
// of cases wrote megabytes. The tables' rows share this budget, spent in
// order of importance (regressions, errors, then what is folded). The
// verdict, the rules and warnings (whose lists of names judge.cc keeps to
// ten) and the tables' heads and notes are never cut: a few kilobytes, in
// what is left below 65,536.
constexpr size_t kRowBudgetBytes = 56'000;

// The bytes of table rows the report may still write.
class RowBudget {
 public:
  // Takes `row` from the budget if it fits.
  bool Take(const std::string& row) {
    if (row.size() > left_) return false;
    left_ -= row.size();
    return true;
  }

 private:
  size_t left_ = kRowBudgetBytes;
};

// A table, or a code block, of rows that share the budget.
struct Rows {
  std::string open;  // always written: a heading, a <details> line
  std::string head;  // before the first row, when one fits: the table's head, a fence
  std::string end;   // after the last row shown, when one was: a closing fence
  std::string tail;  // always written, last
  std::string has_all = "the JSON and JUnit reports have every case";  // said of the rows left out
  std::vector<std::string> rows;
};

// Writes `t` with its rows while the budget lasts, then says how many were left out.
void Write(const Rows& t, RowBudget& budget, std::ostream& out) {
  out << t.open;
  size_t shown = 0;
  for (; shown < t.rows.size() && budget.Take(t.rows[shown]); ++shown)
    out << (shown == 0 ? t.head : "") << t.rows[shown];
  if (shown > 0) out << t.end;
  if (shown < t.rows.size()) {
    const size_t left = t.rows.size() - shown;
    out << "\n_" << left << " more row" << (left == 1 ? "" : "s")
        << " not shown, to keep this report within GitHub's size limits: " << t.has_all << "._\n";
  }
  out << t.tail;
}

// Table cells must not break the row, and text must not turn into markup:
// it holds names from cases' output (an image, bold "APPROVED"). A line
// break of any kind (\r too) would end the row: controls are escaped.
// Bytes that are not UTF-8 are written as \xNN before the Markdown escapes
// (EscapeControls would do it after them, and double the backslash of \|).
std::string Cell(const std::string& s) {
  return EscapeControls(absl::StrReplaceAll(ShowableUtf8(s), {{"\\", "\\\\"},
                                                              {"&", "&amp;"},
                                                              {"<", "&lt;"},
                                                              {">", "&gt;"},
                                                              {"|", "\\|"},
                                                              {"`", "\\`"},
                                                              {"*", "\\*"},
                                                              {"_", "\\_"},
                                                              {"[", "\\["},
                                                              {"]", "\\]"},
                                                              {"!", "\\!"},
                                                              {"~", "\\~"},
                                                              {"#", "\\#"},
                                                              {"\n", " "}}));
}

// The longest run of backticks in `s`.
size_t LongestBacktickRun(const std::string& s) {
  size_t longest = 0, run = 0;
  for (char ch : s) {
    run = ch == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  return longest;
}

// Inside a code span entities are not decoded, so only what would break the
// row or the span is escaped; a name with backticks gets a fence longer than
// any run of them, so that it cannot end the span and start markup.
std::string Code(const std::string& s) {
  const std::string text = EscapeControls(absl::StrReplaceAll(ShowableUtf8(s), {{"|", "\\|"}, {"\n", " "}}));
  const size_t run = LongestBacktickRun(text);
  if (run == 0) return "`" + text + "`";
  const std::string fence(run + 1, '`');
  return fence + " " + text + " " + fence;
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

std::string VerdictCell(Verdict v) { return absl::StrCat(Icon(v), " ", VerdictName(v)); }

// "spin · instructions", or "spin · bench · metric" when the benchmark is not the case.
std::string MetricName(const CaseReport& c, const MetricReport& m) {
  return m.series.benchmark == c.name ? Code(c.name) + " · " + Code(m.series.metric)
                                      : Code(c.name) + " · " + Code(m.series.benchmark) + " · " + Code(m.series.metric);
}

std::string Value(double v, const MetricReport& m) { return FormatValue(v, m.series.unit, m.series.metric); }

// "2.73 M instr (expected)", "1.02 s (history of 12 runs)", "1.00 s (base, 10 samples)".
std::string BaselineCell(const Comparison& cmp, const MetricReport& m) {
  std::string source = MethodName(cmp.method);
  if (cmp.method == Method::kHistory) source = absl::StrCat("history of ", cmp.baseline_n, " runs");
  if (cmp.method == Method::kAB) source = absl::StrCat("base, ", cmp.baseline_n, " samples");
  return absl::StrCat(Value(cmp.baseline, m), " (", source, ")");
}

std::string ChangeCell(const MetricReport& m) {
  std::string out = FormatPercent(m.comparison->change, /*sign=*/true);
  for (const auto& re : m.confirmations) absl::StrAppend(&out, "; re-measured ", FormatPercent(re.change, true));
  return out;
}

std::string PValueCell(const Comparison& cmp) {
  if (std::isnan(cmp.p_value)) return "–";
  char buf[32];
  std::snprintf(buf, sizeof buf, cmp.p_value < 0.0001 ? "%.1e" : "%.4f", cmp.p_value);
  return buf;
}

struct Counts {
  // errors: those that fail the gate; passing_errors: errors and missing
  // results the policy lets pass (`--fail-on regression`).
  int regressions = 0, errors = 0, passing_errors = 0, improvements = 0, no_baseline = 0, cases = 0;
};

bool IsError(const CaseReport& c) { return !c.ran && c.fails; }
bool IsMetricError(const MetricReport& m) {
  return m.judged && (m.verdict == Verdict::kMissingResult || m.verdict == Verdict::kError);
}
bool IsRegression(const MetricReport& m) { return m.comparison && m.verdict == Verdict::kRegression && m.judged; }

Counts Count(const GateReport& report) {
  Counts n;
  n.cases = static_cast<int>(report.cases.size());
  for (const auto& c : report.cases) {
    n.errors += IsError(c);
    for (const auto& m : c.metrics) {
      n.regressions += IsRegression(m);
      (m.fails ? n.errors : n.passing_errors) += IsMetricError(m);
      n.improvements += m.judged && m.verdict == Verdict::kImprovement;
      n.no_baseline += m.judged && !m.comparison && m.verdict == Verdict::kNoBaseline;
    }
  }
  (report.missing_rows_fail ? n.errors : n.passing_errors) += static_cast<int>(report.missing_rows.size());
  return n;
}

std::string Plural(int n, const char* one, const char* many) { return absl::StrCat(n, " ", n == 1 ? one : many); }

// "❌ perfgate failed: 1 regression, 2 errors · 5 cases · suite `demo` · commit `abc`"
void WriteVerdictLine(const GateReport& report, std::ostream& out) {
  const Counts n = Count(report);
  std::vector<std::string> parts;
  if (n.regressions) parts.push_back(Plural(n.regressions, "regression", "regressions"));
  if (n.errors) parts.push_back(Plural(n.errors, "error", "errors"));
  if (n.passing_errors)
    parts.push_back(absl::StrCat(Plural(n.passing_errors, "error", "errors"), " not failing the gate"));
  if (n.improvements) parts.push_back(Plural(n.improvements, "improvement", "improvements"));
  if (n.no_baseline) parts.push_back(Plural(n.no_baseline, "metric without baseline", "metrics without baseline"));
  const bool cancelled = report.run.state() == v1::RUN_STATE_CANCELLED;
  out << "### "
      << (report.passed ? "✅ perfgate passed"
          : cancelled   ? "⏹️ perfgate cancelled"
                        : "❌ perfgate failed");
  if (!parts.empty()) out << ": " << absl::StrJoin(parts, ", ");
  out << " · " << Plural(n.cases, "case", "cases") << " · suite " << Code(report.run.suite_name());
  if (!report.run.commit().empty()) out << " · commit " << Code(report.run.commit());
  out << "\n\n";
}

void WriteRegressions(const GateReport& report, RowBudget& budget, std::ostream& out) {
  Rows t;
  t.open = "#### Regressions\n\n";
  t.head =
      "| case · metric | baseline | result | change | threshold (noise) | p-value |\n"
      "|---|---:|---:|---:|---:|---:|\n";
  t.tail = "\n";
  std::vector<std::string>& rows = t.rows;
  for (const auto& c : report.cases) {
    for (const auto& m : c.metrics) {
      if (!IsRegression(m)) continue;
      const Comparison& cmp = *m.comparison;
      rows.push_back(absl::StrCat("| ", MetricName(c, m), " | ", BaselineCell(cmp, m), " | ", Value(cmp.result, m),
                                  " (median of ", m.summary.n, ") | ", ChangeCell(m), " | ",
                                  FormatPercent(cmp.threshold), " (noise ", FormatPercent(cmp.noise), ") | ",
                                  PValueCell(cmp), " |\n"));
    }
  }
  if (!rows.empty()) Write(t, budget, out);
}

void WriteErrors(const GateReport& report, RowBudget& budget, std::ostream& out) {
  Rows t;
  t.open = "#### Errors\n\n";
  t.head = "| case | outcome | detail | agent |\n|---|---|---|---|\n";
  t.tail = "\n";
  std::vector<std::string>& rows = t.rows;
  auto row = [&](const std::string& what, const std::string& outcome, const std::string& detail,
                 const std::string& agent) {
    rows.push_back(absl::StrCat("| ", what, " | ", Cell(outcome), " | ", Cell(detail), " | ", agent, " |\n"));
  };
  for (const auto& c : report.cases) {
    if (IsError(c)) {
      row(Code(c.name), VerdictName(c.verdict) + std::string(" (") + c.outcome + ")", c.detail,
          c.agent_id.empty() ? "–" : Code(c.agent_id));
    }
    for (const auto& m : c.metrics) {
      if (IsMetricError(m)) row(MetricName(c, m), VerdictName(m.verdict), m.note, "–");
    }
  }
  for (const auto& missing : report.missing_rows) {
    row(Code(missing), VerdictName(Verdict::kMissingResult), "an expected row that no case produced", "–");
  }
  if (!rows.empty()) Write(t, budget, out);
}

// Every case, folded: a reviewer opens it when the summary is not enough.
void WriteAllCases(const GateReport& report, RowBudget& budget, std::ostream& out) {
  Rows t;
  t.open = absl::StrCat("<details><summary>All cases (", report.cases.size(), ")</summary>\n\n");
  t.head = "| case | verdict | outcome | wall time (median) | agent | attempts |\n|---|---|---|---:|---|---:|\n";
  t.tail = "\n</details>\n\n";
  std::vector<std::string>& rows = t.rows;
  for (const auto& c : report.cases) {
    const MetricReport* wall_time = FindMeasured(c, "wall_time");
    rows.push_back(absl::StrCat("| ", Code(c.name), " | ", VerdictCell(c.verdict), " | ", Cell(c.outcome),
                                c.detail.empty() ? "" : ": " + Cell(c.detail), " | ",
                                wall_time ? FormatDurationSeconds(wall_time->summary.median) : "–", " | ",
                                c.agent_id.empty() ? "–" : Code(c.agent_id), " | ", c.attempts, " |\n"));
  }
  Write(t, budget, out);
}

// Judged metrics other than regressions: passes, improvements, no baseline.
void WriteOtherMetrics(const GateReport& report, RowBudget& budget, std::ostream& out) {
  Rows t;
  t.head =
      "| case · metric | verdict | baseline | result | change | threshold (noise) or why |\n"
      "|---|---|---:|---:|---:|---|\n";
  t.tail = "\n</details>\n\n";
  std::vector<std::string>& rows = t.rows;
  for (const auto& c : report.cases) {
    for (const auto& m : c.metrics) {
      if (!m.judged || IsRegression(m) || IsMetricError(m)) continue;
      if (!m.comparison) {
        rows.push_back(absl::StrCat("| ", MetricName(c, m), " | ", VerdictCell(m.verdict), " | – | ",
                                    Value(m.summary.median, m), " (median of ", m.summary.n, ") | – | ",
                                    Cell(m.note.empty() ? "no expected row, history or A/B base" : m.note), " |\n"));
        continue;
      }
      const Comparison& cmp = *m.comparison;
      rows.push_back(absl::StrCat("| ", MetricName(c, m), " | ", VerdictCell(m.verdict), " | ", BaselineCell(cmp, m),
                                  " | ", Value(cmp.result, m), " (median of ", m.summary.n, ") | ", ChangeCell(m),
                                  " | ", FormatPercent(cmp.threshold), " (noise ", FormatPercent(cmp.noise), ") |\n"));
    }
  }
  if (rows.empty()) return;
  t.open = absl::StrCat("<details><summary>Other judged metrics (", rows.size(), ")</summary>\n\n");
  Write(t, budget, out);
}

void WriteBaselinePatch(const GateReport& report, RowBudget& budget, std::ostream& out) {
  if (report.baseline_patch.empty()) return;
  Rows t;
  t.open = "<details><summary>Improvements: expected-file rows to apply</summary>\n\n";
  // A fence longer than any run of backticks in the rows, which no row can close.
  size_t run = 0;
  for (const auto& row : report.baseline_patch) {
    t.rows.push_back(EscapeControls(FormatExpectedRow(row)) + "\n");
    run = std::max(run, LongestBacktickRun(t.rows.back()));
  }
  const std::string fence(std::max<size_t>(3, run + 1), '`');
  t.head = fence + "\n";
  t.end = fence + "\n";
  t.tail = "\n</details>\n\n";
  t.has_all = "`perfgate baseline update` writes them all";
  Write(t, budget, out);
}

}  // namespace

void MarkdownReporter::Write(const GateReport& report, std::ostream& out) const {
  WriteVerdictLine(report, out);
  for (const auto& rule : report.failed_rules) out << "- **" << Cell(rule) << "**\n";
  for (const auto& w : report.warnings) out << "- warning: " << Cell(w) << "\n";
  if (!report.failed_rules.empty() || !report.warnings.empty()) out << "\n";
  RowBudget budget;
  WriteRegressions(report, budget, out);
  WriteErrors(report, budget, out);
  WriteAllCases(report, budget, out);
  WriteOtherMetrics(report, budget, out);
  WriteBaselinePatch(report, budget, out);
}

}  // namespace perfgate
