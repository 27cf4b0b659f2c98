// Robust summaries of raw samples.
#pragma once

#include <cstddef>
#include <vector>

namespace perfgate {

struct Summary {
  size_t n = 0;
  double median = 0;
  double mad = 0;  // median absolute deviation (unscaled)
  double min = 0;
  double max = 0;
};

// REQUIRES: values non-empty.
Summary Summarize(std::vector<double> values);

// MAD as a relative spread (mad / |median|), 0 when the median is 0.
double RelativeSpread(const Summary& s);

}  // namespace perfgate
