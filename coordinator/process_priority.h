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
// all of them. Threads whose work no agent waits on go back down: freeing
// finished runs and WAL checkpoints to the nice value the coordinator
// started at (ReturnToStartingPriority); the checkpointer rises again while
// it holds the store's write lock. A history read keeps the raised priority
// and paces itself instead (Scheduler::kHistoryCpuShare): at nice 19 it was
// preempted holding locks the lease path takes (a malloc arena's,
// SQLite's), and runs with it had moments of 120-342 ms inside history
// calls in which no case started or no lease was granted.
// At the raised priority their bursts took cores from the agents: of the 12
// longest moments with no case running in one traced run (7-8 ms, 16
// agents), freeing a run took 6.5 ms of one. A finished run's summaries
// (3.5-4.5 ms of two) keep the raised priority: they write under the
// store's lock, which every completion waits for.
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

// For a thread whose work no agent waits on: lowers its priority by what
// RaiseThreadPriority raised it in this process (none if it never did), back
// to the nice value the process started at. Needs no privilege. Returns the
// thread's nice value now.
int ReturnToStartingPriority();

// For a stretch of work no agent waits on, on a thread that otherwise
// serves them (a gRPC thread preparing a submitted suite): while this lives
// the calling thread runs at the nice value the process started at, then at
// the one it had again. Raising it back needs the privilege the first raise
// had, which the process keeps; where nothing was raised it changes nothing.
// REQUIRES: the thread holds nothing, and takes nothing while this lives,
// that the lease path waits for: preempted, it would hold every agent up.
class StartingPriorityScope {
 public:
  StartingPriorityScope();
  ~StartingPriorityScope();
  StartingPriorityScope(const StartingPriorityScope&) = delete;
  StartingPriorityScope& operator=(const StartingPriorityScope&) = delete;

 private:
  int before_ = 0;
  bool lowered_ = false;
};

// The other way round, for a thread at the starting priority that must
// take something the lease path waits for (the WAL checkpointer, when it
// takes the store's write lock): while this lives the calling thread runs
// as many levels higher as RaiseThreadPriority raised the process, then at
// the one it had again. Preempted at the starting priority, it would hold
// every agent up. Where nothing was raised it changes nothing.
// REQUIRES: the thread is at the starting priority (ReturnToStartingPriority).
class ServingPriorityScope {
 public:
  ServingPriorityScope();
  ~ServingPriorityScope();
  ServingPriorityScope(const ServingPriorityScope&) = delete;
  ServingPriorityScope& operator=(const ServingPriorityScope&) = delete;

 private:
  int before_ = 0;
  bool raised_ = false;
};

// One line for the coordinator's log: the priority it runs at and, when it
// could not raise it, what that costs and how to allow it.
std::string DescribePriority(const PriorityChange& change, int levels);

}  // namespace perfgate
