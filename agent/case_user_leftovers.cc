#include "agent/case_user_leftovers.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/executor.h"
#include "core/bounded_read.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

// The IPC tables (IpcIdsOf reads them) and ipcrm's flag for each.
struct IpcTable {
  const char* path;
  const char* ipcrm_flag;
};
constexpr IpcTable kIpcTables[] = {
    {"/proc/sysvipc/shm", "-m"}, {"/proc/sysvipc/sem", "-s"}, {"/proc/sysvipc/msg", "-q"}};

// How many entries Leftovers::Describe names; its count covers them all.
constexpr size_t kNamedEntries = 5;

// Every folder of `folders` that is one here.
std::vector<std::string> ExistingFolders(const std::vector<std::string>& folders) {
  std::vector<std::string> found;
  for (const std::string& folder : folders) {
    struct stat st;
    if (lstat(folder.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) found.push_back(folder);
  }
  return found;
}

// `find` over the folders as the user: prints (NUL-ended) and removes each
// entry the user owns, whole, without descending into it first; prunes the
// folders the user cannot read, where it could leave nothing it could find
// again. `rm` first, so that each try removes what it can; `chmod -R
// u+rwx` only when that failed (a case may have closed its own folders), as
// that walks the whole tree before `rm` removes anything.
constexpr char kRemoveBatch[] =  // run by `find -exec ... {} +` on a batch of entries
    "rm -rf --one-file-system -- \"$@\" 2>/dev/null || "
    "{ chmod -R u+rwx -- \"$@\" 2>/dev/null; rm -rf --one-file-system -- \"$@\"; }";

std::vector<std::string> FindArgv(uid_t uid, const std::vector<std::string>& folders) {
  std::vector<std::string> argv = {"find"};
  argv.insert(argv.end(), folders.begin(), folders.end());
  const std::string owner = std::to_string(uid);
  // find's expression, one clause a line.
  // clang-format off
  for (const char* word : {"-xdev", "-mindepth", "1",
                           "(", "-uid", owner.c_str(), "-prune", "-print0", "-exec", "sh", "-c", kRemoveBatch, "sh",
                                "{}", "+", ")",
                           "-o", "(", "-type", "d", "!", "(", "-readable", "-executable", ")", "-prune", ")"}) {
    // clang-format on
    argv.push_back(word);
  }
  return argv;
}

// Whether the user can list and enter `st`, a folder: by its permission
// bits, or possibly (an access ACL, which the bits do not show).
bool UserMayEnter(const CaseUser& user, const struct stat& st, int fd) {
  return (PermitsTo(user, st, S_IRUSR) && PermitsTo(user, st, S_IXUSR)) ||
         fgetxattr(fd, "system.posix_acl_access", nullptr, 0) >= 0;
}

// The walk that decides whether `find` must run: true as soon as it meets
// an entry the user owns, or when the walk grows past its budget (then
// `find` decides). It enters at least every folder `find` enters, so a
// false answer means `find` would remove nothing. It reads as the agent, in
// one pass of fstatat() calls, where `find` is a process start: 3 ms a case
// here (bench/agent_overhead).
class OwnedEntrySearch {
 public:
  explicit OwnedEntrySearch(const CaseUser& user) : user_(user) {}

  bool InFolder(int dir_fd, dev_t device, int depth) {
    DIR* dir = fdopendir(dir_fd);
    if (!dir) {
      close(dir_fd);
      return true;  // unreadable even as root: let find say why
    }
    bool found = false;
    while (dirent* entry = readdir(dir)) {
      if (std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0) continue;
      if (++visited_ > kBudget || (found = InEntry(dirfd(dir), entry->d_name, device, depth))) {
        found = true;
        break;
      }
    }
    closedir(dir);
    return found;
  }

 private:
  static constexpr size_t kBudget = 100'000;
  static constexpr int kMaxDepth = 64;

  bool InEntry(int parent, const char* name, dev_t device, int depth) {
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno != ENOENT;
    if (st.st_uid == user_.uid) return true;
    if (!S_ISDIR(st.st_mode) || st.st_dev != device) return false;  // find -xdev stays on the folder's file system
    const int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno != ENOENT;
    if (!UserMayEnter(user_, st, fd)) {
      close(fd);
      return false;
    }
    if (depth + 1 > kMaxDepth) {
      close(fd);
      return true;
    }
    return InFolder(fd, device, depth + 1);
  }

  const CaseUser& user_;
  size_t visited_ = 0;
};

// Whether anything in `folders` may be the user's (see OwnedEntrySearch).
bool MayHoldOwnedEntries(const CaseUser& user, const std::vector<std::string>& folders) {
  OwnedEntrySearch search(user);
  for (const std::string& folder : folders) {
    const int fd = open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
      if (fd >= 0) close(fd);
      return true;
    }
    if (search.InFolder(fd, st.st_dev, 0)) return true;
  }
  return false;
}

