#include "gate/judged_suite.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/names.h"
#include "core/suite.h"
#include "core/units.h"

namespace perfgate {

absl::StatusOr<Policy> ResolvePolicy(const v1::Suite& suite, const JudgeSettings& flags) {
  Policy policy = PolicyForSuite(suite);
  policy.compare.declared = DeclaredMetrics(suite);
  if (!flags.baselines.empty()) policy.expected_files.clear();
  for (const auto& b : flags.baselines) {
    const auto eq = b.find('=');
    if (eq == std::string::npos)
      policy.expected_files["*"] = b;
    else
      policy.expected_files[b.substr(0, eq)] = b.substr(eq + 1);
  }
  if (!flags.fail_on.empty()) {
    policy.fail_on.clear();
    for (const auto& name : absl::StrSplit(flags.fail_on, ',')) {
      auto verdict = ParseVerdict(std::string(name));
      if (!verdict) {
        return absl::InvalidArgumentError(
            absl::StrCat("--fail-on: unknown verdict '", std::string(name), "' (use ",
                         absl::StrJoin(FailOnVerdictKeys(), ", "), ")"));
      }
      policy.fail_on.insert(*verdict);
    }
  }
  struct Option {
    const std::string* text;
    const char* flag;
    std::string (*check)(double);
    double* target;
  };
  for (const auto& [text, flag, check, target] :
       {Option{&flags.alpha, "--alpha", CheckAlpha, &policy.compare.ab_alpha},
        Option{&flags.min_effect, "--min-effect", CheckMinEffect, &policy.compare.ab_min_effect},
        Option{&flags.history_k, "--history-k", CheckHistoryK, &policy.compare.history_k},
        Option{&flags.history_floor, "--history-floor", CheckHistoryFloor, &policy.compare.history_floor},
        Option{&flags.history_time_floor, "--history-time-floor", CheckHistoryFloor,
               &policy.compare.history_time_floor}}) {
    if (text->empty()) continue;
    // Fractions as the suite writes them ("1%", "0.01"); k is a plain number, which ParseFraction reads too.
    const double value = ParseFraction(*text).value_or(NAN);  // NaN: malformed, negative or not finite
    if (auto why = check(value); !why.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, " ", why, ", got '", *text, "'"));
    }
    *target = value;
  }
  if (flags.confirm) policy.confirm = *flags.confirm;
  if (!flags.main_branch.empty()) policy.main_branch = flags.main_branch;
  return policy;
}

absl::Status ApplyVariants(const JudgeSettings& flags, uint32_t min_samples, v1::Suite* suite) {
  if (flags.base_env.empty() && flags.head_env.empty() && flags.base_root.empty() && flags.head_root.empty()) {
    return absl::OkStatus();
  }
  v1::Variant base, head;
  base.set_name(SideName(Side::kBase));
  head.set_name(SideName(Side::kHead));
  base.set_root(flags.base_root);
  head.set_root(flags.head_root);
  for (auto [list, variant, flag] :
       {std::tuple{&flags.base_env, &base, "--base-env"}, std::tuple{&flags.head_env, &head, "--head-env"}}) {
    for (const auto& kv : *list) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        return absl::InvalidArgumentError(absl::StrCat(flag, " takes NAME=VALUE, got '", kv, "'"));
      }
      (*variant->mutable_env())[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  for (auto& c : *suite->mutable_cases()) {
    c.clear_variants();
    *c.add_variants() = base;
    *c.add_variants() = head;
    c.set_repeats(std::max(c.repeats(), min_samples));
  }
  return absl::OkStatus();
}

absl::StatusOr<JudgedSuite> LoadJudgedSuite(const std::string& path, const JudgeSettings& flags) {
  auto suite = LoadSuiteFile(path);
  if (!suite.ok()) return suite.status();
  auto policy = ResolvePolicy(*suite, flags);
  if (!policy.ok()) return policy.status();
  auto baselines = LoadExpectedBaselines(*policy);
  if (!baselines.ok()) return baselines.status();
  if (auto s = ApplyVariants(flags, policy->compare.ab_min_samples, &*suite); !s.ok()) return s;
  return JudgedSuite{*std::move(suite), *std::move(policy), *std::move(baselines)};
}

}  // namespace perfgate
