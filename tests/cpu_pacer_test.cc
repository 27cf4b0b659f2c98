#include "coordinator/cpu_pacer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

namespace perfgate {
namespace {

// The thread's CPU clock, driven by the test: on a loaded machine the real
// one jumps by milliseconds between two reads (a vCPU descheduled by its
// host still counts as running), so a test on it depends on timing.
struct FakeCpu {
  int64_t ns = 0;
  CpuPacer::CpuClock Clock() {
    return [this] { return ns; };
  }
};

// Uses `ns` of CPU in steps of `step`, calling pace() after each.
template <typename F>
void Compute(FakeCpu& cpu, int64_t ns, int64_t step, F pace) {
  for (int64_t done = 0; done < ns; done += step) {
    cpu.ns += step;
    pace();
  }
}

constexpr int64_t kStep = 10'000;  // 10 us of CPU between two pauses

struct Sleeps {
  std::vector<std::chrono::nanoseconds> all;
  CpuPacer::Sleep Recorder() {
    return [this](std::chrono::nanoseconds d) { all.push_back(d); };
  }
  int64_t TotalNs() const {
    int64_t total = 0;
    for (auto d : all) total += d.count();
    return total;
  }
};

TEST(CpuPacerTest, AnIdleMachineIsNeverMadeToWait) {
  FakeCpu cpu;
  Sleeps sleeps;
  CpuPacer pacer(0.25, sleeps.Recorder(), cpu.Clock());
  Compute(cpu, 5 * CpuPacer::kSliceNs, kStep, [&] { pacer.Pace(/*busy=*/false); });
  EXPECT_TRUE(sleeps.all.empty());
}

TEST(CpuPacerTest, WhileBusyEachSliceIsFollowedByASleepThatKeepsTheShare) {
  FakeCpu cpu;
  Sleeps sleeps;
  CpuPacer pacer(0.25, sleeps.Recorder(), cpu.Clock());
  Compute(cpu, 5 * CpuPacer::kSliceNs, kStep, [&] { pacer.Pace(/*busy=*/true); });
  ASSERT_EQ(sleeps.all.size(), 5u);
  // A quarter of a core: three times the slice's CPU asleep after it.
  for (auto d : sleeps.all) EXPECT_EQ(d.count(), 3 * CpuPacer::kSliceNs);
}

TEST(CpuPacerTest, AClockThatJumpsPastSeveralSlicesIsPaidForInFull) {
  FakeCpu cpu;
  Sleeps sleeps;
  CpuPacer pacer(0.25, sleeps.Recorder(), cpu.Clock());
  Compute(cpu, 4 * CpuPacer::kSliceNs, 4 * CpuPacer::kSliceNs, [&] { pacer.Pace(/*busy=*/true); });
  ASSERT_EQ(sleeps.all.size(), 1u);
  EXPECT_EQ(sleeps.TotalNs(), 12 * CpuPacer::kSliceNs);  // the share kept over the whole jump
}

TEST(CpuPacerTest, OneBusyCallInASliceIsEnough) {
  FakeCpu cpu;
  Sleeps sleeps;
  CpuPacer pacer(0.5, sleeps.Recorder(), cpu.Clock());
  bool first = true;
  Compute(cpu, CpuPacer::kSliceNs + CpuPacer::kSliceNs / 2, kStep, [&] {
    pacer.Pace(/*busy=*/first);
    first = false;
  });
  EXPECT_EQ(sleeps.all.size(), 1u);
}

TEST(CpuPacerTest, AWholeCoreNeverSleeps) {
  FakeCpu cpu;
  Sleeps sleeps;
  CpuPacer pacer(1.0, sleeps.Recorder(), cpu.Clock());
  Compute(cpu, 3 * CpuPacer::kSliceNs, kStep, [&] { pacer.Pace(/*busy=*/true); });
  EXPECT_TRUE(sleeps.all.empty());
}

TEST(CpuPacerTest, AnActivityPacerSleepsOnlyWhileItsCounterMoves) {
  FakeCpu cpu;
  std::atomic<uint64_t> grants{0};
  Sleeps sleeps;
  ActivityPacer pace(0.25, grants, sleeps.Recorder(), cpu.Clock());
  Compute(cpu, 3 * CpuPacer::kSliceNs, kStep, [&] { pace(); });
  EXPECT_TRUE(sleeps.all.empty()) << "nothing was granted";
  Compute(cpu, 3 * CpuPacer::kSliceNs, kStep, [&] {
    grants.fetch_add(1);
    pace();
  });
  EXPECT_EQ(sleeps.all.size(), 3u);
}

// The clock the pacers use by default counts this thread's CPU: work moves it.
TEST(CpuPacerTest, TheThreadsCpuClockMovesWithItsWork) {
  const int64_t before = CpuPacer::ThreadCpuNs();
  volatile uint64_t sink = 0;
  while (CpuPacer::ThreadCpuNs() == before) {
    for (int i = 0; i < 10'000; ++i) sink = sink + static_cast<uint64_t>(i);
  }
  EXPECT_GT(CpuPacer::ThreadCpuNs(), before);
}

}  // namespace
}  // namespace perfgate
