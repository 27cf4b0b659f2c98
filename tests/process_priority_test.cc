// The coordinator's CPU priority: raised before its threads start, held by
// every thread it starts, and said plainly when it cannot be raised.
#include "coordinator/process_priority.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using testing::OnOwnThread;

using ::testing::HasSubstr;

int MyNice() { return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid())); }

TEST(ProcessPriorityTest, RaisesTheCallingThreadAndEveryThreadItStartsAfterwards) {
  const int caller = MyNice();
  OnOwnThread([&] {
    const PriorityChange change = RaiseThreadPriority(3);
    if (!change.error.empty()) GTEST_SKIP() << "no privilege to raise a priority here: " << change.error;
    EXPECT_EQ(change.before, caller);
    EXPECT_EQ(change.after, std::max(-20, caller - 3));
    EXPECT_EQ(MyNice(), change.after);
    int started_later = 99;
    OnOwnThread([&] { started_later = MyNice(); });
    EXPECT_EQ(started_later, change.after) << "a thread starts with its creator's nice value";
  });
  EXPECT_EQ(MyNice(), caller) << "threads started before keep theirs";
}

TEST(ProcessPriorityTest, ReturnToStartingPriorityUndoesTheRaiseOnTheCallingThreadOnly) {
  OnOwnThread([&] {
    const PriorityChange change = RaiseThreadPriority(3);
    if (!change.error.empty()) GTEST_SKIP() << "no privilege to raise a priority here: " << change.error;
    ASSERT_NE(change.after, change.before) << "started at the highest priority: nothing to undo";
    int background = 99;
    OnOwnThread([&] { background = ReturnToStartingPriority(); });
    EXPECT_EQ(background, change.before);
    EXPECT_EQ(MyNice(), change.after) << "the raising thread keeps its priority";
  });
}

TEST(ProcessPriorityTest, ReturnToStartingPriorityChangesNothingWhereNothingWasRaised) {
  OnOwnThread([&] {
    const PriorityChange change = RaiseThreadPriority(0);
    EXPECT_EQ(ReturnToStartingPriority(), change.before);
  });
}

// A gRPC thread preparing a submitted suite: down for the work, up again after.
TEST(ProcessPriorityTest, StartingPriorityScopeLowersTheThreadForItsLifeOnly) {
  OnOwnThread([&] {
    const PriorityChange change = RaiseThreadPriority(3);
    if (!change.error.empty()) GTEST_SKIP() << "no privilege to raise a priority here: " << change.error;
    ASSERT_NE(change.after, change.before) << "started at the highest priority: nothing to lower";
    {
      StartingPriorityScope below_agents;
      EXPECT_EQ(MyNice(), change.before);
    }
    EXPECT_EQ(MyNice(), change.after) << "raised again";
  });
}

TEST(ProcessPriorityTest, StartingPriorityScopeChangesNothingWhereNothingWasRaised) {
  OnOwnThread([&] {
    const PriorityChange change = RaiseThreadPriority(0);
    {
      StartingPriorityScope below_agents;
      EXPECT_EQ(MyNice(), change.before);
    }
    EXPECT_EQ(MyNice(), change.before);
  });
}

// The WAL checkpointer: at the starting priority, up while it holds the
// store's write lock, down again after.
TEST(ProcessPriorityTest, ServingPriorityScopeRaisesABackgroundThreadForItsLifeOnly) {
  OnOwnThread([&] {
    const PriorityChange change = RaiseThreadPriority(3);
    if (!change.error.empty()) GTEST_SKIP() << "no privilege to raise a priority here: " << change.error;
    ASSERT_NE(change.after, change.before) << "started at the highest priority: nothing to raise";
    OnOwnThread([&] {
      ASSERT_EQ(ReturnToStartingPriority(), change.before);
      {
        ServingPriorityScope holding_the_write_lock;
        EXPECT_EQ(MyNice(), change.after);
      }
      EXPECT_EQ(MyNice(), change.before) << "back down";
    });
  });
}

TEST(ProcessPriorityTest, ServingPriorityScopeChangesNothingWhereNothingWasRaised) {
  OnOwnThread([&] {
    const PriorityChange change = RaiseThreadPriority(0);
    {
      ServingPriorityScope holding_the_write_lock;
      EXPECT_EQ(MyNice(), change.before);
    }
    EXPECT_EQ(MyNice(), change.before);
  });
}

