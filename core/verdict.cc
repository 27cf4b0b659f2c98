#include "core/verdict.h"

#include <algorithm>

namespace perfgate {

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPass:
      return "pass";
    case Verdict::kRegression:
      return "regression";
    case Verdict::kImprovement:
      return "improvement";
    case Verdict::kError:
      return "error";
    case Verdict::kMissingResult:
      return "missing result";
    case Verdict::kNoBaseline:
      return "no baseline";
    case Verdict::kNoCapableAgent:
      return "no capable agent";
    case Verdict::kCancelled:
      return "cancelled";
  }
  return "?";
}

std::optional<Verdict> ParseVerdict(const std::string& name) {
  std::string spaced = name;
  std::replace(spaced.begin(), spaced.end(), '_', ' ');
  for (Verdict v : {Verdict::kPass, Verdict::kRegression, Verdict::kImprovement, Verdict::kError,
                    Verdict::kMissingResult, Verdict::kNoBaseline, Verdict::kNoCapableAgent, Verdict::kCancelled}) {
    if (spaced == VerdictName(v)) return v;
  }
  return std::nullopt;
}

}  // namespace perfgate
