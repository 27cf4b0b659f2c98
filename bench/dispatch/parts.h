// The parts of bench/dispatch (see main.cc for what each measures), each
// against a coordinator of its own in its own process, and the figures they give.
#ifndef PERFGATE_BENCH_DISPATCH_PARTS_H_
#define PERFGATE_BENCH_DISPATCH_PARTS_H_

#include <string>
#include <vector>

#include "bench/dispatch/gaps.h"

namespace perfgate::dispatch {

struct Options {
  int cases = 1000;
  int agents = 64;
  int runs = 10;
  int e2e_agents = 16;
  int e2e_cases = 2000;
  // A p99 from 300 gaps rests on its three largest; from 1,000, on ten.
  int next_cases = 1000;
  int history_runs = 8;  // runs at once while history is fetched
  // Samples per load-agent result; 1 is what the real agent sends for a `repeats: 1` case.
  int samples = 1;
  std::string json_path;
  std::string stamps_path;  // the history part's case and history call spans, a line each, for a closer look at gaps
  std::string stamp_case;   // the history part's case: prints "START END" (CLOCK_MONOTONIC ns)
  std::string perfgate;     // the perfgate binary measured
  // Another perfgate binary (the code before a change) measured beside it, part by part.
  std::string before;
  bool only_next = false;
};

// Every figure of one coordinator binary.
struct Figures {
  double leases_per_s = 0, cpu_ms_per_lease = 0, db_bytes_per_case = 0;
  double wal_mb_max = 0;  // the store's WAL at its largest while load agents ran
  // Peak RSS during the first run and during the last; the snapshots after each beside them.
  double rss_first = 0, rss_last = 0, rss_after_first = 0, rss_after_last = 0;
  bool rss_last_reset = false;    // whether the last run's peak is its own (else since the start)
  std::vector<double> rss_peaks;  // each run's own peak, where the kernel allowed a reset before it
  HistoryFigures history;         // load agents: leases
  HistoryFigures agent_history;   // real agents: cases timed from inside
  double e2e_rate = 0, share = 0;
  double call_floor_ms = 0;  // coordinator CPU per Heartbeat, one call at a time
  double next_p50 = 0, next_p99 = 0, bare_ms = 0, bare_p99_over_p50_ms = 0;
  double makespan_ratio = 0, first_ratio = 0;
};

constexpr int kMakespanSessions = 8, kShortCases = 30;

// Every part, for each binary in turn (the --before binary first, if any),
// part by part, so both columns see the same load; stores under `dir`/INDEX.
// False if a part could not start (its error printed).
bool MeasureAll(const Options& o, const std::vector<std::string>& binaries, const std::string& dir,
                std::vector<Figures>* out);

}  // namespace perfgate::dispatch

#endif  // PERFGATE_BENCH_DISPATCH_PARTS_H_
