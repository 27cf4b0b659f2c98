#include "agent/case_user.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/run_supplies.h"
#include "core/utf8.h"

namespace perfgate {
namespace {

// The user's entry by name, else by number; NotFound if neither.
absl::StatusOr<CaseUser> FromPasswordDatabase(const std::string& name) {
  std::vector<char> buffer(1 << 16);
  passwd entry{};
  passwd* found = nullptr;
  int error = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  uid_t uid;
  if (!found && error == 0 && absl::SimpleAtoi(name, &uid)) {
    error = getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
  }
  if (!found) {
    return absl::NotFoundError(absl::StrCat("--case-user '", name, "': no such user",
                                            error ? absl::StrCat(" (", std::strerror(error), ")") : "",
                                            "; create one for cases, e.g. useradd --system perfgate-case"));
  }
  CaseUser user;
  user.name = entry.pw_name;
  user.uid = entry.pw_uid;
  user.gid = entry.pw_gid;
  user.home = entry.pw_dir ? entry.pw_dir : "/";
  int count = 32;
  user.groups.resize(count);
  while (getgrouplist(entry.pw_name, entry.pw_gid, user.groups.data(), &count) < 0) user.groups.resize(count);
  user.groups.resize(count);
  return user;
}

// The capabilities a case user needs the agent to have that it lacks, by
// name; empty when it has them all (root normally does; a systemd unit's
// CapabilityBoundingSet may have taken them).
std::string MissingCapabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return "its capabilities readable";
  std::string missing;
  for (const auto& [cap, cap_name] : {std::pair{CAP_SETUID, "CAP_SETUID"}, {CAP_SETGID, "CAP_SETGID"},
                                      {CAP_CHOWN, "CAP_CHOWN"}, {CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
                                      {CAP_KILL, "CAP_KILL"}}) {
    if (!(data[cap / 32].effective & (1u << (cap % 32)))) absl::StrAppend(&missing, missing.empty() ? "" : ", ", cap_name);
  }
  return missing;
}

bool InGroups(const CaseUser& user, gid_t gid) {
  return gid == user.gid || std::find(user.groups.begin(), user.groups.end(), gid) != user.groups.end();
}

std::string Octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", mode & 07777);
  return text;
}

// What /proc/PID/status says of one process, as far as ProcessOf needs.
struct ProcessStatus {
  std::string name;
  bool exited = false;  // state Z or X: its main thread has exited
  int threads = 0;
  std::vector<std::string> uids;  // real, effective, saved, file system
};

ProcessStatus ReadStatus(pid_t pid) {
  ProcessStatus status;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const absl::string_view key = absl::string_view(line).substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(absl::string_view(line).substr(colon + 1));
    if (key == "Name") status.name = std::string(value);
    if (key == "State") status.exited = absl::StartsWith(value, "Z") || absl::StartsWith(value, "X");
    if (key == "Threads") (void)absl::SimpleAtoi(value, &status.threads);
    if (key == "Uid") status.uids = absl::StrSplit(value, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  }
  return status;
}

// A process of `uid` now running, "pid 123 (sshd)"; empty when none is. A
// zombie does not count, unless its main thread alone has exited and
// others run on.
std::string ProcessOf(uid_t uid) {
  DIR* proc = opendir("/proc");
  if (!proc) return "";
  std::string found;
  const std::string wanted = std::to_string(uid);
  while (dirent* entry = readdir(proc)) {
    pid_t pid;
    if (!absl::SimpleAtoi(entry->d_name, &pid)) continue;
    const ProcessStatus status = ReadStatus(pid);
    if (status.exited && status.threads <= 1) continue;
    if (std::find(status.uids.begin(), status.uids.end(), wanted) != status.uids.end()) {
      found = absl::StrCat("pid ", pid, " (", EscapeControls(status.name), ")");
      break;
    }
  }
  closedir(proc);
  return found;
}

absl::Status ClaimCaseUser(const CaseUser& user) {
  static std::mutex mu;
  static std::set<uid_t> claimed;
  std::lock_guard lock(mu);
  if (claimed.count(user.uid)) return absl::OkStatus();
  // /run is root's: no other user can make or hold the lock file there.
  const std::string folder = access("/run", W_OK) == 0 ? "/run" : TempRoot();
  const std::string path = absl::StrCat(folder, "/perfgate-case-user-", user.uid, ".lock");
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "another perfgate process on this host runs its cases as '", user.name, "' (it holds ", path,
        "); give each agent a case user of its own: cases of one user can signal, trace and read each other"));
  }
  claimed.insert(user.uid);  // held until exit: the descriptor stays open
  return absl::OkStatus();
}

}  // namespace

