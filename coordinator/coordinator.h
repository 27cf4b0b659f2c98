// A running coordinator: the store, the scheduler, the gRPC server and the
// sweeper thread that expires leases.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"
#include "coordinator/artifact_store.h"
#include "coordinator/auth.h"
#include "coordinator/process_priority.h"
#include "coordinator/scheduler.h"
#include "coordinator/store.h"
#include "core/time_source.h"

namespace grpc {
class Server;
}

namespace perfgate {

class AgentServiceImpl;
class ArtifactServiceImpl;
class GateServiceImpl;
class MetricsExporter;

struct CoordinatorOptions {
  // host:port; port 0 picks a free one (see address()).
  std::string listen = "127.0.0.1:0";
  std::string db_path;  // REQUIRES: non-empty
  SchedulerOptions scheduler;
  int64_t sweep_interval_ms = 500;
  // host:port for Prometheus' /metrics; empty: not served.
  std::string metrics_listen;
  // Runs of this branch feed perfgate_benchmark_value.
  std::string main_branch = "main";
  // TLS (PEM files). Without a certificate the port speaks plaintext, which
  // is refused on a non-loopback address unless `insecure`.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Mutual TLS: clients must present a certificate this CA signed.
  std::string tls_client_ca_file;
  // Allows plaintext and token-less service on a non-loopback address.
  bool insecure = false;
  // No token at all: authentication is off (refused on non-loopback
  // addresses without mutual TLS, unless `insecure`).
  RoleTokens tokens;
  MessageLimits limits;
  // gRPC server threads at most. A Work stream (one per connected agent), a
  // WatchRun (one per waiting gate) and an artifact transfer each hold one
  // while open, each kind at most a share of them (half, a quarter, an
  // eighth), so that the short calls always find threads; calls beyond a
  // bound get RESOURCE_EXHAUSTED and are retried.
  int max_threads = 1024;
  // Uploaded artifacts; an empty dir means "artifacts" beside db_path.
  ArtifactStoreOptions artifacts;
  // Nice levels to raise the starting thread's CPU priority by before any
  // thread starts (process_priority.h), so that the coordinator runs ahead of
  // agents and cases on a machine it shares with them. 0: left as it is.
  int priority_levels = 0;
  // Where a result is when its agent is told it is recorded (store.h).
  CommitDurability durability = CommitDurability::kProcessCrash;
};

// What a coordinator started with `options` leaves open that CheckExposure
// lets through, one warning a line: no tokens (anyone who reaches the port,
// any local user on a loopback one, may submit suites and so run commands on
// every agent), mutual TLS without tokens (every certificate the CA signed
// holds every role), /metrics on a non-loopback address (unauthenticated).
std::vector<std::string> ExposureWarnings(const CoordinatorOptions& options);

// An exclusive flock on a file, held until destruction.
class HeldFileLock {
 public:
  HeldFileLock() = default;
  explicit HeldFileLock(int fd) : fd_(fd) {}
  HeldFileLock(HeldFileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  HeldFileLock& operator=(HeldFileLock&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~HeldFileLock();

 private:
  int fd_ = -1;
};

class Coordinator {
 public:
  // Opens the store, recovers unfinished runs, and starts serving.
  static absl::StatusOr<std::unique_ptr<Coordinator>> Start(const CoordinatorOptions& options);
  ~Coordinator();

  // The address it actually listens on, with the chosen port.
  const std::string& address() const { return address_; }
  // Where /metrics is served (host:port), or empty.
  std::string metrics_address() const;
  Scheduler& scheduler() { return *scheduler_; }
  // The CPU priority it raised itself to (CoordinatorOptions::priority_levels), or why not.
  const PriorityChange& priority() const { return priority_; }
  ArtifactStore& artifacts() { return *artifacts_; }
  // Stops serving; in-flight streams end. Idempotent.
  void Shutdown();
  // Blocks until Shutdown() is called (from another thread or a signal
  // handler thread), or the store is lost (Store::Lost): then returns why,
  // and the caller shuts down and exits, as only a restart makes the
  // scheduler's state and the database agree again. Likewise once gRPC has
  // stopped accepting connections (ListenerFailure, listener_watch.h).
  absl::Status Wait();

 private:
  Coordinator() = default;
  void SweepLoop();
  absl::Status OpenArtifacts(const CoordinatorOptions& options);

  RealTimeSource clock_;
  PriorityChange priority_;
  // Declared before the store, so that it is let go only once the store is closed.
  HeldFileLock db_lock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<MetricsExporter> metrics_;
  std::unique_ptr<Gatekeeper> gatekeeper_;
  std::unique_ptr<AgentServiceImpl> agent_service_;
  std::unique_ptr<GateServiceImpl> gate_service_;
  std::unique_ptr<ArtifactStore> artifacts_;
  std::unique_ptr<ArtifactServiceImpl> artifact_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int64_t sweep_interval_ms_ = 500;

  std::once_flag shutdown_once_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // the sweeper should stop
  bool stopped_ = false;   // Shutdown() has finished
  absl::Status lost_;      // the store's, once the sweeper has seen it
  std::thread sweeper_;
};

}  // namespace perfgate
