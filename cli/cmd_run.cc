#include <unistd.h>

#include <chrono>
#include <iostream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/case_user.h"
#include "agent/cgroup.h"
#include "agent/host_fingerprint.h"
#include "agent/run_supplies.h"
#include "cli/commands.h"
#include "cli/judge_flags.h"
#include "cli/local_run.h"
#include "cli/report_output.h"
#include "cli/signals.h"
#include "core/exit_codes.h"
#include "core/judge.h"
#include "core/suite.h"
#include "core/utf8.h"
#include "gate/artifact_upload.h"
#include "gate/requests.h"
#include "transport/transport.h"

namespace perfgate {
namespace {

struct RunFlags {
  std::string suite;
  std::optional<std::vector<std::string>> ad_hoc;  // the words after `--`
  std::vector<std::string> cases;
  uint32_t repeats = 0;
  std::optional<uint32_t> warmup;
  std::vector<std::string> labels;
  std::string pool = "local";
  ReportFlags report;
  JudgeSettings judge;
  std::string cgroup_root;
  std::string case_user;
  uint64_t case_max_tasks = kDefaultCaseMaxTasks;
};

// The suite file, or the ad-hoc command as a suite, with its policy and baselines.
absl::StatusOr<JudgedSuite> LoadWhatToRun(const RunFlags& flags) {
  if (!flags.ad_hoc) {
    if (flags.suite.empty()) return absl::InvalidArgumentError("give a suite file, or -- CMD ARGS... to measure");
    return LoadJudgedSuite(flags.suite, flags.judge);
  }
  if (!flags.suite.empty()) {
    return absl::InvalidArgumentError("give a suite file or -- CMD ARGS..., not both (" + flags.suite + ")");
  }
  if (flags.ad_hoc->empty()) return absl::InvalidArgumentError("nothing to measure after --");
  if (!flags.cases.empty()) return absl::InvalidArgumentError("--case picks cases of a suite file, not of -- CMD");
  JudgedSuite judged;
  judged.suite = AdHocSuite(*flags.ad_hoc);
  auto policy = ResolvePolicy(judged.suite, flags.judge);
  if (!policy.ok()) return policy.status();
  judged.policy = *std::move(policy);
  auto baselines = LoadExpectedBaselines(judged.policy);
  if (!baselines.ok()) return baselines.status();
  judged.baselines = *std::move(baselines);
  if (auto s = ApplyVariants(flags.judge, judged.policy.compare.ab_min_samples, &judged.suite); !s.ok()) return s;
  return judged;
}

// Every case --case names is in the suite.
absl::Status CheckCasesExist(const RunFlags& flags, const v1::Suite& suite) {
  for (const auto& name : flags.cases) {
    bool found = false;
    for (const auto& c : suite.cases()) found |= c.name() == name;
    if (!found) {
      std::vector<std::string> names;
      for (const auto& c : suite.cases()) names.push_back(c.name());
      return absl::InvalidArgumentError(absl::StrCat(flags.suite, " has no case '", EscapeControls(name),
                                                     "'; its cases: ", EscapeControls(absl::StrJoin(names, ", "))));
    }
  }
  return absl::OkStatus();
}

// In a CI log, a case's phases get a line of their own only this long after
// the last line: a log that says nothing for minutes looks hung.
constexpr auto kQuietLogLimit = std::chrono::seconds(10);

// The run's options from the flags; progress a rewritten line on a terminal,
// a plain line a case in CI logs, and its phase when the log was quiet long.
LocalRunOptions RunOptions(const RunFlags& flags, const CancelToken* cancel, bool tty) {
  LocalRunOptions options;
  options.cases.insert(flags.cases.begin(), flags.cases.end());
  options.repeats = flags.repeats;
  options.warmup = flags.warmup;
  options.labels = flags.labels;
  options.pool = flags.pool;
  options.cancel = cancel;
  options.progress = [tty, last = std::string(), last_line_at = std::chrono::steady_clock::now()](
                         int index, int total, const std::string& name, const std::string& phase) mutable {
    const auto now = std::chrono::steady_clock::now();
    if (tty) {
      std::cerr << "\r\033[K[" << index << "/" << total << "] " << EscapeControls(name) << ": " << phase << std::flush;
    } else if (name != last) {
      std::cerr << "perfgate run: [" << index << "/" << total << "] " << EscapeControls(name) << "\n";
      last = name;
      last_line_at = now;
    } else if (now - last_line_at >= kQuietLogLimit) {
      std::cerr << "perfgate run: [" << index << "/" << total << "] " << EscapeControls(name) << ": " << phase << "\n";
      last_line_at = now;
    }
  };
  options.skipped = [](const std::string& name, const std::string& why) {
    std::cerr << "perfgate run: skipped " << EscapeControls(name) << ": " << EscapeControls(why) << "\n";
  };
  return options;
}

// A suspected regression fails the run only if every re-measurement
// (policy.confirm of them) regresses too, as in the gate: by hand, on a noisy
// machine, one unlucky set of samples must not send an engineer hunting a
// regression that is not there. Each round runs the suspects alone, with
// twice the samples.
void ConfirmHere(const JudgedSuite& judged, const v1::HostFingerprint& host, LocalRunOptions options,
                 GateReport* report) {
  v1::Suite ran = judged.suite;
  for (auto& spec : *ran.mutable_cases()) spec = WithOverrides(spec, options);
  options.cases.clear();
  options.repeats = 0;
  options.warmup.reset();
  for (uint32_t round = 0; round < judged.policy.confirm; ++round) {
    const std::vector<std::string> suspects = SuspectedRegressions(*report);
    if (suspects.empty()) break;
    std::cerr << "perfgate run: re-measuring " << suspects.size()
              << " case(s) with a suspected regression: " << EscapeControls(absl::StrJoin(suspects, ", ")) << "\n";
    const v1::Suite again = ConfirmationSuite(ran, *report, suspects, MessageLimits().complete_bytes);
    const v1::Run confirmation = RunLocally(again, host, options);
    if (isatty(STDERR_FILENO)) std::cerr << "\r\033[K" << std::flush;
    ApplyConfirmation(report, confirmation, judged.baselines, judged.policy);
  }
}

void RunHere(const RunFlags& flags, int* exit_code) {
  auto judged = LoadWhatToRun(flags);
  absl::Status cases = judged.ok() ? CheckCasesExist(flags, judged->suite) : judged.status();
  if (cases.ok()) cases = CheckReportPaths(flags.report);
  if (cases.ok()) cases = CheckTempRoot();
  std::optional<CaseUser> user;
  if (cases.ok() && !flags.case_user.empty()) {
    absl::StatusOr<CaseUser> found = LookUpCaseUser(flags.case_user);
    if (found.ok()) {
      user = *std::move(found);
      user->max_tasks = flags.case_max_tasks;
    }
    cases = found.status();
  }
  if (!cases.ok()) {
    std::cerr << "perfgate run: " << cases.message() << "\n";
    *exit_code = kExitBadInput;
    return;
  }
  UseArtifactsInPlace(&judged->suite);  // by hand, the suite's `artifacts:` folders are read where they are
  // By hand, a case this machine cannot run is skipped, not a failure.
  judged->policy.fail_on.erase(Verdict::kNoCapableAgent);
  judged->policy.fail_unmeasured_run = false;
  static CancelToken cancel;
  OnTerminationSignal([](int) { cancel.Cancel(); });
  SetDefaultCgroupRoot(flags.cgroup_root);
  if (user) {
    if (absl::Status isolated = IsolateCaseUser(*user, DefaultCgroupParent()); !isolated.ok()) {
      std::cerr << "perfgate run: " << isolated.message() << "\n";
      *exit_code = kExitBadInput;
      return;
    }
  }
  const v1::HostFingerprint host = ProbeHost();
  std::cerr << "perfgate run: " << DescribeHost(host) << "\n"
            << "perfgate run: " << host.memory_note() << "\n";
  if (std::string killed = DefaultCgroupParent().DescribeKilledAtStart(); !killed.empty()) {
    std::cerr << "perfgate run: " << killed << "\n";
  }
  const bool tty = isatty(STDERR_FILENO);
  LocalRunOptions options = RunOptions(flags, &cancel, tty);
  options.ab_min_samples = judged->policy.compare.ab_min_samples;
  options.user = user ? &*user : nullptr;
  const v1::Run run = RunLocally(judged->suite, host, options);
  if (tty) std::cerr << "\r\033[K" << std::flush;
  GateReport report = BuildGateReport(run, judged->baselines, judged->policy, /*complete_run=*/flags.cases.empty());
  ConfirmHere(*judged, host, options, &report);
  const CommandSummaryReporter summary;
  if (!EmitReport(report, flags.report, flags.ad_hoc ? &summary : nullptr)) {
    *exit_code = kExitInfra;
    return;
  }
  *exit_code = report.exit_code;
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code, std::optional<std::vector<std::string>> ad_hoc) {
  auto* cmd = app.add_subcommand(
      "run",
      "Run cases by hand on this machine with the agent's executor; no coordinator needed.\n"
      "Prints per-metric median, spread (MAD) and sample count.\n"
      "perfgate run [FLAGS] -- CMD ARGS... measures one command (10 samples after 1 warm-up unless\n"
      "--repeats/--warmup say otherwise), as hyperfine would; --json, --baseline and A/B flags apply.");
  auto flags = std::make_shared<RunFlags>();
  flags->ad_hoc = std::move(ad_hoc);
  cmd->add_option("suite", flags->suite, "suite file (YAML); or -- CMD ARGS... after the flags");
  cmd->add_option("--case", flags->cases, "run only this case (repeatable)");
  cmd->add_option("--repeats", flags->repeats, "measured runs per case, overriding the suite")
      ->check(CLI::Range(1u, kMaxSamplesPerResult));
  cmd->add_option("--warmup", flags->warmup, "unrecorded runs before the measured ones, overriding the suite")
      ->check(CLI::Range(uint32_t{0}, kMaxWarmup));
  cmd->add_option("--label", flags->labels, "labels this machine has, for cases that require them (repeatable)");
  cmd->add_option("--pool", flags->pool, "testbed whose expected files apply (the suite's gate.expected)")
      ->capture_default_str();
  AddJudgeFlags(cmd, &flags->judge, /*with_history=*/false);
  AddReportFlags(cmd, &flags->report, /*metrics_default=*/true);
  cmd->add_option("--cgroup-root", flags->cgroup_root, kCgroupRootHelp);
  CLI::Option* case_user = cmd->add_option("--case-user", flags->case_user, kCaseUserHelp);
  cmd->add_option("--case-max-tasks", flags->case_max_tasks, kCaseMaxTasksHelp)
      ->capture_default_str()
      ->needs(case_user);
  cmd->footer(kExitCodesHelp);
  cmd->callback([flags, exit_code] { RunHere(*flags, exit_code); });
}

}  // namespace perfgate
