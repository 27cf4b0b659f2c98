// A clock seam: lease expiry and heartbeats read time only through this, so
// tests drive it with simulated time instead of sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace perfgate {

class TimeSource {
 public:
  virtual ~TimeSource() = default;
  // Milliseconds since the Unix epoch. Monotonic enough for leases: the
  // coordinator never compares its clock with an agent's.
  virtual int64_t NowMs() const = 0;
};

class RealTimeSource final : public TimeSource {
 public:
  int64_t NowMs() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Time that moves only when a test says so.
class SimulatedTimeSource final : public TimeSource {
 public:
  explicit SimulatedTimeSource(int64_t start_ms = 1'000'000) : now_ms_(start_ms) {}
  int64_t NowMs() const override { return now_ms_.load(); }
  void Advance(int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace perfgate
