// A control group per run: the case's own peak memory, and a handle on every
// process it started (setsid or not), so that all of them can be killed and
// reaped when the case ends.
//
// Memory comes from cgroup v2 `memory.peak` where the v2 memory controller
// can be enabled below the parent, else from cgroup v1
// `memory.max_usage_in_bytes`. Both count what the case's processes charged:
// anonymous memory, page cache they brought in, kernel memory; not the shared
// libraries already cached, which RSS would count. Processes are killed with
// v2 `cgroup.kill` where the v2 hierarchy is mounted (it needs no
// controller), else by killing the v1 memory group's members until it is
// empty. Where no group can be made, the executor falls back to rusage and
// process groups, and says so.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace perfgate {

// Which instrument measured a run's peak memory. Values of different
// instruments are never compared: the name is the metric's source.
enum class MemorySource { kCgroupV2, kCgroupV1, kRusage };
// "agent:cgroup-v2", "agent:cgroup-v1", "agent:rusage".
const char* MemorySourceName(MemorySource source);

// Where per-run groups are made, found once.
class CgroupParent {
 public:
  // `root`: "none" makes no groups; a path starting with '/' is a cgroup path
  // (as /proc/self/cgroup writes them) used in each hierarchy; any other
  // value, "" included, is a path below the agent's own group in each
  // hierarchy ("" means "perfgate"). Missing folders are created.
  static CgroupParent Detect(const std::string& root);

  MemorySource memory_source() const { return memory_source_; }
  // True when runs get groups, so leftovers are found by group, not by process group.
  bool makes_groups() const { return !kill_dir_.empty(); }
  // One line for the host fingerprint: which instruments, where, and why not the others.
  const std::string& description() const { return description_; }
  // How many processes that agents no longer running left in their run
  // groups Detect killed, before it removed those groups.
  size_t killed_at_start() const { return killed_at_start_; }
  // The start-up line that says so; "" when Detect killed nothing.
  std::string DescribeKilledAtStart() const;
  // The parent folders of the run groups ("" if none; may be the same).
  const std::string& memory_folder() const { return memory_dir_; }
  const std::string& kill_folder() const { return kill_dir_; }
  // Removes the parent folders if no run group is left in them: those
  // Detect created and, for a root below the agent's own group (perfgate's
  // by convention, unlike an absolute root an administrator set up), the
  // parents themselves. Agents call it at exit, tests when done.
  void RemoveParents() const;

 private:
  // Kills by the v2 group's cgroup.kill, and measures by its memory.peak
  // where the memory controller can be enabled; `*_how` says why not.
  void UseV2(const std::string& root, std::string* kill_how, std::string* memory_how);
  // Measures by the v1 memory hierarchy (and kills by it, if v2 could not).
  void UseV1Memory(const std::string& root, std::string* memory_how);
  // What description() says: where peak memory comes from and how leftovers are killed.
  std::string Describe(const std::string& kill_how, const std::string& memory_how) const;
  friend class RunCgroup;
  // Makes the parent folders again (after another process removed them).
  absl::Status Restore() const;

  MemorySource memory_source_ = MemorySource::kRusage;
  std::string memory_dir_;  // parent of the groups that measure memory; "" if none
  std::string memory_mount_;
  std::string kill_dir_;  // parent of the groups that find leftovers; "" if none
  std::string kill_mount_;
  bool kill_by_file_ = false;         // kill_dir_ is v2: write cgroup.kill
  std::vector<std::string> created_;  // folders Detect made, deepest last
  bool below_own_group_ = false;
  std::string description_;
  size_t killed_at_start_ = 0;
  // The folder every agent here makes its memory groups in (the kill folder
  // where there are none), open for flock(): see GroupChange.
  std::shared_ptr<const int> groups_lock_fd_;
};

