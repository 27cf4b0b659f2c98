#include "agent/run_supplies.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"

namespace perfgate {

std::string MakeScratchFolder() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/perfgate-case-XXXXXX");
  return mkdtemp(pattern.data()) ? pattern : "";
}

RunSupplies::RunSupplies(const CgroupParent& cgroups) : cgroups_(cgroups) {}

RunSupplies::~RunSupplies() {
  while (RemoveOneRetired()) {
  }
  // The spare group goes with its RunCgroup; a folder is only a name.
  std::lock_guard lock(mu_);
  std::error_code ec;
  if (!spare_folder_.empty()) std::filesystem::remove_all(spare_folder_, ec);
}

absl::StatusOr<std::unique_ptr<RunCgroup>> RunSupplies::TakeGroup() {
  {
    std::lock_guard lock(mu_);
    if (spare_group_) return std::move(spare_group_);
  }
  return RunCgroup::Create(cgroups_);
}

void RunSupplies::RetireGroup(std::unique_ptr<RunCgroup> group) {
  std::lock_guard lock(mu_);
  retired_groups_.push_back(std::move(group));
}

std::string RunSupplies::TakeScratchFolder() {
  {
    std::lock_guard lock(mu_);
    if (!spare_folder_.empty()) return std::exchange(spare_folder_, "");
  }
  return MakeScratchFolder();
}

void RunSupplies::RetireScratchFolder(std::string path) {
  std::lock_guard lock(mu_);
  retired_folders_.push_back(std::move(path));
}

size_t RunSupplies::retired_count() const {
  std::lock_guard lock(mu_);
  return retired_groups_.size() + retired_folders_.size();
}

bool RunSupplies::RemoveOneRetired() {
  std::unique_ptr<RunCgroup> group;
  std::string folder;
  {
    std::lock_guard lock(mu_);
    if (!retired_groups_.empty()) {
      group = std::move(retired_groups_.back());
      retired_groups_.pop_back();
    } else if (!retired_folders_.empty()) {
      folder = std::move(retired_folders_.back());
      retired_folders_.pop_back();
    } else {
      return false;
    }
  }
  group.reset();  // ~RunCgroup removes its folders
  std::error_code ec;
  if (!folder.empty()) std::filesystem::remove_all(folder, ec);
  return true;
}

void RunSupplies::Tidy(const std::function<bool()>& answered) {
  // The spares first: the next case needs them as soon as the answer comes.
  bool need_group, need_folder;
  {
    std::lock_guard lock(mu_);
    need_group = !spare_group_ && cgroups_.makes_groups();
    need_folder = spare_folder_.empty();
  }
  // A spare that cannot be made now is made (or its error reported) when taken.
  std::unique_ptr<RunCgroup> group;
  if (need_group) {
    if (auto made = RunCgroup::Create(cgroups_); made.ok()) group = *std::move(made);
  }
  std::string folder = need_folder ? MakeScratchFolder() : "";
  {
    std::lock_guard lock(mu_);
    if (group) spare_group_ = std::move(group);
    if (!folder.empty()) spare_folder_ = std::move(folder);
  }
  while ((!answered || !answered() || retired_count() > kMaxDeferred) && RemoveOneRetired()) {
  }
}

}  // namespace perfgate
