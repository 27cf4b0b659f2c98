#include "gate/run_gate.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/utf8_fields.h"
#include "gate/artifact_upload.h"
#include "gate/requests.h"

namespace perfgate {
namespace {

// The suspects of `request`, re-measured as a run of their own.
v1::SubmitRunRequest ConfirmationRequest(const v1::SubmitRunRequest& request, const GateReport& report,
                                         const std::vector<std::string>& suspects, uint64_t max_result_bytes) {
  v1::SubmitRunRequest again = request;
  *again.mutable_suite() = ConfirmationSuite(request.suite(), report, suspects, max_result_bytes);
  again.set_branch(absl::StrCat(request.branch(), "#confirm"));  // never part of the main-branch history
  return again;
}

// A suspected regression fails the gate only if every re-measurement
// (policy.confirm of them) regresses too.
absl::Status Confirm(const GateOptions& options, const GateClientOptions& client, const v1::SubmitRunRequest& request,
                     const JudgedSuite& judged, Interrupt* interrupt, GateReport* report) {
  for (uint32_t round = 0; round < judged.policy.confirm; ++round) {
    const std::vector<std::string> suspects = SuspectedRegressions(*report);
    if (suspects.empty()) break;
    options.log(absl::StrCat("perfgate: re-measuring ", suspects.size(),
                             " case(s) with a suspected regression: ", absl::StrJoin(suspects, ", ")));
    auto confirmation = SubmitAndWatch(
        client, ConfirmationRequest(request, *report, suspects, client.limits.complete_bytes), interrupt);
    if (!confirmation.ok()) return confirmation.status();
    ApplyConfirmation(report, *confirmation, judged.baselines, judged.policy);
  }
  return absl::OkStatus();
}

// Kept with the run and counted in /metrics. The verdict stands whether or
// not the coordinator hears of it.
void RecordVerdict(const GateOptions& options, const GateClientOptions& client, const GateReport& report) {
  if (auto s = ReportVerdict(client, VerdictRequestFor(report)); !s.ok()) {
    options.log(absl::StrCat("perfgate: warning: could not record the verdict with the coordinator: ", s.message()));
  }
}

// An expected file for a pool no agent of a running coordinator has ever
// registered with is refused before the run, not after hours of cases. (An
// embedded cluster's agents register only as its run starts: checked after.)
absl::Status CheckPoolsBeforeSubmit(const GateClientOptions& client, const JudgedSuite& judged) {
  if (judged.policy.expected_files.empty()) return absl::OkStatus();
  absl::StatusOr<std::set<std::string>> pools = FetchKnownPools(client);
  if (!pools.ok()) return pools.status();
  return CheckBaselinePools(judged.policy, *pools, v1::Run());
}

// gRPC fails a call whose protobuf holds a string that is not UTF-8 with no
// message; said before anything starts, naming the field.
absl::Status CheckUtf8(const GateOptions& options, const v1::Suite& suite) {
  v1::SubmitRunRequest request;
  *request.mutable_suite() = suite;
  request.set_commit(options.commit);
  request.set_branch(options.branch);
  if (std::string field = FirstNonUtf8Field(request); !field.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the run's ", field,
                     " is not UTF-8, which the coordinator cannot take: give --commit, --branch, the suite "
                     "file's path and its text as UTF-8"));
  }
  return absl::OkStatus();
}

// Submits the suite, waits for the run, and judges it with confirmation rounds.
absl::StatusOr<GateReport> JudgeOneRun(const GateOptions& options, const GateClientOptions& client,
                                       JudgedSuite* judged, Interrupt* interrupt) {
  v1::SubmitRunRequest request;
  *request.mutable_suite() = judged->suite;
  request.set_commit(options.commit);
  request.set_branch(options.branch);
  auto run = SubmitAndWatch(client, request, interrupt);
  if (!run.ok()) return run.status();
  if (auto s = FetchHistory(client, *run, judged->policy, &judged->baselines); !s.ok()) return s;
  if (run->state() == v1::RUN_STATE_CANCELLED) return BuildGateReport(*run, judged->baselines, judged->policy);
  // Known only now: in embedded mode the agents register while the run starts.
  if (auto s = CheckBaselinePools(judged->policy, *judged->baselines.known_pools, *run); !s.ok()) return s;
  GateReport report = BuildGateReport(*run, judged->baselines, judged->policy);
  if (auto s = Confirm(options, client, request, *judged, interrupt, &report); !s.ok()) return s;
  RecordVerdict(options, client, report);
  return report;
}

}  // namespace

absl::StatusOr<GateReport> RunGate(const GateOptions& options, Interrupt* interrupt) {
  auto judged = LoadJudgedSuite(options.suite_path, options.judge);
  if (!judged.ok()) return absl::InvalidArgumentError(judged.status().message());
  if (auto s = AddArtifactFlags(options.artifacts, &judged->suite); !s.ok()) return s;
  if (auto s = CheckUtf8(options, judged->suite); !s.ok()) return s;
  GateClientOptions client = options.client;
  std::unique_ptr<LocalCluster> cluster;
  if (options.coordinator.empty()) {
    auto started = LocalCluster::Start(options.embedded);
    if (!started.ok()) {
      const std::string message = absl::StrCat("cannot start the embedded coordinator: ", started.status().message());
      return absl::IsInvalidArgument(started.status()) ? absl::InvalidArgumentError(message)
                                                       : absl::UnavailableError(message);
    }
    cluster = *std::move(started);
    client.coordinator = cluster->address();
    client.security = cluster->submitter();
    options.log(absl::StrCat("perfgate: embedded coordinator on ", cluster->address(), " with ",
                             options.embedded.agents, " local agents (store ", options.embedded.state_dir,
                             "/perfgate.db, agent log ", cluster->log_path(), ")"));
  } else {
    client.coordinator = options.coordinator;
  }
  if (auto s = ResolveArtifacts(client, cluster != nullptr, &judged->suite); !s.ok()) return s;
  if (!cluster) {
    if (auto s = CheckPoolsBeforeSubmit(client, *judged); !s.ok()) return s;
  }
  // The cluster stops (agents first) when this returns.
  return JudgeOneRun(options, client, &*judged, interrupt);
}

}  // namespace perfgate
