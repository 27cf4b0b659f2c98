#include <unistd.h>

#include <iostream>

#include "agent/cgroup.h"
#include "agent/host_fingerprint.h"
#include "agent/worker.h"
#include "cli/commands.h"
#include "cli/security_flags.h"
#include "cli/service_config.h"
#include "cli/signals.h"
#include "core/exit_codes.h"
#include "core/units.h"

namespace perfgate {

void AddAgentCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("agent", "Measure cases for a coordinator: register, take leases, run, report.");
  struct Flags {
    std::string coordinator;
    std::string id;
    std::string pool = "default";
    std::vector<std::string> labels;
    uint64_t kill_grace_ms = 2000;
    ClientSecurityFlags security;
    std::vector<SizeFlag> sizes = {{"--max-complete-size", "", &MessageLimits::complete_bytes}};
    std::string cgroup_root;
    std::string artifact_dir = ".perfgate-agent";
    std::string artifact_cache_size = "10GiB";
  };
  auto flags = std::make_shared<Flags>();
  AddConfigFileOption(cmd);
  cmd->add_option("--coordinator", flags->coordinator, "coordinator host:port")
      ->envname("PERFGATE_COORDINATOR")
      ->required();
  cmd->add_option("--id", flags->id,
                  "agent id, stable across restarts (default: the host name); "
                  "an id another live agent holds is refused; a dead agent's id is taken over");
  cmd->add_option("--pool", flags->pool, "testbed: agents of one pool have comparable hardware")->capture_default_str();
  cmd->add_option("--label", flags->labels, "a label cases can require (repeatable)");
  cmd->add_option("--kill-grace-ms", flags->kill_grace_ms, "SIGTERM to SIGKILL grace when a case must stop")
      ->capture_default_str();
  AddClientSecurityFlags(cmd, &flags->security);
  AddSizeFlags(cmd, &flags->sizes, MessageLimits{});
  cmd->add_option("--cgroup-root", flags->cgroup_root, kCgroupRootHelp);
  cmd->add_option("--artifact-dir", flags->artifact_dir, "folder for the artifact cache and the cases' folders")
      ->capture_default_str();
  cmd->add_option("--artifact-cache-size", flags->artifact_cache_size,
                  "most bytes of artifacts kept (least recently used go first), e.g. 10GiB")
      ->capture_default_str();
  cmd->footer(kExitCodesHelp);
  cmd->callback([flags, exit_code] {
    WorkerOptions options;
    options.coordinator = flags->coordinator;
    auto security = LoadClientSecurity(flags->security, flags->coordinator);
    absl::Status sizes = ParseSizeFlags(flags->sizes, &options.limits);
    if (!security.ok() || !sizes.ok()) {
      std::cerr << "perfgate agent: " << (security.ok() ? sizes : security.status()).message() << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    options.security = *std::move(security);
    if (flags->security.insecure) WarnInsecure("agent");
    options.agent_id = flags->id;
    if (options.agent_id.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      options.agent_id = host;
    }
    options.pool = flags->pool;
    options.labels = flags->labels;
    options.kill_grace_ms = flags->kill_grace_ms;
    options.artifacts.dir = flags->artifact_dir;
    auto cache_size = ParseBytes(flags->artifact_cache_size);
    if (!cache_size || *cache_size == 0) {
      std::cerr << "perfgate agent: --artifact-cache-size '" << flags->artifact_cache_size
                << "' is not a size like 10GiB\n";
      *exit_code = kExitBadInput;
      return;
    }
    options.artifacts.limit_bytes = *cache_size;
    SetDefaultCgroupRoot(flags->cgroup_root);
    v1::HostFingerprint host = ProbeHost();
    std::cerr << "perfgate agent " << options.agent_id << ": " << DescribeHost(host) << "\n"
              << "perfgate agent " << options.agent_id << ": instructions: " << host.instruction_counter_note() << "\n"
              << "perfgate agent " << options.agent_id << ": " << host.memory_note() << "\n";
    AgentWorker worker(options, host);
    OnTerminationSignal([&worker](int) { worker.Stop(); });
    // A refused id is a configuration error; the worker has logged what to do.
    worker.Run();
    *exit_code = worker.refusal().ok() ? kExitPassed : kExitBadInput;
  });
}

}  // namespace perfgate
