#include "coordinator/process_priority.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace perfgate {

namespace {

constexpr int kHighestPriority = -20;
constexpr int kLowestPriority = 19;

// How many levels RaiseThreadPriority raised this process's threads.
std::atomic<int> raised_levels{0};

// The calling thread's nice value (PRIO_PROCESS with a thread id names one thread on Linux).
int ThreadNice() {
  errno = 0;
  const int nice = getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
  return errno == 0 ? nice : 0;
}

}  // namespace

PriorityChange RaiseThreadPriority(int levels) {
  PriorityChange change;
  change.before = change.after = ThreadNice();
  const int wanted = std::max(kHighestPriority, change.before - levels);
  if (wanted != change.before && setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), wanted) != 0) {
    change.error = std::strerror(errno);
  }
  change.after = ThreadNice();
  raised_levels.store(change.before - change.after);
  return change;
}

int ReturnToStartingPriority() {
  const int now = ThreadNice();
  const int levels = raised_levels.load();
  if (levels <= 0) return now;
  // A higher nice value is always allowed: no privilege, no error to report.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), std::min(kLowestPriority, now + levels));
  return ThreadNice();
}

StartingPriorityScope::StartingPriorityScope() : before_(ThreadNice()) {
  lowered_ = ReturnToStartingPriority() != before_;
}

StartingPriorityScope::~StartingPriorityScope() {
  // Allowed: the process raised its threads this far at its start.
  if (lowered_) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), before_);
}

ServingPriorityScope::ServingPriorityScope() : before_(ThreadNice()) {
  const int levels = raised_levels.load();
  if (levels <= 0) return;
  // Allowed: the process raised its threads this far at its start.
  raised_ = setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), std::max(kHighestPriority, before_ - levels)) == 0;
}

ServingPriorityScope::~ServingPriorityScope() {
  if (raised_) setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), before_);
}

std::string DescribePriority(const PriorityChange& change, int levels) {
  if (!change.error.empty()) {
    return absl::StrCat("cannot raise its CPU priority ", levels, " levels (", change.error, "): runs at nice ",
                        change.after, ", so on a machine shared with agents its replies wait for cores behind their "
                        "cases; run it as root or with CAP_SYS_NICE (systemd: Nice=-10), or --priority-levels 0 "
                        "to not try");
  }
  if (change.after == change.before) return absl::StrCat("runs at nice ", change.after);
  return absl::StrCat("runs at nice ", change.after, ", ", change.before - change.after,
                      " levels above the nice ", change.before, " it started at: ahead of agents and cases that "
                      "share this machine");
}

}  // namespace perfgate
