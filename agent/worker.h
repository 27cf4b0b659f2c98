// The agent's loop against a coordinator: register, take leases from the
// work stream, run each case with the case runner, heartbeat while it runs,
// report the result. Survives coordinator restarts (reconnects with jittered
// backoff, keeps its session) and fencing (registers again).
//
// Only the coordinator ends a lease: the agent stops a case when told to
// (the lease was cancelled or given away) or when its session is refused,
// never because it could not renew the lease. A case keeps running while the
// coordinator is unreachable, and its result is offered until the coordinator
// acknowledges it or answers that the lease is no longer this agent's.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/base/thread_annotations.h"
#include "agent/artifact_cache.h"
#include "agent/case_runner.h"
#include "agent/executor.h"
#include "agent/run_supplies.h"
#include "perfgate/v1/agent.grpc.pb.h"
#include "transport/transport.h"

namespace perfgate {

struct WorkerOptions {
  std::string coordinator;  // host:port
  std::string agent_id;     // REQUIRES: non-empty, unique per agent
  std::string pool = "default";
  std::vector<std::string> labels;
  uint64_t kill_grace_ms = 2000;
  ClientSecurity security;  // default: plaintext, no token
  MessageLimits limits;     // sends up to complete_bytes; a larger result becomes a case error
  // Where fetched artifacts are cached (<dir>/blobs) and cases run from
  // (<dir>/cases); opened when the first case that names artifacts arrives.
  ArtifactCacheOptions artifacts{.dir = ".perfgate-agent"};
  // One line per event worth a log line; default prints to stderr.
  std::function<void(const std::string&)> log;
};

class AgentWorker {
 public:
  AgentWorker(WorkerOptions options, v1::HostFingerprint host);
  ~AgentWorker();

  // Serves until Stop(), or until the coordinator refuses this agent's id
  // because another live agent holds it (see refusal()). REQUIRES: called once.
  void Run();
  // After Run(): OK if stopped, else why the coordinator refused this agent
  // (ALREADY_EXISTS, saying what to do).
  const absl::Status& refusal() const { return refusal_; }
  // Stops the case in progress (its process group is killed) and makes Run() return. Thread-safe.
  void Stop();

  uint64_t cases_completed() const { return cases_completed_.load(); }
  // Blocks until at least n results were reported (accepted or stale), or timeout.
  bool WaitForCasesCompleted(uint64_t n, int64_t timeout_ms);

 private:
  bool RegisterWithRetry();
  void ReadWork(std::string session_id);
  void HeartbeatLoop(std::string session_id, uint32_t interval_ms, uint32_t ttl_ms);
  void RunLease(const std::string& session_id, const v1::Lease& lease);
  // RunCase, after fetching the case's artifacts into a folder of its own.
  v1::CaseResult RunWithArtifacts(const v1::CaseSpec& spec, const CaseRunOptions& options, CancelToken* cancel);
  // Offers the result until the coordinator answers (accepted, stale, or refused) or Stop(). The next lease,
  // if the reply carries one, goes first in the queue.
  void CompleteWithRetry(const std::string& session_id, const std::string& lease_id, const v1::CaseResult& result);
  // One CompleteLease call; while the coordinator works on it, the finished case's groups and folder are
  // removed and the next case's made (supplies_.Tidy()), off the path from one case's end to the next one's start.
  grpc::Status CompleteLeaseTidying(grpc::ClientContext* context, const v1::CompleteLeaseRequest& request,
                                    v1::CompleteLeaseResponse* response);
  void SleepInterruptibly(int64_t ms);
  int64_t Backoff(int attempt);
  void Log(const std::string& line);
  void MarkSessionStale();
  // Stops the case if it runs this lease, or drops it from the queue. REQUIRES: mu_ held.
  void DropLeaseLocked(const std::string& lease_id, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  WorkerOptions options_;
  v1::HostFingerprint host_;
  const std::string instance_;  // random per worker: tells a restarted agent from a duplicate
  absl::Status refusal_;        // written by Run's thread only
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentService::Stub> stub_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool session_stale_ ABSL_GUARDED_BY(mu_) = false;
  std::string session_id_ ABSL_GUARDED_BY(mu_);
  uint32_t heartbeat_interval_ms_ ABSL_GUARDED_BY(mu_) = 2000;
  uint32_t lease_ttl_ms_ ABSL_GUARDED_BY(mu_) = 10000;
  std::deque<v1::Lease> queue_ ABSL_GUARDED_BY(mu_);
  // The lease whose case runs or whose result awaits acknowledgement: heartbeats renew it.
  std::string current_lease_id_ ABSL_GUARDED_BY(mu_);
  CancelToken* current_cancel_ ABSL_GUARDED_BY(mu_) = nullptr;  // set while the case runs
  std::shared_ptr<grpc::ClientContext> work_context_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> cases_completed_{0};
  // Used by Run's thread only (RunLease); opened on first need.
  std::unique_ptr<ArtifactCache> artifacts_;
  // Groups and scratch folders of the cases (Run's thread only); whatever it still holds goes with the worker.
  RunSupplies supplies_;
  uint64_t cases_prepared_ = 0;  // names each case's folder
};

}  // namespace perfgate
