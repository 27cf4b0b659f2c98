// How steady the work was while history calls were in flight: rates inside
// the calls against outside, the longest moment with nothing going on, and
// what chance alone gives at the same rate. Pure arithmetic on timestamps.
#ifndef PERFGATE_BENCH_DISPATCH_GAPS_H_
#define PERFGATE_BENCH_DISPATCH_GAPS_H_

#include <cstdint>
#include <utility>
#include <vector>

namespace perfgate::dispatch {

using Spans = std::vector<std::pair<int64_t, int64_t>>;  // [begin, end], monotonic ns

// The value at quantile p (0..1) of v, nearest rank; 0 for none.
double Percentile(std::vector<double> v, double p);

// Work while history calls were in flight against outside them, and the
// longest moment with nothing going on.
struct HistoryFigures {
  double rate_ratio = 0;
  double idle_max_ms = 0;
  double idle_max_at_ms = 0;  // when it began, after the part's first lease or case start
  // The same moment when no history call was in flight: what the machine does anyway.
  double idle_max_outside_ms = 0;
  double call_ms_p50 = 0;
  int calls = 0;
  // What chance alone gives: the part's starts (leases or case starts) a
  // second, and the longest gap expected among as many starts at random
  // times at that rate (exponential gaps: the harmonic number of the gaps
  // over the rate). The longest gap grows with ln N, so a longer part reads
  // longer moments on the same machine; beside the figure, this tells how
  // much of it the coordinator and agents add.
  double starts_per_s = 0;
  double chance_max_ms = 0;
};

// Whether any span overlaps (lo, hi).
bool Overlaps(const Spans& spans, int64_t lo, int64_t hi);

// Rate of `times` (sorted) inside the calls against outside them, over the
// span they cover; 0 where either side is empty.
double RateRatio(const std::vector<int64_t>& times, const Spans& calls);

// The starts a second and the longest gap chance gives at that rate.
// REQUIRES: starts sorted.
void SetChance(const std::vector<int64_t>& starts, HistoryFigures* f);

// Load agents: the lease rate inside history calls against outside, and the
// longest gap between two leases reaching any session (a load session
// completes at once, so that gap is the coordinator's).
HistoryFigures LeaseFigures(std::vector<int64_t> arrivals, const Spans& calls);

// Real agents: cases as they stamped themselves. The start rate inside
// history calls against outside, and the longest moment in which no case
// ran on any agent (a gap in the union of the cases' spans).
HistoryFigures CaseFigures(Spans cases, const Spans& calls);

}  // namespace perfgate::dispatch

#endif  // PERFGATE_BENCH_DISPATCH_GAPS_H_
