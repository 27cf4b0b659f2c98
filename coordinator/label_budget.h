// A bound on the distinct values a metric label takes. Suite and case names
// come from whoever submits, and every new name is a series Prometheus keeps
// for good: two 200-case suites of new names added 800 series, a suite of
// 10,000 cases 20,000. Past its bound a label keeps the values it has and
// names every new one kOtherLabel, so that counts are never lost, only
// lumped together.
#pragma once

#include <atomic>
#include <mutex>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"

namespace perfgate {

inline constexpr char kOtherLabel[] = "_other_";

class LabelBudget {
 public:
  explicit LabelBudget(size_t max_values) : max_values_(max_values) {}

  // `value` if it is one of the first max_values values seen, else kOtherLabel.
  std::string Admit(const std::string& value) {
    std::lock_guard lock(mu_);
    if (values_.count(value) || (values_.size() < max_values_ && values_.insert(value).second)) return value;
    return kOtherLabel;
  }

  // Whether `value` has a place: the same rule, for series that cannot be
  // lumped together (a gauge's latest value).
  bool Admits(const std::string& value) { return Admit(value) == value; }

  // True once: for the caller that saw the first refusal (to say so once).
  bool FirstRefusal() { return !refusal_told_.exchange(true); }
  size_t max_values() const { return max_values_; }

 private:
  const size_t max_values_;
  std::mutex mu_;
  std::set<std::string> values_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> refusal_told_{false};
};

}  // namespace perfgate
