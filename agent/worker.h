// The agent's loop against a coordinator: register, take leases from the
// work stream, run each case with the case runner, heartbeat while it runs,
// report the result. Survives coordinator restarts (reconnects with jittered
// backoff, keeps its session) and fencing (registers again).
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

#include "agent/executor.h"
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
  // One line per event worth a log line; default prints to stderr.
  std::function<void(const std::string&)> log;
};

class AgentWorker {
 public:
  AgentWorker(WorkerOptions options, v1::HostFingerprint host);
  ~AgentWorker();

  // Serves until Stop(). REQUIRES: called once.
  void Run();
  // Stops the case in progress (its process group is killed) and makes Run() return. Thread-safe.
  void Stop();

  uint64_t cases_completed() const { return cases_completed_.load(); }
  // Blocks until at least n results were reported (accepted or stale), or timeout.
  bool WaitForCasesCompleted(uint64_t n, int64_t timeout_ms);

 private:
  struct Lease {
    v1::Lease lease;
    int64_t local_deadline_ms = 0;  // our clock: stop the case after this
  };
  bool RegisterWithRetry();
  void ReadWork(std::string session_id);
  void HeartbeatLoop(std::string session_id, uint32_t interval_ms, uint32_t ttl_ms);
  void RunLease(const std::string& session_id, Lease lease);
  void CompleteWithRetry(const std::string& session_id, const std::string& lease_id, const v1::CaseResult& result);
  void SleepInterruptibly(int64_t ms);
  int64_t Backoff(int attempt);
  void Log(const std::string& line);
  void MarkSessionStale();
  // Stops the case if it runs this lease, or drops it from the queue. REQUIRES: mu_ held.
  void DropLeaseLocked(const std::string& lease_id, const std::string& why);

  WorkerOptions options_;
  v1::HostFingerprint host_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentService::Stub> stub_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool session_stale_ = false;
  std::string session_id_;
  uint32_t heartbeat_interval_ms_ = 2000;
  uint32_t lease_ttl_ms_ = 10000;
  std::deque<Lease> queue_;
  std::string current_lease_id_;
  int64_t current_deadline_ms_ = 0;
  CancelToken* current_cancel_ = nullptr;
  std::shared_ptr<grpc::ClientContext> work_context_;
  std::atomic<uint64_t> cases_completed_{0};
};

}  // namespace perfgate
