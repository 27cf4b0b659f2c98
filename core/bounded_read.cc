#include "core/bounded_read.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/units.h"

namespace perfgate {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

absl::Status TooLarge(const std::string& path, uint64_t max_bytes, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " is larger than the limit of ", FormatBytes(max_bytes),
                                                 " (", max_bytes, " bytes); is this the right file?"));
}

// How long a FIFO may wait for its writer: `mkfifo f; producer > f &` starts
// the writer a moment after the reader.
constexpr int kFifoWriterWaitMs = 10'000;

// Whether a writer opened the FIFO at `fd` (read end, O_NONBLOCK) and wrote
// or closed it within kFifoWriterWaitMs. Until one has, poll reports nothing.
bool AWriterCame(int fd) {
  pollfd p{fd, POLLIN, 0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kFifoWriterWaitMs);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n == 0 || errno != EINTR) return false;
  }
}

}  // namespace

absl::StatusOr<std::string> ReadFileBounded(const std::string& path, uint64_t max_bytes, const std::string& what) {
  // O_NONBLOCK: opening a FIFO no one writes to waits for ever, and with
  // SIGINT and SIGTERM not yet handled nothing but SIGKILL ended it. Reads
  // block again, so a pipe with a writer (`<(cat file)`) is read whole.
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0) {
    const int error = errno;
    const std::string message = absl::StrCat(path, ": cannot open ", what, " (", std::strerror(error), ")");
    return error == ENOENT ? absl::NotFoundError(message) : absl::PermissionDeniedError(message);
  }
  struct stat st;
  if (fstat(fd.get(), &st) == 0 && S_ISFIFO(st.st_mode) && !AWriterCame(fd.get())) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", what, " is a FIFO that nothing wrote to within ", kFifoWriterWaitMs / 1000, " s"));
  }
  fcntl(fd.get(), F_SETFL, fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  return ReadOpenFileBounded(fd.get(), path, max_bytes, what);
}

absl::StatusOr<std::string> ReadOpenFileBounded(int fd, const std::string& path, uint64_t max_bytes,
                                                const std::string& what) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::InternalError(absl::StrCat(path, ": cannot stat ", what, " (", std::strerror(errno), ")"));
  }
  if (S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " is a folder"));
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes) return TooLarge(path, max_bytes, what);

  std::string text;
  char buffer[64 * 1024];
  for (;;) {
    const uint64_t room = max_bytes + 1 - text.size();  // one byte past the cap tells "too large"
    const ssize_t n = read(fd, buffer, std::min<uint64_t>(sizeof buffer, room));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat(path, ": cannot read ", what, " (", std::strerror(errno), ")"));
    if (n == 0) return text;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > max_bytes) return TooLarge(path, max_bytes, what);
  }
}

}  // namespace perfgate
