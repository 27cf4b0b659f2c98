// Hardware instruction counts through perf_event_open.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace perfgate {

// Opens a counter of user-space instructions retired by `pid` and the
// children it creates afterwards, enabled when `pid` calls exec.
// REQUIRES: `pid` has not exec'd yet (it waits for the go-ahead).
absl::StatusOr<int> OpenInstructionCounter(pid_t pid);

// Reads and closes the counter.
absl::StatusOr<uint64_t> ReadAndCloseCounter(int fd);

// OK when this host can count instructions with perf_event_open, otherwise
// the reason (this VM: "perf_event_open: No such file or directory").
absl::Status ProbePerfCounter();

}  // namespace perfgate