// Whether `folder` is root's and sticky (/tmp, /dev/shm): there only an
// entry's owner can rename or replace it.
bool RootsAndSticky(const std::string& folder) {
  struct stat st;
  return lstat(folder.c_str(), &st) == 0 && st.st_uid == 0 && (st.st_mode & S_ISVTX);
}

ExecSpec SweepSpec(const CaseUser& user, const LeftoverSweep& sweep, std::vector<std::string> argv) {
  ExecSpec spec;
  spec.argv = std::move(argv);
  spec.env = {{"PATH", "/usr/bin:/bin"}, {"LC_ALL", "C"}, {"HOME", "/"}};
  spec.cwd = "/";  // the agent's own may be closed to the user
  spec.timeout_ms = sweep.timeout_ms;
  spec.kill_grace_ms = 1000;
  spec.cgroups = sweep.cgroups;
  spec.supplies = sweep.supplies;
  spec.user = &user;
  return spec;
}

}  // namespace

bool FindSawOnlyVanishedEntries(const ExecResult& r) {
  if (r.end != ExecResult::End::kExited || r.exit_code != 1 || r.err.empty() || r.err_dropped > 0) return false;
  for (absl::string_view line : absl::StrSplit(r.err, '\n', absl::SkipEmpty())) {
    if (!absl::StartsWith(line, "find: '") || !absl::EndsWith(line, "': No such file or directory")) return false;
  }
  return true;
}

namespace {

// An error for a removal that did not finish, with what it said.
absl::Status Unfinished(const CaseUser& user, const std::string& what, const ExecResult& r) {
  std::string said = r.err_tail.empty() ? r.err : r.err_tail;
  if (said.size() > 600) said = said.substr(said.size() - 600);
  return absl::InternalError(absl::StrCat("could not remove what earlier cases of '", user.name, "' left (", what, ": ",
                                          r.Describe(), r.spawn_error.empty() ? "" : " ", r.spawn_error,
                                          said.empty() ? "" : ": ", EscapeControls(said),
                                          "); remove it by hand, or give the agent a fresh case user"));
}

// Removes, as root, the entries `user` owns at the top of those of
// `folders` that are root's and sticky, whole, with whatever other users
// put inside them: there no one but their owner can rename or replace
// them, and no process of that user runs, so `rm` as root (which never
// follows a link inside a tree) removes just them. As that user it could
// not: a case can open a folder of its own to all (0733), where another
// user's files would then stop every later removal. `find` hands them to
// `rm` in batches that fit the kernel's limit on arguments.
absl::Status RemoveOwnedAtTop(const CaseUser& user, const LeftoverSweep& sweep, const std::vector<std::string>& folders,
                              Leftovers* found) {
  std::vector<std::string> argv = {"find"};
  for (const std::string& folder : folders) {
    if (RootsAndSticky(folder)) argv.push_back(folder);
  }
  if (argv.size() == 1) return absl::OkStatus();
  for (const char* word : {"-mindepth", "1", "-maxdepth", "1", "-uid"}) argv.push_back(word);
  argv.push_back(std::to_string(user.uid));
  for (const char* word : {"-print0", "-exec", "rm", "-rf", "--one-file-system", "--", "{}", "+"}) {
    argv.push_back(word);
  }
  ExecSpec spec = SweepSpec(user, sweep, std::move(argv));
  spec.user = nullptr;
  const ExecResult r = Execute(spec, sweep.cancel);
  for (absl::string_view entry : absl::StrSplit(r.out, '\0', absl::SkipEmpty())) {
    found->entries.push_back(EscapeControls(EscapeInvalidUtf8(entry)));
  }
  return r.ok() ? absl::OkStatus() : Unfinished(user, "rm as root", r);
}

absl::Status RemoveEntries(const CaseUser& user, const LeftoverSweep& sweep, Leftovers* found) {
  const std::vector<std::string> folders = ExistingFolders(sweep.folders);
  if (folders.empty() || !MayHoldOwnedEntries(user, folders)) return absl::OkStatus();
  if (absl::Status top = RemoveOwnedAtTop(user, sweep, folders, found); !top.ok()) return top;
  const ExecResult r = Execute(SweepSpec(user, sweep, FindArgv(user.uid, folders)), sweep.cancel);
  for (absl::string_view entry : absl::StrSplit(r.out, '\0', absl::SkipEmpty())) {
    found->entries.push_back(EscapeControls(EscapeInvalidUtf8(entry)));
  }
  if (!r.ok() && !FindSawOnlyVanishedEntries(r)) {
    return Unfinished(user, absl::StrCat("find in ", absl::StrJoin(folders, ", ")), r);
  }
  return absl::OkStatus();
}

// ipcrm's arguments for every System V IPC object of `user`: flag, id, flag, id, ...
std::vector<std::string> IpcIdsLeft(const CaseUser& user) {
  std::vector<std::string> args;
  for (const IpcTable& table : kIpcTables) {
    absl::StatusOr<std::string> text = ReadFileBounded(table.path, 16 << 20, "System V IPC table");
    if (!text.ok()) continue;  // a kernel without System V IPC
    for (std::string& id : IpcIdsOf(user.uid, *text)) {
      args.push_back(table.ipcrm_flag);
      args.push_back(std::move(id));
    }
  }
  return args;
}

absl::Status RemoveIpcObjects(const CaseUser& user, const LeftoverSweep& sweep, Leftovers* found) {
  const std::vector<std::string> args = IpcIdsLeft(user);
  found->ipc_objects = static_cast<int>(args.size() / 2);
  // In batches, well within the kernel's limit on one command's arguments.
  constexpr size_t kObjectsPerCall = 1000;
  for (size_t at = 0; at < args.size(); at += 2 * kObjectsPerCall) {
    std::vector<std::string> argv = {"ipcrm"};
    argv.insert(argv.end(), args.begin() + at, args.begin() + std::min(args.size(), at + 2 * kObjectsPerCall));
    const ExecResult r = Execute(SweepSpec(user, sweep, std::move(argv)), sweep.cancel);
    // ipcrm fails on an id that went away meanwhile (its owner removed it):
    // what matters is that none of the user's are left.
    if (!r.ok() && !IpcIdsLeft(user).empty()) return Unfinished(user, "ipcrm", r);
  }
  return absl::OkStatus();
}

}  // namespace

