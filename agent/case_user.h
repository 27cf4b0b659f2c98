// Running cases as another user than the agent (`--case-user`).
//
// A case is a pull request's code. Run as the agent's user, often root, it
// can read the agent's token file and, on a machine that also hosts the
// coordinator, its database; with the token it could register as an agent
// and report results for other people's runs. Run as an unprivileged user,
// it cannot: the agent (root) switches each case's process to that user
// after moving it into its control groups and before exec, and gives it a
// scratch folder owned by that user inside a folder only root can change.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/cgroup.h"

namespace perfgate {

// The most tasks (processes and threads) a case user's case may have at
// once, unless --case-max-tasks says otherwise.
inline constexpr uint64_t kDefaultCaseMaxTasks = 4096;

struct CaseUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary, as initgroups(3) would set them
  std::string home;           // as the password database has it; a case gets its scratch folder as HOME
  // The most tasks its case may have at once (RLIMIT_NPROC); 0: no limit.
  // The kernel counts every task of the user, and only this case's are
  // there (IsolateCaseUser), so a fork bomb fails its own forks with EAGAIN
  // instead of taking the host's pids from the agent and a coordinator.
  uint64_t max_tasks = kDefaultCaseMaxTasks;
};

// The user named `name` (or a numeric uid) in the password database.
// Errors say what to do: the agent must run as root (only root can switch
// users), and the user must not be root (cases run as root by default).
absl::StatusOr<CaseUser> LookUpCaseUser(const std::string& name);

// Whether the permission bits of `st` give `user` the access of `owner_bit`
// (S_IRUSR, S_IWUSR or S_IXUSR; the group's or others' bit where the user
// does not own it). ACLs are not consulted.
bool PermitsTo(const CaseUser& user, const struct stat& st, mode_t owner_bit);

// "gid 65534, 27": the user's primary group and the others, for the start-up line.
std::string DescribeGroups(const CaseUser& user);

// Makes sure cases of `user` cannot reach one another, before the first:
// - an error unless `cgroups` makes a group per run: only a group finds
//   every process a case left (setsid ones too) and kills it before the next
//   case, which would otherwise share the user with it;
// - claims `user` for this process until it exits (a lock in /run, else
//   $TMPDIR): another perfgate process on the host that runs its cases as
//   the same user is refused, saying so (cases of one user can signal,
//   trace and read each other);
// - then CheckCaseUserAlone. Idempotent.
absl::Status IsolateCaseUser(const CaseUser& user, const CgroupParent& cgroups);

// An error if `user` runs a process now (cases could signal, trace and read
// it, and the agent removes that user's files and IPC objects before each
// case: agent/case_user_leftovers.h), or can write its home folder (where
// one case could leave what a later one reads: ~/.local, ~/.gitconfig).
absl::Status CheckCaseUserAlone(const CaseUser& user);

// Help text of the --case-user flag of `perfgate agent` and `perfgate run`.
inline constexpr char kCaseUserHelp[] =
    "run cases as this unprivileged user (name or uid), not as the agent's user: needs the agent to run as "
    "root, and keeps cases from the agent's token and key";

// Help text of the --case-max-tasks flag of `perfgate agent` and `perfgate run`.
inline constexpr char kCaseMaxTasksHelp[] =
    "with --case-user: the most processes and threads a case may have at once (RLIMIT_NPROC of that user); "
    "a fork beyond it fails with EAGAIN in the case; 0: no limit";

// An error naming the first of `paths` (the agent's token, its TLS key)
// whose permission bits let `user` read it, and the chmod that stops it;
// OK when none does. Empty paths are skipped. ACLs are not consulted.
absl::Status CheckUnreadableBy(const CaseUser& user, const std::vector<std::string>& paths);

}  // namespace perfgate