// The help of the --cgroup-root flag of `perfgate agent` and `perfgate run`.
inline constexpr char kCgroupRootHelp[] =
    "where each run's control group is made, in every cgroup hierarchy: a path relative to the agent's own group "
    "(default: perfgate), an absolute cgroup path (/perfgate.slice), or 'none' (no groups: peak memory from rusage, "
    "which includes the agent's own memory, and only the case's process group is killed at its end)";

// The parent every Execute uses unless its spec names another. The root is
// taken from SetDefaultCgroupRoot, or "" (auto) if that was never called.
const CgroupParent& DefaultCgroupParent();
// REQUIRES: called before the first DefaultCgroupParent(), once (a flag).
void SetDefaultCgroupRoot(const std::string& root);

// CPU time of processes the agent reaped, from wait4's rusage.
struct CpuTimes {
  double user_s = 0;
  double sys_s = 0;
  void Add(const struct rusage& usage);
};

// One run's groups: made before the spawn, removed after the reap.
class RunCgroup {
 public:
  // REQUIRES: parent.makes_groups(). `lender`, if given, holds a finished
  // run's leftover group of the same parent (from LendKillGroup): the new
  // run takes that group over instead of making one.
  static absl::StatusOr<std::unique_ptr<RunCgroup>> Create(const CgroupParent& parent, RunCgroup* lender = nullptr);
  ~RunCgroup();
  RunCgroup(const RunCgroup&) = delete;
  RunCgroup& operator=(const RunCgroup&) = delete;

  // Write-only fds of the groups' cgroup.procs: the child writes "0" into
  // each before exec, so the case is inside from its first instruction.
  const std::vector<int>& join_fds() const { return join_fds_; }
  // The run's v2 group, opened O_PATH for clone3(CLONE_INTO_CGROUP), and the
  // one of join_fds() that a child born there need not write; -1 if none.
  int v2_folder_fd() const { return v2_folder_fd_; }
  int v2_join_fd() const { return v2_join_fd_; }
  // After KillAndReap: this run's leftover group, moved to a RunCgroup of
  // its own that Create can lend to a later run; nullptr where the group
  // cannot serve again (this run keeps it, to remove it). This run's memory
  // group stays here either way, to be removed.
  // A group serves again only if it is a v2 group that measures nothing
  // (memory is measured in a v1 group, or not at all) and the run left no
  // process in it to kill: it then holds no state, and reusing it spares a
  // mkdir, an rmdir and two opens in cgroupfs per run. A group that
  // measures memory never serves twice: it keeps charges of the run before.
  std::unique_ptr<RunCgroup> LendKillGroup();
  // The most memory the group held at once; nullopt if unreadable.
  std::optional<uint64_t> PeakMemoryBytes() const;
  // SIGKILLs every process in the group until none is left, then reaps
  // those of them that ended up the agent's children (as subreaper, it
  // inherits every orphan of the case), adding their CPU times to *reaped:
  // a case that leaves a worker unreaped must not hide the worker's work.
  // Returns how many processes it found still running and killed.
  size_t KillAndReap(CpuTimes* reaped);

 private:
  RunCgroup() = default;

  // Moves `from`'s leftover group (folder and fds) to this run. REQUIRES: `from` has a v2 one.
  void TakeKillGroup(RunCgroup* from);

  std::string memory_group_;  // "" when memory is not measured by group
  std::string peak_file_;     // memory.peak or memory.max_usage_in_bytes
  std::string kill_group_;
  bool kill_by_file_ = false;
  // KillAndReap found processes left and killed them. A v2 group written
  // `cgroup.kill` is not lent: this kernel (6.18) then SIGKILLs every process
  // born into it with clone3(CLONE_INTO_CGROUP), as the next case would be.
  bool killed_ = false;
  std::vector<int> join_fds_;
  int v2_folder_fd_ = -1;
  int v2_join_fd_ = -1;
  int kill_procs_fd_ = -1;                     // the kill group's cgroup.procs, for reading: who is left
  std::shared_ptr<const int> groups_lock_fd_;  // the parent's, for the removals in ~RunCgroup
};

}  // namespace perfgate
