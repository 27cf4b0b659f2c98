// The store's background lane: tasks run in order on one thread, Drain waits
// for those posted before it, and closing waits for the task under way.
#include "coordinator/background_queue.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using testing::OnOwnThread;

TEST(BackgroundQueueTest, DrainReturnsOnceEveryTaskPostedBeforeItRanInOrderOnAnotherThread) {
  BackgroundQueue queue("test-queue");
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
  auto queue = std::make_unique<BackgroundQueue>("test-queue");
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

int NiceOf(pid_t tid) { return getpriority(PRIO_PROCESS, static_cast<id_t>(tid)); }

std::string ThreadName() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

// In a coordinator that raised its priority, a kStarting queue runs below the
// threads that serve agents; a kCreator queue beside them.
TEST(BackgroundQueueTest, RunsAtTheStartingPriorityOnlyWhenAskedAndUnderItsName) {
  OnOwnThread([] {
    const PriorityChange change = RaiseThreadPriority(2);
    if (!change.error.empty()) GTEST_SKIP() << "no privilege to raise a priority here: " << change.error;
    ASSERT_NE(change.after, change.before) << "started at the highest priority";
    BackgroundQueue below("bg-starting", BackgroundQueue::Priority::kStarting);
    BackgroundQueue beside("bg-creator");
    int below_nice = 99, beside_nice = 99;
    std::string below_name, beside_name;
    below.Post([&] { below_nice = NiceOf(gettid()), below_name = ThreadName(); });
    beside.Post([&] { beside_nice = NiceOf(gettid()), beside_name = ThreadName(); });
    below.Drain();
    beside.Drain();
    EXPECT_EQ(below_nice, change.before);
    EXPECT_EQ(beside_nice, change.after);
    EXPECT_EQ(below_name, "bg-starting");
    EXPECT_EQ(beside_name, "bg-creator");
  });
}

}  // namespace
}  // namespace perfgate