std::string Leftovers::Describe() const {
  if (empty()) return "nothing";
  std::vector<std::string> parts;
  if (!entries.empty()) {
    std::vector<std::string> named(entries.begin(), entries.begin() + std::min(entries.size(), kNamedEntries));
    parts.push_back(absl::StrCat(entries.size(), entries.size() == 1 ? " file or folder (" : " files or folders (",
                                 absl::StrJoin(named, ", "), entries.size() > named.size() ? ", ...)" : ")"));
  }
  if (ipc_objects > 0) {
    parts.push_back(absl::StrCat(ipc_objects, ipc_objects == 1 ? " System V IPC object" : " System V IPC objects"));
  }
  return absl::StrJoin(parts, ", ");
}

std::vector<std::string> IpcIdsOf(uid_t uid, const std::string& table) {
  std::vector<std::string> lines = absl::StrSplit(table, '\n', absl::SkipWhitespace());
  if (lines.empty()) return {};
  const std::vector<std::string> header = absl::StrSplit(lines[0], ' ', absl::SkipEmpty());
  const auto column = [&](absl::string_view name) {
    return std::find(header.begin(), header.end(), name) - header.begin();
  };
  const size_t id = std::min(column("shmid"), std::min(column("semid"), column("msqid")));
  const size_t owner = column("uid"), creator = column("cuid");
  if (id >= header.size() || owner >= header.size() || creator >= header.size()) return {};
  const std::string wanted = std::to_string(uid);
  std::vector<std::string> ids;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string> fields = absl::StrSplit(lines[i], ' ', absl::SkipEmpty());
    if (fields.size() < header.size()) continue;
    if (fields[owner] == wanted || fields[creator] == wanted) ids.push_back(fields[id]);
  }
  return ids;
}

absl::StatusOr<Leftovers> RemoveCaseUserLeftovers(const CaseUser& user, const LeftoverSweep& sweep) {
  // The removal is the agent's work, not a case's: `find`, `sh` and `rm` run
  // at once, and a task limit of a few (--case-max-tasks) would stop it, and
  // with it every later case.
  CaseUser remover = user;
  remover.max_tasks = 0;
  Leftovers found;
  if (absl::Status entries = RemoveEntries(remover, sweep, &found); !entries.ok()) return entries;
  if (absl::Status ipc = RemoveIpcObjects(remover, sweep, &found); !ipc.ok()) return ipc;
  return found;
}

}  // namespace perfgate
