#include "coordinator/cpu_pacer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

namespace perfgate {
namespace {

// Burns `ns` of this thread's CPU, calling pace() as it goes.
template <typename F>
void Compute(int64_t ns, F pace) {
  const int64_t from = CpuPacer::ThreadCpuNs();
  volatile uint64_t sink = 0;
  while (CpuPacer::ThreadCpuNs() - from < ns) {
    for (int i = 0; i < 10'000; ++i) sink = sink + static_cast<uint64_t>(i);
    pace();
  }
}

struct Sleeps {
  std::vector<std::chrono::nanoseconds> all;
  CpuPacer::Sleep Recorder() {
    return [this](std::chrono::nanoseconds d) { all.push_back(d); };
  }
};

TEST(CpuPacerTest, AnIdleMachineIsNeverMadeToWait) {
  Sleeps sleeps;
  CpuPacer pacer(0.25, sleeps.Recorder());
  Compute(5 * CpuPacer::kSliceNs, [&] { pacer.Pace(/*busy=*/false); });
  EXPECT_TRUE(sleeps.all.empty());
}

TEST(CpuPacerTest, WhileBusyEachSliceIsFollowedByASleepThatKeepsTheShare) {
  Sleeps sleeps;
  CpuPacer pacer(0.25, sleeps.Recorder());
  Compute(5 * CpuPacer::kSliceNs, [&] { pacer.Pace(/*busy=*/true); });
  ASSERT_GE(sleeps.all.size(), 4u);
  // A quarter of a core: three times the slice's CPU asleep after it.
  for (auto d : sleeps.all) EXPECT_GE(d.count(), 3 * CpuPacer::kSliceNs);
}

TEST(CpuPacerTest, OneBusyCallInASliceIsEnough) {
  Sleeps sleeps;
  CpuPacer pacer(0.5, sleeps.Recorder());
  bool first = true;
  Compute(CpuPacer::kSliceNs + CpuPacer::kSliceNs / 2, [&] {
    pacer.Pace(/*busy=*/first);
    first = false;
  });
  EXPECT_EQ(sleeps.all.size(), 1u);
}

TEST(CpuPacerTest, AWholeCoreNeverSleeps) {
  Sleeps sleeps;
  CpuPacer pacer(1.0, sleeps.Recorder());
  Compute(3 * CpuPacer::kSliceNs, [&] { pacer.Pace(/*busy=*/true); });
  EXPECT_TRUE(sleeps.all.empty());
}

TEST(CpuPacerTest, AnActivityPacerSleepsOnlyWhileItsCounterMoves) {
  std::atomic<uint64_t> grants{0};
  Sleeps sleeps;
  ActivityPacer pace(0.25, grants, sleeps.Recorder());
  Compute(3 * CpuPacer::kSliceNs, [&] { pace(); });
  EXPECT_TRUE(sleeps.all.empty()) << "nothing was granted";
  Compute(3 * CpuPacer::kSliceNs, [&] {
    grants.fetch_add(1);
    pace();
  });
  EXPECT_GE(sleeps.all.size(), 2u);
}

}  // namespace
}  // namespace perfgate
