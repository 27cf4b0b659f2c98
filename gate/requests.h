// What the gate asks of the coordinator about a run that has ended: the
// history of its judged series, and the verdict to keep with it. Pure
// functions of the run and its report, shared by the gate and the fuzzer of
// the gate service (fuzz/fuzz_submit_run.cc), so that both ask alike.
#pragma once

#include <cstdint>

#include "core/policy.h"
#include "core/report.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

// The main branch's history (policy.main_branch, its last
// policy.compare.history_runs runs no older than policy.history_max_age_ms
// before now_ms, `run` itself left out) of every series the policy judges in
// `run`'s passing cases.
v1::HistoryRequest HistoryRequestFor(const v1::Run& run, const Policy& policy, int64_t now_ms);

// The report's verdict, case by case, with the rules that failed it.
v1::ReportVerdictRequest VerdictRequestFor(const GateReport& report);

}  // namespace perfgate
