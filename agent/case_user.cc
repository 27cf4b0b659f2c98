#include "agent/case_user.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

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

}  // namespace

absl::StatusOr<CaseUser> LookUpCaseUser(const std::string& name) {
  if (std::string missing = MissingCapabilities(); !missing.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--case-user '", name, "' needs the agent to run as root (uid ", geteuid(), " here, without ", missing,
        "): it switches each case to that user, hands it its folder, and reads and removes what the case wrote"));
  }
  absl::StatusOr<CaseUser> user = FromPasswordDatabase(name);
  if (user.ok() && user->uid == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--case-user '", name, "' is root; name an unprivileged user (cases already run as the agent's "
                     "user without the flag)"));
  }
  return user;
}

absl::Status CheckUnreadableBy(const CaseUser& user, const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    struct stat st;
    if (path.empty() || stat(path.c_str(), &st) != 0) continue;
    const bool readable = st.st_uid == user.uid      ? (st.st_mode & S_IRUSR)
                          : InGroups(user, st.st_gid) ? (st.st_mode & S_IRGRP)
                                                      : (st.st_mode & S_IROTH);
    if (readable) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      return absl::FailedPreconditionError(absl::StrCat(
          path, " (mode ", mode, ", uid ", st.st_uid, ", gid ", st.st_gid, ") is readable by --case-user '", user.name,
          "', so every case could read it; make it root's alone: chown root: ", path, " && chmod 600 ", path));
    }
  }
  return absl::OkStatus();
}

}  // namespace perfgate
