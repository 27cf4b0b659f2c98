// Holds one thread's long, never urgent work (a history read, a run's
// history summaries, storing a submitted suite) to a share of a core while
// the machine is busy serving agents, so that the work cannot take a core
// for tens of milliseconds while agents wait for one: on 2 cores, a run's
// summaries (15 ms of CPU at the coordinator's raised priority) were half
// of several 10-17 ms moments in which no agent ran a case.
//
// It sleeps only between pieces of the work, where the thread holds no lock
// others wait for, and never while the machine is idle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>

namespace perfgate {

class CpuPacer {
 public:
  using Sleep = std::function<void(std::chrono::nanoseconds)>;
  // The CPU the calling thread has used, in nanoseconds.
  using CpuClock = std::function<int64_t()>;
  // cpu_share: the part of a core the thread may use while busy, held to
  // [0.01, 1]; 1 never sleeps. sleep: how it sleeps, and cpu: how it reads
  // its thread's CPU (ThreadCpuNs); tests count sleeps and drive the CPU
  // clock instead, since a loaded machine's thread clock jumps.
  explicit CpuPacer(double cpu_share, Sleep sleep = nullptr, CpuClock cpu = nullptr);

  // At points where the work may pause. busy: whether urgent work went on
  // since the last call. Each time the thread has used a slice of CPU
  // (kSliceNs), it sleeps long enough to keep within its share of a core if
  // any call in that slice said busy. REQUIRES: called on the thread that
  // constructed or last restarted it.
  void Pace(bool busy);

  // The calling thread's CPU time so far, in nanoseconds.
  static int64_t ThreadCpuNs();

  // CPU a thread uses before it may sleep: short enough that agents never
  // wait long for a core, long enough that sleeps stay few.
  static constexpr int64_t kSliceNs = 1'000'000;

 private:
  // Starts a new slice now.
  void Restart();

  const double cpu_share_;
  const Sleep sleep_;
  const CpuClock cpu_;
  int64_t slice_from_ns_ = 0;  // the slice's start, in thread CPU time
  bool busy_in_slice_ = false;
};

// A CpuPacer that sees for itself whether urgent work went on: through a
// counter of it (leases granted, lease-path writes), busy when the counter
// moved since the last call or, for the first, since construction.
class ActivityPacer {
 public:
  // REQUIRES: `activity` outlives this object.
  ActivityPacer(double cpu_share, const std::atomic<uint64_t>& activity, CpuPacer::Sleep sleep = nullptr,
                CpuPacer::CpuClock cpu = nullptr)
      : activity_(activity), seen_(Now()), pacer_(cpu_share, std::move(sleep), std::move(cpu)) {}

  // At points where the work may pause (CpuPacer::Pace).
  void operator()() {
    const uint64_t now = Now();
    pacer_.Pace(now != seen_);
    seen_ = now;
  }

 private:
  uint64_t Now() const { return activity_.load(std::memory_order_relaxed); }
  const std::atomic<uint64_t>& activity_;
  uint64_t seen_;
  CpuPacer pacer_;
};

}  // namespace perfgate
