// The names that clients and cases give: suites, cases, benchmarks and
// metrics. They become report rows, store keys, history keys and Prometheus
// label values, so each is bounded in size and holds no control character
// (a newline would forge a line of a report or a log). One rule each, checked
// wherever a name comes in: the suite loader, the coordinator's SubmitRun
// and CompleteLease, and the agent's readers of what a case reports.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace perfgate {

inline constexpr size_t kMaxSuiteNameBytes = 200;
inline constexpr size_t kMaxCaseNameBytes = 200;
// Google Benchmark names carry template and argument lists
// ("BM_Sort<std::vector<int>>/1024/real_time"); PyTorch's are short.
inline constexpr size_t kMaxBenchmarkNameBytes = 512;
inline constexpr size_t kMaxMetricNameBytes = 128;
// Agents' ids, pools and labels (host names and words like "a100", "gpu").
inline constexpr size_t kMaxAgentNameBytes = 128;
inline constexpr size_t kMaxAgentLabels = 64;

// Each returns what is wrong with the name ("... must ..."), or "" when it
// is allowed. Names are also UTF-8 (protobuf strings, checked on parsing).
// A suite name: 1 to kMaxSuiteNameBytes bytes, no control character
// (the suite file's loader also wants one).
std::string SuiteNameProblem(absl::string_view name);
// A case name: 1 to kMaxCaseNameBytes of letters, digits and _ . : -
// (it names files and folders on agents).
std::string CaseNameProblem(absl::string_view name);
// A benchmark: at most kMaxBenchmarkNameBytes, no control character; a
// metric: 1 to kMaxMetricNameBytes, no control character and no comma (a
// PyTorch row's key is "benchmark,metric", unambiguous only so). What the
// coordinator takes from agents, older ones included.
std::string SeriesNameProblem(absl::string_view benchmark, absl::string_view metric);
// SeriesNameProblem's rules, and names an expected file's row can hold: a
// benchmark of 1 byte or more, neither name beginning or ending with
// whitespace (the file's reader strips it). Where results are read (the
// agent's adapters) and where rows are written (baseline update).
std::string RowNameProblem(absl::string_view benchmark, absl::string_view metric);
// An agent's id, pool or label (`what` names which in the message): 1 to
// kMaxAgentNameBytes of letters, digits and _ . : -. They become store rows,
// history keys and Prometheus label values that outlive the agent.
std::string AgentNameProblem(absl::string_view what, absl::string_view name);

}  // namespace perfgate
