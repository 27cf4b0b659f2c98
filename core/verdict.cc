#include "core/verdict.h"

#include <algorithm>
#include <utility>

namespace perfgate {
namespace {

// The one name table: words people read; a suite's fail_on and --fail-on
// write them with '_' for ' '.
constexpr std::pair<Verdict, const char*> kVerdicts[] = {
    {Verdict::kPass, "pass"},
    {Verdict::kRegression, "regression"},
    {Verdict::kImprovement, "improvement"},
    {Verdict::kError, "error"},
    {Verdict::kMissingResult, "missing result"},
    {Verdict::kNoBaseline, "no baseline"},
    {Verdict::kNoCapableAgent, "no capable agent"},
    {Verdict::kCancelled, "cancelled"},
};

}  // namespace

const char* VerdictName(Verdict verdict) {
  for (const auto& [v, name] : kVerdicts) {
    if (v == verdict) return name;
  }
  return "?";
}

std::optional<Verdict> ParseVerdict(const std::string& name) {
  std::string spaced = name;
  std::replace(spaced.begin(), spaced.end(), '_', ' ');
  for (const auto& [v, word] : kVerdicts) {
    if (spaced == word) return v;
  }
  return std::nullopt;
}

std::vector<std::string> FailOnVerdictKeys() {
  std::vector<std::string> keys;
  for (const auto& [v, name] : kVerdicts) {
    if (v == Verdict::kPass || v == Verdict::kCancelled) continue;
    std::string key = name;
    std::replace(key.begin(), key.end(), ' ', '_');
    keys.push_back(std::move(key));
  }
  return keys;
}

std::optional<Verdict> ParseFailOnVerdict(const std::string& key) {
  const std::vector<std::string> keys = FailOnVerdictKeys();
  if (std::find(keys.begin(), keys.end(), key) == keys.end()) return std::nullopt;
  return ParseVerdict(key);
}

}  // namespace perfgate
