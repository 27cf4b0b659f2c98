// How much the agent's instrument costs: a trivial case (/bin/true) spawned
// directly with posix_spawn + waitpid, against the same case through the
// executor without cgroups (rusage and process groups, the old path), with
// a cgroup per run (peak memory and leftover processes by group), and
// through the full case runner. All are interleaved in one loop so machine
// noise hits them alike; the table quotes ratios of medians measured side
// by side, and the peak memory each executor path reports for /bin/true.
// Also: the agent's own CPU while a case sleeps, which must be near zero
// (no busy polling).
//
//   agent_overhead [--iterations N] [--json FILE]
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/case_runner.h"
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
  const char* program = "/bin/true";
  perfgate::ExecSpec exec;
  exec.argv = {program};
  perfgate::v1::CaseSpec spec;
  spec.set_name("true");
  spec.add_argv(program);
  spec.set_repeats(1);
  spec.set_warmup(0);
  const perfgate::v1::HostFingerprint host = perfgate::ProbeHost();
  const perfgate::CgroupParent no_groups = perfgate::CgroupParent::Detect("none");
  perfgate::ExecSpec exec_no_groups = exec;
  exec_no_groups.cgroups = &no_groups;
  const perfgate::CgroupParent& groups = perfgate::DefaultCgroupParent();

  std::vector<double> direct, executor, executor_no_groups, runner, reported, reported_no_groups, peak, peak_no_groups;
  for (int i = 0; i < iterations; ++i) {
    direct.push_back(SpawnDirect(program));
    auto t0 = Clock::now();
    perfgate::ExecResult old_path = perfgate::Execute(exec_no_groups);
    executor_no_groups.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    peak_no_groups.push_back(static_cast<double>(old_path.peak_rss_bytes));
    reported_no_groups.push_back(old_path.wall_s);
    t0 = Clock::now();
    perfgate::ExecResult r = perfgate::Execute(exec);
    executor.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    reported.push_back(r.wall_s);
    peak.push_back(static_cast<double>(r.peak_rss_bytes));
    t0 = Clock::now();
    perfgate::RunCase(spec, host, {});
    runner.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }

  // The agent's own CPU while a case sleeps for a second.
  perfgate::ExecSpec sleeper;
  sleeper.argv = {"/bin/sleep", "1"};
  const double cpu_before = ThreadCpuSeconds();
  perfgate::Execute(sleeper);
  const double agent_cpu = ThreadCpuSeconds() - cpu_before;

  const auto d = perfgate::Summarize(direct);
  const auto e = perfgate::Summarize(executor);
  const auto n = perfgate::Summarize(executor_no_groups);
  const auto p = perfgate::Summarize(peak);
  const auto pn = perfgate::Summarize(peak_no_groups);
  const auto c = perfgate::Summarize(runner);
  const auto w = perfgate::Summarize(reported);
  const auto wn = perfgate::Summarize(reported_no_groups);
  std::printf("agent measurement overhead: /bin/true, %d interleaved iterations\n", iterations);
  std::printf("%s\n\n", groups.description().c_str());
  std::printf("%-34s %12s %12s %10s\n", "path", "median", "MAD", "vs direct");
  auto row = [&](const char* name, const perfgate::Summary& s) {
    std::printf("%-34s %9.1f us %9.1f us %9.2fx\n", name, s.median * 1e6, s.mad * 1e6, s.median / d.median);
  };
  row("posix_spawn + waitpid (direct)", d);
  row("executor, no cgroup (old path)", n);
  row("executor, cgroup per run", e);
  row("case runner: RunCase(), 1 sample", c);
  row("wall_time reported, no cgroup", wn);
  row("wall_time reported, cgroup per run", w);
  std::printf("\ncost of the cgroup per run: %.1f us (%.2fx the old executor path)\n", (e.median - n.median) * 1e6,
              e.median / n.median);
  std::printf("peak memory of /bin/true: %.2f MiB (%s) vs %.2f MiB (%s, old path)\n", p.median / (1 << 20),
              perfgate::MemorySourceName(groups.memory_source()), pn.median / (1 << 20),
              perfgate::MemorySourceName(perfgate::MemorySource::kRusage));
  std::printf("\nagent CPU while a case sleeps 1 s: %.3f ms\n", agent_cpu * 1e3);

  if (!json_path.empty()) {
    auto summary = [](const perfgate::Summary& s) {
      return nlohmann::json{{"median_s", s.median}, {"mad_s", s.mad}, {"min_s", s.min}, {"max_s", s.max}, {"n", s.n}};
    };
    nlohmann::json doc = {{"benchmark", "agent_overhead"},
                          {"case", program},
                          {"iterations", iterations},
                          {"direct", summary(d)},
                          {"executor", summary(e)},
                          {"executor_no_cgroup", summary(n)},
                          {"memory_source", perfgate::MemorySourceName(groups.memory_source())},
                          {"peak_memory_true_bytes", p.median},
                          {"peak_memory_true_no_cgroup_bytes", pn.median},
                          {"case_runner", summary(c)},
                          {"reported_wall_time", summary(w)},
                          {"reported_wall_time_no_cgroup", summary(wn)},
                          {"ratio_executor_vs_direct", e.median / d.median},
                          {"ratio_executor_no_cgroup_vs_direct", n.median / d.median},
                          {"ratio_cgroup_vs_no_cgroup", e.median / n.median},
                          {"ratio_case_runner_vs_direct", c.median / d.median},
                          {"ratio_reported_vs_direct", w.median / d.median},
                          {"agent_cpu_during_1s_sleep_s", agent_cpu}};
    std::ofstream(json_path) << doc.dump(2) << "\n";
    std::printf("wrote %s\n", json_path.c_str());
  }
  return 0;
}
