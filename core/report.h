// The gate's answer for one run: a verdict per case (and, with baselines,
// per metric), whether the gate passed, and which rule failed it. Report
// writers (terminal, JSON, ...) render it; none of them decide anything.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "core/series.h"
#include "core/stats.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

enum class Verdict {
  kPass,
  kRegression,
  kImprovement,
  kError,
  kMissingResult,
  kNoBaseline,
  kNoCapableAgent,
  kCancelled,
};
const char* VerdictName(Verdict verdict);

struct MetricReport {
  Series series;
  Summary summary;
};

struct CaseReport {
  std::string name;
  Verdict verdict = Verdict::kPass;
  std::string outcome;  // "ok", "exit 3", "timed out", "not run", ...
  std::string detail;   // why, when not a pass
  std::string agent_id;
  uint32_t attempts = 0;
  std::vector<MetricReport> metrics;
  std::vector<std::string> notes;
};

struct GateReport {
  v1::Run run;  // everything, raw samples included (the JSON report carries it)
  std::vector<CaseReport> cases;
  bool passed = true;
  // Each rule that failed the gate, in words ("error fails the gate: 1 case").
  std::vector<std::string> failed_rules;
  int exit_code = 0;
};

// Verdicts from the run alone: a case that ran and exited 0 passes; one
// that failed, crashed, timed out or could not be read is an error; a case
// with no capable agent, or with no result, fails the gate.
GateReport BuildGateReport(const v1::Run& run);

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

// Everything, for tools: verdicts, summaries and the raw run with samples.
class JsonReporter final : public Reporter {
 public:
  void Write(const GateReport& report, std::ostream& out) const override;
};

}  // namespace perfgate
