#include "agent/case_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/bounded_read.h"

namespace perfgate {
namespace {

absl::Status OpenError(const std::string& path, const std::string& what, int error) {
  if (error == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no ", what));
  if (error == ELOOP) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", what, " is a symbolic link; the agent reads only files the case wrote itself"));
  }
  if (error == ENOTDIR) return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " is not a folder"));
  return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open ", what, " (", std::strerror(error), ")"));
}

}  // namespace

absl::StatusOr<CaseFolder> CaseFolder::Open(const std::string& path) { return OpenAt(AT_FDCWD, path, path); }

absl::StatusOr<CaseFolder> CaseFolder::OpenAt(int dir_fd, const std::string& name, std::string path) {
  const int fd = openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int error = errno;
    struct stat st;
    // O_DIRECTORY answers a link with ENOTDIR: say which it was.
    if (error == ENOTDIR && fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
      error = ELOOP;
    }
    return OpenError(path, "folder", error);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int error = errno;
    close(fd);
    return OpenError(path, "folder", error);
  }
  return CaseFolder(fd, std::move(path), st.st_uid);
}

CaseFolder::CaseFolder(CaseFolder&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), owner_(other.owner_) {}

CaseFolder& CaseFolder::operator=(CaseFolder&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    owner_ = other.owner_;
  }
  return *this;
}

CaseFolder::~CaseFolder() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<CaseFolder> CaseFolder::Sub(const std::string& name) const {
  return OpenAt(fd_, name, absl::StrCat(path_, "/", name));
}

absl::StatusOr<std::vector<std::string>> CaseFolder::Names(size_t max_entries) const {
  const int fd = dup(fd_);  // closedir closes the descriptor it is given
  DIR* dir = fd >= 0 ? fdopendir(fd) : nullptr;
  if (!dir) {
    if (fd >= 0) close(fd);
    return absl::InternalError(absl::StrCat(path_, ": cannot list (", std::strerror(errno), ")"));
  }
  rewinddir(dir);  // the duplicate shares its position with fd_
  std::vector<std::string> names;
  while (const dirent* entry = readdir(dir)) {
    if (std::strcmp(entry->d_name, ".") == 0 || std::strcmp(entry->d_name, "..") == 0) continue;
    if (names.size() == max_entries) {
      closedir(dir);
      return absl::ResourceExhaustedError(
          absl::StrCat(path_, ": more than ", max_entries, " files; the case left too many to read"));
    }
    names.emplace_back(entry->d_name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::string> CaseFolder::Read(const std::string& name, uint64_t max_bytes,
                                             const std::string& what) const {
  const std::string path = absl::StrCat(path_, "/", name);
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer that never comes.
  const int fd = openat(fd_, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return OpenError(path, what, errno);
  struct stat st;
  absl::StatusOr<std::string> text = absl::InternalError(absl::StrCat(path, ": cannot stat ", what));
  if (fstat(fd, &st) != 0) {
    // text says so
  } else if (!S_ISREG(st.st_mode)) {
    text = absl::InvalidArgumentError(absl::StrCat(
        path, ": ", what, " is not a regular file (a folder, FIFO, socket or device); write a plain file there"));
  } else if (owner_ != geteuid() && st.st_uid != owner_) {
    // Checked only in a case user's folder: a case that runs as the agent
    // reads what the agent can anyway, and may have written the file through
    // another user (a container's, `sudo -u`).
    text = absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " belongs to uid ", st.st_uid, ", not to uid ",
                                                   owner_, " who runs the case; the agent reads only files the case "
                                                   "wrote itself"));
  } else {
    text = ReadOpenFileBounded(fd, path, max_bytes, what);
  }
  close(fd);
  return text;
}

}  // namespace perfgate
