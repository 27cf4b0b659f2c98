// Flags that decide how a run is judged, shared by `gate` and `run`:
// baselines, the failing verdicts, confirmation, and A/B variants.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/policy.h"
#include "perfgate/v1/common.pb.h"

namespace perfgate {

struct JudgeFlags {
  std::vector<std::string> baselines;  // [POOL=]FILE
  std::string fail_on;                 // comma-separated verdicts
  std::optional<uint32_t> confirm;
  std::string main_branch;
  // Judging options as the suite writes them ("0.05", "1%"); empty: the suite's or the default.
  std::string alpha, min_effect, history_k, history_floor;
  std::vector<std::string> base_env, head_env;  // NAME=VALUE
  std::string base_root, head_root;
};

void AddJudgeFlags(CLI::App* cmd, JudgeFlags* flags, bool with_history);

// A suite ready to run and judge: loaded, its policy resolved with the
// flags, its expected files read, A/B variants applied.
struct JudgedSuite {
  v1::Suite suite;
  Policy policy;
  Baselines baselines;
};
// Every error is bad input naming the file and line or the flag.
absl::StatusOr<JudgedSuite> LoadJudgedSuite(const std::string& path, const JudgeFlags& flags);

// The suite's `gate:` section with the flags laid over it. Errors are bad input.
absl::StatusOr<Policy> ResolvePolicy(const v1::Suite& suite, const JudgeFlags& flags);

// With A/B flags, gives every case a base and a head variant and at least
// `min_samples` samples per side. Errors are bad input.
absl::Status ApplyVariants(const JudgeFlags& flags, uint32_t min_samples, v1::Suite* suite);

}  // namespace perfgate
