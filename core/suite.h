// Suite files: the YAML that lists a suite's benchmark cases.
//
//   suite: demo
//   defaults: {warmup: 1, repeats: 5, timeout: 30s}
//   cases:
//     - name: spin_small
//       command: [./bin/spin, "1000"]
//       expected_duration: 2s   # optional: the scheduler starts the longest first
//
// Loading is strict: an unknown key, a wrong type or a bad value is an error
// that names the file, line and column and says what would be accepted.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

// Defaults for fields a case and the suite's `defaults` leave out.
inline constexpr uint32_t kDefaultWarmup = 1;
inline constexpr uint32_t kDefaultRepeats = 5;
inline constexpr uint32_t kDefaultTimeoutMs = 60'000;
inline constexpr uint64_t kDefaultOutputLimitBytes = 8 << 20;
// The agent holds this much of each stream in memory, per case.
inline constexpr uint64_t kMaxOutputLimitBytes = 1ull << 30;
// The most a suite file may hold; larger ones (or /dev/zero) are refused.
inline constexpr uint64_t kMaxSuiteFileBytes = 16ull << 20;
// The most history runs a suite may judge against (gate.history.runs).
inline constexpr uint32_t kMaxHistoryRuns = 1'000;
// The most warm-up runs before a case's measured ones (warmup, --warmup).
inline constexpr uint32_t kMaxWarmup = 1'000;
// The most confirmation rounds of a gate (gate.confirm, --confirm): each
// runs every suspected regression again.
inline constexpr uint32_t kMaxConfirmRounds = 10;
// The most samples one case's result may carry (one per repeat and
// variant): what a coordinator takes by default, and the most repeats a
// suite, a manual run or a confirmation round asks for.
inline constexpr uint32_t kMaxSamplesPerResult = 100'000;

// Reads and validates the suite at `path`. Relative paths in `command[0]`
// (when it contains a '/') and in `cwd` are made absolute against the
// suite file's folder, and ${SUITE_DIR} is expanded; other ${VAR}s are left
// for the agent to expand from its own environment.
absl::StatusOr<v1::Suite> LoadSuiteFile(const std::string& path);

// The same for text already in memory. `source` names it in errors;
// `base_dir` anchors relative paths.
absl::StatusOr<v1::Suite> ParseSuite(const std::string& text, const std::string& source, const std::string& base_dir);

}  // namespace perfgate
