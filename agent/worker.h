// The agent's loop against a coordinator: register, take leases from the
// work stream, run each case with the case runner, heartbeat while it runs,
// report the result. Survives coordinator restarts (reconnects with jittered
// backoff, keeps its session) and fencing (registers again).
//
// Results are reported by a thread of their own, so the next case does not
// wait for the coordinator's answer. While its cases are short the agent
// asks to hold several leases (kLeasesHeld) and reports its results
// together, when two leases are left to run: the coordinator handles a call
// per several cases, not per case. A result waits at most kMaxReportDelayMs.
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
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
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
  // Whom cases run as (--case-user); none: the agent's own user.
  std::optional<CaseUser> case_user;
  // One line per event worth a log line; default prints to stderr.
  std::function<void(const std::string&)> log;
};

class AgentWorker {
 public:
  AgentWorker(WorkerOptions options, v1::HostFingerprint host);
  ~AgentWorker();

  // Serves until Stop(), or until the coordinator refuses this agent's id
  // because another live agent holds it, or refuses its token (see
  // refusal()). REQUIRES: called once.
  void Run();
  // After Run(): OK if stopped, else why the coordinator refused this agent
  // (ALREADY_EXISTS, or PERMISSION_DENIED for a token it refused three times
  // in a row), saying what to do.
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
  // Runs the session's leases in order until it ends; tidies (RunSupplies) while it waits for one.
  void RunLeases();
  void RunLease(const v1::Lease& lease);
  // RunCase, after fetching the case's artifacts into a folder of its own.
  v1::CaseResult RunWithArtifacts(const v1::CaseSpec& spec, const CaseRunOptions& options, CancelToken* cancel);
  // Reports finished cases' results, several to a call, until the session ends; on Stop(), after one last try.
  void ReportLoop(std::string session_id);
  // A result is due now: the agent is about to run out of leases (or has), or the oldest one waited long
  // enough, or the agent stops. REQUIRES: mu_ held.
  bool ReportDueLocked(int64_t now_ms) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The next call's results: the oldest first, up to `most` of them and half the size a call may have.
  v1::CompleteLeaseRequest NextReportLocked(const std::string& session_id, size_t most) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Offers the request until the coordinator answers it (or refuses the session) or Stop(); false when the
  // results should be offered again one to a call.
  bool Report(const std::string& session_id, v1::CompleteLeaseRequest request);
  // Once Stop() is called, the undelivered results are given up (and said so): true then.
  bool GaveUpOnStop(const std::string& lease_id) ABSL_LOCKS_EXCLUDED(mu_);
  // The leases of the request's first result and of its first `more` further ones.
  static std::set<std::string> LeaseIdsOf(const v1::CompleteLeaseRequest& request, int more);
  // Those results leave: answered, or refused for good.
  void DropUnreported(const std::set<std::string>& lease_ids);
  // The coordinator answered: acknowledged results leave, granted leases join the queue.
  void TakeAnswer(const v1::CompleteLeaseRequest& request, const v1::CompleteLeaseResponse& response);
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
  // The report thread waits here alone: woken when a report is due (ReportDueLocked) or the session ends.
  std::condition_variable report_cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool session_stale_ ABSL_GUARDED_BY(mu_) = false;
  std::string session_id_ ABSL_GUARDED_BY(mu_);
  uint32_t heartbeat_interval_ms_ ABSL_GUARDED_BY(mu_) = 2000;
  uint32_t lease_ttl_ms_ ABSL_GUARDED_BY(mu_) = 10000;
  // The coordinator takes a result without a host as run on the host this
  // agent registered with, so results leave it out (a thousand bytes each).
  bool results_imply_host_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::Lease> queue_ ABSL_GUARDED_BY(mu_);  // leases held, not started
  // The lease whose case runs: heartbeats renew it, with the queue's and the unreported results'.
  std::string current_lease_id_ ABSL_GUARDED_BY(mu_);
  struct Unreported {
    std::string lease_id;
    v1::CaseResult result;    // without its host: host_
    int64_t finished_ms = 0;  // local steady clock
  };
  // Results not yet acknowledged, oldest first. Kept until the coordinator answers, however long it is away.
  std::deque<Unreported> unreported_ ABSL_GUARDED_BY(mu_);
  bool last_case_short_ ABSL_GUARDED_BY(mu_) = false;  // it took at most kShortCaseMs
  // A report was due when this lease was taken: the report thread is woken
  // once the case has started. Touched only by the thread that runs leases.
  bool report_on_start_ = false;
  static constexpr uint32_t kLeasesHeld = 16;
  // Results go when this many leases are left to run: time for the reply under load (one was too few at p99).
  static constexpr size_t kReportWithLeasesLeft = 2;
  static constexpr int64_t kShortCaseMs = 50;
  // Long enough that results go when two leases are left (a call per 14
  // results) even with 64 agents sharing 2 cores, 48 ms a case each: at 200
  // ms their calls carried 4 results, and the coordinator's CPU per case
  // rose by a third from 32 agents to 64. Short cases drain in well under it.
  static constexpr int64_t kMaxReportDelayMs = 1000;
  static constexpr size_t kMaxResultsPerReport = kLeasesHeld;
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
