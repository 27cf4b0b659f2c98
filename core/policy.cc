#include "core/policy.h"

#include <cmath>

namespace perfgate {

std::string CheckAlpha(double value) {
  return std::isfinite(value) && value > 0 && value < 1 ? "" : "must be a significance level in (0, 1), like 0.05";
}

std::string CheckMinEffect(double value) {
  return std::isfinite(value) && value > 0 ? "" : "must be a relative change > 0, like 0.01 or 1%";
}

std::string CheckHistoryK(double value) {
  return std::isfinite(value) && value > 0 ? "" : "must be a finite number > 0, like 4";
}

std::string CheckHistoryFloor(double value) {
  return std::isfinite(value) && value >= 0 ? "" : "must be a relative change >= 0, like 0.01 or 1%";
}

Policy PolicyForSuite(const v1::Suite& suite) {
  const v1::GateConfig& config = suite.gate();
  Policy policy;
  for (const auto& c : suite.cases()) {
    if (c.judged_metrics_size() > 0) {
      policy.judged_metrics[c.name()] = {c.judged_metrics().begin(), c.judged_metrics().end()};
    }
  }
  if (config.fail_on_size() > 0) {
    policy.fail_on.clear();
    for (const auto& name : config.fail_on()) {
      if (auto v = ParseVerdict(name)) policy.fail_on.insert(*v);
    }
  }
  for (const auto& [testbed, path] : config.expected()) policy.expected_files[testbed] = path;
  if (!config.main_branch().empty()) policy.main_branch = config.main_branch();
  if (config.history_min_runs()) policy.compare.history_min_runs = config.history_min_runs();
  if (config.history_runs()) policy.compare.history_runs = config.history_runs();
  if (config.history_k() > 0) policy.compare.history_k = config.history_k();
  if (config.has_history_floor()) policy.compare.history_floor = config.history_floor();
  if (config.has_history_time_floor()) policy.compare.history_time_floor = config.history_time_floor();
  if (config.history_max_age_ms()) policy.history_max_age_ms = config.history_max_age_ms();
  if (config.ab_alpha() > 0) policy.compare.ab_alpha = config.ab_alpha();
  if (config.ab_min_effect() > 0) policy.compare.ab_min_effect = config.ab_min_effect();
  if (config.has_confirm()) policy.confirm = config.confirm();
  return policy;
}

bool Policy::Judged(const std::string& case_name, const std::string& metric) const {
  auto it = judged_metrics.find(case_name);
  return it == judged_metrics.end() ? JudgedByDefault(metric) : it->second.count(metric) > 0;
}

bool JudgedByDefault(const std::string& metric) { return metric != "user_cpu_time" && metric != "sys_cpu_time"; }

absl::StatusOr<Baselines> LoadExpectedBaselines(const Policy& policy) {
  Baselines baselines;
  for (const auto& [testbed, path] : policy.expected_files) {
    auto rows = LoadExpectedFile(path);
    if (!rows.ok()) return rows.status();
    baselines.expected[testbed] = *std::move(rows);
  }
  return baselines;
}

}  // namespace perfgate
