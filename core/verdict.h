// The verdicts a gate can give a case or one of its metrics.
#pragma once

#include <optional>
#include <string>

namespace perfgate {

enum class Verdict {
  kPass,
  kRegression,
  kImprovement,
  kError,
  kMissingResult,
  kNoBaseline,
  kNoCapableAgent,
  kCancelled,
};

// "pass", "regression", "missing result", ... (also the policy's words, with '_' for ' ').
const char* VerdictName(Verdict verdict);
// Accepts "no_baseline" and "no baseline" alike; nullopt if unknown.
std::optional<Verdict> ParseVerdict(const std::string& name);

}  // namespace perfgate
