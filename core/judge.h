// The judge: a run's verdicts from its results, the policy and the
// baselines (A/B base side, expected files, main-branch history). What the
// gate and `perfgate run` decide; the report writers only render it.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/policy.h"
#include "core/report.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

// Judges `run`: case outcomes first, then each metric against its baseline
// (A/B base, else the testbed's expected file, else main-branch history).
// The gate passes only if every case has a measured result (a case no agent
// can run is left to fail_on) and no verdict of any judged metric is in
// policy.fail_on; a cancelled run exits 130.
// `complete_run`: the run covered the whole suite, so expected rows nobody
// produced are missing results.
GateReport BuildGateReport(const v1::Run& run, const Baselines& baselines, const Policy& policy,
                           bool complete_run = true);

// With the pools agents have ever registered with (the coordinator's
// store): an expected file for any other pool is bad input, naming the pool,
// the pools that ran and the known ones. "*" is every pool.
absl::Status CheckBaselinePools(const Policy& policy, const std::set<std::string>& known_pools, const v1::Run& run);

// The cases whose metrics regressed: what a confirmation run re-measures.
std::vector<std::string> SuspectedRegressions(const GateReport& report);

// Compares the confirmation run's samples with the same baselines; a
// regression stands only if every re-measurement regresses too. Then the
// verdicts and rules are derived again. A confirmation the user cancelled
// (Ctrl-C) leaves the regressions standing and the gate interrupted (exit
// 130), as a cancelled first run does.
void ApplyConfirmation(GateReport* report, const v1::Run& confirmation, const Baselines& baselines,
                       const Policy& policy);

}  // namespace perfgate
