// A real agent over real gRPC takes each next case from its completion's
// reply, no Work stream round trip; with short cases, several to a reply.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/cgroup.h"
#include "agent/host_fingerprint.h"
#include "agent/worker.h"
#include "coordinator/coordinator.h"
#include "gate/gate_client.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

// Runs `request` to its end on one real agent (`agent_id`, its cache in
// `agent_dir`), which then stops.
absl::StatusOr<v1::Run> RunOnOneAgent(Coordinator& coordinator, const std::string& agent_id,
                                      const std::string& agent_dir, const v1::SubmitRunRequest& request) {
  WorkerOptions worker;
  worker.coordinator = coordinator.address();
  worker.agent_id = agent_id;
  worker.log = [](const std::string&) {};
  worker.artifacts.dir = agent_dir;
  AgentWorker agent(worker, ProbeHost());
  std::thread serving([&] { agent.Run(); });
  absl::StatusOr<v1::Run> run = absl::DeadlineExceededError("the agent did not register");
  if (coordinator.scheduler().WaitForAgents(1, 10'000)) {
    GateClientOptions client;
    client.coordinator = coordinator.address();
    run = SubmitAndWatch(client, request, nullptr);
  }
  agent.Stop();
  serving.join();
  return run;
}

// A coordinator on a free loopback port, its database in `dir`.
auto StartCoordinator(const testing::TempDir& dir) {
  CoordinatorOptions options;
  options.listen = "127.0.0.1:0";
  options.db_path = dir.File("perfgate.db");
  return Coordinator::Start(options);
}

// A suite of `n` cases of /bin/true, one run each.
v1::SubmitRunRequest TrueSuite(const std::string& name, int n) {
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name(name);
  for (int i = 0; i < n; ++i) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name("true" + std::to_string(i));
    c->add_argv("/bin/true");
    c->set_repeats(1);
  }
  return request;
}

// The run finished with every case done at its first attempt.
void ExpectEveryCaseDoneFirstTime(const v1::Run& run) {
  EXPECT_EQ(run.state(), v1::RUN_STATE_FINISHED);
  for (const auto& c : run.cases()) {
    EXPECT_EQ(c.state(), v1::CASE_STATE_DONE) << c.name();
    EXPECT_EQ(c.attempts(), 1u) << c.name();
  }
}

// Each result says how long the agent was busy with its case, which takes
// in the case's measured run (its wall_time sample); the coordinator's
// durations come from it (SqliteStore: DurationMs).
TEST(NextLeaseTest, EachResultSaysHowLongTheAgentWasBusyWithItsCase) {
  testing::TempDir dir;
  auto coordinator = StartCoordinator(dir);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  auto run = RunOnOneAgent(**coordinator, "solo", dir.File("agent"), TrueSuite("busy", 3));
  ASSERT_TRUE(run.ok()) << run.status();
  ExpectEveryCaseDoneFirstTime(*run);
  for (const auto& c : run->cases()) {
    ASSERT_EQ(c.result().samples_size(), 1) << c.name();
    double wall_s = -1;
    for (const auto& v : c.result().samples(0).values()) {
      if (v.metric() == "wall_time") wall_s = v.value();
    }
    ASSERT_GE(wall_s, 0) << c.name() << ": no wall_time sample";
    EXPECT_GE(static_cast<double>(c.result().busy_us()), wall_s * 1e6) << c.name();
    EXPECT_GT(c.result().busy_us(), 0u) << c.name();
  }
  (*coordinator)->Shutdown();
}

TEST(NextLeaseTest, AnAgentRunsEveryCaseAfterTheFirstFromItsCompletionsReply) {
  testing::TempDir dir;
  auto coordinator = StartCoordinator(dir);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  auto run = RunOnOneAgent(**coordinator, "solo", dir.File("agent"), TrueSuite("replies", 5));
  ASSERT_TRUE(run.ok()) << run.status();
  ExpectEveryCaseDoneFirstTime(*run);
  const SchedulerStats stats = (*coordinator)->scheduler().Stats();
  EXPECT_EQ(stats.leases_granted, 5u);
  EXPECT_EQ(stats.leases_in_replies, 4u) << "the first case comes on the Work stream, each next one in a reply";
  (*coordinator)->Shutdown();
}

