#include "coordinator/wal_syncer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace perfgate {
namespace {

absl::Status SyncFolderOf(const std::string& path) {
  const std::string folder = std::filesystem::path(path).parent_path().string();
  const int fd = open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    const int error = errno;
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat(folder, ": cannot sync the database's folder: ", std::strerror(error)));
  }
  close(fd);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<WalSyncer>> WalSyncer::Open(const std::string& wal_path, SyncFile sync) {
  const int fd = open(wal_path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat(wal_path, ": cannot open the write-ahead log to sync it: ", std::strerror(errno)));
  }
  if (auto s = SyncFolderOf(wal_path); !s.ok()) {
    close(fd);
    return s;
  }
  if (!sync) sync = [](int f) { return fdatasync(f); };
  return std::unique_ptr<WalSyncer>(new WalSyncer(wal_path, fd, std::move(sync)));
}

WalSyncer::WalSyncer(std::string path, int fd, SyncFile sync)
    : path_(std::move(path)), fd_(fd), sync_(std::move(sync)) {}

WalSyncer::~WalSyncer() { close(fd_); }

uint64_t WalSyncer::NoteWritten() {
  std::lock_guard lock(mu_);
  return ++written_;
}

absl::Status WalSyncer::Sync(uint64_t ticket) {
  std::unique_lock lock(mu_);
  ++waiting_;
  while (synced_ < ticket && failed_.ok()) {
    if (syncing_) {
      done_.wait(lock);
      continue;
    }
    syncing_ = true;
    const uint64_t covers = written_;
    lock.unlock();
    const int rc = sync_(fd_);
    const int error = errno;
    lock.lock();
    syncing_ = false;
    ++syncs_;
    synced_ = std::max(synced_, covers);
    if (rc != 0) {
      failed_ = absl::DataLossError(absl::StrCat(path_, ": the write-ahead log could not be synced to disk (",
                                                 std::strerror(error),
                                                 "): what was acknowledged since the last sync may be lost"));
    }
    done_.notify_all();
  }
  --waiting_;
  return failed_;
}

uint64_t WalSyncer::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

int WalSyncer::waiting() const {
  std::lock_guard lock(mu_);
  return waiting_;
}

}  // namespace perfgate
