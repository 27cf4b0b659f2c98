#include "agent/run_supplies.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/executor.h"
#include "agent/maker_tag.h"

namespace perfgate {

std::string TempRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

absl::Status CheckTempRoot() {
  const std::string root = TempRoot();
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec) || access(root.c_str(), W_OK | X_OK) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot make scratch folders in ", root,
                                                   " (not a folder this user can write); set $TMPDIR to one"));
  }
  return absl::OkStatus();
}

namespace {

// Whether the scratch folder named `name` (in TempRoot) is one a gone
// agent made: "perfgate-case-TAG-XXXXXX" or "perfgate-cases-TAG-XXXXXX"
// (NameMakerGone).
bool MadeByAGoneAgent(absl::string_view name) {
  return (absl::ConsumePrefix(&name, "perfgate-cases-") || absl::ConsumePrefix(&name, "perfgate-case-")) &&
         NameMakerGone(name);
}

}  // namespace

void RemoveStaleScratchFolders() {
  const std::string root = TempRoot();
  DIR* dir = opendir(root.c_str());
  if (!dir) return;
  while (const dirent* entry = readdir(dir)) {
    if (!MadeByAGoneAgent(entry->d_name)) continue;
    struct stat st;  // another user's folder is not an agent's, whatever its name
    const std::string path = absl::StrCat(root, "/", entry->d_name);
    if (lstat(path.c_str(), &st) == 0 && st.st_uid == geteuid()) RemoveScratchFolder(path);
  }
  closedir(dir);
}

namespace {

// The folder that holds this process's scratch folders for a case user:
// made once, root's, mode 0711, so that a case can neither rename its own
// folder away nor put a link in its place (as it could straight in the
// sticky $TMPDIR, where the owner of an entry may move it), and the agent's
// later reads inside it (agent/case_files.h) see the folder it made.
// Removed at exit when empty; a killed agent's is removed by the next one.
const std::string& CaseUserRoot() {
  static const std::string* root = [] {
    std::string pattern = absl::StrCat(TempRoot(), "/perfgate-cases-", ToString(OwnMakerTag()), "-XXXXXX");
    if (!mkdtemp(pattern.data()) || chmod(pattern.c_str(), 0711) != 0) return new std::string();
    auto* made = new std::string(std::move(pattern));
    std::atexit([] { rmdir(CaseUserRoot().c_str()); });
    return made;
  }();
  return *root;
}

}  // namespace

void RemoveScratchFolder(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (!ec) return;
  // remove_all holds a descriptor per level: a case's tree deeper than the
  // agent's descriptor limit stops it (EMFILE). rm's walk keeps a few open.
  ExecSpec rm;
  rm.argv = {"/bin/rm", "-rf", "--one-file-system", "--", path};
  static const CgroupParent no_groups = CgroupParent::Detect("none");
  rm.cgroups = &no_groups;
  rm.timeout_ms = 600'000;
  Execute(rm);
}

std::string MakeScratchFolder(const CaseUser* user) {
  if (!user) {
    std::string pattern = absl::StrCat(TempRoot(), "/perfgate-case-", ToString(OwnMakerTag()), "-XXXXXX");
    return mkdtemp(pattern.data()) ? pattern : "";
  }
  if (CaseUserRoot().empty()) return "";
  std::string pattern = absl::StrCat(CaseUserRoot(), "/perfgate-case-XXXXXX");
  if (!mkdtemp(pattern.data())) return "";
  // Only root can make entries here, so the path still names the folder just made.
  if (chown(pattern.c_str(), user->uid, user->gid) != 0) {
    const int error = errno;
    rmdir(pattern.c_str());
    errno = error;
    return "";
  }
  return pattern;
}

RunSupplies::RunSupplies(const CgroupParent& cgroups, const CaseUser* user) : cgroups_(cgroups), user_(user) {
  RemoveStaleScratchFolders();
}

RunSupplies::~RunSupplies() {
  while (RemoveOneRetired()) {
  }
  // Spare and free leftover groups go with their RunCgroup; a folder is only a name.
  std::lock_guard lock(mu_);
  for (const std::string& folder : spare_folders_) RemoveScratchFolder(folder);
}

absl::StatusOr<std::unique_ptr<RunCgroup>> RunSupplies::TakeGroup() {
  {
    std::lock_guard lock(mu_);
    if (!spare_groups_.empty()) {
      std::unique_ptr<RunCgroup> group = std::move(spare_groups_.back());
      spare_groups_.pop_back();
      return group;
    }
  }
  return MakeGroup();
}

absl::StatusOr<std::unique_ptr<RunCgroup>> RunSupplies::MakeGroup() {
  std::unique_ptr<RunCgroup> lender;
  {
    std::lock_guard lock(mu_);
    if (!free_kill_groups_.empty()) {
      lender = std::move(free_kill_groups_.back());
      free_kill_groups_.pop_back();
    }
  }
  return RunCgroup::Create(cgroups_, lender.get());  // `lender` is then empty: nothing to remove
}

