// The coordinator at fleet scale: every row of issue #11's table, measured
// against a coordinator in its own process (so its CPU and memory are its
// own, read from /proc), driven over loopback gRPC.
//
//   load       64 load-agent sessions (bench/load_agent.h: the real protocol,
//              no process spawned) complete --runs runs of --cases cases on
//              branch main: leases/s, coordinator CPU per lease, its peak
//              RSS during the first and during the last run (VmHWM, reset
//              before the last), store bytes per case, and the WAL's
//              largest size while load agents ran (this part and the
//              first half of the next).
//   history    --history-runs more such runs (8), submitted at once, while a
//              second client fetches the history of every key of the run in
//              a loop: lease rate inside those calls against outside, and
//              the longest gap in which no session got a lease. Then the
//              same with --e2e-agents real `perfgate agent` processes on the
//              same store, timed from inside the cases (each stamps its own
//              start and end: bench_cases/src/stamp.cc): case starts inside
//              the calls against outside, and the longest moment in which
//              no case ran on any agent. Beside each longest gap, the part's
//              rate and the longest gap that as many starts at random times
//              at that rate would give (it grows with ln N).
//   e2e        --e2e-agents real `perfgate agent` processes run
//              --e2e-cases trivial cases (/bin/true): cases/s and the
//              coordinator's share of all CPU spent (agents and cases
//              included); then its CPU per bare call (a Heartbeat) when
//              calls come one at a time, as each agent's do.
//   next       one real agent runs cases that print their own start time;
//              gap between consecutive starts beyond a bare spawn-exit cycle
//              of the same command (its p50, from cycles run half before the
//              agent's cases and half after), beside that cycle's own p99
//              beyond its p50: the p99 an agent that added nothing would read.
//   makespan   8 load sessions, cases of simulated duration with the two
//              long ones last in the file; the second run (with history)
//              against max(longest case, total work / agents).
//
//   dispatch [--cases N] [--agents N] [--runs N] [--e2e-agents N]
//            [--e2e-cases N] [--next-cases N] [--history-runs N] [--samples N] [--json FILE] [--perfgate PATH]
//            [--before PATH]   (another perfgate binary, measured beside it part by part)
//            [--only-next]     (only the `next` part: fast iteration on the agent's hot path)
//            [--stamp-case PATH] (the history part's case instead of bench_cases/stamp: any program
//                               printing "START END", its first and last CLOCK_MONOTONIC ns, on stdout)
//            [--stamps FILE]   (every stamped case of the history part: agent, start ns, end ns;
//                               and each history call, as agent "history-call"; FILE.load: the
//                               same for the load sessions' leases, as agent "lease")
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/bench_cli.h"
#include "bench/dispatch/parts.h"
#include "bench/dispatch/processes.h"
#include "bench/dispatch/report.h"

using perfgate::dispatch::Figures;
using perfgate::dispatch::Options;

namespace {

// The options, their help and their defaults (those of Options).
void AddOptions(CLI::App& app, Options* o) {
  app.add_option("--cases", o->cases, "cases a run of the load and history parts")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--agents", o->agents, "load-agent sessions")->capture_default_str()->check(perfgate::bench::kCount);
  app.add_option("--runs", o->runs, "runs of the load part")->capture_default_str()->check(perfgate::bench::kCount);
  app.add_option("--e2e-agents", o->e2e_agents, "real agent processes (e2e and history parts)")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--e2e-cases", o->e2e_cases, "trivial cases of the e2e part")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--next-cases", o->next_cases, "cases one agent runs in the next part")
      ->capture_default_str()
      ->check(CLI::Range(2, 1 << 30));
  app.add_option("--history-runs", o->history_runs, "runs submitted at once while history is fetched")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--samples", o->samples, "samples per load-agent result")
      ->capture_default_str()
      ->check(perfgate::bench::kCount);
  app.add_option("--json", o->json_path, "write the figures as JSON to FILE");
  app.add_option("--perfgate", o->perfgate, "the perfgate binary measured")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  app.add_option("--before", o->before,
                 "another perfgate binary (the code before a change), measured beside it part by part")
      ->check(CLI::ExistingFile);
  app.add_flag("--only-next", o->only_next, "only the next part: fast iteration on the agent's hot path");
  app.add_option("--stamps", o->stamps_path,
                 "every stamped case of the history part (agent, start ns, end ns) and each history call (agent "
                 "\"history-call\") to FILE; FILE.load: the same for the load sessions' leases (agent \"lease\")");
  app.add_option("--stamp-case", o->stamp_case,
                 "the history part's case: a program that prints its first and last moment as CLOCK_MONOTONIC "
                 "nanoseconds, \"START END\", on stdout")
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  std::atexit(perfgate::dispatch::KillChildren);
  Options o;
  o.perfgate = PERFGATE_BINARY;
  o.stamp_case = PERFGATE_STAMP_CASE;
  CLI::App app("The coordinator at fleet scale: every row of issue #11's table (see bench/dispatch/main.cc).",
               "dispatch");
  AddOptions(app, &o);
  if (std::optional<int> exit_code = perfgate::bench::ParseOrExit(app, argc, argv)) return *exit_code;
  if (access(o.stamp_case.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "dispatch: --stamp-case %s: %s (give a program this user may run)\n", o.stamp_case.c_str(),
                 std::strerror(errno));
    return 2;
  }
  const std::string dir = std::filesystem::temp_directory_path() / ("perfgate-dispatch-" + std::to_string(getpid()));
  std::vector<std::string> binaries;
  if (!o.before.empty()) binaries.push_back(o.before);
  binaries.push_back(o.perfgate);
  for (size_t i = 0; i < binaries.size(); ++i) std::filesystem::create_directories(absl::StrCat(dir, "/", i));
  const double load_before = perfgate::dispatch::LoadAverage();
  std::vector<Figures> figures;
  if (!perfgate::dispatch::MeasureAll(o, binaries, dir, &figures)) return 3;
  std::filesystem::remove_all(dir);
  const double load_after = perfgate::dispatch::LoadAverage();
  perfgate::dispatch::PrintTable(o, figures, load_before, load_after);
  if (!o.json_path.empty()) {
    std::ofstream(o.json_path) << perfgate::dispatch::Json(o, figures, load_before, load_after).dump(2) << "\n";
    std::printf("wrote %s\n", o.json_path.c_str());
  }
  return 0;
}
