// The store's background lane: tasks run in order on one thread, Drain waits
// for those posted before it, and closing waits for the task under way.
#include "coordinator/background_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace perfgate {
namespace {

TEST(BackgroundQueueTest, DrainReturnsOnceEveryTaskPostedBeforeItRanInOrderOnAnotherThread) {
  BackgroundQueue queue;
  std::mutex mu;
  std::vector<int> ran;
  std::vector<pid_t> threads;
  for (int i = 0; i < 100; ++i) {
    queue.Post([&, i] {
      std::lock_guard lock(mu);
      ran.push_back(i);
      threads.push_back(gettid());
    });
  }
  queue.Drain();
  std::lock_guard lock(mu);
  ASSERT_EQ(ran.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ran[static_cast<size_t>(i)], i);
  EXPECT_NE(threads.front(), gettid());
  EXPECT_THAT(threads, ::testing::Each(threads.front())) << "one thread";
}

// The store closes its queue before its database: a task under way (a
// summary writing through the store) must have ended when the queue has.
TEST(BackgroundQueueTest, ClosingWaitsForTheTaskUnderWay) {
  auto queue = std::make_unique<BackgroundQueue>();
  std::promise<void> started, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> done{false};
  queue->Post([&] {
    started.set_value();
    released.wait();
    done = true;
  });
  started.get_future().wait();
  std::thread close([&] { queue.reset(); });
  release.set_value();
  close.join();
  EXPECT_TRUE(done) << "the queue closed before its running task ended";
}

}  // namespace
}  // namespace perfgate