void RunSupplies::RetireGroup(std::unique_ptr<RunCgroup> group) {
  std::unique_ptr<RunCgroup> kill_group = group->LendKillGroup();
  std::lock_guard lock(mu_);
  if (kill_group) free_kill_groups_.push_back(std::move(kill_group));
  retired_groups_.push_back(std::move(group));
}

std::string RunSupplies::TakeScratchFolder() {
  {
    std::lock_guard lock(mu_);
    if (!spare_folders_.empty()) {
      std::string folder = std::move(spare_folders_.back());
      spare_folders_.pop_back();
      return folder;
    }
  }
  return MakeScratchFolder(user_);
}

void RunSupplies::RetireScratchFolder(std::string path) {
  std::lock_guard lock(mu_);
  retired_folders_.push_back(std::move(path));
}

size_t RunSupplies::retired_count() const {
  std::lock_guard lock(mu_);
  return retired_groups_.size() + retired_folders_.size() + ExtraKillGroupsLocked();
}

size_t RunSupplies::ExtraKillGroupsLocked() const {
  return free_kill_groups_.size() > kSpares ? free_kill_groups_.size() - kSpares : 0;
}

bool RunSupplies::MakeOneSpare(size_t want) {
  bool need_group, need_folder;
  {
    std::lock_guard lock(mu_);
    need_group = spare_groups_.size() < want && cgroups_.makes_groups();
    need_folder = spare_folders_.size() < want;
  }
  // A spare that cannot be made now is made (or its error reported) when taken.
  if (need_group) {
    auto made = MakeGroup();
    if (!made.ok()) return false;
    std::lock_guard lock(mu_);
    spare_groups_.push_back(*std::move(made));
    return true;
  }
  if (need_folder) {
    std::string folder = MakeScratchFolder(user_);
    if (folder.empty()) return false;
    std::lock_guard lock(mu_);
    spare_folders_.push_back(std::move(folder));
    return true;
  }
  return false;
}

bool RunSupplies::RemoveOneRetired() {
  std::unique_ptr<RunCgroup> group;
  std::string folder;
  {
    std::lock_guard lock(mu_);
    if (!retired_groups_.empty()) {
      group = std::move(retired_groups_.back());
      retired_groups_.pop_back();
    } else if (ExtraKillGroupsLocked() > 0) {
      group = std::move(free_kill_groups_.back());
      free_kill_groups_.pop_back();
    } else if (!retired_folders_.empty()) {
      folder = std::move(retired_folders_.back());
      retired_folders_.pop_back();
    } else {
      return false;
    }
  }
  group.reset();  // ~RunCgroup removes its folders
  // Most cases leave their folder empty: one rmdir, where remove_all costs a
  // stat, a directory listing and the rmdir (0.18 ms here).
  if (!folder.empty() && rmdir(folder.c_str()) != 0) RemoveScratchFolder(folder);
  return true;
}

namespace {

// True if `path` is as MakeScratchFolder made it: an empty folder of
// `owner`'s, mode 0700. Such a folder is as good as a fresh one, and reusing
// it spares an rmdir and a mkdtemp (0.26 ms here).
bool AsMade(const std::string& path, uid_t owner) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0700 || st.st_uid != owner) {
    return false;
  }
  DIR* dir = opendir(path.c_str());
  if (!dir) return false;
  bool empty = true;
  while (const dirent* entry = readdir(dir)) {
    if (std::strcmp(entry->d_name, ".") != 0 && std::strcmp(entry->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  closedir(dir);
  return empty;
}

}  // namespace

void RunSupplies::ReuseEmptyFolders() {
  std::vector<std::string> retired;
  {
    std::lock_guard lock(mu_);
    retired.swap(retired_folders_);
  }
  std::vector<std::string> reusable, not_reusable;
  const uid_t owner = user_ ? user_->uid : geteuid();
  for (std::string& folder : retired) (AsMade(folder, owner) ? reusable : not_reusable).push_back(std::move(folder));
  std::lock_guard lock(mu_);
  for (std::string& folder : reusable) {
    (spare_folders_.size() < kSpares ? spare_folders_ : retired_folders_).push_back(std::move(folder));
  }
  for (std::string& folder : not_reusable) retired_folders_.push_back(std::move(folder));
}

void RunSupplies::Tidy(const std::function<bool()>& answered) {
  ReuseEmptyFolders();
  // One of each for the next case, whatever the wait: it needs them as soon as the answer comes.
  while (MakeOneSpare(1)) {
  }
  const auto waiting = [&] { return !answered || !answered(); };
  while (waiting() && MakeOneSpare(kSpares)) {
  }
  if (!answered) {
    while (RemoveOneRetired()) {
    }
    return;
  }
  for (size_t removed = 0;
       (retired_count() > kMaxDeferred || (removed < kRemovalsPerWait && waiting())) && RemoveOneRetired();
       ++removed) {
  }
}

}  // namespace perfgate
