// What a case user's cases leave outside their own folders, removed before
// the next case of that user starts.
//
// A case's processes, control groups and scratch folder go with it, but a
// case may also write where every user may: /tmp, /var/tmp, /dev/shm,
// /run/lock, and System V IPC. There one pull request could leave what a
// later one picks up and is changed by (a `usercustomize.py` under a HOME it
// names, a compiler's cache, a shared memory segment that a benchmark
// attaches by key), so that the later one's numbers, or its verdict, are
// the first one's doing. As systemd does for a user who logged out
// (RemoveIPC=), the agent removes all of that user's, before each case.
//
// The removal runs as the case user (`find`, `rm`, `ipcrm` from the host's
// packages): it can remove only what that user could, and no link a case
// left can lead it anywhere else, so it needs no care of its own about links
// and races, and no capability beyond those --case-user already needs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/case_user.h"
#include "agent/cgroup.h"
#include "agent/executor.h"

namespace perfgate {

class CancelToken;
class RunSupplies;

struct LeftoverSweep {
  // The folders every user may write that outlive a case; those absent here are skipped.
  std::vector<std::string> folders = {"/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue", "/run/lock"};
  // Where the removing process's control group comes from (as ExecSpec's).
  const CgroupParent* cgroups = nullptr;
  RunSupplies* supplies = nullptr;
  const CancelToken* cancel = nullptr;
  uint64_t timeout_ms = 300'000;  // generous: a /tmp of millions of entries is slow, not hostile
};

// What RemoveCaseUserLeftovers found and removed.
struct Leftovers {
  std::vector<std::string> entries;  // files and folders, as found (control characters escaped)
  int ipc_objects = 0;               // System V shared memory segments, semaphore sets, message queues
  bool empty() const { return entries.empty() && ipc_objects == 0; }
  // "2 files or folders (/tmp/a, /dev/shm/b), 1 System V IPC object"; "nothing".
  std::string Describe() const;
};

// Removes every file and folder `user` owns in `sweep.folders` (the whole
// tree of one it owns; inside one it does not, as deep as that user can
// read), and every System V shared memory segment, semaphore set and
// message queue it owns or made. An error names what could not be
// removed, or why the removal could not run.
// REQUIRES: no process of `user` is running (a case's leftovers were killed:
// RunCgroup::KillAndReap); the caller may switch to `user` (LookUpCaseUser).
absl::StatusOr<Leftovers> RemoveCaseUserLeftovers(const CaseUser& user, const LeftoverSweep& sweep);

// The ids of the System V IPC objects in `table` (the text of
// /proc/sysvipc/shm, sem or msg) that `uid` owns or made; columns are
// found by their header, so a kernel that adds one still reads right.
std::vector<std::string> IpcIdsOf(uid_t uid, const std::string& table);

// Whether the sweep's `find` failed only because entries it had listed were
// gone when it came to them (another process removing its own folder in
// /tmp meanwhile): what is gone is no leftover. Such a race failed the case.
bool FindSawOnlyVanishedEntries(const ExecResult& r);

}  // namespace perfgate
