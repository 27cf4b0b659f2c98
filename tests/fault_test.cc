// Faults with real processes on loopback: agents killed, stopped or lying
// low, a coordinator killed and restarted, runs cancelled. Each test asserts
// the exact outcome in the coordinator's SQLite file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <memory>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::Subprocess;

class FaultTest : public ::testing::Test {
 protected:
  // Short leases so expiry happens in about a second.
  void StartCoordinator(const std::string& listen = "127.0.0.1:0") {
    coordinator_ = std::make_unique<Subprocess>(
        std::vector<std::string>{PerfgateBinary(), "coordinator", "--listen", listen, "--db", db_, "--lease-ttl", "1s",
                                 "--max-attempts", "3", "--no-agent-grace", "3s"});
    address_ = testing::CoordinatorAddress(*coordinator_);
    ASSERT_FALSE(address_.empty()) << coordinator_->output();
  }
  Subprocess& StartAgent(const std::string& id) {
    agents_.push_back(std::make_unique<Subprocess>(std::vector<std::string>{
        PerfgateBinary(), "agent", "--coordinator", address_, "--id", id, "--kill-grace-ms", "200"}));
    EXPECT_TRUE(agents_.back()->WaitForLine("registered", 30'000)) << agents_.back()->output();
    return *agents_.back();
  }
  std::unique_ptr<Subprocess> StartGate(const std::string& suite_text) {
    const std::string suite = dir_.Write("suite.yaml", suite_text);
    return std::make_unique<Subprocess>(std::vector<std::string>{PerfgateBinary(), "gate", "--coordinator", address_,
                                                                 "--suite", suite, "--json", dir_.File("report.json"),
                                                                 "--no-color"});
  }
  int64_t Query(const std::string& sql) { return testing::QueryInt(db_, sql); }

  testing::TempDir dir_;
  const std::string db_ = dir_.File("perfgate.db");
  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> agents_;
  std::string address_;
};

// A case that announces itself on a FIFO (so the test knows it runs) and then works for a while.
std::string AnnouncingCase(const std::string& name, const std::string& fifo, double seconds) {
  return "  - name: " + name + "\n    command: [/bin/sh, -c, \"echo $$$$ > " + fifo + "; sleep " +
         std::to_string(seconds) + "\"]\n";
}

std::string QuickCases(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out +=
        "  - name: quick" + std::to_string(i) + "\n    command: [\"" + testing::CaseBinary("spin") + "\", \"10000\"]\n";
  }
  return out;
}

pid_t ReadPid(const std::string& fifo) {
  std::ifstream in(fifo);  // blocks until the case opens it for writing
  pid_t pid = 0;
  in >> pid;
  return pid;
}

TEST_F(FaultTest, AgentKilledMidCaseIsRerunElsewhereAndCountedOnce) {
  StartCoordinator();
  Subprocess& victim = StartAgent("victim");
  const std::string fifo = dir_.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Only the victim is registered when the slow case is leased.
  auto gate = StartGate("suite: f\ndefaults: {repeats: 1, warmup: 0}\ncases:\n" + AnnouncingCase("slow", fifo, 0.5));
  const pid_t case_pid = ReadPid(fifo);
  ASSERT_GT(case_pid, 0);
  StartAgent("survivor");
  victim.Signal(SIGKILL);
  victim.Wait(10'000);
  // The re-run on the survivor announces itself on the same FIFO.
  const pid_t rerun_pid = ReadPid(fifo);
  EXPECT_NE(rerun_pid, case_pid);
  EXPECT_EQ(gate->Wait(60'000), 0) << gate->output();
  EXPECT_THAT(gate->output(), HasSubstr("GATE PASSED"));
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1"), 1);
  EXPECT_EQ(Query("SELECT attempts FROM cases"), 2);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM leases WHERE state = 3 /* lost */ AND agent_id = 'victim'"), 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM leases WHERE state = 2 /* completed */ AND agent_id = 'survivor'"), 1);
  EXPECT_TRUE(testing::ProcessGone(case_pid)) << "the victim's case died with it (PR_SET_PDEATHSIG)";
}

TEST_F(FaultTest, CoordinatorKilledAndRestartedFinishesTheRunLosingNothing) {
  StartCoordinator();
  StartAgent("a1");
  StartAgent("a2");
  const std::string fifo = dir_.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // One sample each: the slow case announces itself on every run, and the FIFO is read once.
  std::string suite = "suite: f\ndefaults: {repeats: 1, warmup: 0}\ncases:\n" + QuickCases(4) +
                      AnnouncingCase("slow", fifo, 1.5) + QuickCases(0);
  for (int i = 4; i < 8; ++i) {
    suite +=
        "  - name: later" + std::to_string(i) + "\n    command: [\"" + testing::CaseBinary("spin") + "\", \"10000\"]\n";
  }
  auto gate = StartGate(suite);
  ReadPid(fifo);  // the slow case is running: the quick ones before it are done or under way
  const int64_t counted_before = Query("SELECT COUNT(*) FROM results WHERE counted = 1");
  const std::string port = address_.substr(address_.rfind(':') + 1);
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(10'000);
  StartCoordinator("127.0.0.1:" + port);

  EXPECT_EQ(gate->Wait(120'000), 0) << gate->output();
  EXPECT_THAT(gate->output(), HasSubstr("re-attaching"));
  EXPECT_THAT(gate->output(), HasSubstr("GATE PASSED (9 cases)"));
  EXPECT_GE(counted_before, 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1"), 9);
  EXPECT_EQ(Query("SELECT COUNT(DISTINCT case_index) FROM results WHERE counted = 1"), 9);
  EXPECT_EQ(Query("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM results WHERE counted = 1 GROUP BY case_index)"), 1);
  EXPECT_EQ(Query("SELECT state FROM runs"), 2 /* finished */);
}

TEST_F(FaultTest, StoppedAgentLosesItsLeaseAndItsLateResultIsStale) {
  StartCoordinator();
  Subprocess& sleeper = StartAgent("sleepy");
  const std::string fifo = dir_.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto gate = StartGate("suite: f\ndefaults: {repeats: 1, warmup: 0}\ncases:\n" + AnnouncingCase("slow", fifo, 0.3));
  ReadPid(fifo);
  sleeper.Signal(SIGSTOP);  // alive but silent: no heartbeats
  StartAgent("awake");
  ReadPid(fifo);  // the lease expired and the case runs again on the other agent
  EXPECT_EQ(gate->Wait(60'000), 0) << gate->output();
  sleeper.Signal(SIGCONT);
  ASSERT_TRUE(sleeper.WaitForLine("was stale", 30'000)) << sleeper.output();
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1"), 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 0"), 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results r JOIN leases l USING (lease_id) WHERE r.counted = 0 AND l.agent_id = "
                  "'sleepy'"),
            1);
}

TEST_F(FaultTest, GpuCaseWithOnlyCpuAgentsEndsAsNoCapableAgentQuickly) {
  StartCoordinator();
  StartAgent("cpu-only");
  const auto start = std::chrono::steady_clock::now();
  auto gate = StartGate(
      "suite: f\ncases:\n  - name: needs_gpu\n    command: [/bin/true]\n    requires: {device: gpu}\n" + QuickCases(1));
  EXPECT_EQ(gate->Wait(60'000), 1) << gate->output();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 10);
  EXPECT_THAT(gate->output(), HasSubstr("cannot run needs_gpu: no registered agent can run it (cpu-only: needs a GPU"));
  EXPECT_THAT(gate->output(), HasSubstr("no capable agent fails the gate: 1 case"));
  EXPECT_EQ(Query("SELECT COUNT(*) FROM cases WHERE state = 5 /* no capable agent */"), 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1"), 1) << "the CPU case still ran";
}

TEST_F(FaultTest, CancelledRunLeavesNoCaseProcessOnTheAgents) {
  StartCoordinator();
  Subprocess& agent = StartAgent("a1");
  const std::string fifo = dir_.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // The case forks a grandchild too: both must go.
  auto gate = StartGate(
      "suite: f\ndefaults: {repeats: 1, warmup: 0, timeout: 10m}\ncases:\n"
      "  - name: forever\n    command: [/bin/sh, -c, \"sleep 600 & echo $$$$ $$! > " +
      fifo + "; wait\"]\n" + QuickCases(2));
  std::ifstream in(fifo);
  pid_t shell = 0, grandchild = 0;
  in >> shell >> grandchild;
  ASSERT_GT(shell, 0);
  ASSERT_GT(grandchild, 0);
  gate->Signal(SIGINT);  // Ctrl-C
  EXPECT_EQ(gate->Wait(30'000), 130) << gate->output();
  EXPECT_THAT(gate->output(), HasSubstr("cancelling run"));
  ASSERT_TRUE(agent.WaitForLine("finished forever", 30'000)) << agent.output();
  EXPECT_TRUE(testing::ProcessGone(shell));
  EXPECT_TRUE(testing::ProcessGone(grandchild));
  EXPECT_EQ(Query("SELECT state FROM runs"), 3 /* cancelled */);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM cases WHERE state = 6 /* cancelled */"), 3);
}

}  // namespace
}  // namespace perfgate
