// How much the agent's instrument costs: a trivial case (/bin/true) spawned
// directly with posix_spawn + waitpid, against the same case through the
// executor without cgroups (rusage and process groups, the old path), with
// a cgroup per run (peak memory and leftover processes by group), and
// through the full case runner. All are interleaved in one loop so machine
// noise hits them alike; the table quotes ratios of medians measured side
// by side, and the peak memory each executor path reports for /bin/true.
// Where this runs as root, also the executor and the case runner with the
// case run as `nobody` (--case-user): the switch in the child, and the case
// user's scratch folder, and the executor as `nobody` without its task
// limit (--case-max-tasks 0). Also: the agent's own CPU while a case sleeps,
// which must be near zero (no busy polling).
//
//   agent_overhead [--iterations N] [--json FILE]
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/case_runner.h"
#include "agent/case_user.h"
#include "agent/executor.h"
#include "agent/host_fingerprint.h"
#include "bench/bench_cli.h"
#include "core/stats.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double SpawnDirect(const char* program) {
  const auto start = Clock::now();
  pid_t pid;
  char* argv[] = {const_cast<char*>(program), nullptr};
  if (posix_spawn(&pid, program, nullptr, nullptr, argv, environ) != 0) return -1;
  int status;
  waitpid(pid, &status, 0);
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double ThreadCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

constexpr char kProgram[] = "/bin/true";

// Each path's spawn-to-reap time, and what the executor reported, per iteration.
struct Samples {
  std::vector<double> direct, executor, executor_no_groups, runner;
  std::vector<double> executor_case_user, runner_case_user;  // empty where no case user can be had
  std::vector<double> executor_case_user_unlimited;          // the same without its task limit (--case-max-tasks 0)
  std::vector<double> reported, reported_no_groups;  // wall_time the executor reported
  std::vector<double> peak, peak_no_groups;          // peak memory it reported, bytes
};

