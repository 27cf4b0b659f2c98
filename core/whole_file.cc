#include "core/whole_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace perfgate {
namespace {

absl::Status Errno(const std::string& path, const char* step, int error) {
  return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", step, ": ", std::strerror(error)));
}

// Writes all of `contents` to `fd`, then syncs it.
absl::Status WriteAndSync(int fd, const std::string& path, const std::string& contents) {
  for (size_t done = 0; done < contents.size();) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(path, "write", errno);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return Errno(path, "fsync", errno);
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileWhole(const std::string& path, const std::string& contents) {
  std::error_code ec;
  std::string target = path;
  if (std::filesystem::is_symlink(path, ec)) {
    const std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", ec.message()));
    target = resolved.string();
  }
  struct stat old;
  const bool existed = stat(target.c_str(), &old) == 0;
  const std::string tmp = absl::StrCat(target, ".tmp.", getpid());
  // A new file gets what the umask leaves of 0666, as any editor's would.
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, existed ? 0600 : 0666);
  if (fd < 0) return Errno(path, absl::StrCat("create ", tmp).c_str(), errno);
  absl::Status status = WriteAndSync(fd, path, contents);
  if (status.ok() && existed && fchmod(fd, old.st_mode & 07777) != 0) status = Errno(path, "chmod", errno);
  if (close(fd) != 0 && status.ok()) status = Errno(path, "close", errno);
  if (status.ok() && rename(tmp.c_str(), target.c_str()) != 0) status = Errno(path, "rename", errno);
  if (!status.ok()) unlink(tmp.c_str());
  return status;
}

}  // namespace perfgate
