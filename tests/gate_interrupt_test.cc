// A gate interrupted after its coordinator went away: real processes on
// loopback, the coordinator SIGKILLed, then SIGTERM to the gate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>

#include "core/exit_codes.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::Subprocess;

// Before the fix the gate kept re-attaching for two minutes (and each cancel
// attempt could hold the signal thread for 10 s); the bound here is generous
// against the 5 s promised, and only catches a gate that does not give up.
constexpr int kGenerousExitBoundMs = 60'000;

void InterruptAfterCoordinatorDied(int signal) {
  testing::TempDir dir;
  Subprocess coordinator({PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", dir.File("perfgate.db")});
  const std::string address = testing::CoordinatorAddress(coordinator);
  ASSERT_FALSE(address.empty()) << coordinator.output();
  Subprocess agent({PerfgateBinary(), "agent", "--coordinator", address, "--insecure", "--id", "a1"});
  ASSERT_TRUE(agent.WaitForLine("registered", 30'000)) << agent.output();
  // A case that says it started on a FIFO and outlasts the test: the run
  // is certainly unfinished when the coordinator dies.
  const std::string fifo = dir.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string suite = dir.Write("suite.yaml",
                                      "suite: s\ndefaults: {repeats: 1, warmup: 0, timeout: 10m}\ncases:\n  - name: c\n"
                                      "    command: [/bin/sh, -c, \"echo started > " +
                                          fifo + "; exec sleep 600\"]\n");
  Subprocess gate({PerfgateBinary(), "gate", "--coordinator", address, "--insecure", "--suite", suite, "--no-color"});
  std::string word;
  std::ifstream(fifo) >> word;  // blocks until the case runs
  ASSERT_EQ(word, "started") << gate.output();
  // The case can start before the submit's reply reaches the gate: a gate
  // that loses the coordinator then has no run id to re-attach to.
  ASSERT_TRUE(gate.WaitForLine("submitted to", 30'000)) << gate.output();

  coordinator.Signal(SIGKILL);
  coordinator.Wait(10'000);
  ASSERT_TRUE(gate.WaitForLine("lost the coordinator", 30'000)) << gate.output();
  gate.Signal(signal);

  EXPECT_EQ(gate.Wait(kGenerousExitBoundMs), kExitInfra) << gate.output();
  EXPECT_THAT(gate.output(), HasSubstr("interrupted, and coordinator " + address + " unreachable"));
  EXPECT_THAT(gate.output(), HasSubstr("may still be pending there"));
}

TEST(GateInterruptTest, SigtermAfterTheCoordinatorDiedExitsWithInfraCode) { InterruptAfterCoordinatorDied(SIGTERM); }

TEST(GateInterruptTest, SigintAfterTheCoordinatorDiedExitsWithInfraCode) { InterruptAfterCoordinatorDied(SIGINT); }

}  // namespace
}  // namespace perfgate
