#include "agent/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/maker_tag.h"

namespace perfgate {
namespace {

constexpr char kAutoRoot[] = "perfgate";
constexpr char kNoGroups[] = "none";

struct SourceName {
  MemorySource source;
  const char* name;
};
constexpr SourceName kSourceNames[] = {
    {MemorySource::kCgroupV2, "agent:cgroup-v2"},
    {MemorySource::kCgroupV1, "agent:cgroup-v1"},
    {MemorySource::kRusage, "agent:rusage"},
};

// A mounted cgroup hierarchy and the agent's own group in it.
struct Hierarchy {
  std::string mountpoint;  // "" if not mounted
  std::string mount_root;  // the part of the hierarchy that is mounted there
  std::string own_group;   // from /proc/self/cgroup
};

bool HasToken(const std::string& list, const std::string& token) {
  for (auto part : absl::StrSplit(list, ',')) {
    if (part == token) return true;
  }
  return false;
}

// The v2 hierarchy (want_v1_controller empty) or the v1 hierarchy with that controller.
Hierarchy FindHierarchy(const std::string& want_v1_controller) {
  Hierarchy h;
  std::ifstream mounts("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mounts, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash < 5 || dash + 3 > f.size()) continue;
    const std::string& type = f[dash + 1];
    const bool match =
        want_v1_controller.empty() ? type == "cgroup2" : type == "cgroup" && HasToken(f[dash + 3], want_v1_controller);
    if (!match) continue;
    h.mount_root = f[3];
    h.mountpoint = f[4];
    break;
  }
  std::ifstream self("/proc/self/cgroup");
  while (std::getline(self, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    if (want_v1_controller.empty() ? (f[0] == "0" && f[1].empty()) : HasToken(f[1], want_v1_controller)) {
      h.own_group = f[2];
    }
  }
  return h;
}

// The folder of cgroup path `group` in `h`; an error if that part of the hierarchy is not mounted.
absl::StatusOr<std::string> FolderOf(const Hierarchy& h, const std::string& group) {
  if (h.mount_root == "/") return group == "/" ? h.mountpoint : h.mountpoint + group;
  if (group == h.mount_root) return h.mountpoint;
  if (group.rfind(h.mount_root + "/", 0) == 0) return h.mountpoint + group.substr(h.mount_root.size());
  return absl::NotFoundError(absl::StrCat("group ", group, " is outside the part mounted at ", h.mountpoint));
}

// Creates `folder` and its missing ancestors below `mountpoint`; appends what was new to *created.
absl::Status MakeFolders(const std::string& mountpoint, const std::string& folder, std::vector<std::string>* created) {
  std::string path = mountpoint;
  for (auto part : absl::StrSplit(folder.substr(mountpoint.size()), '/', absl::SkipEmpty())) {
    absl::StrAppend(&path, "/", part);
    if (mkdir(path.c_str(), 0700) == 0) {  // owner only: no other user can hold its flock (GroupChange)
      created->push_back(path);
    } else if (errno != EEXIST) {
      return absl::PermissionDeniedError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

// The folder of the parent group for `root` in `h`, created with its missing ancestors.
absl::StatusOr<std::string> MakeParent(const Hierarchy& h, const std::string& root, std::vector<std::string>* created) {
  if (h.mountpoint.empty()) return absl::NotFoundError("not mounted");
  std::string group;
  if (root.rfind('/', 0) == 0) {
    group = root;
  } else {
    if (h.own_group.empty()) return absl::NotFoundError("the agent's own group is not in /proc/self/cgroup");
    group = absl::StrCat(h.own_group == "/" ? "" : h.own_group, "/", root.empty() ? kAutoRoot : root);
  }
  auto folder = FolderOf(h, group);
  if (!folder.ok()) return folder.status();
  if (auto made = MakeFolders(h.mountpoint, *folder, created); !made.ok()) return made;
  return *folder;
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool WriteFile(const std::string& path, const std::string& text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int write_errno = errno;
  close(fd);
  errno = write_errno;
  return ok;
}

// Enables the v2 memory controller for the children of `folder`; true if
// they will have memory.peak.
bool EnableV2Memory(const std::string& folder, std::string* why_not) {
  bool listed = false;
  for (auto name : absl::StrSplit(ReadWhole(folder + "/cgroup.controllers"), absl::ByAnyChar(" \n"))) {
    listed |= name == "memory";
  }
  if (!listed) {
    *why_not = "no v2 memory controller delegated to " + folder;
    return false;
  }
  if (!WriteFile(folder + "/cgroup.subtree_control", "+memory")) {
    *why_not = absl::StrCat("cannot enable memory in ", folder, "/cgroup.subtree_control: ", std::strerror(errno));
    return false;
  }
  if (!Exists(folder + "/memory.peak")) {
    *why_not = "no memory.peak in " + folder + " (kernel before 5.19)";
    return false;
  }
  return true;
}

// The pids in a group's cgroup.procs, read from its start through `fd`
// (reading from offset 0 lists the group afresh, so one fd serves every read).
std::vector<pid_t> ReadProcs(int fd) {
  std::string text;
  char buffer[4096];
  for (off_t at = 0;;) {
    const ssize_t n = pread(fd, buffer, sizeof buffer, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    at += n;
  }
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    pid_t pid;
    if (absl::SimpleAtoi(line, &pid)) pids.push_back(pid);
  }
  return pids;
}

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

int PidfdKill(int pidfd) { return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0)); }

// Blocks until every process behind `pidfds` has exited (each is then a
// zombie or gone, and has handed its children to the subreaper).
void WaitAllExited(const std::map<pid_t, int>& pidfds) {
  std::vector<pollfd> fds;
  for (const auto& [pid, fd] : pidfds) fds.push_back({fd, POLLIN, 0});
  size_t open = fds.size();
  while (open > 0) {
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (auto& p : fds) {
      if (p.fd >= 0 && p.revents) {
        p.fd = -1;  // poll ignores negative fds
        --open;
      }
    }
  }
}

// Kills every process in `group` and waits until each has exited; returns
// how many it killed. For the groups of a dead agent, whose processes are
// no longer its children: they are reaped by whoever inherited them.
size_t KillEveryMember(const std::string& group) {
  const int procs = open((group + "/cgroup.procs").c_str(), O_RDONLY | O_CLOEXEC);
  if (procs < 0) return 0;
  std::map<pid_t, int> pidfds;
  for (bool found_new = true; found_new;) {
    found_new = false;
    for (pid_t pid : ReadProcs(procs)) {
      if (pidfds.count(pid)) continue;  // exited, not reaped yet by its parent
      found_new = true;
      const int fd = PidfdOpen(pid);
      if (fd >= 0) {
        pidfds[pid] = fd;
        PidfdKill(fd);
      } else if (errno != ESRCH) {
        kill(pid, SIGKILL);
      }
    }
    WaitAllExited(pidfds);
  }
  close(procs);
  for (const auto& [pid, fd] : pidfds) close(fd);
  return pidfds.size();
}

// The tag of the agent that made the run group `name`: "run-NS-PID-START-N"
// (agent/maker_tag.h); nullopt for other names, and for "run-PID-N" of agents
// from before tags.
std::optional<MakerTag> RunGroupMaker(absl::string_view name) {
  absl::string_view n;
  if (!absl::ConsumePrefix(&name, "run-")) return std::nullopt;
  return ParseMakerTag(name, &n);
}

// Whether the agent that made the run group `name` is gone (NameMakerGone).
bool RunGroupMakerGone(absl::string_view name) { return absl::ConsumePrefix(&name, "run-") && NameMakerGone(name); }

// Removes the run groups of agents that died without removing them
// (SIGKILL, the OOM killer); their names carry the agent's pid. What their
// cases left running there (a setsid'd server, say) is killed first, as
// the agent would have killed it: it would run beside every later case,
// and as a case user it could reach them. Returns how many processes it killed.
size_t RemoveStaleGroups(const std::string& parent) {
  DIR* dir = opendir(parent.c_str());
  if (!dir) return 0;
  size_t killed = 0;
  while (dirent* entry = readdir(dir)) {
    if (!RunGroupMakerGone(entry->d_name)) continue;
    const std::string group = parent + "/" + entry->d_name;
    // What is left in a group of an agent from before tags (which may come
    // from another pid namespace) is not killed: only an empty one goes, as
    // those agents did.
    if (rmdir(group.c_str()) != 0 && errno == EBUSY && RunGroupMaker(entry->d_name)) {
      killed += KillEveryMember(group);
      rmdir(group.c_str());
    }
  }
  closedir(dir);
  return killed;
}

// Held while this agent makes or removes run groups. Every agent on the
// host makes its groups in one folder, and a mkdir or rmdir there takes
// that folder's inode lock and the kernel's global cgroup_mutex, for tens
// to hundreds of microseconds. The kernel's waiters spin while the holder
// runs: profiled with 16 agents on 2 cores, the agents' mkdirs in the
// longest moments with no case running were spent spinning in
// rwsem_down_write_slowpath and osq_lock (72 of 146 of their samples), a
// core burnt waiting that a case could have used. An exclusive flock() on
// that folder first makes the others sleep instead; within one agent a
// mutex does (flock does not exclude threads sharing the open file). In
// three alternating runs of bench/dispatch (16 agents) the longest moment
// with no case running read 5.1-8.0 ms with it and 6.6-11.6 ms without,
// case starts 1,321-1,446 against 1,241-1,377 a second. The lock only
// spares CPU: where flock fails the change goes ahead unlocked, and should
// the folder be removed and made again (Restore), agents still holding the
// old one open no longer take turns with the others, and nothing else changes. Whoever can open the folder can hold the
// lock, so the folders Detect makes are the owner's only (0700); a root an
// administrator made is theirs to keep closed.
class GroupChange {
 public:
  explicit GroupChange(const std::shared_ptr<const int>& fd) : fd_(fd ? *fd : -1) {
    if (fd_ < 0) return;
    mu().lock();
    while (flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~GroupChange() {
    if (fd_ < 0) return;
    flock(fd_, LOCK_UN);
    mu().unlock();
  }
  GroupChange(const GroupChange&) = delete;
  GroupChange& operator=(const GroupChange&) = delete;

 private:
  static std::mutex& mu() {
    static std::mutex m;
    return m;
  }
  int fd_;
};

// The folder `dir`, open for flock(); nullptr if it cannot be opened.
std::shared_ptr<const int> OpenForLocking(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  return std::shared_ptr<const int>(new int(fd), [](const int* p) {
    close(*p);
    delete p;
  });
}

std::mutex default_root_mu;
std::string default_root;  // guarded by default_root_mu; read once by DefaultCgroupParent

}  // namespace

const char* MemorySourceName(MemorySource source) {
  for (const auto& s : kSourceNames) {
    if (s.source == source) return s.name;
  }
  return "?";
}

CgroupParent CgroupParent::Detect(const std::string& root) {
  CgroupParent p;
  std::string kill_how, memory_how;
  p.below_own_group_ = root.rfind('/', 0) != 0;
  if (root == kNoGroups) {
    kill_how = memory_how = "--cgroup-root none";
  } else {
    p.UseV2(root, &kill_how, &memory_how);
    if (p.memory_dir_.empty()) p.UseV1Memory(root, &memory_how);
  }
  for (const std::string& dir : {p.kill_dir_, p.memory_dir_}) {
    if (!dir.empty()) p.killed_at_start_ += RemoveStaleGroups(dir);
  }
  const std::string& groups_dir = p.memory_dir_.empty() ? p.kill_dir_ : p.memory_dir_;
  if (!groups_dir.empty()) p.groups_lock_fd_ = OpenForLocking(groups_dir);
  p.description_ = p.Describe(kill_how, memory_how);
  return p;
}

void CgroupParent::UseV2(const std::string& root, std::string* kill_how, std::string* memory_how) {
  const Hierarchy v2 = FindHierarchy("");
  auto v2_dir = MakeParent(v2, root, &created_);
  if (!v2_dir.ok()) {
    *kill_how = absl::StrCat("cgroup v2: ", v2_dir.status().message());
    return;
  }
  if (!Exists(*v2_dir + "/cgroup.kill")) {
    *kill_how = absl::StrCat("cgroup v2: no cgroup.kill in ", *v2_dir, " (kernel before 5.14)");
    return;
  }
  kill_dir_ = *v2_dir;
  kill_mount_ = v2.mountpoint;
  kill_by_file_ = true;
  if (EnableV2Memory(*v2_dir, memory_how)) {
    memory_dir_ = *v2_dir;
    memory_mount_ = v2.mountpoint;
    memory_source_ = MemorySource::kCgroupV2;
  }
}

void CgroupParent::UseV1Memory(const std::string& root, std::string* memory_how) {
  const Hierarchy v1 = FindHierarchy("memory");
  auto v1_dir = MakeParent(v1, root, &created_);
  if (!v1_dir.ok()) {
    absl::StrAppend(memory_how, memory_how->empty() ? "" : "; ", "cgroup v1 memory: ", v1_dir.status().message());
    return;
  }
  memory_dir_ = *v1_dir;
  memory_mount_ = v1.mountpoint;
  memory_source_ = MemorySource::kCgroupV1;
  if (kill_dir_.empty()) {
    kill_dir_ = *v1_dir;
    kill_mount_ = v1.mountpoint;
  }
}

std::string CgroupParent::Describe(const std::string& kill_how, const std::string& memory_how) const {
  const char* peak_file = memory_source_ == MemorySource::kCgroupV2 ? "memory.peak" : "memory.max_usage_in_bytes";
  std::string out =
      memory_source_ == MemorySource::kRusage
          ? absl::StrCat("peak memory: rusage of the case, which includes the agent's own resident set (no cgroup: ",
                         memory_how, ")")
          : absl::StrCat("peak memory: ", MemorySourceName(memory_source_), " ", peak_file, " of a group per run in ",
                         memory_dir_, memory_how.empty() ? "" : absl::StrCat(" (", memory_how, ")"));
  absl::StrAppend(&out, "; leftover processes: ",
                  kill_dir_.empty() ? absl::StrCat("by process group only (", kill_how, ")")
                  : kill_by_file_   ? absl::StrCat("cgroup.kill of a v2 group per run in ", kill_dir_)
                                    : absl::StrCat("killed by v1 group membership in ", kill_dir_));
  return out;
}

std::string CgroupParent::DescribeKilledAtStart() const {
  if (killed_at_start_ == 0) return "";
  return absl::StrCat("killed ", killed_at_start_,
                      " process(es) that cases of agents no longer running left in their run groups");
}

void CgroupParent::RemoveParents() const {
  if (below_own_group_) {
    for (const std::string& dir : {kill_dir_, memory_dir_}) {
      if (!dir.empty()) rmdir(dir.c_str());  // fails while another agent has run groups there
    }
  }
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) rmdir(it->c_str());
}

absl::Status CgroupParent::Restore() const {
  std::vector<std::string> ignored;
  if (auto made = MakeFolders(kill_mount_, kill_dir_, &ignored); !made.ok()) return made;
  if (memory_source_ == MemorySource::kRusage) return absl::OkStatus();
  if (auto made = MakeFolders(memory_mount_, memory_dir_, &ignored); !made.ok()) return made;
  std::string why_not;
  if (memory_source_ == MemorySource::kCgroupV2 && !EnableV2Memory(memory_dir_, &why_not)) {
    return absl::InternalError(why_not);
  }
  return absl::OkStatus();
}

void SetDefaultCgroupRoot(const std::string& root) {
  std::lock_guard<std::mutex> lock(default_root_mu);
  default_root = root;
}

const CgroupParent& DefaultCgroupParent() {
  static const CgroupParent parent = [] {
    std::lock_guard<std::mutex> lock(default_root_mu);
    return CgroupParent::Detect(default_root);
  }();
  // Leave no empty folders behind; another agent still using one keeps it
  // (rmdir fails) or makes it again (RunCgroup::Create). Registered after
  // `parent` is built, so it runs before `parent` is destroyed.
  static const bool cleanup_registered = std::atexit([] { DefaultCgroupParent().RemoveParents(); }) == 0;
  (void)cleanup_registered;
  return parent;
}

absl::StatusOr<std::unique_ptr<RunCgroup>> RunCgroup::Create(const CgroupParent& parent, RunCgroup* lender) {
  static std::atomic<uint64_t> next{0};
  std::unique_ptr<RunCgroup> run(new RunCgroup);
  // "run-<agent's tag>-<n>" (RunGroupMakerGone), the same in every hierarchy where a group is made
  // for this run.
  const std::string name = absl::StrCat("/run-", ToString(OwnMakerTag()), "-", next.fetch_add(1));
  run->kill_by_file_ = parent.kill_by_file_;
  if (parent.memory_source_ != MemorySource::kRusage) {
    run->memory_group_ = parent.memory_dir_ + name;
    run->peak_file_ =
        run->memory_group_ +
        (parent.memory_source_ == MemorySource::kCgroupV2 ? "/memory.peak" : "/memory.max_usage_in_bytes");
  }
  if (lender && lender->v2_join_fd_ >= 0) {
    run->TakeKillGroup(lender);
  } else {
    run->kill_group_ = parent.kill_dir_ + name;
  }
  run->groups_lock_fd_ = parent.groups_lock_fd_;
  GroupChange change(parent.groups_lock_fd_);
  for (const std::string* group : {&run->kill_group_, &run->memory_group_}) {
    if (group->empty() || (group == &run->memory_group_ && *group == run->kill_group_)) continue;
    if (group == &run->kill_group_ && run->v2_join_fd_ >= 0) continue;  // taken over, already joinable
    int made = mkdir(group->c_str(), 0755);
    // Another agent sharing the parent removed it at exit, and may do so
    // again between the Restore and the mkdir (agents, and test processes,
    // that end one after another): a few tries, each after a Restore.
    for (int tries = 0; made != 0 && errno == ENOENT && tries < 8; ++tries) {
      if (auto restored = parent.Restore(); !restored.ok()) return restored;
      made = mkdir(group->c_str(), 0755);
    }
    if (made != 0) {
      return absl::InternalError(absl::StrCat("cannot create cgroup ", *group, ": ", std::strerror(errno)));
    }
    // The child moves itself ("0") before exec, while it is its process's only thread. In v1, `tasks` moves
    // one thread, and moving oneself that way skips the global cgroup_threadgroup_rwsem that every
    // cgroup.procs write takes for writing: that write waits for an RCU grace period whenever the lock
    // was idle for a while, 8-17 ms at times here, and it sat between one case's end and the next one's start.
    const bool v1 =
        group == &run->kill_group_ ? !parent.kill_by_file_ : parent.memory_source_ == MemorySource::kCgroupV1;
    const std::string join_file = *group + (v1 ? "/tasks" : "/cgroup.procs");
    const int fd = open(join_file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", join_file, ": ", std::strerror(errno)));
    run->join_fds_.push_back(fd);
    if (group == &run->kill_group_) {
      const std::string procs = *group + "/cgroup.procs";
      run->kill_procs_fd_ = open(procs.c_str(), O_RDONLY | O_CLOEXEC);
      if (run->kill_procs_fd_ < 0) {
        return absl::InternalError(absl::StrCat("cannot open ", procs, ": ", std::strerror(errno)));
      }
    }
    if (!v1) {
      run->v2_join_fd_ = fd;
      run->v2_folder_fd_ = open(group->c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);  // -1: joined by writing
    }
  }
  return run;
}

std::unique_ptr<RunCgroup> RunCgroup::LendKillGroup() {
  if (killed_ || !kill_by_file_ || kill_group_.empty() || kill_group_ == memory_group_ || v2_join_fd_ < 0) {
    return nullptr;
  }
  std::unique_ptr<RunCgroup> lent(new RunCgroup);
  lent->kill_by_file_ = true;
  lent->groups_lock_fd_ = groups_lock_fd_;
  lent->TakeKillGroup(this);
  return lent;
}

void RunCgroup::TakeKillGroup(RunCgroup* from) {
  kill_group_ = std::exchange(from->kill_group_, "");
  join_fds_.push_back(from->v2_join_fd_);
  std::erase(from->join_fds_, from->v2_join_fd_);
  v2_join_fd_ = std::exchange(from->v2_join_fd_, -1);
  v2_folder_fd_ = std::exchange(from->v2_folder_fd_, -1);
  kill_procs_fd_ = std::exchange(from->kill_procs_fd_, -1);
}

RunCgroup::~RunCgroup() {
  for (int fd : join_fds_) close(fd);
  for (int fd : {v2_folder_fd_, kill_procs_fd_}) {
    if (fd >= 0) close(fd);
  }
  if (kill_group_.empty() && memory_group_.empty()) return;
  GroupChange change(groups_lock_fd_);
  for (const std::string& group : {kill_group_, memory_group_}) {
    if (!group.empty()) rmdir(group.c_str());  // the second of two equal names finds it gone
  }
}

std::optional<uint64_t> RunCgroup::PeakMemoryBytes() const {
  if (peak_file_.empty()) return std::nullopt;
  std::ifstream in(peak_file_);
  uint64_t bytes;
  if (!(in >> bytes)) return std::nullopt;
  return bytes;
}

void CpuTimes::Add(const struct rusage& usage) {
  user_s += usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6;
  sys_s += usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

size_t RunCgroup::KillAndReap(CpuTimes* reaped) {
  std::map<pid_t, int> pidfds;
  std::set<pid_t> killed;
  for (std::vector<pid_t> pids = ReadProcs(kill_procs_fd_); !pids.empty(); pids = ReadProcs(kill_procs_fd_)) {
    for (pid_t pid : pids) {
      killed.insert(pid);
      if (pidfds.count(pid)) continue;
      const int fd = PidfdOpen(pid);
      if (fd >= 0)
        pidfds[pid] = fd;
      else if (errno != ESRCH)
        kill(pid, SIGKILL);  // no pidfd to spare: killed, then found again until it is gone
    }
    // v2 kills atomically, forks in flight included; v1 is killed member by
    // member, and the loop catches what they forked meanwhile.
    killed_ = true;
    if (!kill_by_file_ || !WriteFile(kill_group_ + "/cgroup.kill", "1")) {
      for (const auto& [pid, fd] : pidfds) PidfdKill(fd);
    }
    WaitAllExited(pidfds);
  }
  // Each has exited and handed its own children on, so every one of them
  // that is not reaped yet is now a zombie child of this process.
  for (const auto& [pid, fd] : pidfds) {
    siginfo_t info{};
    struct rusage usage{};
    // The system call's fifth argument, which glibc's waitid() leaves out: the reaped process's rusage.
    if (syscall(SYS_waitid, P_PIDFD, fd, &info, WEXITED | WNOHANG, &usage) == 0 && info.si_pid != 0) {
      reaped->Add(usage);
    }
    close(fd);
  }
  return killed.size();
}

}  // namespace perfgate
