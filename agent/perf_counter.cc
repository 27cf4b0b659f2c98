#include "agent/perf_counter.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace perfgate {
namespace {

int PerfEventOpen(perf_event_attr* attr, pid_t pid, bool enable_on_exec) {
  attr->type = PERF_TYPE_HARDWARE;
  attr->size = sizeof(*attr);
  attr->config = PERF_COUNT_HW_INSTRUCTIONS;
  attr->exclude_kernel = 1;
  attr->exclude_hv = 1;
  attr->inherit = 1;
  attr->disabled = enable_on_exec ? 1 : 0;
  attr->enable_on_exec = enable_on_exec ? 1 : 0;
  return static_cast<int>(syscall(SYS_perf_event_open, attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC));
}

absl::Status Errno(const char* what) { return absl::UnavailableError(absl::StrCat(what, ": ", std::strerror(errno))); }

}  // namespace

absl::StatusOr<int> OpenInstructionCounter(pid_t pid) {
  perf_event_attr attr{};
  int fd = PerfEventOpen(&attr, pid, /*enable_on_exec=*/true);
  if (fd < 0) return Errno("perf_event_open");
  return fd;
}

absl::StatusOr<uint64_t> ReadAndCloseCounter(int fd) {
  uint64_t value = 0;
  ssize_t n = read(fd, &value, sizeof value);
  int saved = errno;
  close(fd);
  if (n != static_cast<ssize_t>(sizeof value)) {
    errno = saved;
    return Errno("reading perf counter");
  }
  return value;
}

absl::Status ProbePerfCounter() {
  perf_event_attr attr{};
  int fd = PerfEventOpen(&attr, 0, /*enable_on_exec=*/false);
  if (fd < 0) return Errno("perf_event_open");
  close(fd);
  return absl::OkStatus();
}

}  // namespace perfgate