bool PermitsTo(const CaseUser& user, const struct stat& st, mode_t owner_bit) {
  if (st.st_uid == user.uid) return st.st_mode & owner_bit;
  if (InGroups(user, st.st_gid)) return st.st_mode & (owner_bit >> 3);
  return st.st_mode & (owner_bit >> 6);
}

absl::StatusOr<CaseUser> LookUpCaseUser(const std::string& name) {
  if (std::string missing = MissingCapabilities(); !missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--case-user '", name, "' needs ", missing, ", which this process (uid ", geteuid(),
        ") lacks: run it as root, and where systemd starts it, keep them in CapabilityBoundingSet. It switches "
        "each case to that user, hands it its folder, and reads and removes what the case wrote"));
  }
  absl::StatusOr<CaseUser> user = FromPasswordDatabase(name);
  if (user.ok() && user->uid == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--case-user '", name, "' is root; name an unprivileged user (cases already run as the agent's "
                     "user without the flag)"));
  }
  if (user.ok() && InGroups(*user, 0)) {
    return absl::InvalidArgumentError(absl::StrCat("--case-user '", name,
                                                   "' is in group 0 (root's), whose files cases could then read; "
                                                   "name a user of its own groups"));
  }
  return user;
}

std::string DescribeGroups(const CaseUser& user) {
  std::string text = absl::StrCat("gid ", user.gid);
  for (gid_t g : user.groups) {
    if (g != user.gid) absl::StrAppend(&text, ", ", g);
  }
  return text;
}

absl::Status IsolateCaseUser(const CaseUser& user, const CgroupParent& cgroups) {
  if (!cgroups.makes_groups()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--case-user '", user.name,
                     "' needs control groups, so that every process a case leaves is killed before "
                     "the next case starts (a leftover of that user could reach the next one); here: ",
                     cgroups.description()));
  }
  if (absl::Status claimed = ClaimCaseUser(user); !claimed.ok()) return claimed;
  return CheckCaseUserAlone(user);
}

absl::Status CheckCaseUserAlone(const CaseUser& user) {
  if (std::string process = ProcessOf(user.uid); !process.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--case-user '", user.name, "' already runs ", process,
        ": cases could signal, trace and read it, and the agent removes that user's files in /tmp and its IPC objects "
        "before each case; give cases a user that runs nothing else (useradd --system perfgate-case)"));
  }
  struct stat home;
  if (stat(user.home.c_str(), &home) == 0 && S_ISDIR(home.st_mode) && PermitsTo(user, home, S_IWUSR)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--case-user '", user.name, "' can write its home folder ", user.home, " (mode ",
                     Octal(home.st_mode), ", uid ", home.st_uid,
                     "), where one pull request's case could leave files (~/.local, ~/.gitconfig) that "
                     "change a later one's; give it a home it cannot write: usermod --home /nonexistent ",
                     user.name, " (cases get their scratch folder as HOME)"));
  }
  return absl::OkStatus();
}

absl::Status CheckUnreadableBy(const CaseUser& user, const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    struct stat st;
    if (path.empty() || stat(path.c_str(), &st) != 0) continue;
    if (PermitsTo(user, st, S_IRUSR)) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " (mode ", Octal(st.st_mode), ", uid ", st.st_uid, ", gid ", st.st_gid,
          ") is readable by --case-user '", user.name,
          "', so every case could read it; make it root's alone: chown root: ", path, " && chmod 600 ", path));
    }
  }
  return absl::OkStatus();
}

}  // namespace perfgate
