#include "gate/judged_suite.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/identifiers.h"
#include "core/names.h"
#include "core/suite.h"
#include "core/units.h"

namespace perfgate {

absl::StatusOr<Policy> ResolvePolicy(const v1::Suite& suite, const JudgeSettings& flags) {
  Policy policy = PolicyForSuite(suite);
  policy.compare.declared = DeclaredMetrics(suite);
  if (!flags.baselines.empty()) policy.expected_files.clear();
  for (const auto& b : flags.baselines) {
    // POOL=FILE only where the part before '=' can name a pool: a path such
    // as results/run=3/expected.csv is a file for every pool.
    auto eq = b.find('=');
    if (eq != std::string::npos && !AgentNameProblem("pool", b.substr(0, eq)).empty()) eq = std::string::npos;
    const std::string pool = eq == std::string::npos ? "*" : b.substr(0, eq);
    const std::string path = eq == std::string::npos ? b : b.substr(eq + 1);
    // One file a pool: a second one took the first's place, and the rows
    // only the first held were checked by nothing.
    auto [it, inserted] = policy.expected_files.emplace(pool, path);
    if (!inserted && it->second != path) {
      return absl::InvalidArgumentError(absl::StrCat("--baseline: two expected files for ",
                                                     pool == "*" ? "every pool" : absl::StrCat("pool '", pool, "'"),
                                                     " (", it->second, " and ", path, "); put their rows in one file"));
    }
  }
  if (!flags.fail_on.empty()) {
    policy.fail_on.clear();
    for (const auto& name : absl::StrSplit(flags.fail_on, ',')) {
      auto verdict = ParseFailOnVerdict(std::string(name));
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

namespace {

// One --base-env/--head-env entry: NAME=VALUE for every case, or
// CASE:NAME=VALUE for one (a colon before the '=': names have none).
struct EnvSetting {
  std::string case_name;  // empty: every case
  std::string name, value;
};

absl::StatusOr<EnvSetting> ParseEnvSetting(const std::string& text, const char* flag) {
  const auto eq = text.find('=');
  const auto colon = text.rfind(':', eq);
  EnvSetting setting;
  const size_t name_start = colon == std::string::npos ? 0 : colon + 1;
  if (colon != std::string::npos) setting.case_name = text.substr(0, colon);
  if (eq == std::string::npos || eq == name_start || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " takes NAME=VALUE or CASE:NAME=VALUE, got '", text, "'"));
  }
  setting.name = text.substr(name_start, eq - name_start);
  setting.value = text.substr(eq + 1);
  return setting;
}

}  // namespace

absl::Status ApplyVariants(const JudgeSettings& flags, uint32_t min_samples, v1::Suite* suite) {
  if (flags.base_env.empty() && flags.head_env.empty() && flags.base_root.empty() && flags.head_root.empty()) {
    return absl::OkStatus();
  }
  std::vector<std::string> case_names;
  for (const auto& c : suite->cases()) case_names.push_back(c.name());
  v1::Variant base, head;
  base.set_name(SideName(Side::kBase));
  head.set_name(SideName(Side::kHead));
  // A mistyped root made every case fail on its side, and the gate fail on "results" (exit 1).
  for (auto [root, flag] : {std::pair{&flags.base_root, "--base-root"}, std::pair{&flags.head_root, "--head-root"}}) {
    std::error_code ec;
    if (!root->empty() && !std::filesystem::is_directory(*root, ec)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, " ", *root, ": there is no such folder"));
    }
  }
  base.set_root(flags.base_root);
  head.set_root(flags.head_root);
  // Per side: the settings for every case, then those for one case each.
  std::vector<std::pair<v1::Variant*, EnvSetting>> per_case;
  for (auto [list, variant, flag] :
       {std::tuple{&flags.base_env, &base, "--base-env"}, std::tuple{&flags.head_env, &head, "--head-env"}}) {
    for (const auto& text : *list) {
      auto setting = ParseEnvSetting(text, flag);
      if (!setting.ok()) return setting.status();
      if (setting->case_name.empty()) {
        (*variant->mutable_env())[setting->name] = setting->value;
      } else if (std::find(case_names.begin(), case_names.end(), setting->case_name) == case_names.end()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, " ", text, ": suite '", suite->name(),
                                                       "' has no case '", setting->case_name,
                                                       "' (its cases: ", absl::StrJoin(case_names, ", "), ")"));
      } else {
        per_case.emplace_back(variant, *std::move(setting));
      }
    }
  }
  for (auto& c : *suite->mutable_cases()) {
    c.clear_variants();
    v1::Variant* case_base = c.add_variants();
    v1::Variant* case_head = c.add_variants();
    *case_base = base;
    *case_head = head;
    for (const auto& [side, setting] : per_case) {
      if (setting.case_name != c.name()) continue;
      (*(side == &base ? case_base : case_head)->mutable_env())[setting.name] = setting.value;
    }
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
