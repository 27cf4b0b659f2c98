// What bench/dispatch prints (a table, with a "before" column when two
// binaries were measured) and writes (the JSON keys of issue #11, each with
// the agent, case and run counts it used).
#ifndef PERFGATE_BENCH_DISPATCH_REPORT_H_
#define PERFGATE_BENCH_DISPATCH_REPORT_H_

#include <nlohmann/json.hpp>
#include <vector>

#include "bench/dispatch/parts.h"

namespace perfgate::dispatch {

// The last of `f` is the binary measured now; with two, the first is --before.
void PrintTable(const Options& o, const std::vector<Figures>& f, double load_before, double load_after);

nlohmann::json Json(const Options& o, const std::vector<Figures>& all, double load_before, double load_after);

}  // namespace perfgate::dispatch

#endif  // PERFGATE_BENCH_DISPATCH_REPORT_H_
