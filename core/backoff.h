// How long a client waits before trying a busy or unreachable coordinator
// again: 100 ms, doubling, at most 1.6 s.
#pragma once

#include <algorithm>

namespace perfgate {

// REQUIRES: attempt >= 0 (the number of tries so far, less one).
inline int RetryBackoffMs(int attempt) { return 100 << std::min(attempt, 4); }

}  // namespace perfgate
