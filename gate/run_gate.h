// The gate's use case: run a suite for one commit on a coordinator (a remote
// one, or the embedded default started here), judge the run against its
// baselines, re-measure suspected regressions, and tell the coordinator the
// verdict. The CLI parses flags into GateOptions and prints the report;
// tests and benchmarks call RunGate directly.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/judge.h"
#include "gate/gate_client.h"
#include "gate/interrupt.h"
#include "gate/judged_suite.h"
#include "gate/local_cluster.h"

namespace perfgate {

struct GateOptions {
  std::string suite_path;
  JudgeSettings judge;
  std::string commit;
  std::string branch;
  // host:port of a running coordinator; empty: start the embedded default
  // (`embedded`) for this one run and stop it when done.
  std::string coordinator;
  LocalClusterOptions embedded;
  // `--artifacts` values: "DIR" or "NAME=DIR", added to the suite's own
  // `artifacts:` folders (gate/artifact_upload.h).
  std::vector<std::string> artifacts;
  // How to reach the coordinator. `client.coordinator` and, in embedded
  // mode, `client.security` are filled in by RunGate.
  GateClientOptions client;
  // Lines for the person watching (the embedded cluster's address, re-measurements,
  // a verdict the coordinator did not take). Default: dropped.
  std::function<void(const std::string&)> log = [](const std::string&) {};
};

// Runs the gate once. The report's exit_code is the gate's answer (0 pass,
// 1 failed on results, 130 cancelled by `interrupt`). Errors: InvalidArgument
// for bad input (the suite, an expected file, a pool no agent has), any other
// code for infrastructure (coordinator unreachable, store error).
// `interrupt` may be null; when it fires the run is cancelled.
absl::StatusOr<GateReport> RunGate(const GateOptions& options, Interrupt* interrupt);

}  // namespace perfgate
