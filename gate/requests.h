// What the gate asks of the coordinator about a run that has ended: the
// history of its judged series, and the verdict to keep with it. Pure
// functions of the run and its report, shared by the gate and the fuzzer of
// the gate service (fuzz/fuzz_submit_run.cc), so that both ask alike.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/policy.h"
#include "core/report.h"
#include "perfgate/v1/gate.pb.h"

namespace perfgate {

// The main branch's history (policy.main_branch, its last
// policy.compare.history_runs runs no older than policy.history_max_age_ms
// before now_ms, `run` itself left out) of every series the policy judges in
// `run`'s passing cases.
v1::HistoryRequest HistoryRequestFor(const v1::Run& run, const Policy& policy, int64_t now_ms);

// `all` in calls the coordinator takes: each request at most
// max_request_bytes (its limit on a GetHistory request), and each one's
// largest reply (every key at max_runs medians) at most max_reply_bytes.
// Keys in order; at least one call, since one without keys still names the
// pools that exist. A key alone over a bound still gets a call of its own
// (the coordinator then says which limit it passed).
std::vector<v1::HistoryRequest> SplitHistoryRequest(const v1::HistoryRequest& all, uint64_t max_request_bytes,
                                                    uint64_t max_reply_bytes);

// Repeats for a re-measurement of `c`: twice the first run's, as far as its
// result can carry them. The first result, of `bytes` bytes, sets the size
// of a repeat; a result past the agent's limit (`max_result_bytes`) is a
// case error, and a confirmation that measured nothing let a regression
// that was noise stand. At most kMaxSamplesPerResult samples, the most a
// coordinator takes by default; never fewer repeats than the first run.
uint32_t ConfirmationRepeats(const v1::CaseSpec& c, uint64_t bytes, uint64_t max_result_bytes);

// The cases of `suite` that are `suspects`, each with ConfirmationRepeats
// of its first result in `report` (a re-measurement whose own median is
// steadier) and sent to the pool it first ran in, whose baseline judged it.
// A/B cases keep their variants, so base and head are interleaved again.
// REQUIRES: `suite`'s repeats are those the first run took.
v1::Suite ConfirmationSuite(const v1::Suite& suite, const GateReport& report, const std::vector<std::string>& suspects,
                            uint64_t max_result_bytes);

// The report's verdict, case by case, with the rules that failed it.
v1::ReportVerdictRequest VerdictRequestFor(const GateReport& report);

}  // namespace perfgate
