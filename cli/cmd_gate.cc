#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_join.h"
#include "cli/artifact_upload.h"
#include "cli/commands.h"
#include "cli/gate_client.h"
#include "cli/judge_flags.h"
#include "cli/local_cluster.h"
#include "cli/report_output.h"
#include "cli/security_flags.h"
#include "cli/signals.h"
#include "core/exit_codes.h"
#include "core/report.h"
#include "core/suite.h"

namespace perfgate {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

}  // namespace

void AddGateCommand(CLI::App& app, int* exit_code) {
  auto* cmd =
      app.add_subcommand("gate",
                         "Run a suite for one commit and decide pass or fail (the PR check).\n"
                         "Without --coordinator it starts the embedded default: a coordinator and local agents on\n"
                         "loopback (real gRPC) with a SQLite file in --state-dir, and stops them when done.");
  struct Flags {
    std::string suite;
    std::string coordinator;
    std::string commit;
    std::string branch;
    std::string state_dir = ".perfgate";
    int local_agents = 2;
    std::vector<std::string> artifacts;
    ReportFlags report;
    JudgeFlags judge;
    ClientSecurityFlags security;
    std::vector<SizeFlag> sizes = {{"--max-submit-size", "", &MessageLimits::submit_bytes}};
  };
  auto flags = std::make_shared<Flags>();
  cmd->add_option("--suite", flags->suite, "suite file (YAML)")->required();
  cmd->add_option("--coordinator", flags->coordinator, "host:port of a running coordinator");
  cmd->add_option("--commit", flags->commit, "commit under test (default: $GITHUB_SHA)");
  cmd->add_option("--branch", flags->branch, "branch of the commit (default: $GITHUB_REF_NAME)");
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
  cmd->footer(kExitCodesHelp);
  cmd->callback([flags, exit_code] {
    auto judged = LoadJudgedSuite(flags->suite, flags->judge);
    if (judged.ok()) {
      if (auto s = AddArtifactFlags(flags->artifacts, &judged->suite); !s.ok()) judged = s;
    }
    if (!judged.ok()) {
      std::cerr << "perfgate gate: " << judged.status().message() << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    v1::Suite* suite = &judged->suite;
    Policy* policy = &judged->policy;
    Baselines* baselines = &judged->baselines;
    static Interrupt interrupt;
    OnTerminationSignal([](int) { interrupt.Fire(); });

    GateClientOptions client;
    if (auto s = ParseSizeFlags(flags->sizes, &client.limits); !s.ok()) {
      std::cerr << "perfgate gate: " << s.message() << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    std::unique_ptr<LocalCluster> cluster;
    std::string address = flags->coordinator;
    if (!address.empty()) {
      auto security = LoadClientSecurity(flags->security, address);
      if (!security.ok()) {
        std::cerr << "perfgate gate: " << security.status().message() << "\n";
        *exit_code = kExitBadInput;
        return;
      }
      client.security = *std::move(security);
      if (flags->security.insecure) WarnInsecure("gate");
    } else {
      LocalClusterOptions options;
      options.state_dir = flags->state_dir;
      options.agents = flags->local_agents;
      auto started = LocalCluster::Start(options);
      if (!started.ok()) {
        std::cerr << "perfgate gate: cannot start the embedded coordinator: " << started.status().message() << "\n";
        *exit_code = kExitInfra;
        return;
      }
      cluster = *std::move(started);
      address = cluster->address();
      client.security = cluster->submitter();
      std::cerr << "perfgate: embedded coordinator on " << address << " with " << flags->local_agents
                << " local agents (store " << flags->state_dir << "/perfgate.db, agent log " << cluster->log_path()
                << ")\n";
    }
    v1::SubmitRunRequest request;
    *request.mutable_suite() = *suite;
    request.set_commit(flags->commit.empty() ? EnvOr("GITHUB_SHA", "") : flags->commit);
    request.set_branch(flags->branch.empty() ? EnvOr("GITHUB_REF_NAME", "") : flags->branch);
    client.coordinator = address;
    client.tty = isatty(STDERR_FILENO);
    auto fail_infra = [&](const absl::Status& status) {
      std::cerr << "perfgate gate: " << status.message() << "\n";
      *exit_code = status.code() == absl::StatusCode::kInvalidArgument ? kExitBadInput : kExitInfra;
    };
    if (auto s = ResolveArtifacts(client, cluster != nullptr, suite); !s.ok()) return fail_infra(s);
    *request.mutable_suite() = *suite;

    auto run = SubmitAndWatch(client, request, &interrupt);
    if (!run.ok()) return fail_infra(run.status());
    if (auto s = FetchHistory(client, *run, *policy, baselines); !s.ok()) return fail_infra(s);
    // Known only now: in embedded mode the agents register while the run starts.
    if (run->state() != v1::RUN_STATE_CANCELLED) {
      if (auto s = CheckBaselinePools(*policy, *baselines->known_pools, *run); !s.ok()) return fail_infra(s);
    }
    GateReport report = BuildGateReport(*run, *baselines, *policy);

    // A suspected regression is measured again before it fails the gate.
    for (uint32_t round = 0; round < policy->confirm && run->state() != v1::RUN_STATE_CANCELLED; ++round) {
      const std::vector<std::string> suspects = SuspectedRegressions(report);
      if (suspects.empty()) break;
      std::cerr << "perfgate: re-measuring " << suspects.size()
                << " case(s) with a suspected regression: " << absl::StrJoin(suspects, ", ") << "\n";
      // Measured after the first run, with twice the samples so that its own
      // median is steadier; A/B cases keep their variants, so base and head
      // are interleaved again on one agent. A regression must show in both.
      v1::SubmitRunRequest again = request;
      again.mutable_suite()->clear_cases();
      for (const auto& c : suite->cases()) {
        if (std::find(suspects.begin(), suspects.end(), c.name()) == suspects.end()) continue;
        v1::CaseSpec* spec = again.mutable_suite()->add_cases();
        *spec = c;
        spec->set_repeats(2 * std::max<uint32_t>(1, c.repeats()));
      }
      again.set_branch(absl::StrCat(request.branch(), "#confirm"));  // never part of the main-branch history
      auto confirmation = SubmitAndWatch(client, again, &interrupt);
      if (!confirmation.ok()) return fail_infra(confirmation.status());
      ApplyConfirmation(&report, *confirmation, *baselines, *policy);
    }
    if (run->state() != v1::RUN_STATE_CANCELLED) {
      v1::ReportVerdictRequest verdict;
      verdict.set_run_id(run->run_id());
      verdict.set_passed(report.passed);
      for (const auto& c : report.cases) {
        auto* cv = verdict.add_cases();
        cv->set_case_name(c.name);
        cv->set_verdict(VerdictName(c.verdict));
      }
      for (const auto& rule : report.failed_rules) verdict.add_failed_rules(rule);
      // The verdict stands whether or not the coordinator hears of it.
      if (auto s = ReportVerdict(client, verdict); !s.ok()) {
        std::cerr << "perfgate: warning: could not record the verdict with the coordinator: " << s.message() << "\n";
      }
    }
    if (cluster) cluster->Shutdown();
    if (!EmitReport(report, flags->report)) {
      *exit_code = kExitInfra;
      return;
    }
    *exit_code = report.exit_code;
  });
}

}  // namespace perfgate
