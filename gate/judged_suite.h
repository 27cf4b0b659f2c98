// A suite ready to run and judge: loaded, its policy resolved with the
// judging settings a user gave (flags of `gate` and `run`), its expected
// files read, A/B variants applied.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/policy.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

// How a run is judged, as the user wrote it; empty or unset: the suite's
// `gate:` section, else the default.
struct JudgeSettings {
  std::vector<std::string> baselines;  // [POOL=]FILE
  std::string fail_on;                 // comma-separated verdicts
  std::optional<uint32_t> confirm;
  std::string main_branch;
  // Judging options as the suite writes them ("0.05", "1%").
  std::string alpha, min_effect, history_k, history_floor, history_time_floor;
  std::vector<std::string> base_env, head_env;  // NAME=VALUE, or CASE:NAME=VALUE for one case
  std::string base_root, head_root;
};

struct JudgedSuite {
  v1::Suite suite;
  Policy policy;
  Baselines baselines;
};
// Every error is bad input (InvalidArgument) naming the file and line or the flag.
absl::StatusOr<JudgedSuite> LoadJudgedSuite(const std::string& path, const JudgeSettings& settings);

// The suite's `gate:` section with the settings laid over it. Errors are bad input.
absl::StatusOr<Policy> ResolvePolicy(const v1::Suite& suite, const JudgeSettings& settings);

// With A/B settings, gives every case a base and a head variant and at least
// `min_samples` samples per side; a CASE:NAME=VALUE setting goes to that case
// only. Errors are bad input (an unknown case is named with the suite's cases).
absl::Status ApplyVariants(const JudgeSettings& settings, uint32_t min_samples, v1::Suite* suite);

}  // namespace perfgate
