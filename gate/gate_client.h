// Submits a suite to a coordinator and follows the run to its end, showing
// progress; re-attaches by run id if the coordinator restarts.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gate/interrupt.h"
#include "core/policy.h"
#include "perfgate/v1/gate.pb.h"
#include "transport/transport.h"

namespace perfgate {

struct GateClientOptions {
  std::string coordinator;  // host:port
  bool tty = false;         // rewrite one status line instead of printing lines
  // How long to keep re-attaching to a coordinator that went away.
  int64_t reconnect_timeout_ms = 120'000;
  ClientSecurity security;  // default: plaintext, no token
  MessageLimits limits;     // sends up to submit_bytes, receives up to reply_bytes
};

// Submits and waits for the final state. When `interrupt` fires (Ctrl-C) the
// run is cancelled and the call waits for the cancellation to land.
// Errors: InvalidArgument (the coordinator refused the suite), Unavailable
// (coordinator unreachable).
absl::StatusOr<v1::Run> SubmitAndWatch(const GateClientOptions& options, const v1::SubmitRunRequest& request,
                                       Interrupt* interrupt);

// Main-branch history (policy.main_branch, its window) for every judged series of `run`, from
// the coordinator's store, into baselines->history; the pools it knows into baselines->known_pools.
absl::Status FetchHistory(const GateClientOptions& options, const v1::Run& run, const Policy& policy,
                          Baselines* baselines);

// The pools the coordinator knows (agents have registered with), asked
// before a run is submitted; Unavailable within 5 s if it cannot be reached.
absl::StatusOr<std::set<std::string>> FetchKnownPools(const GateClientOptions& options);

// Tells the coordinator the gate's verdict (kept with the run, counted in /metrics).
absl::Status ReportVerdict(const GateClientOptions& options, const v1::ReportVerdictRequest& request);

}  // namespace perfgate
