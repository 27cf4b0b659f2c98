// The coordinator's CPU priority. Every agent waits on the coordinator for
// its next lease, so a reply that waits for a core holds up the fleet. On a
// machine it shares with agents and their cases (a small lab, or
// bench/dispatch on 2 cores), at the cases' priority its calls queued behind
// them: with 16 agents saturating 2 cores, 354-498 completions of 8,000
// cases took over 10 ms, some over 100 ms, as a thread holding the
// scheduler's lock or leading a group commit waited for a core, and the
// agents ran out of leases together. Ten nice levels above them, 6-22 did
// (bench/dispatch's history part, timed inside the coordinator).
//
// On Linux a nice value applies to one thread, and a thread starts with its
// creator's: raised before the coordinator starts its threads, it holds for
// all of them (the history reader lowers its own again).
#pragma once

#include <string>

namespace perfgate {

struct PriorityChange {
  int before = 0;      // nice value found
  int after = 0;       // nice value now
  std::string error;   // why it could not be raised ("" when it was, or when asked for nothing)
};

// Lowers the calling thread's nice value by `levels`, to -20 at most. Going
// below the value it started at needs CAP_SYS_NICE (root) or a RLIMIT_NICE
// that allows it; without, the thread keeps its priority and `error` says why.
// REQUIRES: levels >= 0.
PriorityChange RaiseThreadPriority(int levels);

// One line for the coordinator's log: the priority it runs at and, when it
// could not raise it, what that costs and how to allow it.
std::string DescribePriority(const PriorityChange& change, int levels);

}  // namespace perfgate
