// What a counted result leaves in the store's per-run summaries, which
// history and the scheduler's case durations read: how long the case took,
// and each of its series' median. Arithmetic only; SqliteStore writes them.
#ifndef PERFGATE_COORDINATOR_RUN_SUMMARY_H_
#define PERFGATE_COORDINATOR_RUN_SUMMARY_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "perfgate/v1/common.pb.h"

namespace perfgate {

// How long a counted case took, for ordering and holding cases ahead: the
// time its agent says it was busy with it, rounded up to a millisecond, but
// never more than its lease lived (grant to result), which an agent cannot
// stretch; the lease's span where the agent said nothing. That span alone
// also holds the wait behind the cases held ahead of it and the result's
// wait for its report: after 128 load sessions that end each case at once,
// 176 of 2,000 cases read over 50 ms, so the next runs took them first and
// held none of them ahead (Scheduler::MayHoldAhead).
int64_t DurationMs(const v1::CaseResult& result, int64_t lease_span_ms);

// REQUIRES: values not empty.
double Median(std::vector<double> values);

// Each series' median, by series id, of (series id, value) pairs.
std::vector<std::pair<int64_t, double>> Medians(std::vector<std::pair<int64_t, double>> values);

// The series history keeps for a counted result: values of plain samples and
// of the head side of A/B runs (the base side measured other code), by
// (benchmark, metric, source); none unless the case ended OK.
std::map<std::tuple<std::string, std::string, std::string>, std::vector<double>> HistoryValues(
    const v1::CaseResult& result);

}  // namespace perfgate

#endif  // PERFGATE_COORDINATOR_RUN_SUMMARY_H_
