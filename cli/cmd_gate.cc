#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "agent/run_supplies.h"
#include "cli/commands.h"
#include "cli/judge_flags.h"
#include "cli/report_output.h"
#include "cli/security_flags.h"
#include "cli/signals.h"
#include "cli/value_checks.h"
#include "core/exit_codes.h"
#include "core/utf8.h"
#include "gate/run_gate.h"

namespace perfgate {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

struct GateFlags {
  std::string suite;
  std::string coordinator;
  std::string commit;
  std::string branch;
  std::string state_dir = ".perfgate";
  int local_agents = 2;
  std::vector<std::string> artifacts;
  ReportFlags report;
  JudgeSettings judge;
  ClientSecurityFlags security;
  std::vector<SizeFlag> sizes = {{"--max-submit-size", "", &MessageLimits::submit_bytes}};
};

void AddGateFlags(CLI::App* cmd, GateFlags* flags) {
  cmd->add_option("--suite", flags->suite, "suite file (YAML)")->required();
  cmd->add_option("--coordinator", flags->coordinator, "host:port of a running coordinator")
      ->envname("PERFGATE_COORDINATOR")
      ->check(AddressCheck(/*port_zero_picks=*/false, /*empty_allowed=*/true));
  cmd->add_option("--commit", flags->commit, "commit under test (default: $GITHUB_SHA)")->envname("PERFGATE_COMMIT");
  cmd->add_option("--branch", flags->branch, "branch of the commit (default: $GITHUB_REF_NAME)")
      ->envname("PERFGATE_BRANCH");
  cmd->add_option("--state-dir", flags->state_dir, "embedded mode: folder for the SQLite file and agent logs")
      ->capture_default_str();
  cmd->add_option("--local-agents", flags->local_agents, "embedded mode: number of local agents")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--artifacts", flags->artifacts,
                  "[NAME=]DIR: files the cases need, as ${PERFGATE_ARTIFACTS} or ${PERFGATE_ARTIFACTS_NAME} "
                  "(repeatable); uploaded to a remote coordinator, read in place by the embedded one");
  AddClientSecurityFlags(cmd, &flags->security);
  AddSizeFlags(cmd, &flags->sizes, MessageLimits{});
  AddJudgeFlags(cmd, &flags->judge, /*with_history=*/true);
  AddReportFlags(cmd, &flags->report, /*metrics_default=*/false);
}

// The gate's options from its flags and CI's environment, or what is wrong with them.
absl::StatusOr<GateOptions> OptionsFrom(const GateFlags& flags) {
  GateOptions options;
  options.suite_path = flags.suite;
  options.judge = flags.judge;
  options.commit = flags.commit.empty() ? EnvOr("GITHUB_SHA", "") : flags.commit;
  options.branch = flags.branch.empty() ? EnvOr("GITHUB_REF_NAME", "") : flags.branch;
  options.coordinator = flags.coordinator;
  options.artifacts = flags.artifacts;
  options.embedded.state_dir = flags.state_dir;
  options.embedded.agents = flags.local_agents;
  options.client.tty = isatty(STDERR_FILENO);
  options.log = [](const std::string& line) { std::cerr << EscapeControls(line) << "\n"; };  // case names
  if (auto s = ParseSizeFlags(flags.sizes, &options.client.limits); !s.ok()) return s;
  if (!options.coordinator.empty()) {
    auto security = LoadClientSecurity(flags.security, options.coordinator);
    if (!security.ok()) return security.status();
    options.client.security = *std::move(security);
  } else if (absl::Status tmp = CheckTempRoot(); !tmp.ok()) {  // the embedded agents' scratch folders
    return tmp;
  }
  return options;
}

// What the person who set the gate up must fix (exit 2), not the lab: bad
// input, and a token the coordinator refuses (none, unknown, another role).
bool IsConfigurationError(const absl::Status& status) {
  return absl::IsInvalidArgument(status) || absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status);
}

// Runs the gate and writes its reports; the exit code.
int Gate(const GateFlags& flags) {
  absl::StatusOr<GateOptions> options = OptionsFrom(flags);
  const absl::Status paths = options.ok() ? CheckReportPaths(flags.report) : options.status();
  if (!paths.ok()) {
    std::cerr << "perfgate gate: " << paths.message() << "\n";
    return kExitBadInput;
  }
  if (!options->coordinator.empty() && flags.security.insecure) WarnInsecureClient("gate");
  static Interrupt interrupt;
  OnTerminationSignal([](int) { interrupt.Fire(); });
  auto report = RunGate(*options, &interrupt);
  if (!report.ok()) {
    std::cerr << "perfgate gate: " << report.status().message() << "\n";
    return IsConfigurationError(report.status()) ? kExitBadInput : kExitInfra;
  }
  return EmitReport(*report, flags.report) ? report->exit_code : kExitInfra;
}

}  // namespace

void AddGateCommand(CLI::App& app, int* exit_code) {
  auto* cmd =
      app.add_subcommand("gate",
                         "Run a suite for one commit and decide pass or fail (the PR check).\n"
                         "Without --coordinator it starts the embedded default: a coordinator and local agents on\n"
                         "loopback (real gRPC) with a SQLite file in --state-dir, and stops them when done.");
  auto flags = std::make_shared<GateFlags>();
  AddGateFlags(cmd, flags.get());
  cmd->footer(kExitCodesHelp);
  cmd->callback([flags, exit_code] { *exit_code = Gate(*flags); });
}

}  // namespace perfgate
