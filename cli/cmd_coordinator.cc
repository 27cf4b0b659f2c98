#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/signals.h"
#include "coordinator/coordinator.h"
#include "core/exit_codes.h"
#include "core/units.h"

namespace perfgate {

void AddCoordinatorCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("coordinator", "Serve runs to agents: queue, lease, store results (SQLite).");
  struct Flags {
    std::string listen = "127.0.0.1:7600";
    std::string db = "perfgate.db";
    std::string lease_ttl = "10s";
    uint32_t max_attempts = 3;
    std::string no_agent_grace = "30s";
    std::string metrics_listen;
    std::string main_branch = "main";
  };
  auto flags = std::make_shared<Flags>();
  cmd->add_option("--listen", flags->listen, "host:port to serve gRPC on; port 0 picks a free one")
      ->capture_default_str();
  cmd->add_option("--db", flags->db, "SQLite file (created and migrated as needed)")->capture_default_str();
  cmd->add_option("--lease-ttl", flags->lease_ttl, "a lease not renewed this long is lost and its case re-queued")
      ->capture_default_str();
  cmd->add_option("--max-attempts", flags->max_attempts, "attempts per case before it ends as an error")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  cmd->add_option("--no-agent-grace", flags->no_agent_grace,
                  "a pending case no live agent can run ends as 'no capable agent' after this long")
      ->capture_default_str();
  cmd->add_option("--metrics-listen", flags->metrics_listen,
                  "host:port to serve Prometheus /metrics on (port 0 picks one); off when empty");
  cmd->add_option("--main-branch", flags->main_branch, "runs of this branch feed perfgate_benchmark_value")
      ->capture_default_str();
  cmd->footer(kExitCodesHelp);
  cmd->callback([flags, exit_code] {
    CoordinatorOptions options;
    options.listen = flags->listen;
    options.db_path = flags->db;
    auto ttl = ParseDurationMs(flags->lease_ttl);
    auto grace = ParseDurationMs(flags->no_agent_grace);
    if (!ttl || *ttl < 100 || !grace) {
      std::cerr << "perfgate coordinator: --lease-ttl and --no-agent-grace take durations like 500ms, 10s, 2m\n";
      *exit_code = kExitBadInput;
      return;
    }
    options.scheduler.lease_ttl_ms = static_cast<int64_t>(*ttl);
    options.scheduler.heartbeat_interval_ms = std::max<int64_t>(50, options.scheduler.lease_ttl_ms / 4);
    options.scheduler.session_ttl_ms = options.scheduler.lease_ttl_ms * 3 / 2;
    options.scheduler.max_attempts = flags->max_attempts;
    options.scheduler.no_agent_grace_ms = static_cast<int64_t>(*grace);
    options.sweep_interval_ms = std::max<int64_t>(20, options.scheduler.lease_ttl_ms / 10);
    options.metrics_listen = flags->metrics_listen;
    options.main_branch = flags->main_branch;
    auto coordinator = Coordinator::Start(options);
    if (!coordinator.ok()) {
      std::cerr << "perfgate coordinator: " << coordinator.status().message() << "\n";
      *exit_code = kExitInfra;
      return;
    }
    Coordinator* c = coordinator->get();
    OnTerminationSignal([c](int) { c->Shutdown(); });
    // Tests and scripts read this line to learn the port.
    std::printf("perfgate coordinator: listening on %s (db %s)\n", c->address().c_str(), flags->db.c_str());
    if (!c->metrics_address().empty()) {
      std::printf("perfgate coordinator: metrics on http://%s/metrics\n", c->metrics_address().c_str());
    }
    std::fflush(stdout);
    c->Wait();
    std::printf("perfgate coordinator: stopped\n");
    *exit_code = kExitPassed;
  });
}

}  // namespace perfgate
