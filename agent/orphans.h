// A case's orphans. The agent is its cases' child subreaper (so that what a
// case leaves is killed and reaped with its group), so every process of a
// case whose parent exits becomes the agent's child, and once it exits, the
// agent's zombie until reaped. Each zombie holds a pid of the host, and a
// case user's counts against that user's task limit (CaseUser::max_tasks):
// a script that leaves short-lived background children behind would run out
// of both. So they are reaped while the case runs, not only after it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <mutex>

#include "agent/cgroup.h"

namespace perfgate {

// The children that their spawner waits for itself (each Execute its case's
// own process), which ReapOrphans leaves alone.
class OwnChildren {
 public:
  // Held across a spawn and Add, so that a child that exits at once is not
  // taken for an orphan by a reap on another thread.
  static std::unique_lock<std::mutex> Hold();
  // REQUIRES: `held` is Hold()'s lock.
  static void Add(pid_t pid, const std::unique_lock<std::mutex>& held);
  // Once its spawner has reaped it, or will.
  static void Forget(pid_t pid);
};

// Reaps every zombie child of this process but those in OwnChildren, adding
// their CPU times to *reaped, so that a case's work in processes it left is
// not lost. The agent runs one case at a time, so they are that case's;
// with cases run at once on several threads (tests), an orphan's CPU goes
// to whichever reaps it. Cheap when there is no zombie: one waitid.
// Returns how many it reaped.
size_t ReapOrphans(CpuTimes* reaped);

}  // namespace perfgate
