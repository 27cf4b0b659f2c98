// A load agent: many agent sessions in one process that speak the real agent
// protocol (Register, Work stream, Heartbeat, CompleteLease over gRPC) but run
// nothing. Each lease is completed at once with a realistic result (the
// samples, host fingerprint and fields the real agent sends for a trivial
// case), so a coordinator's capacity is measured apart from process spawning.
//
// A case whose argv is {"sleep", SECONDS} is held that long before it is
// completed (its wall_time sample says so): simulated durations for makespan.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "perfgate/v1/agent.pb.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

struct LoadAgentOptions {
  std::string coordinator;  // host:port, plaintext loopback
  int sessions = 64;
  // Sessions share channels (HTTP/2 connections), this many per channel.
  int sessions_per_channel = 8;
  std::string pool = "load";
  std::string id_prefix = "load";
  int samples_per_result = 3;
};

class LoadAgent {
 public:
  explicit LoadAgent(LoadAgentOptions options);
  ~LoadAgent();

  // Registers every session and opens its Work stream. REQUIRES: called once.
  absl::Status Start();
  // Ends the streams and joins the threads. Idempotent.
  void Stop();

  uint64_t leases_completed() const { return completed_.load(); }
  // Monotonic nanoseconds at which each lease reached a session, in order of arrival.
  std::vector<int64_t> LeaseArrivals() const;

 private:
  struct Session;
  void Serve(Session* session);
  // Runs one lease (a sleep, or nothing) and completes it; the next lease if the reply carries one.
  std::optional<v1::Lease> RunAndComplete(Session* session, const v1::Lease& lease);
  void HeartbeatLoop();
  void RecordArrival(int64_t ns);

  LoadAgentOptions options_;
  v1::HostFingerprint host_;
  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<std::thread> threads_;
  std::thread heartbeat_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> completed_{0};
  mutable std::mutex mu_;
  std::vector<int64_t> arrivals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace perfgate
