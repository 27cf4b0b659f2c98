// The gRPC faces of the scheduler: AgentService for agents, GateService for
// CI and people. Thin adapters: the Gatekeeper admits each call (token,
// role, request size), then every decision is the Scheduler's.
#pragma once

#include "coordinator/artifact_store.h"
#include "coordinator/auth.h"
#include "coordinator/scheduler.h"
#include "coordinator/stream_slots.h"
#include "perfgate/v1/agent.grpc.pb.h"
#include "perfgate/v1/gate.grpc.pb.h"

namespace perfgate {

class AgentServiceImpl final : public v1::AgentService::Service {
 public:
  // REQUIRES: scheduler and gatekeeper outlive the service; max_work_streams >= 1.
  AgentServiceImpl(Scheduler* scheduler, const Gatekeeper* gatekeeper, int max_work_streams)
      : scheduler_(scheduler), gatekeeper_(gatekeeper), work_streams_("Work", max_work_streams) {}
  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest*, v1::RegisterResponse*) override;
  grpc::Status Work(grpc::ServerContext*, const v1::WorkRequest*, grpc::ServerWriter<v1::WorkItem>*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*, v1::HeartbeatResponse*) override;
  grpc::Status CompleteLease(grpc::ServerContext*, const v1::CompleteLeaseRequest*,
                             v1::CompleteLeaseResponse*) override;

 private:
  Scheduler* scheduler_;
  const Gatekeeper* gatekeeper_;
  StreamSlots work_streams_;
};

class GateServiceImpl final : public v1::GateService::Service {
 public:
  // REQUIRES: scheduler, gatekeeper and artifacts outlive the service;
  // max_watch_streams >= 1. Without an artifact store a suite naming
  // artifacts is refused.
  GateServiceImpl(Scheduler* scheduler, const Gatekeeper* gatekeeper, ArtifactStore* artifacts, int max_watch_streams)
      : scheduler_(scheduler),
        gatekeeper_(gatekeeper),
        artifacts_(artifacts),
        watch_streams_("WatchRun", max_watch_streams) {}
  grpc::Status SubmitRun(grpc::ServerContext*, const v1::SubmitRunRequest*, v1::SubmitRunResponse*) override;
  grpc::Status WatchRun(grpc::ServerContext*, const v1::WatchRunRequest*, grpc::ServerWriter<v1::RunEvent>*) override;
  grpc::Status GetRun(grpc::ServerContext*, const v1::GetRunRequest*, v1::Run*) override;
  grpc::Status CancelRun(grpc::ServerContext*, const v1::CancelRunRequest*, v1::CancelRunResponse*) override;
  grpc::Status GetHistory(grpc::ServerContext*, const v1::HistoryRequest*, v1::HistoryResponse*) override;
  grpc::Status ReportVerdict(grpc::ServerContext*, const v1::ReportVerdictRequest*,
                             v1::ReportVerdictResponse*) override;

 private:
  Scheduler* scheduler_;
  const Gatekeeper* gatekeeper_;
  ArtifactStore* artifacts_;
  StreamSlots watch_streams_;
};

}  // namespace perfgate
