// A bound on the distinct values a metric label takes, in number and in
// bytes. Suite and case names come from whoever submits, and every new name
// is a series Prometheus keeps for good: two 200-case suites of new names
// added 800 series, a suite of 10,000 cases 20,000. Past its bound a label
// keeps the values it has and names every new one kOtherLabel, so that
// counts are never lost, only lumped together.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"

namespace perfgate {

inline constexpr char kOtherLabel[] = "_other_";

class LabelBudget {
 public:
  explicit LabelBudget(size_t max_values, size_t max_bytes = SIZE_MAX)
      : max_values_(max_values), max_bytes_(max_bytes) {}

  // `value` if it is one of the first values seen within max_values and
  // max_bytes, else kOtherLabel.
  std::string Admit(const std::string& value) {
    std::lock_guard lock(mu_);
    if (values_.count(value)) return value;
    if (values_.size() >= max_values_ || value.size() > max_bytes_ - bytes_) return kOtherLabel;
    values_.insert(value);
    bytes_ += value.size();
    return value;
  }

  // Whether `value` was admitted before.
  bool Contains(const std::string& value) {
    std::lock_guard lock(mu_);
    return values_.count(value) > 0;
  }

  // Whether `value` has a place: the same rule, for series that cannot be
  // lumped together (a gauge's latest value).
  bool Admits(const std::string& value) { return Admit(value) == value; }

  // True once: for the caller that saw the first refusal (to say so once).
  bool FirstRefusal() { return !refusal_told_.exchange(true); }
  // "N values", and their bytes where those are bounded.
  std::string Bound() const {
    std::string bound = std::to_string(max_values_) + " values";
    if (max_bytes_ != SIZE_MAX) bound += " in " + std::to_string(max_bytes_) + " bytes";
    return bound;
  }

 private:
  const size_t max_values_;
  const size_t max_bytes_;
  std::mutex mu_;
  std::set<std::string> values_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> refusal_told_{false};
};

}  // namespace perfgate
