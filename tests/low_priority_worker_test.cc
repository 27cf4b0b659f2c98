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

}  // namespace
}  // namespace perfgate