double SecondsSince(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Every path in turn, `iterations` times, so machine noise hits them alike.
Samples MeasurePaths(int iterations) {
  perfgate::ExecSpec exec;
  exec.argv = {kProgram};
  perfgate::v1::CaseSpec spec;
  spec.set_name("true");
  spec.add_argv(kProgram);
  spec.set_repeats(1);
  spec.set_warmup(0);
  const perfgate::v1::HostFingerprint host = perfgate::ProbeHost();
  const perfgate::CgroupParent no_groups = perfgate::CgroupParent::Detect("none");
  perfgate::ExecSpec exec_no_groups = exec;
  exec_no_groups.cgroups = &no_groups;
  const absl::StatusOr<perfgate::CaseUser> user = perfgate::LookUpCaseUser("nobody");
  perfgate::ExecSpec exec_as_user = exec;
  perfgate::ExecSpec exec_as_unlimited_user = exec;
  perfgate::CaseRunOptions as_user;
  perfgate::CaseUser unlimited;
  if (user.ok()) {
    exec_as_user.user = &*user;
    as_user.user = &*user;
    unlimited = *user;
    unlimited.max_tasks = 0;
    exec_as_unlimited_user.user = &unlimited;
  }
  Samples s;
  for (int i = 0; i < iterations; ++i) {
    s.direct.push_back(SpawnDirect(kProgram));
    auto t0 = Clock::now();
    const perfgate::ExecResult old_path = perfgate::Execute(exec_no_groups);
    s.executor_no_groups.push_back(SecondsSince(t0));
    s.peak_no_groups.push_back(static_cast<double>(old_path.peak_rss_bytes));
    s.reported_no_groups.push_back(old_path.wall_s);
    t0 = Clock::now();
    const perfgate::ExecResult r = perfgate::Execute(exec);
    s.executor.push_back(SecondsSince(t0));
    s.reported.push_back(r.wall_s);
    s.peak.push_back(static_cast<double>(r.peak_rss_bytes));
    t0 = Clock::now();
    perfgate::RunCase(spec, host, {});
    s.runner.push_back(SecondsSince(t0));
    if (!user.ok()) continue;
    // Alternating which of the two goes first: the first after the case runner read 60 us slower.
    for (const bool limited : {i % 2 == 0, i % 2 != 0}) {
      t0 = Clock::now();
      perfgate::Execute(limited ? exec_as_user : exec_as_unlimited_user);
      (limited ? s.executor_case_user : s.executor_case_user_unlimited).push_back(SecondsSince(t0));
    }
    t0 = Clock::now();
    perfgate::RunCase(spec, host, as_user);
    s.runner_case_user.push_back(SecondsSince(t0));
  }
  return s;
}

// The agent's own CPU while a case sleeps for a second.
double AgentCpuDuringSleep() {
  perfgate::ExecSpec sleeper;
  sleeper.argv = {"/bin/sleep", "1"};
  const double cpu_before = ThreadCpuSeconds();
  perfgate::Execute(sleeper);
  return ThreadCpuSeconds() - cpu_before;
}

struct Figures {
  perfgate::Summary direct, executor, executor_no_groups, runner, reported, reported_no_groups, peak, peak_no_groups;
  double agent_cpu_s = 0;
  std::optional<perfgate::Summary> executor_case_user, runner_case_user, executor_case_user_unlimited;
};

Figures SummarizeAll(const Samples& s, double agent_cpu_s) {
  using perfgate::Summarize;
  Figures f{Summarize(s.direct),
            Summarize(s.executor),
            Summarize(s.executor_no_groups),
            Summarize(s.runner),
            Summarize(s.reported),
            Summarize(s.reported_no_groups),
            Summarize(s.peak),
            Summarize(s.peak_no_groups),
            agent_cpu_s,
            std::nullopt,
            std::nullopt,
            std::nullopt};  // the case user's, below
  if (!s.executor_case_user.empty()) {
    f.executor_case_user = Summarize(s.executor_case_user);
    f.runner_case_user = Summarize(s.runner_case_user);
    f.executor_case_user_unlimited = Summarize(s.executor_case_user_unlimited);
  }
  return f;
}

void PrintTable(const Figures& f, int iterations, const perfgate::CgroupParent& groups) {
  std::printf("agent measurement overhead: /bin/true, %d interleaved iterations\n", iterations);
  std::printf("%s\n\n", groups.description().c_str());
  std::printf("%-34s %12s %12s %10s\n", "path", "median", "MAD", "vs direct");
  auto row = [&](const char* name, const perfgate::Summary& s) {
    std::printf("%-34s %9.1f us %9.1f us %9.2fx\n", name, s.median * 1e6, s.mad * 1e6, s.median / f.direct.median);
  };
  row("posix_spawn + waitpid (direct)", f.direct);
  row("executor, no cgroup (old path)", f.executor_no_groups);
  row("executor, cgroup per run", f.executor);
  row("case runner: RunCase(), 1 sample", f.runner);
  if (f.executor_case_user) {
    row("executor, cgroup, as case user", *f.executor_case_user);
    row("  the same, no task limit", *f.executor_case_user_unlimited);
    row("case runner, as case user", *f.runner_case_user);
  }
  row("wall_time reported, no cgroup", f.reported_no_groups);
  row("wall_time reported, cgroup per run", f.reported);
  std::printf("\ncost of the cgroup per run: %.1f us (%.2fx the old executor path)\n",
              (f.executor.median - f.executor_no_groups.median) * 1e6, f.executor.median / f.executor_no_groups.median);
  std::printf("peak memory of /bin/true: %.2f MiB (%s) vs %.2f MiB (%s, old path)\n", f.peak.median / (1 << 20),
              perfgate::MemorySourceName(groups.memory_source()), f.peak_no_groups.median / (1 << 20),
              perfgate::MemorySourceName(perfgate::MemorySource::kRusage));
  if (f.executor_case_user) {
    std::printf("cost of --case-user: executor %.1f us (%.2fx), case runner %.1f us (%.2fx)\n",
                (f.executor_case_user->median - f.executor.median) * 1e6, f.executor_case_user->median / f.executor.median,
                (f.runner_case_user->median - f.runner.median) * 1e6, f.runner_case_user->median / f.runner.median);
    std::printf("cost of its task limit (--case-max-tasks): %.1f us (%.2fx the executor as case user without it)\n",
                (f.executor_case_user->median - f.executor_case_user_unlimited->median) * 1e6,
                f.executor_case_user->median / f.executor_case_user_unlimited->median);
  } else {
    std::printf("--case-user not measured: needs root and a user 'nobody'\n");
  }
  std::printf("\nagent CPU while a case sleeps 1 s: %.3f ms\n", f.agent_cpu_s * 1e3);
}

void WriteJson(const Figures& f, int iterations, const perfgate::CgroupParent& groups, const std::string& path) {
  auto summary = [](const perfgate::Summary& s) {
    return nlohmann::json{{"median_s", s.median}, {"mad_s", s.mad}, {"min_s", s.min}, {"max_s", s.max}, {"n", s.n}};
  };
  const double direct = f.direct.median;
  nlohmann::json doc = {{"benchmark", "agent_overhead"},
                        {"case", kProgram},
                        {"iterations", iterations},
                        {"direct", summary(f.direct)},
                        {"executor", summary(f.executor)},
                        {"executor_no_cgroup", summary(f.executor_no_groups)},
                        {"memory_source", perfgate::MemorySourceName(groups.memory_source())},
                        {"peak_memory_true_bytes", f.peak.median},
                        {"peak_memory_true_no_cgroup_bytes", f.peak_no_groups.median},
                        {"case_runner", summary(f.runner)},
                        {"reported_wall_time", summary(f.reported)},
                        {"reported_wall_time_no_cgroup", summary(f.reported_no_groups)},
                        {"ratio_executor_vs_direct", f.executor.median / direct},
                        {"ratio_executor_no_cgroup_vs_direct", f.executor_no_groups.median / direct},
                        {"ratio_cgroup_vs_no_cgroup", f.executor.median / f.executor_no_groups.median},
                        {"ratio_case_runner_vs_direct", f.runner.median / direct},
                        {"ratio_reported_vs_direct", f.reported.median / direct},
                        {"agent_cpu_during_1s_sleep_s", f.agent_cpu_s}};
  if (f.executor_case_user) {
    doc["executor_case_user"] = summary(*f.executor_case_user);
    doc["case_runner_case_user"] = summary(*f.runner_case_user);
    doc["executor_case_user_no_task_limit"] = summary(*f.executor_case_user_unlimited);
    doc["ratio_task_limit_vs_none"] = f.executor_case_user->median / f.executor_case_user_unlimited->median;
    doc["ratio_case_user_vs_executor"] = f.executor_case_user->median / f.executor.median;
    doc["ratio_case_user_vs_case_runner"] = f.runner_case_user->median / f.runner.median;
  }
  std::ofstream(path) << doc.dump(2) << "\n";
  std::printf("wrote %s\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 300;
  std::string json_path;
  CLI::App app("How much the agent's instrument costs against a direct spawn of /bin/true.", "agent_overhead");
  app.add_option("--iterations", iterations, "spawns of each path, interleaved")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--json", json_path, "write the figures as JSON to FILE");
  if (std::optional<int> exit_code = perfgate::bench::ParseOrExit(app, argc, argv)) return *exit_code;
  const Samples samples = MeasurePaths(iterations);
  const Figures figures = SummarizeAll(samples, AgentCpuDuringSleep());
  const perfgate::CgroupParent& groups = perfgate::DefaultCgroupParent();
  PrintTable(figures, iterations, groups);
  if (!json_path.empty()) WriteJson(figures, iterations, groups, json_path);
  return 0;
}
