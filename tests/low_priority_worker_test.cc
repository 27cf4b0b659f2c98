// The history thread's lane: calls run on one thread of low CPU priority.
#include "coordinator/low_priority_worker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace perfgate {
namespace {

int MyNice() { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); }

TEST(LowPriorityWorkerTest, RunsTheCallOnAThreadOfLowPriorityAndReturnsItsResult) {
  const int mine = MyNice();
  LowPriorityWorker worker(19);
  ASSERT_TRUE(worker.lowered());
  const auto [nice, tid] = worker.Run([] { return std::pair(MyNice(), gettid()); });
  EXPECT_EQ(nice, 19);
  EXPECT_NE(tid, gettid()) << "not on the caller's thread";
  EXPECT_EQ(MyNice(), mine) << "the caller keeps its priority";
}

TEST(LowPriorityWorkerTest, CallsFromManyThreadsEachGetTheirOwnAnswer) {
  LowPriorityWorker worker(10);
  std::vector<std::thread> callers;
  std::vector<std::string> answers(16);
  for (int i = 0; i < 16; ++i) {
    callers.emplace_back([&, i] { answers[i] = worker.Run([i] { return "answer " + std::to_string(i); }); });
  }
  for (auto& t : callers) t.join();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(answers[i], "answer " + std::to_string(i));
}

// While busy, a task that uses a slice of CPU sleeps: at half a core, at
// least as long as it computed. (A lower bound only: a sleep never ends
// early, however loaded the machine.)
TEST(LowPriorityWorkerTest, ABusyTaskSleepsToKeepItsShareOfACore) {
  LowPriorityWorker worker(19, /*cpu_share=*/0.5);
  const auto [cpu_ns, wall_ns] = worker.Run([&worker] {
    const int64_t cpu0 = CpuPacer::ThreadCpuNs();
    const auto wall0 = std::chrono::steady_clock::now();
    volatile uint64_t sink = 0;
    while (CpuPacer::ThreadCpuNs() - cpu0 < 3'000'000) {
      for (int i = 0; i < 10'000; ++i) sink = sink + static_cast<uint64_t>(i);
      worker.Pace(/*busy=*/true);
    }
    const int64_t wall = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - wall0)
                             .count();
    return std::pair(CpuPacer::ThreadCpuNs() - cpu0, wall);
  });
  EXPECT_GE(wall_ns - cpu_ns, 2'000'000) << "slept after each 1 ms slice of CPU, as long as the slice";
}

}  // namespace
}  // namespace perfgate
