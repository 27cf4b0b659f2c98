#include "agent/orphans.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"

namespace perfgate {
namespace {

struct Registry {
  std::mutex mu;
  std::set<pid_t> own ABSL_GUARDED_BY(mu);
};

Registry& TheRegistry() {
  static auto* registry = new Registry;
  return *registry;
}

// Every child of this process, read whole before any is reaped: the kernel
// serves each thread's list in pieces by position, and a reap in between
// shifts the rest, so that a reap while reading skipped about half of
// thousands.
std::vector<pid_t> ChildrenOfThisProcess() {
  std::vector<pid_t> children;
  DIR* tasks = opendir("/proc/self/task");
  if (!tasks) return children;
  while (const dirent* task = readdir(tasks)) {
    if (task->d_name[0] == '.') continue;
    std::ifstream list(absl::StrCat("/proc/self/task/", task->d_name, "/children"));
    pid_t pid;
    while (list >> pid) children.push_back(pid);
  }
  closedir(tasks);
  return children;
}

// Whether `pid` was a zombie child, now reaped. REQUIRES: the registry's mu held.
bool ReapIfZombie(pid_t pid, CpuTimes* reaped) {
  struct rusage usage {};
  if (wait4(pid, nullptr, WNOHANG, &usage) <= 0) return false;
  reaped->Add(usage);
  return true;
}

}  // namespace

std::unique_lock<std::mutex> OwnChildren::Hold() { return std::unique_lock(TheRegistry().mu); }

void OwnChildren::Add(pid_t pid, const std::unique_lock<std::mutex>& /*held*/) { TheRegistry().own.insert(pid); }

void OwnChildren::Forget(pid_t pid) {
  Registry& registry = TheRegistry();
  std::lock_guard lock(registry.mu);
  registry.own.erase(pid);
}

size_t ReapOrphans(CpuTimes* reaped) {
  Registry& registry = TheRegistry();
  std::lock_guard lock(registry.mu);
  size_t count = 0;
  // One zombie at a time, as the kernel finds them, until none is left or
  // an own child is the one it finds: the others are then found by a scan.
  for (;;) {
    siginfo_t zombie{};
    if (waitid(P_ALL, 0, &zombie, WEXITED | WNOHANG | WNOWAIT) != 0 || zombie.si_pid == 0) return count;
    if (registry.own.count(zombie.si_pid) || !ReapIfZombie(zombie.si_pid, reaped)) break;
    ++count;
  }
  for (pid_t pid : ChildrenOfThisProcess()) {
    if (!registry.own.count(pid) && ReapIfZombie(pid, reaped)) ++count;
  }
  return count;
}

}  // namespace perfgate
