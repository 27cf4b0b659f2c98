// The embedded default: a coordinator and N agents in this process, talking
// real gRPC over loopback on ephemeral ports, with a SQLite file in a state
// folder. What `perfgate gate` uses when no --coordinator is given. It makes
// its own random agent and submitter tokens, so the embedded path runs with
// authentication on and nothing to set up.
#pragma once

#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/worker.h"
#include "coordinator/coordinator.h"

namespace perfgate {

struct LocalClusterOptions {
  std::string state_dir = ".perfgate";
  int agents = 2;
  SchedulerOptions scheduler;
};

class LocalCluster {
 public:
  // Starts everything and waits until every agent has registered.
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(const LocalClusterOptions& options);
  ~LocalCluster();

  const std::string& address() const { return coordinator_->address(); }
  const std::string& log_path() const { return log_path_; }
  // How a gate talks to this cluster: the submitter token, over loopback.
  const ClientSecurity& submitter() const { return submitter_; }
  // What its agents send: for tests that talk to the coordinator as an agent.
  const std::string& agent_token() const { return agent_token_; }
  Coordinator& coordinator() { return *coordinator_; }
  // Stops agents (killing any case in progress), then the coordinator. Idempotent.
  void Shutdown();

 private:
  LocalCluster() = default;
  std::unique_ptr<Coordinator> coordinator_;
  std::vector<std::unique_ptr<AgentWorker>> agents_;
  std::vector<std::thread> threads_;
  std::string log_path_;
  ClientSecurity submitter_;
  std::string agent_token_;
  std::mutex log_mu_;
  std::ofstream log_;
};

}  // namespace perfgate
