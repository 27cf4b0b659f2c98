// What the scheduler tells the outside world as it happens: the seam the
// metrics exporter plugs into (and anything else that wants events).
#pragma once

#include <cstdint>
#include <string>

#include "perfgate/v1/common.pb.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

class SchedulerListener {
 public:
  virtual ~SchedulerListener() = default;
  // An agent of `pool` registered (a session began).
  virtual void OnAgentRegistered(const std::string& pool) {}
  virtual void OnLeaseGranted(const std::string& pool) = 0;
  virtual void OnLeaseLost(const std::string& pool) = 0;
  // disposition: DispositionName (core/names.h): "counted", "stale" or "duplicate". `branch` is the run's;
  // `case_name` the leased case's (empty unless counted), never the name the agent put in `result`.
  // `case_seconds`: how long the agent was busy with the case (run_summary.h's DurationMs), not the
  // lease's span, which holds the wait of a case held ahead behind the one before.
  virtual void OnResult(const std::string& suite, const std::string& branch, const std::string& pool,
                        const std::string& disposition, const std::string& case_name, const v1::CaseResult& result,
                        double case_seconds) = 0;
  // A run of `suite` on `branch` was stored and will be served; its verdict comes later.
  virtual void OnRunSubmitted(const v1::Suite& suite, const std::string& branch) {}
  virtual void OnRunFinished(const std::string& suite, v1::RunState state) = 0;
  virtual void OnVerdict(const std::string& suite, const v1::ReportVerdictRequest& verdict) = 0;
};

}  // namespace perfgate