// While its cases are short, the agent holds leases ahead and reports
// several results to a call: fewer calls than cases, and no lease is lost
// or granted twice on the way.
TEST(NextLeaseTest, AnAgentWithShortCasesReportsSeveralResultsToACall) {
  testing::TempDir dir;
  auto coordinator = StartCoordinator(dir);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  constexpr int kCases = 60;
  auto run = RunOnOneAgent(**coordinator, "solo", dir.File("agent"), TrueSuite("ahead", kCases));
  ASSERT_TRUE(run.ok()) << run.status();
  ExpectEveryCaseDoneFirstTime(*run);
  const SchedulerStats stats = (*coordinator)->scheduler().Stats();
  EXPECT_EQ(stats.leases_granted, static_cast<uint64_t>(kCases));
  EXPECT_EQ(stats.results_counted, static_cast<uint64_t>(kCases));
  EXPECT_EQ(stats.leases_lost, 0u);
  // A /bin/true takes a few milliseconds (the agent holds leases ahead while
  // its cases take at most 50), so all but the queue's last four go several
  // to a call: about ten calls. The bound leaves room for a loaded machine.
  EXPECT_LE(stats.completion_calls * 4, static_cast<uint64_t>(kCases) * 3) << stats.completion_calls << " calls";
  (*coordinator)->Shutdown();
}

// The agent removes a case's groups and scratch folder while it waits for the
// coordinator's reply, after the result is complete. Still: a leftover of one
// case is gone before the next one starts, and when the agent stops nothing
// of its runs is left (no group named after its pid, no scratch folder).
TEST(NextLeaseTest, LeftoversGoBeforeTheNextCaseAndNothingOutlivesTheAgent) {
  testing::TempDir dir;
  testing::TempDir tmp;
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved_tmpdir = old_tmpdir ? old_tmpdir : "";
  setenv("TMPDIR", tmp.path().c_str(), 1);
  auto coordinator = StartCoordinator(dir);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  const std::string pids = dir.File("pids");
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("hygiene");
  // In file order on one agent: each leaves a setsid sleeper; the next fails if the one before it still runs.
  for (int i = 0; i < 4; ++i) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name("orphans" + std::to_string(i));
    c->add_argv("/bin/sh");
    c->add_argv("-c");
    c->add_argv(absl::StrCat("if [ -s ", pids, " ]; then read z e < ", pids, "; kill -0 $e 2>/dev/null && exit 7; fi; ",
                             testing::CaseBinary("orphans"), " ", pids));
    c->set_repeats(2);
  }
  auto run = RunOnOneAgent(**coordinator, "tidy", dir.File("agent"), request);  // stopped: nothing of it may be left
  ASSERT_TRUE(run.ok()) << run.status();
  for (const auto& c : run->cases()) {
    EXPECT_EQ(c.result().outcome(), v1::CaseResult::OUTCOME_OK) << c.name() << ": " << c.result().error();
  }
  const std::string ours = absl::StrCat("run-", getpid(), "-");
  for (const std::string& folder : {DefaultCgroupParent().kill_folder(), DefaultCgroupParent().memory_folder()}) {
    if (folder.empty() || !std::filesystem::exists(folder)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      EXPECT_NE(entry.path().filename().string().rfind(ours, 0), 0u) << "left behind: " << entry.path();
    }
  }
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path())) << "a scratch folder outlived the agent";
  if (old_tmpdir)
    setenv("TMPDIR", saved_tmpdir.c_str(), 1);
  else
    unsetenv("TMPDIR");
  (*coordinator)->Shutdown();
}

}  // namespace
}  // namespace perfgate
