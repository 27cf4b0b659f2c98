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

absl::Status Errno(const std::string& path, const std::string& step, int error) {
  return absl::UnavailableError(absl::StrCat("cannot write ", path, ": ", step, ": ", std::strerror(error)));
}

// Writes all of `contents` to `fd`.
absl::Status WriteAll(int fd, const std::string& path, const std::string& contents) {
  for (size_t done = 0; done < contents.size();) {
    const ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(path, "write", errno);
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// What `path` names once its links are followed, even to a file not there yet.
std::string Followed(const std::string& path) {
  std::filesystem::path target = path;
  std::error_code ec;
  for (int hops = 0; hops < 40 && std::filesystem::is_symlink(target, ec); ++hops) {
    const std::filesystem::path next = std::filesystem::read_symlink(target, ec);
    if (ec) break;
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  return target.string();
}

// Not a regular file (a device, a FIFO, a terminal): written into, as any
// program writes to /dev/stdout; renaming over it would replace the node.
absl::Status WriteInPlace(const std::string& path, const std::string& target, const std::string& contents) {
  const int fd = open(target.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return Errno(path, "open", errno);
  absl::Status status = WriteAll(fd, path, contents);
  if (close(fd) != 0 && status.ok()) status = Errno(path, "close", errno);
  return status;
}

}  // namespace

absl::Status WriteFileWhole(const std::string& path, const std::string& contents) {
  const std::string target = Followed(path);
  struct stat old;
  const bool existed = stat(target.c_str(), &old) == 0;
  if (existed && !S_ISREG(old.st_mode)) return WriteInPlace(path, target, contents);
  const std::string tmp = absl::StrCat(target, ".tmp.", getpid());
  // A new file gets what the umask leaves of 0666, as any editor's would.
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, existed ? 0600 : 0666);
  if (fd < 0) {
    const int error = errno;
    return Errno(path, absl::StrCat("create ", tmp), error);
  }
  absl::Status status = WriteAll(fd, path, contents);
  if (status.ok() && fsync(fd) != 0) status = Errno(path, "fsync", errno);
  if (status.ok() && existed && fchmod(fd, old.st_mode & 07777) != 0) status = Errno(path, "chmod", errno);
  if (close(fd) != 0 && status.ok()) status = Errno(path, "close", errno);
  if (status.ok() && rename(tmp.c_str(), target.c_str()) != 0) status = Errno(path, "rename", errno);
  if (!status.ok()) unlink(tmp.c_str());
  return status;
}

}  // namespace perfgate
