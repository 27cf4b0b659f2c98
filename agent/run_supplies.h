// What every run needs from the file system, made ahead and removed late:
// its control groups and its case's scratch folder.
//
// Between one case's exit and the next one's start the agent often waits
// for its next lease anyway (it comes in the reply to the case's result).
// Making a run's groups (two mkdirs in cgroupfs), a scratch folder
// (mkdtemp), and removing the previous ones (rmdir of a v1 memory group,
// remove_all) cost about 0.5 ms here; Tidy() does that work inside the
// wait instead of on the path from "case exited" to "next case exec'd".
// With leases held ahead there is no wait: Tidy then makes only what the
// next case needs and removes only past kMaxDeferred.
//
// What stays as strict as before: a group is retired only after every
// process of its run was killed and reaped (the executor's KillAndReap), so
// the next run never shares the machine with leftovers; a spare group that
// measures memory is fresh (made by Tidy, never joined), so peak memory is
// the run's own (only a v2 group that measures nothing, kept to find
// leftovers, serves again: RunCgroup::LendKillGroup); a
// spare scratch folder is empty and the agent's own, mode 0700: new, or one
// a case left exactly so. Nothing here runs concurrently
// with a case: Tidy runs on the caller's thread, between cases.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "agent/case_user.h"
#include "agent/cgroup.h"

namespace perfgate {

// $TMPDIR, else /tmp: where the agent's scratch folders (and, lacking /run, its locks) go.
std::string TempRoot();
// OK if TempRoot() is a folder this process can make folders in; else an
// error naming it and $TMPDIR. Checked at start: a TMPDIR that is not one
// failed every case, each as a result error (exit 1), as if the code had.
absl::Status CheckTempRoot();

// A fresh, empty folder in $TMPDIR (or /tmp) for one case, named after the
// agent (perfgate-case-TAG-XXXXXX, agent/maker_tag.h), mode 0700; "" with
// errno set if none could be made. With a case user, the folder is that
// user's, inside one only root can change
// ($TMPDIR/perfgate-cases-TAG-XXXXXX/perfgate-case-XXXXXX).
std::string MakeScratchFolder(const CaseUser* user = nullptr);

// Removes the scratch folders of agents (and of `perfgate run`s) that died
// without removing them (SIGKILL): their spares, the folders awaiting
// removal, and the folders that held them for a case user. Their names
// carry the agent's tag, as the names of run groups do (agent/maker_tag.h);
// of names from before tags, only the pid: those go once it has exited.
// Only this user's folders are judged.
void RemoveStaleScratchFolders();

// Removes a scratch folder and all the case left in it, however deep (never
// following a link out of it). REQUIRES: no process of the case is left.
void RemoveScratchFolder(const std::string& path);

class RunSupplies {
 public:
  // Removes the scratch folders that agents killed before they could left in $TMPDIR (RemoveStaleScratchFolders).
  // Scratch folders are made for `user` when given (MakeScratchFolder).
  explicit RunSupplies(const CgroupParent& cgroups, const CaseUser* user = nullptr);
  // Removes everything still held: retired and spare groups and folders.
  ~RunSupplies();
  RunSupplies(const RunSupplies&) = delete;
  RunSupplies& operator=(const RunSupplies&) = delete;

  const CgroupParent& cgroups() const { return cgroups_; }

  // A fresh group for one run: a spare Tidy made, else one made now.
  // REQUIRES: cgroups().makes_groups().
  absl::StatusOr<std::unique_ptr<RunCgroup>> TakeGroup();
  // Hands back a run's group for removal at the next Tidy().
  // REQUIRES: every process of the run was killed and reaped (KillAndReap).
  void RetireGroup(std::unique_ptr<RunCgroup> group);

  // A fresh, empty scratch folder in $TMPDIR (or /tmp): a spare Tidy made,
  // else one made now; "" with errno set if none could be made.
  std::string TakeScratchFolder();
  // Hands back a case's scratch folder for removal at the next Tidy().
  // REQUIRES: no process of the case is left (they could still write there).
  void RetireScratchFolder(std::string path);

  // Makes sure one spare group and folder are ready for the next case,
  // then, one step at a time until `answered()` says the wait is over, makes
  // more spares (up to kSpares: the next wait may be too short to make one)
  // and removes up to kRemovalsPerWait of what was retired (the rest waits
  // for the next Tidy, up to kMaxDeferred; past that, down to it even
  // without a wait). Call it while the agent waits anyway, never while a
  // case runs. Without `answered`: all spares, and every removal.
  //
  // Removals are paced because each one holds the kernel's global
  // cgroup_mutex, which every agent on the host also needs to make a group
  // and to start a case in one (clone3 CLONE_INTO_CGROUP). An agent that
  // removed all it had retired in one wait (up to 16 groups, 4 ms) kept
  // the mutex from the others throughout, as a running thread takes a
  // mutex again before the sleepers it woke: traced with 16 agents, such
  // moments had every other agent stopped and a core idle.
  void Tidy(const std::function<bool()>& answered = nullptr);
  static constexpr size_t kSpares = 2;
  static constexpr size_t kMaxDeferred = 16;
  static constexpr size_t kRemovalsPerWait = 2;

  // What is held now, for tests: retired groups and folders awaiting removal.
  size_t retired_count() const;

 private:
  // Retired scratch folders the case left as they were made (empty, 0700)
  // become spares; an empty folder is as fresh as a new one. Groups never are:
  // a v1 memory group keeps charges (slab, cache) of the run before.
  void ReuseEmptyFolders();
  // A fresh group; its leftover group is one a retired run lent, where there is one.
  absl::StatusOr<std::unique_ptr<RunCgroup>> MakeGroup();
  // Free leftover groups beyond the kSpares kept for the next groups made: removed like retired groups.
  size_t ExtraKillGroupsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes one spare group or folder if fewer than `want` of either are
  // ready; false if there was nothing to make (or it could not be made).
  bool MakeOneSpare(size_t want);
  // Removes one retired group or folder; false if there was none.
  bool RemoveOneRetired();

  const CgroupParent& cgroups_;
  const CaseUser* const user_;
  mutable std::mutex mu_;  // Take/Retire come from the case's thread, Tidy from the worker's
  std::vector<std::unique_ptr<RunCgroup>> retired_groups_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> retired_folders_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<RunCgroup>> spare_groups_ ABSL_GUARDED_BY(mu_);
  // Leftover groups that retired runs lent (RunCgroup::LendKillGroup), for the next groups made.
  std::vector<std::unique_ptr<RunCgroup>> free_kill_groups_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> spare_folders_ ABSL_GUARDED_BY(mu_);
};

}  // namespace perfgate