TEST(ProcessPriorityTest, StopsAtTheHighestPriority) {
  OnOwnThread([] {
    const PriorityChange change = RaiseThreadPriority(100);
    if (!change.error.empty()) GTEST_SKIP() << "no privilege to raise a priority here: " << change.error;
    EXPECT_EQ(change.after, -20);
    EXPECT_EQ(MyNice(), -20);
  });
}

TEST(ProcessPriorityTest, ZeroLevelsLeaveThePriorityAsItIs) {
  OnOwnThread([] {
    const int before = MyNice();
    const PriorityChange change = RaiseThreadPriority(0);
    EXPECT_EQ(change.after, before);
    EXPECT_EQ(change.error, "");
    EXPECT_EQ(MyNice(), before);
    EXPECT_EQ(DescribePriority(change, 0), "runs at nice " + std::to_string(before));
  });
}

// Without the privilege (here: as nobody, in a child process), the thread
// keeps its priority, and the line says why and what to do.
TEST(ProcessPriorityTest, WithoutPrivilegeThePriorityStaysAndTheLogSaysHowToAllowIt) {
  EXPECT_EXIT(
      {
        if (getuid() == 0 && setuid(65534) != 0) std::exit(2);
        const int before = MyNice();
        const PriorityChange change = RaiseThreadPriority(10);
        const std::string line = DescribePriority(change, 10);
        const bool kept = !change.error.empty() && change.after == before && MyNice() == before;
        const bool says = line.find("cannot raise") != std::string::npos &&
                          line.find("CAP_SYS_NICE") != std::string::npos &&
                          line.find("--priority-levels 0") != std::string::npos;
        std::exit(kept && says ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// Field 19 of /proc/PID/task/TID/stat: the thread's nice value.
std::vector<std::pair<std::string, int>> ThreadNices(pid_t pid) {
  std::vector<std::pair<std::string, int>> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(dir.c_str());
  if (!tasks) return out;
  while (dirent* task = readdir(tasks)) {
    if (task->d_name[0] == '.') continue;
    std::ifstream stat(dir + "/" + task->d_name + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t open = text.find('('), close = text.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::istringstream rest(text.substr(close + 2));
    std::vector<std::string> fields;
    for (std::string f; rest >> f;) fields.push_back(f);
    if (fields.size() > 16) out.emplace_back(text.substr(open + 1, close - open - 1), std::stoi(fields[16]));
  }
  closedir(tasks);
  return out;
}

// The real binary: every thread runs --priority-levels above the nice value
// it was started with, but the threads whose work no agent waits on, back at
// the starting value. No thread runs below that: one preempted there while
// holding a lock the lease path takes (a malloc arena's) would keep it for
// as long as the kernel let it wait.
TEST(ProcessPriorityTest, CoordinatorThreadsServingAgentsRunAboveItsStartingPriorityAndBackgroundOnesDoNot) {
  testing::TempDir dir;
  const int started_at = MyNice();
  testing::Subprocess coordinator({testing::PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db",
                                   dir.File("perfgate.db"), "--priority-levels", "4"});
  ASSERT_NE(testing::CoordinatorAddress(coordinator), "");
  auto line = coordinator.WaitForLine("runs at nice", 30'000);
  ASSERT_TRUE(line) << coordinator.output();
  if (line->find("cannot raise") != std::string::npos) GTEST_SKIP() << *line;
  const int raised = std::max(-20, started_at - 4);
  EXPECT_THAT(*line, HasSubstr("runs at nice " + std::to_string(raised)));
  const auto threads = ThreadNices(coordinator.pid());
  ASSERT_GT(threads.size(), 3u);
  std::set<std::string> names;
  for (const auto& [name, nice] : threads) {
    names.insert(name);
    const bool background = name == "releaser" || name == "checkpointer";
    EXPECT_EQ(nice, background ? started_at : raised) << "thread " << name;
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"releaser", "checkpointer", "summaries", "sweeper"}));
}

}  // namespace
}  // namespace perfgate
