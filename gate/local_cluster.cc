#include "gate/local_cluster.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "agent/host_fingerprint.h"

namespace perfgate {

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(const LocalClusterOptions& options) {
  std::unique_ptr<LocalCluster> cluster(new LocalCluster());
  std::error_code ec;
  std::filesystem::create_directories(options.state_dir, ec);
  if (ec) {
    // The flag's value, or the folder it names by default: the configuration's error (exit 2).
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create state folder '", options.state_dir, "' (--state-dir): ", ec.message()));
  }
  cluster->log_path_ = options.state_dir + "/agents.log";
  cluster->log_.open(cluster->log_path_, std::ios::app);

  CoordinatorOptions coordinator;
  coordinator.listen = "127.0.0.1:0";
  coordinator.db_path = options.state_dir + "/perfgate.db";
  coordinator.scheduler = options.scheduler;
  coordinator.tokens.agent = RandomToken();
  coordinator.tokens.submitter = RandomToken();
  cluster->submitter_.token = coordinator.tokens.submitter;
  cluster->agent_token_ = coordinator.tokens.agent;
  auto started = Coordinator::Start(coordinator);
  if (!started.ok()) return started.status();
  cluster->coordinator_ = *std::move(started);

  const v1::HostFingerprint host = ProbeHost();
  for (int i = 0; i < options.agents; ++i) {
    WorkerOptions worker;
    worker.coordinator = cluster->coordinator_->address();
    worker.agent_id = absl::StrCat("local-", i + 1);
    worker.pool = "local";
    worker.security.token = coordinator.tokens.agent;
    // The gate passes artifact folders in place; a cache is opened only if a case names uploaded trees.
    worker.artifacts.dir = absl::StrCat(options.state_dir, "/agent-", i + 1);
    LocalCluster* raw = cluster.get();
    worker.log = [raw](const std::string& line) {
      std::lock_guard lock(raw->log_mu_);
      raw->log_ << line << std::endl;
    };
    cluster->agents_.push_back(std::make_unique<AgentWorker>(worker, host));
  }
  for (auto& agent : cluster->agents_) {
    cluster->threads_.emplace_back([a = agent.get()] { a->Run(); });
  }
  if (!cluster->coordinator_->scheduler().WaitForAgents(static_cast<size_t>(options.agents), 30'000)) {
    return absl::UnavailableError(absl::StrCat("local agents did not register within 30 s; see ", cluster->log_path_));
  }
  return cluster;
}

LocalCluster::~LocalCluster() { Shutdown(); }

void LocalCluster::Shutdown() {
  for (auto& agent : agents_) agent->Stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  if (coordinator_) coordinator_->Shutdown();
}

}  // namespace perfgate
