#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <limits>

#include "absl/strings/str_cat.h"
#include "agent/case_user.h"
#include "agent/cgroup.h"
#include "agent/executor.h"
#include "agent/host_fingerprint.h"
#include "agent/run_supplies.h"
#include "agent/worker.h"
#include "cli/commands.h"
#include "cli/security_flags.h"
#include "cli/service_config.h"
#include "cli/signals.h"
#include "cli/value_checks.h"
#include "core/exit_codes.h"
#include "core/units.h"

namespace perfgate {
namespace {

struct AgentFlags {
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
  std::string case_user;
  uint64_t case_max_tasks = kDefaultCaseMaxTasks;
};

void AddAgentFlags(CLI::App* cmd, AgentFlags* flags) {
  cmd->add_option("--coordinator", flags->coordinator, "coordinator host:port")
      ->envname("PERFGATE_COORDINATOR")
      ->required()
      ->check(AddressCheck(/*port_zero_picks=*/false, /*empty_allowed=*/false));
  cmd->add_option("--id", flags->id,
                  "agent id, stable across restarts (default: the host name); "
                  "an id another live agent holds is refused; a dead agent's id is taken over")
      ->check(AgentNameCheck("id"));
  cmd->add_option("--pool", flags->pool, "testbed: agents of one pool have comparable hardware")
      ->capture_default_str()
      ->check(AgentNameCheck("pool"));
  cmd->add_option("--label", flags->labels, "a label cases can require (repeatable)")->check(AgentNameCheck("label"));
  // Past the range, -5 read as 2^64 - 5 and the deadline's arithmetic
  // overflowed to no grace at all.
  cmd->add_option("--kill-grace-ms", flags->kill_grace_ms,
                  "SIGTERM to SIGKILL grace when a case must stop (0 to 600000)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{0}, uint64_t{600'000}));
  AddClientSecurityFlags(cmd, &flags->security);
  AddSizeFlags(cmd, &flags->sizes, MessageLimits{});
  cmd->add_option("--cgroup-root", flags->cgroup_root, kCgroupRootHelp);
  CLI::Option* case_user = cmd->add_option("--case-user", flags->case_user, kCaseUserHelp);
  cmd->add_option("--case-max-tasks", flags->case_max_tasks, kCaseMaxTasksHelp)
      ->capture_default_str()
      ->needs(case_user);
  cmd->add_option("--artifact-dir", flags->artifact_dir, "folder for the artifact cache and the cases' folders")
      ->capture_default_str();
  cmd->add_option("--artifact-cache-size", flags->artifact_cache_size,
                  "most bytes of artifacts kept (least recently used go first), e.g. 10GiB")
      ->capture_default_str()
      ->check(SizeCheck(1, std::numeric_limits<uint64_t>::max()));
}

// This host's name: the agent's id when --id is not given.
std::string HostName() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// The user cases run as, when --case-user names one; refused if that user
// could read the agent's token or key. REQUIRES: called before
// HideCredentialsFromCases(), which blanks $PERFGATE_TOKEN_FILE.
absl::Status SetCaseUser(const AgentFlags& flags, WorkerOptions* options) {
  if (flags.case_user.empty()) return absl::OkStatus();
  absl::StatusOr<CaseUser> user = LookUpCaseUser(flags.case_user);
  if (!user.ok()) return user.status();
  const char* token_file = std::getenv("PERFGATE_TOKEN_FILE");
  std::vector<std::string> secrets = {flags.security.token_file, flags.security.tls_key};
  if (flags.security.token_file.empty() && token_file) secrets.push_back(token_file);
  if (absl::Status hidden = CheckUnreadableBy(*user, secrets); !hidden.ok()) return hidden;
  user->max_tasks = flags.case_max_tasks;
  options->case_user = *std::move(user);
  return absl::OkStatus();
}

// The worker's options from the agent's flags but its cache size (SetCacheSize), or what is wrong with them.
absl::StatusOr<WorkerOptions> OptionsFrom(const AgentFlags& flags) {
  WorkerOptions options;
  options.coordinator = flags.coordinator;
  auto security = LoadClientSecurity(flags.security, flags.coordinator);
  if (!security.ok()) return security.status();
  if (absl::Status sizes = ParseSizeFlags(flags.sizes, &options.limits); !sizes.ok()) return sizes;
  options.security = *std::move(security);
  options.agent_id = flags.id.empty() ? HostName() : flags.id;
  options.pool = flags.pool;
  options.labels = flags.labels;
  options.kill_grace_ms = flags.kill_grace_ms;
  options.artifacts.dir = flags.artifact_dir;
  if (absl::Status user = SetCaseUser(flags, &options); !user.ok()) return user;
  if (absl::Status tmp = CheckTempRoot(); !tmp.ok()) return tmp;
  return options;
}

absl::Status SetCacheSize(const AgentFlags& flags, WorkerOptions* options) {
  auto cache_size = ParseBytes(flags.artifact_cache_size);
  if (!cache_size) {  // and not 0: SizeCheck
    return absl::InvalidArgumentError(
        absl::StrCat("--artifact-cache-size '", flags.artifact_cache_size, "' is not a size"));
  }
  options->artifacts.limit_bytes = *cache_size;
  return absl::OkStatus();
}

// Whom cases run as, for the start-up lines: an admin reads there whether a
// case could read the agent's token.
std::string DescribeCaseUser(const std::optional<CaseUser>& user) {
  if (user) {
    return absl::StrCat("cases run as user '", user->name, "' (uid ", user->uid, ", ", DescribeGroups(*user), "), ",
                        user->max_tasks ? absl::StrCat("at most ", user->max_tasks, " tasks each") : "tasks unlimited");
  }
  if (geteuid() != 0) return absl::StrCat("cases run as this agent's user (uid ", geteuid(), ")");
  return "cases run as root, as this agent does, and can read its token file; --case-user USER runs them as an "
         "unprivileged user";
}

// Its token and key files when every user of the host may read them (with
// --case-user that is refused before this).
void WarnOfReadableCredentials(const AgentFlags& flags) {
  const char* env_file = std::getenv("PERFGATE_TOKEN_FILE");
  const std::string token_file = !flags.security.token_file.empty() ? flags.security.token_file
                                 : env_file                         ? env_file
                                                                    : "";
  for (auto [path, flag] : {std::pair{token_file, "--token-file"}, std::pair{flags.security.tls_key, "--tls-key"}}) {
    if (auto w = WorldReadableWarning(path, flag)) std::cerr << "perfgate agent: warning: " << *w << "\n";
  }
}

// Serves the coordinator until stopped by a signal or refused; the exit code.
int Serve(const AgentFlags& flags) {
  absl::StatusOr<WorkerOptions> options = OptionsFrom(flags);
  if (options.ok()) WarnOfReadableCredentials(flags);
  HideCredentialsFromCases();  // read by now, if at all
  if (options.ok() && flags.security.insecure) WarnInsecureClient("agent");
  const absl::Status cache = options.ok() ? SetCacheSize(flags, &*options) : options.status();
  if (!cache.ok()) {
    std::cerr << "perfgate agent: " << cache.message() << "\n";
    return kExitBadInput;
  }
  SetDefaultCgroupRoot(flags.cgroup_root);
  if (options->case_user) {
    if (absl::Status isolated = IsolateCaseUser(*options->case_user, DefaultCgroupParent()); !isolated.ok()) {
      std::cerr << "perfgate agent: " << isolated.message() << "\n";
      return kExitBadInput;
    }
  }
  v1::HostFingerprint host = ProbeHost();
  const std::string& id = options->agent_id;
  std::cerr << "perfgate agent " << id << ": " << DescribeHost(host) << "\n"
            << "perfgate agent " << id << ": instructions: " << host.instruction_counter_note() << "\n"
            << "perfgate agent " << id << ": " << host.memory_note() << "\n"
            << "perfgate agent " << id << ": " << DescribeCaseUser(options->case_user) << "\n";
  if (std::string killed = DefaultCgroupParent().DescribeKilledAtStart(); !killed.empty()) {
    std::cerr << "perfgate agent " << id << ": " << killed << "\n";
  }
  AgentWorker worker(*options, host);
  OnTerminationSignal([&worker](int) { worker.Stop(); });
  // A refused id is a configuration error; the worker has logged what to do.
  worker.Run();
  return worker.refusal().ok() ? kExitPassed : kExitBadInput;
}

}  // namespace

void AddAgentCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("agent", "Measure cases for a coordinator: register, take leases, run, report.");
  auto flags = std::make_shared<AgentFlags>();
  AddConfigFileOption(cmd);
  AddAgentFlags(cmd, flags.get());
  cmd->footer(kServiceExitCodesHelp);
  cmd->callback([flags, exit_code] { *exit_code = Serve(*flags); });
}

}  // namespace perfgate
