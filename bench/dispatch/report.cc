#include "bench/dispatch/report.h"

#include <cstdio>

#include "bench/dispatch/processes.h"

namespace perfgate::dispatch {
namespace {

nlohmann::json Figure(double value, int agents, int cases, int runs) {
  return {{"value", value}, {"agents", agents}, {"cases", cases}, {"runs", runs}};
}

}  // namespace

void PrintTable(const Options& o, const std::vector<Figures>& f, double load_before, double load_after) {
  const bool two = f.size() == 2;
  std::printf("dispatch: coordinator in its own process (perfgate coordinator, SQLite on disk), loopback gRPC\n");
  std::printf("load average %.2f before, %.2f after (2-core machine shared with other work)\n", load_before,
              load_after);
  if (two) std::printf("before: %s\nnow:    %s\n", o.before.c_str(), o.perfgate.c_str());
  std::printf("\n%-56s %s%12s  %s\n", "figure", two ? "      before" : "", "now", "(agents, cases, runs)");
  auto row = [&](const char* what, double Figures::*field, const char* unit, int ag, int cs, int rn) {
    std::printf("%-56s ", what);
    if (two) std::printf("%12.3f", f[0].*field);
    std::printf("%12.3f %-4s (%d, %d, %d)\n", f.back().*field, unit, ag, cs, rn);
  };
  auto hrow = [&](const char* what, HistoryFigures Figures::*part, double HistoryFigures::*field, const char* unit,
                  int agents) {
    std::printf("%-56s ", what);
    if (two) std::printf("%12.3f", (f[0].*part).*field);
    std::printf("%12.3f %-4s (%d, %d, %d)\n", (f.back().*part).*field, unit, agents, o.cases, o.history_runs);
  };
  row("load agents: leases granted and completed per second", &Figures::leases_per_s, "/s", o.agents, o.cases, o.runs);
  row("coordinator CPU per lease", &Figures::cpu_ms_per_lease, "ms", o.agents, o.cases, o.runs);
  row("end to end, process agents, trivial cases", &Figures::e2e_rate, "/s", o.e2e_agents, o.e2e_cases, 1);
  row("  coordinator's share of all CPU spent", &Figures::share, "", o.e2e_agents, o.e2e_cases, 1);
  row("  (coordinator CPU per bare call, one at a time)", &Figures::call_floor_ms, "ms", 1, 2000, 1);
  row("one agent: next start beyond bare cycle, p50", &Figures::next_p50, "ms", 1, o.next_cases, 1);
  row("one agent: next start beyond bare cycle, p99", &Figures::next_p99, "ms", 1, o.next_cases, 1);
  row("  (bare spawn-exit cycle of /bin/date)", &Figures::bare_ms, "ms", 1, kBareCycles, 1);
  row("  (the bare cycle's own p99, beyond its p50)", &Figures::bare_p99_over_p50_ms, "ms", 1, kBareCycles, 1);
  const auto agents = &Figures::agent_history, leases = &Figures::history;
  hrow("process agents: case starts during history calls / outside", agents, &HistoryFigures::rate_ratio, "",
       o.e2e_agents);
  hrow("longest moment with no case running on any agent", agents, &HistoryFigures::idle_max_ms, "ms", o.e2e_agents);
  hrow("  (when it began, after the first case start)", agents, &HistoryFigures::idle_max_at_ms, "ms", o.e2e_agents);
  hrow("  (longest such moment outside history calls)", agents, &HistoryFigures::idle_max_outside_ms, "ms",
       o.e2e_agents);
  hrow("  (case starts a second in this part)", agents, &HistoryFigures::starts_per_s, "/s", o.e2e_agents);
  hrow("  (longest gap chance gives: as many starts, random times)", agents, &HistoryFigures::chance_max_ms, "ms",
       o.e2e_agents);
  hrow("  (history call of all keys, p50)", agents, &HistoryFigures::call_ms_p50, "ms", o.e2e_agents);
  std::printf("  (history calls of %d keys over %d stored runs: %d now)\n", o.cases * 4, o.runs + o.history_runs,
              f.back().agent_history.calls);
  hrow("load agents: lease rate during history calls / outside", leases, &HistoryFigures::rate_ratio, "", o.agents);
  hrow("  longest moment with no lease granted to anyone", leases, &HistoryFigures::idle_max_ms, "ms", o.agents);
  hrow("  (when it began, after the first lease)", leases, &HistoryFigures::idle_max_at_ms, "ms", o.agents);
  hrow("  (longest such moment outside history calls)", leases, &HistoryFigures::idle_max_outside_ms, "ms", o.agents);
  hrow("  (leases a second in this part)", leases, &HistoryFigures::starts_per_s, "/s", o.agents);
  hrow("  (longest gap chance gives: as many leases, random times)", leases, &HistoryFigures::chance_max_ms, "ms",
       o.agents);
  row("makespan / ideal, second run", &Figures::makespan_ratio, "x", kMakespanSessions, kShortCases + 2, 2);
  row("  (first run, no history)", &Figures::first_ratio, "x", kMakespanSessions, kShortCases + 2, 1);
  row("coordinator peak RSS during the first run", &Figures::rss_first, "MB", o.agents, o.cases, 1);
  row("coordinator peak RSS during the last run", &Figures::rss_last, "MB", o.agents, o.cases, o.runs);
  row("  (RSS after the first run)", &Figures::rss_after_first, "MB", o.agents, o.cases, 1);
  row("  (RSS after the last run)", &Figures::rss_after_last, "MB", o.agents, o.cases, o.runs);
  if (!f.back().rss_last_reset)
    std::printf("  (the kernel refused a peak reset: the last run's peak counts from the start)\n");
  for (const Figures& each : f) {
    if (each.rss_peaks.empty()) continue;
    std::printf("  (each run's peak, MB:");
    for (double mb : each.rss_peaks) std::printf(" %.1f", mb);
    std::printf(")\n");
  }
  row("store bytes per case", &Figures::db_bytes_per_case, "B", o.agents, o.cases, o.runs + o.history_runs);
  std::printf("  (%d sample(s) of 4 metrics per load-agent result)\n", o.samples);
  row("  (the store's WAL at its largest)", &Figures::wal_mb_max, "MB", o.agents, o.cases, o.runs + o.history_runs);
}

nlohmann::json Json(const Options& o, const std::vector<Figures>& all, double load_before, double load_after) {
  nlohmann::json doc = {{"benchmark", "dispatch"}};
  const Figures& f = all.back();
  doc["load_average_before"] = load_before;
  doc["load_average_after"] = load_after;
  doc["load_leases_per_s"] = Figure(f.leases_per_s, o.agents, o.cases, o.runs);
  doc["coordinator_cpu_ms_per_lease"] = Figure(f.cpu_ms_per_lease, o.agents, o.cases, o.runs);
  doc["e2e_cases_per_s"] = Figure(f.e2e_rate, o.e2e_agents, o.e2e_cases, 1);
  doc["coordinator_cpu_share"] = Figure(f.share, o.e2e_agents, o.e2e_cases, 1);
  doc["coordinator_cpu_share"]["bare_call_cpu_ms"] = f.call_floor_ms;
  doc["next_start_over_bare_p50_ms"] = Figure(f.next_p50, 1, o.next_cases, 1);
  doc["next_start_over_bare_p99_ms"] = Figure(f.next_p99, 1, o.next_cases, 1);
  doc["next_start_over_bare_p99_ms"]["bare_cycle_p99_over_p50_ms"] = f.bare_p99_over_p50_ms;
  // Timed from inside the cases of real agents; the load agents' lease figures beside them.
  doc["start_rate_during_history_ratio"] = Figure(f.agent_history.rate_ratio, o.e2e_agents, o.cases, o.history_runs);
  doc["start_rate_during_history_ratio"]["history_calls"] = f.agent_history.calls;
  doc["start_rate_during_history_ratio"]["load_agents_lease_rate_ratio"] = f.history.rate_ratio;
  doc["all_agents_idle_max_ms"] = Figure(f.agent_history.idle_max_ms, o.e2e_agents, o.cases, o.history_runs);
  doc["all_agents_idle_max_ms"]["outside_history_calls_ms"] = f.agent_history.idle_max_outside_ms;
  doc["all_agents_idle_max_ms"]["began_after_first_start_ms"] = f.agent_history.idle_max_at_ms;
  doc["all_agents_idle_max_ms"]["load_agents_no_lease_max_ms"] = f.history.idle_max_ms;
  doc["all_agents_idle_max_ms"]["case_starts_per_s"] = f.agent_history.starts_per_s;
  doc["all_agents_idle_max_ms"]["chance_max_ms_at_that_rate"] = f.agent_history.chance_max_ms;
  doc["makespan_ratio"] = Figure(f.makespan_ratio, kMakespanSessions, kShortCases + 2, 2);
  // Peaks (VmHWM) during the run; the VmRSS snapshot after it beside each.
  doc["rss_mb_first_run"] = Figure(f.rss_first, o.agents, o.cases, 1);
  doc["rss_mb_first_run"]["measure"] = "peak during the run (VmHWM)";
  doc["rss_mb_first_run"]["after_run_mb"] = f.rss_after_first;
  doc["rss_mb_last_run"] = Figure(f.rss_last, o.agents, o.cases, o.runs);
  doc["rss_mb_last_run"]["each_run_peak_mb"] = f.rss_peaks;
  doc["rss_mb_last_run"]["measure"] =
      f.rss_last_reset ? "peak during the run (VmHWM)" : "peak since the start (VmHWM; the reset was refused)";
  doc["rss_mb_last_run"]["after_run_mb"] = f.rss_after_last;
  doc["db_bytes_per_case"] = Figure(f.db_bytes_per_case, o.agents, o.cases, o.runs + o.history_runs);
  doc["db_bytes_per_case"]["samples_per_case"] = o.samples;
  doc["db_bytes_per_case"]["wal_mb_max"] = f.wal_mb_max;
  if (all.size() == 2) {
    // The same figures of the --before binary, measured beside these.
    const Figures& b = all.front();
    doc["before"] = {{"perfgate", o.before},
                     {"load_leases_per_s", b.leases_per_s},
                     {"coordinator_cpu_ms_per_lease", b.cpu_ms_per_lease},
                     {"e2e_cases_per_s", b.e2e_rate},
                     {"coordinator_cpu_share", b.share},
                     {"bare_call_cpu_ms", b.call_floor_ms},
                     {"next_start_over_bare_p50_ms", b.next_p50},
                     {"next_start_over_bare_p99_ms", b.next_p99},
                     {"start_rate_during_history_ratio", b.agent_history.rate_ratio},
                     {"all_agents_idle_max_ms", b.agent_history.idle_max_ms},
                     {"load_agents_lease_rate_ratio", b.history.rate_ratio},
                     {"load_agents_no_lease_max_ms", b.history.idle_max_ms},
                     {"makespan_ratio", b.makespan_ratio},
                     {"rss_mb_first_run", b.rss_first},
                     {"rss_mb_last_run", b.rss_last},
                     {"db_bytes_per_case", b.db_bytes_per_case},
                     {"wal_mb_max", b.wal_mb_max}};
  }
  return doc;
}

}  // namespace perfgate::dispatch
