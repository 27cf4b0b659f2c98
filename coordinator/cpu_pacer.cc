#include "coordinator/cpu_pacer.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <thread>
#include <utility>

namespace perfgate {

int64_t CpuPacer::ThreadCpuNs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return int64_t{t.tv_sec} * 1'000'000'000 + t.tv_nsec;
}

CpuPacer::CpuPacer(double cpu_share, Sleep sleep, CpuClock cpu)
    : cpu_share_(std::clamp(cpu_share, 0.01, 1.0)),  // never a sleep without end
      sleep_(sleep ? std::move(sleep) : [](std::chrono::nanoseconds d) { std::this_thread::sleep_for(d); }),
      cpu_(cpu ? std::move(cpu) : &ThreadCpuNs) {
  Restart();
}

void CpuPacer::Restart() {
  slice_from_ns_ = cpu_();
  busy_in_slice_ = false;
}

void CpuPacer::Pace(bool busy) {
  busy_in_slice_ = busy_in_slice_ || busy;
  const int64_t used = cpu_() - slice_from_ns_;
  if (used < kSliceNs) return;
  if (busy_in_slice_ && cpu_share_ < 1.0) {
    sleep_(std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(used) * (1 / cpu_share_ - 1))));
  }
  Restart();
}

}  // namespace perfgate
