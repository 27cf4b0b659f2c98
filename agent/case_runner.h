// Runs one benchmark case the way perfgate measures: warm-up runs (not
// recorded), then N measured runs, each one sample of raw values; plus
// separate callgrind runs when instructions are counted by the fallback.
// Used by the agent worker and by `perfgate run`, so a lab machine measures
// exactly as the coordinator's agents do.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "agent/executor.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

// Agent-measured metric names (benchmark = the case name).
inline constexpr char kWallTime[] = "wall_time";
inline constexpr char kUserCpuTime[] = "user_cpu_time";
inline constexpr char kSysCpuTime[] = "sys_cpu_time";
inline constexpr char kPeakRss[] = "peak_rss";
// The instrument is in the name, so an expected file or a history never
// compares a hardware count with a callgrind count.
inline constexpr char kInstructions[] = "instructions";
inline constexpr char kCallgrindInstructions[] = "instructions_callgrind";

struct CaseRunOptions {
  const CancelToken* cancel = nullptr;
  // Called before each run with a short phrase ("warm-up 1/1", "sample 2/5").
  std::function<void(const std::string&)> progress;
  uint64_t kill_grace_ms = 2000;
  std::vector<std::string> labels;  // the agent's, for requirement checks
  // Where the runs' groups and the case's scratch folder come from and go
  // (made ahead, removed later: agent/run_supplies.h); nullptr: made and removed on the spot.
  RunSupplies* supplies = nullptr;
  // Whom the case runs as (agent/case_user.h); nullptr: the agent's user.
  // REQUIRES: the user `supplies` was made for, when both are given.
  const CaseUser* user = nullptr;
  // Called each time one of the case's processes has started (ExecSpec::started).
  std::function<void()> started;
};

// Never throws; every failure is an outcome with an error message.
v1::CaseResult RunCase(const v1::CaseSpec& spec, const v1::HostFingerprint& host, const CaseRunOptions& options);

}  // namespace perfgate
