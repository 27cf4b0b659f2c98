// Faults with real processes on loopback: agents killed, stopped or lying
// low, a coordinator killed and restarted, runs cancelled. Each test asserts
// the exact outcome in the coordinator's SQLite file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::Subprocess;

class FaultTest : public ::testing::Test {
 protected:
  // Leases long enough that no stall of a loaded machine loses one; a test
  // that needs a lease to expire passes kShortTtl and waits past it.
  void StartCoordinator(const std::string& listen = "127.0.0.1:0", const std::string& lease_ttl = "10s",
                        const std::string& no_agent_grace = "3s", const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv{PerfgateBinary(), "coordinator", "--listen", listen, "--db", db_, "--lease-ttl",
                                  lease_ttl,        "--max-attempts", "3", "--no-agent-grace", no_agent_grace};
    argv.insert(argv.end(), more.begin(), more.end());
    coordinator_ = std::make_unique<Subprocess>(argv);
    address_ = testing::CoordinatorAddress(*coordinator_);
    ASSERT_FALSE(address_.empty()) << coordinator_->output();
  }
  Subprocess& StartAgent(const std::string& id) {
    agents_.push_back(std::make_unique<Subprocess>(std::vector<std::string>{
        PerfgateBinary(), "agent", "--coordinator", address_, "--insecure", "--id", id, "--kill-grace-ms", "200"}));
    EXPECT_TRUE(agents_.back()->WaitForLine("registered", 30'000)) << agents_.back()->output();
    return *agents_.back();
  }
  std::unique_ptr<Subprocess> StartGate(const std::string& suite_text, std::vector<std::string> more = {}) {
    const std::string suite = dir_.Write("suite.yaml", suite_text);
    std::vector<std::string> argv = {
        PerfgateBinary(),         "gate",      "--coordinator", address_, "--insecure", "--suite", suite, "--json",
        dir_.File("report.json"), "--no-color"};
    argv.insert(argv.end(), more.begin(), more.end());
    return std::make_unique<Subprocess>(argv);
  }
  int64_t Query(const std::string& sql) { return testing::QueryInt(db_, sql); }

  testing::TempDir dir_;
  const std::string db_ = dir_.File("perfgate.db");
  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> agents_;
  std::string address_;
};

// A TTL for tests whose leases must expire: a heartbeat every quarter of it,
// so a lease held by a live agent is lost only if it stalls for over 2 s.
constexpr char kShortTtl[] = "3s";
constexpr int64_t kShortTtlMs = 3'000;

// A case that announces itself on a FIFO (so the test knows it runs) and
// then works: `first_s` seconds on its first run (the one `marker` marks),
// `again_s` on any re-run, which announces itself too when `announce_again`.
std::string AnnouncingCase(const std::string& name, const std::string& fifo, const std::string& marker, double first_s,
                           double again_s, bool announce_again) {
  const std::string announce = "echo $$$$ > " + fifo;
  return "  - name: " + name + "\n    command: [/bin/sh, -c, \"if mkdir " + marker + " 2>/dev/null; then " + announce +
         "; s=" + std::to_string(first_s) + "; else " + (announce_again ? announce + "; " : "") +
         "s=" + std::to_string(again_s) + "; fi; sleep $$s\"]\n";
}

std::string QuickCases(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out +=
        "  - name: quick" + std::to_string(i) + "\n    command: [\"" + testing::CaseBinary("spin") + "\", \"10000\"]\n";
  }
  return out;
}

// The pid a case wrote to `fifo`, or 0 if none came within a minute (a case
// that never ran must fail the test, not hang it until ctest's timeout).
pid_t ReadPid(const std::string& fifo) {
  const int fd = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return 0;
  std::string text;
  pollfd p{fd, POLLIN, 0};
  // No POLLHUP before a first writer has come and gone (Linux), so this
  // waits for the case; its line is short and written at once.
  while (text.find('\n') == std::string::npos && poll(&p, 1, 60'000) > 0) {
    char buf[64];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return static_cast<pid_t>(std::atol(text.c_str()));
}

TEST_F(FaultTest, AgentKilledMidCaseIsRerunElsewhereAndCountedOnce) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:0", kShortTtl));
  Subprocess& victim = StartAgent("victim");
  const std::string fifo = dir_.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Only the victim is registered when the slow case is leased.
  // The first run waits a minute (it dies with the victim long before), the
  // re-run half a second: the victim can never finish it first, however
  // loaded the machine.
  const std::string first = dir_.File("first-run");
  auto gate = StartGate("suite: f\ndefaults: {repeats: 1, warmup: 0}\ncases:\n  - name: slow\n"
                        "    command: [/bin/sh, -c, \"if mkdir " + first + " 2>/dev/null; then s=60; else s=0.5; fi; echo $$$$ > " +
                        fifo + "; sleep $$s\"]\n");
  const pid_t case_pid = ReadPid(fifo);
  ASSERT_GT(case_pid, 0);
  // Killed while its case waits on the FIFO, before the survivor exists: how
  // long the survivor takes to start cannot let the victim finish first.
  victim.Signal(SIGKILL);
  victim.Wait(10'000);
  StartAgent("survivor");
  // The re-run on the survivor announces itself on the same FIFO.
  const pid_t rerun_pid = ReadPid(fifo);
  ASSERT_GT(rerun_pid, 0) << gate->output();
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
  // Long leases: the restart resumes them, and none may expire meanwhile.
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:0", "30s"));
  StartAgent("a1");
  StartAgent("a2");
  const std::string fifo = dir_.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // One sample each; the slow case announces its first run only (the FIFO is read once).
  std::string suite = "suite: f\ndefaults: {repeats: 1, warmup: 0}\ncases:\n" + QuickCases(4) +
                      AnnouncingCase("slow", fifo, dir_.File("first-run"), 1.5, 1.5, /*announce_again=*/false);
  for (int i = 4; i < 8; ++i) {
    suite +=
        "  - name: later" + std::to_string(i) + "\n    command: [\"" + testing::CaseBinary("spin") + "\", \"10000\"]\n";
  }
  auto gate = StartGate(suite);
  // The slow case is running: the quick ones before it are done or under way.
  ASSERT_GT(ReadPid(fifo), 0) << gate->output();
  const int64_t counted_before = Query("SELECT COUNT(*) FROM results WHERE counted = 1");
  const std::string port = address_.substr(address_.rfind(':') + 1);
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(10'000);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:" + port, "30s"));

  EXPECT_EQ(gate->Wait(120'000), 0) << gate->output();
  EXPECT_THAT(gate->output(), HasSubstr("re-attaching"));
  // In a CI log the watch, begun again, says where the run stands: cases that ended meanwhile have no line.
  const std::string after = gate->output().substr(gate->output().find("re-attaching"));
  EXPECT_THAT(after, ::testing::ContainsRegex("perfgate \\[[0-9]+/9\\] done, [0-9]+ running"));
  EXPECT_THAT(gate->output(), HasSubstr("GATE PASSED (9 cases)"));
  EXPECT_EQ(Query("SELECT attempts FROM cases WHERE name = 'slow'"), 1) << "the resumed lease was lost";
  EXPECT_GE(counted_before, 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1"), 9);
  EXPECT_EQ(Query("SELECT COUNT(DISTINCT case_index) FROM results WHERE counted = 1"), 9);
  EXPECT_EQ(Query("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM results WHERE counted = 1 GROUP BY case_index)"), 1);
  EXPECT_EQ(Query("SELECT state FROM runs"), 2 /* finished */);
}

// With --sync-commits each result is on disk before its agent hears it is
// recorded (a power cut cannot be staged here; store_test checks the syncs).
TEST_F(FaultTest, WithSyncCommitsResultsAreAcknowledgedOnceOnDiskAndAKillLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:0", "10s", "3s", {"--sync-commits"}));
  ASSERT_TRUE(coordinator_->WaitForLine("results acknowledged once on disk", 30'000)) << coordinator_->output();
  StartAgent("a1");
  auto gate = StartGate("suite: f\ndefaults: {repeats: 1, warmup: 0}\ncases:\n" + QuickCases(6));
  EXPECT_EQ(gate->Wait(120'000), 0) << gate->output();
  const std::string port = address_.substr(address_.rfind(':') + 1);
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(10'000);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1"), 6);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:" + port));
  EXPECT_TRUE(coordinator_->WaitForLine("they survive its death, not the machine's", 30'000))
      << coordinator_->output();
}

TEST_F(FaultTest, StoppedAgentLosesItsLeaseAndItsLateResultIsStale) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:0", kShortTtl));
  Subprocess& sleeper = StartAgent("sleepy");
  const std::string fifo = dir_.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // The first run outlasts any delay before the SIGSTOP; the re-run is short.
  auto gate = StartGate("suite: f\ndefaults: {repeats: 1, warmup: 0}\ncases:\n" +
                        AnnouncingCase("slow", fifo, dir_.File("first-run"), 5, 0.3, /*announce_again=*/true));
  ASSERT_GT(ReadPid(fifo), 0) << gate->output();
  sleeper.Signal(SIGSTOP);  // alive but silent: no heartbeats
  StartAgent("awake");
  // The lease expired and the case runs again on the other agent.
  ASSERT_GT(ReadPid(fifo), 0) << gate->output();
  EXPECT_EQ(gate->Wait(60'000), 0) << gate->output();
  sleeper.Signal(SIGCONT);
  ASSERT_TRUE(sleeper.WaitForLine("was stale", 30'000)) << sleeper.output();
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1"), 1);
  // At least the late one; on a loaded machine a heartbeat late before the
  // SIGSTOP can cost the sleeper a lease more, whose result is stale too.
  const int64_t stale = Query("SELECT COUNT(*) FROM results WHERE counted = 0");
  EXPECT_GE(stale, 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results r JOIN leases l USING (lease_id) WHERE r.counted = 0 AND l.agent_id = "
                  "'sleepy'"),
            stale)
      << "only the stopped agent's results are stale";
}

TEST_F(FaultTest, GpuCaseWithOnlyCpuAgentsEndsAsNoCapableAgentAtSubmit) {
  // A grace far longer than the wait below: the case ends only if the
  // coordinator refuses it at submit, whatever the machine's load.
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:0", "10s", /*no_agent_grace=*/"10m"));
  StartAgent("cpu-only");
  auto gate = StartGate(
      "suite: f\ncases:\n  - name: needs_gpu\n    command: [/bin/true]\n    requires: {device: gpu}\n" + QuickCases(1));
  EXPECT_EQ(gate->Wait(60'000), 1) << gate->output();
  EXPECT_THAT(gate->output(), HasSubstr("cannot run needs_gpu: no registered agent can run it (cpu-only: needs a GPU"));
  EXPECT_THAT(gate->output(), HasSubstr("no capable agent fails the gate: 1 case"));
  EXPECT_EQ(Query("SELECT COUNT(*) FROM cases WHERE state = 5 /* no capable agent */"), 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1"), 1) << "the CPU case still ran";
}

TEST_F(FaultTest, CancelledRunLeavesNoCaseProcessOnTheAgents) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
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

// A case that reports a deterministic metric 50% over its expected value. It
// announces each start in `started`, runs until the test creates `release`,
// and leaves `terminated` behind if anyone stops it.
std::string RegressingCase(const testing::TempDir& dir) {
  return "  - name: regressing\n    results: pytorch\n    judge: [compile_time_instruction_count]\n"
         "    command: [/bin/sh, -c, \"trap 'touch " +
         dir.File("terminated") + "; exit 143' TERM; touch " + dir.File("started") + "; while [ ! -e " +
         dir.File("release") + " ]; do sleep 0.05; done; echo regressing,compile_time_instruction_count,150\"]\n";
}

// Polls for `path` to exist, up to timeout_ms.
bool WaitForFile(const std::string& path, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Lets `ms` of wall time pass, read from the clock (a fault that must outlast a TTL).
void LetWallTimePass(int64_t ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

void Touch(const std::string& path) { std::ofstream(path) << "go\n"; }

// The false pass: the coordinator is away for three lease TTLs while
// the regressing case runs. The agent must neither stop the case nor report
// it cancelled; the restarted coordinator resumes the lease, the result is
// delivered, and the re-attached gate fails naming the case.
TEST_F(FaultTest, CoordinatorDownForThreeTtlsMidCaseStillFailsTheGateOnTheRegression) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:0", kShortTtl, "60s"));
  Subprocess& agent = StartAgent("a1");
  const std::string expected = dir_.Write("expected.csv", "regressing,compile_time_instruction_count,100,0.05\n");
  auto gate = StartGate("suite: f\ndefaults: {repeats: 1, warmup: 0, timeout: 10m}\ncases:\n" + RegressingCase(dir_),
                        {"--baseline", expected, "--confirm", "0"});
  ASSERT_TRUE(WaitForFile(dir_.File("started"), 60'000)) << gate->output();
  const std::string port = address_.substr(address_.rfind(':') + 1);
  coordinator_->Signal(SIGKILL);
  coordinator_->Wait(10'000);
  LetWallTimePass(3 * kShortTtlMs);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:" + port, kShortTtl, "60s"));
  Touch(dir_.File("release"));

  EXPECT_EQ(gate->Wait(120'000), 1) << gate->output() << agent.output();
  EXPECT_THAT(gate->output(), HasSubstr("re-attaching"));
  EXPECT_THAT(gate->output(), HasSubstr("regression fails the gate: 1 case (regressing)"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("terminated"))) << "the agent stopped the case\n" << agent.output();
  EXPECT_EQ(Query("SELECT state FROM cases"), 3 /* done */);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1 AND outcome = 1 /* ok */"), 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE outcome = 6 /* cancelled */"), 0);
}

// An agent frozen for twice the lease TTL while it runs the regressing case:
// its lease is given away and the case re-run on the other agent; on SIGCONT
// its result is stale. The case ends measured, never cancelled.
TEST_F(FaultTest, AgentFrozenForTwoTtlsMidCaseEndsMeasuredNeverCancelled) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:0", kShortTtl, "60s"));
  Subprocess& frozen = StartAgent("frozen");
  const std::string expected = dir_.Write("expected.csv", "regressing,compile_time_instruction_count,100,0.05\n");
  auto gate = StartGate("suite: f\ndefaults: {repeats: 1, warmup: 0, timeout: 10m}\ncases:\n" + RegressingCase(dir_),
                        {"--baseline", expected, "--confirm", "0"});
  ASSERT_TRUE(WaitForFile(dir_.File("started"), 60'000)) << gate->output();
  StartAgent("awake");
  std::filesystem::remove(dir_.File("started"));
  frozen.Signal(SIGSTOP);
  LetWallTimePass(2 * kShortTtlMs);
  ASSERT_TRUE(WaitForFile(dir_.File("started"), 60'000)) << "the case was not re-run\n" << gate->output();
  frozen.Signal(SIGCONT);
  ASSERT_TRUE(frozen.WaitForLine("was stale", 60'000)) << frozen.output();
  Touch(dir_.File("release"));

  EXPECT_EQ(gate->Wait(120'000), 1) << gate->output();
  EXPECT_THAT(gate->output(), HasSubstr("regression fails the gate: 1 case (regressing)"));
  EXPECT_EQ(Query("SELECT state FROM cases"), 3 /* done */);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1 AND outcome = 1 /* ok */"), 1);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results WHERE counted = 1 AND outcome = 6 /* cancelled */"), 0);
  EXPECT_EQ(Query("SELECT COUNT(*) FROM results r JOIN leases l USING (lease_id) WHERE r.counted = 0 AND l.agent_id = "
                  "'frozen'"),
            1);
}

}  // namespace
}  // namespace perfgate
