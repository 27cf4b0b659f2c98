// Deterministic instruction counts with valgrind's callgrind, the fallback
// where hardware counters are absent (VMs, CI).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace perfgate {

// `argv` wrapped to run under callgrind, following children, writing one
// profile per process into `out_dir`. `valgrind` is the resolved program.
std::vector<std::string> CallgrindArgv(const std::string& valgrind, const std::vector<std::string>& argv,
                                       const std::string& out_dir);

// Total instructions (Ir) over every profile in `out_dir`.
absl::StatusOr<uint64_t> SumCallgrindInstructions(const std::string& out_dir);

// The valgrind program, or NotFound with what to install.
absl::StatusOr<std::string> FindValgrind();

}  // namespace perfgate
