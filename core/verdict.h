// The verdicts a gate can give a case or one of its metrics.
#pragma once

#include <optional>
#include <string>
#include <vector>

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
// The verdicts a policy may fail on (all but pass and cancelled), as a
// suite's fail_on and --fail-on write them: "regression", ..., "no_capable_agent".
std::vector<std::string> FailOnVerdictKeys();
// One of FailOnVerdictKeys() ("no_baseline"); nullopt for anything else, the
// spaced words and "pass"/"cancelled" included, so that --fail-on and a
// suite's gate.fail_on accept the same words.
std::optional<Verdict> ParseFailOnVerdict(const std::string& key);

}  // namespace perfgate
