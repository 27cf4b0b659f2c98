// The reap of a case's orphans (agent/orphans.h), on real zombie children of
// this test process: every one that no spawner waits for is reaped, however
// many, and a child its spawner waits for keeps its exit status.
#include "agent/orphans.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace perfgate {
namespace {

// A child of this process that exits at once with `code`; it is a zombie
// once Exited(pid) says so.
pid_t ChildThatExits(int code) {
  const pid_t pid = fork();
  if (pid == 0) _exit(code);
  return pid;
}

// Blocks until `pid` has exited, leaving it a zombie (WNOWAIT).
void WaitUntilExited(pid_t pid) {
  siginfo_t info{};
  while (waitid(P_PID, pid, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
  }
}

// Thousands of zombies at once: the reap once read the process's list of
// children while reaping from it, and the kernel serves that list in pieces
// by position, so that about half were skipped (1,536 of 3,000).
TEST(OrphansTest, EveryZombieNoSpawnerWaitsForIsReapedHoweverMany) {
  std::vector<pid_t> zombies;
  for (int i = 0; i < 3000; ++i) {
    const pid_t pid = ChildThatExits(0);
    ASSERT_GT(pid, 0);
    zombies.push_back(pid);
  }
  for (pid_t pid : zombies) WaitUntilExited(pid);
  CpuTimes reaped;
  ReapOrphans(&reaped);
  int left = 0;
  for (pid_t pid : zombies) left += kill(pid, 0) == 0 || errno != ESRCH;
  EXPECT_EQ(left, 0) << left << " of 3000 zombies left";
  for (pid_t pid : zombies) waitpid(pid, nullptr, WNOHANG);
}

// A case's own process, a zombie its Execute has not reaped yet, is left to
// Execute: its exit status is the case's. Listed first among the zombies
// the kernel finds, it must not stop the reap of the orphans behind it.
TEST(OrphansTest, AChildItsSpawnerWaitsForKeepsItsExitStatus) {
  std::unique_lock held = OwnChildren::Hold();
  const pid_t own = ChildThatExits(7);
  ASSERT_GT(own, 0);
  OwnChildren::Add(own, held);
  held.unlock();
  WaitUntilExited(own);
  std::vector<pid_t> orphans;
  for (int i = 0; i < 20; ++i) orphans.push_back(ChildThatExits(0));
  for (pid_t pid : orphans) WaitUntilExited(pid);
  CpuTimes reaped;
  ReapOrphans(&reaped);
  int status = 0;
  ASSERT_EQ(waitpid(own, &status, WNOHANG), own) << "the spawner's child was reaped by someone else";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 7);
  OwnChildren::Forget(own);
  for (pid_t pid : orphans) {
    EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1) << "orphan " << pid << " was not reaped";
  }
}

}  // namespace
}  // namespace perfgate
