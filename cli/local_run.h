// `perfgate run`'s use case: cases of a suite, or one ad-hoc command, run on
// this machine with the agent's executor (warm-up, repeats, cgroup, output
// cap), collected into a run that the gate's judge and reporters take as is.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "agent/executor.h"
#include "core/report.h"
#include "perfgate/v1/common.pb.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

// Measured ad-hoc commands (`perfgate run -- CMD ARGS...`): ten samples, as
// hyperfine takes at least, after one warm-up run to fill caches.
inline constexpr uint32_t kAdHocRepeats = 10;
inline constexpr uint32_t kAdHocWarmup = 1;

// A one-case suite measuring `argv` (no shell), named after the program:
// "sleep 0.1" for {"/bin/sleep", "0.1"}. Its wall time is judged whatever its
// length, as a user asking about one command wants its time.
// REQUIRES: argv non-empty.
v1::Suite AdHocSuite(const std::vector<std::string>& argv);

struct LocalRunOptions {
  std::set<std::string> cases;  // only these; empty: all
  uint32_t repeats = 0;         // overrides the suite's, when set
  // A/B cases (with variants) keep at least this many repeats a side, whatever `repeats` says.
  uint32_t ab_min_samples = 0;
  std::optional<uint32_t> warmup;
  std::vector<std::string> labels;  // this machine's, for cases that require them
  std::string pool = "local";
  const CancelToken* cancel = nullptr;
  const CaseUser* user = nullptr;  // whom cases run as; nullptr: this process's user
  // "[2/5] spin: sample 3/5", for a status line.
  std::function<void(int index, int total, const std::string& name, const std::string& phase)> progress;
  // A case this machine cannot run (no GPU): why.
  std::function<void(const std::string& name, const std::string& why)> skipped;
};

// `spec` with the options' repeats and warm-up in place of its own, as
// RunLocally runs it.
v1::CaseSpec WithOverrides(v1::CaseSpec spec, const LocalRunOptions& options);

// Runs the chosen cases in order; a case this machine cannot run ends as no
// capable agent, and after a cancel the rest end cancelled.
v1::Run RunLocally(const v1::Suite& suite, const v1::HostFingerprint& host, const LocalRunOptions& options);

// hyperfine's summary, per case: wall time median ± MAD with user and system
// CPU time, the range and the sample count, then peak memory and
// instructions when measured. For ad-hoc commands, where one case is the point.
class CommandSummaryReporter final : public Reporter {
 public:
  void Write(const GateReport& report, std::ostream& out) const override;
};

}  // namespace perfgate
