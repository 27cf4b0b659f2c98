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
  // Pinned: a counter the PMU cannot keep (another perf user's events
  // multiplexed with it) reads as an error, not as a part of the count;
  // the times read with it say so as well.
  attr->pinned = 1;
  attr->read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
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
  struct {
    uint64_t value, enabled_ns, running_ns;
  } read_out{};
  ssize_t n = read(fd, &read_out, sizeof read_out);
  int saved = errno;
  close(fd);
  if (n == 0) {
    return absl::UnavailableError(
        "the instruction counter lost its place on the PMU (another perf user's events took it): no count");
  }
  if (n != static_cast<ssize_t>(sizeof read_out)) {
    errno = saved;
    return Errno("reading perf counter");
  }
  if (read_out.running_ns < read_out.enabled_ns) {
    return absl::UnavailableError(absl::StrCat("the instruction counter counted ", read_out.running_ns, " ns of the ",
                                               read_out.enabled_ns,
                                               " ns it was enabled (multiplexed with another perf user's events): "
                                               "a part of the count, not used"));
  }
  return read_out.value;
}

absl::Status ProbePerfCounter() {
  perf_event_attr attr{};
  int fd = PerfEventOpen(&attr, 0, /*enable_on_exec=*/false);
  if (fd < 0) return Errno("perf_event_open");
  close(fd);
  return absl::OkStatus();
}

}  // namespace perfgate
