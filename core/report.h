// The gate's answer for one run: a verdict per case and per metric, whether
// the gate passed, and which rule failed it. Report writers (terminal,
// Markdown, JUnit XML, JSON) render it; none of them decide anything.
#pragma once

#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "core/compare.h"
#include "core/metric_traits.h"
#include "core/policy.h"
#include "core/series.h"
#include "core/stats.h"
#include "core/verdict.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

struct MetricReport {
  Series series;  // this run's values (head's, for A/B)
  Summary summary;
  std::optional<Summary> base;  // A/B: the base side
  std::optional<Comparison> comparison;
  // Re-measurements of a suspected regression, compared with the same baseline.
  std::vector<Comparison> confirmations;
  Verdict verdict = Verdict::kNoBaseline;
  // Compared with baselines (the case ran and the policy judges the metric),
  // so its verdict counts for the gate; otherwise it is only shown.
  bool judged = false;
  std::string note;  // "not confirmed: ...", "missing: expected row on line 7"
  bool fails = false;  // judged, and its verdict is one the policy fails on
  // Which way is better, as the built-in table and the suite's `metrics:` say.
  Direction better = Direction::kUnknown;
};

struct CaseReport {
  std::string name;
  std::string pool;
  bool ran = false;  // finished with exit 0: its metrics decide its verdict
  // The case's row: its outcome when it did not run, else the worst verdict
  // of its judged metrics. The gate's rules look at every verdict, not this one.
  Verdict verdict = Verdict::kPass;
  std::string outcome;  // "ok", "exit 3", "timed out", "not run", ...
  std::string detail;   // why, when not a pass
  std::string agent_id;
  uint32_t attempts = 0;
  std::vector<MetricReport> metrics;
  std::vector<std::string> notes;
  bool fails = false;  // the case fails the gate: see BuildGateReport
};

// The case's own measured series of `metric` (benchmark = the case), or null.
const MetricReport* FindMeasured(const CaseReport& c, const std::string& metric);

struct GateReport {
  v1::Run run;  // everything, raw samples included (the JSON report carries it)
  std::vector<CaseReport> cases;
  // Expected rows that no case produced, on a run of the whole suite, and
  // whether they fail the gate (the policy fails on missing results).
  std::vector<std::string> missing_rows;
  bool missing_rows_fail = false;
  // On a run of some cases only: expected rows of a benchmark a case
  // measured, for a metric none reported (a case that did not run may).
  std::vector<std::string> unclaimed_rows;
  // Series that several cases of the run report (one benchmark and metric):
  // the store keeps one history for them, so none is judged against it.
  std::vector<std::string> shared_history;
  std::vector<std::string> warnings;
  bool passed = true;
  // Each rule that failed the gate, in words.
  std::vector<std::string> failed_rules;
  int exit_code = 0;
  // Improvements against an expected file: the rows to apply (PyTorch's 4-digit rounding).
  std::vector<ExpectedRow> baseline_patch;
};

// One way to render a report (google/benchmark's reporter shape).
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void Write(const GateReport& report, std::ostream& out) const = 0;
};

// Aligned table for people; colour only when `color` (a TTY).
class TerminalReporter final : public Reporter {
 public:
  // `metrics`: also list every measured series (median, MAD, range, n).
  TerminalReporter(bool color, bool metrics) : color_(color), metrics_(metrics) {}
  void Write(const GateReport& report, std::ostream& out) const override;

 private:
  bool color_;
  bool metrics_;
};

// A PR comment / GitHub step summary (GitHub-flavoured Markdown).
class MarkdownReporter final : public Reporter {
 public:
  void Write(const GateReport& report, std::ostream& out) const override;
};

// One test case per case and metric; failures carry the numbers.
class JunitReporter final : public Reporter {
 public:
  void Write(const GateReport& report, std::ostream& out) const override;
};

// The JSON report's `schema_version`: changes when a field changes meaning
// (docs/report-json.md); readers of reports refuse another.
inline constexpr int kJsonReportSchemaVersion = 1;

// Everything, for tools: verdicts, comparisons, summaries and the raw run with samples.
class JsonReporter final : public Reporter {
 public:
  void Write(const GateReport& report, std::ostream& out) const override;
};

// "2.87 M instr (+5.10%) vs expected 2.73 M instr (margin 5.00%)": a comparison of `series`, values in its unit.
std::string ExplainComparison(const Comparison& c, const Series& series);
// "spin: instructions_callgrind 2.87 M instr (+5.10%) vs expected 2.73 M instr (margin 5.00%)": one line per metric.
std::string DescribeMetric(const CaseReport& c, const MetricReport& m);
// The same without the leading "case: ", for a row that already names the case.
std::string DescribeMetricOfCase(const CaseReport& c, const MetricReport& m);

}  // namespace perfgate
