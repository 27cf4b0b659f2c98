#include <unistd.h>

#include <chrono>
#include <iostream>
#include <set>

#include "agent/case_runner.h"
#include "agent/cgroup.h"
#include "agent/host_fingerprint.h"
#include "cli/artifact_upload.h"
#include "cli/commands.h"
#include "cli/judge_flags.h"
#include "cli/report_output.h"
#include "cli/signals.h"
#include "core/exit_codes.h"
#include "core/report.h"
#include "core/suite.h"

namespace perfgate {

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("run",
                                 "Run cases by hand on this machine with the agent's executor; no coordinator needed.\n"
                                 "Prints per-metric median, spread (MAD) and sample count.");
  struct Flags {
    std::string suite;
    std::vector<std::string> cases;
    uint32_t repeats = 0;
    std::vector<std::string> labels;
    std::string pool = "local";
    ReportFlags report;
    JudgeFlags judge;
    std::string cgroup_root;
  };
  auto flags = std::make_shared<Flags>();
  cmd->add_option("suite", flags->suite, "suite file (YAML)")->required();
  cmd->add_option("--case", flags->cases, "run only this case (repeatable)");
  cmd->add_option("--repeats", flags->repeats, "measured runs per case, overriding the suite")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--label", flags->labels, "labels this machine has, for cases that require them (repeatable)");
  cmd->add_option("--pool", flags->pool, "testbed whose expected files apply (the suite's gate.expected)")
      ->capture_default_str();
  AddJudgeFlags(cmd, &flags->judge, /*with_history=*/false);
  AddReportFlags(cmd, &flags->report, /*metrics_default=*/true);
  cmd->add_option("--cgroup-root", flags->cgroup_root, kCgroupRootHelp);
  cmd->footer(kExitCodesHelp);
  cmd->callback([flags, exit_code] {
    auto judged = LoadJudgedSuite(flags->suite, flags->judge);
    if (!judged.ok()) {
      std::cerr << "perfgate run: " << judged.status().message() << "\n";
      *exit_code = kExitBadInput;
      return;
    }
    v1::Suite* suite = &judged->suite;
    UseArtifactsInPlace(suite);  // by hand, the suite's `artifacts:` folders are read where they are
    Policy* policy = &judged->policy;
    Baselines* baselines = &judged->baselines;
    // By hand, a case this machine cannot run is skipped, not a failure.
    policy->fail_on.erase(Verdict::kNoCapableAgent);
    std::set<std::string> wanted(flags->cases.begin(), flags->cases.end());
    for (const auto& name : wanted) {
      bool found = false;
      for (const auto& c : suite->cases()) found |= c.name() == name;
      if (!found) {
        std::cerr << "perfgate run: " << flags->suite << " has no case '" << name << "'\n";
        *exit_code = kExitBadInput;
        return;
      }
    }
    static CancelToken cancel;
    OnTerminationSignal([](int) { cancel.Cancel(); });

    SetDefaultCgroupRoot(flags->cgroup_root);
    const v1::HostFingerprint host = ProbeHost();
    std::cerr << "perfgate run: " << DescribeHost(host) << "\n"
              << "perfgate run: " << host.memory_note() << "\n";
    v1::Run run;
    run.set_run_id("local");
    run.set_suite_name(suite->name());
    run.set_state(v1::RUN_STATE_FINISHED);
    const bool tty = isatty(STDERR_FILENO);
    int index = 0, total = 0;
    for (const auto& c : suite->cases()) total += wanted.empty() || wanted.count(c.name());
    for (v1::CaseSpec spec : suite->cases()) {
      if (!wanted.empty() && !wanted.count(spec.name())) continue;
      ++index;
      if (flags->repeats) spec.set_repeats(flags->repeats);
      auto* status = run.add_cases();
      status->set_name(spec.name());
      status->set_attempts(1);
      status->set_agent_id("this machine");
      if (cancel.cancelled()) {
        status->set_state(v1::CASE_STATE_CANCELLED);
        continue;
      }
      CaseRunOptions options;
      options.cancel = &cancel;
      options.labels = flags->labels;
      options.progress = [&](const std::string& phase) {
        if (tty)
          std::cerr << "\r\033[K[" << index << "/" << total << "] " << spec.name() << ": " << phase << std::flush;
      };
      if (!tty) std::cerr << "perfgate run: [" << index << "/" << total << "] " << spec.name() << "\n";
      v1::CaseResult result = RunCase(spec, host, options);
      if (tty) std::cerr << "\r\033[K" << std::flush;
      if (result.outcome() == v1::CaseResult::OUTCOME_SKIPPED) {
        std::cerr << "perfgate run: skipped " << spec.name() << ": " << result.error() << "\n";
        status->set_state(v1::CASE_STATE_NO_CAPABLE_AGENT);
        status->set_error(result.error());
        continue;
      }
      status->set_state(result.outcome() == v1::CaseResult::OUTCOME_CANCELLED ? v1::CASE_STATE_CANCELLED
                                                                              : v1::CASE_STATE_DONE);
      status->set_error(result.error());
      result.set_pool(flags->pool);
      *status->mutable_result() = std::move(result);
    }
    if (cancel.cancelled()) run.set_state(v1::RUN_STATE_CANCELLED);
    GateReport report = BuildGateReport(run, *baselines, *policy, /*complete_run=*/wanted.empty());
    if (!EmitReport(report, flags->report)) {
      *exit_code = kExitInfra;
      return;
    }
    *exit_code = report.exit_code;
  });
}

}  // namespace perfgate
