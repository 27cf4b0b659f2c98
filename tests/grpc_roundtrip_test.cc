// The gRPC path in one process: a coordinator on port 0, agents as threads,
// the gate client watching the run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "agent/host_fingerprint.h"
#include "agent/worker.h"
#include "cli/gate_client.h"
#include "coordinator/coordinator.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

class GrpcRoundTripTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorOptions options;
    options.listen = "127.0.0.1:0";
    options.db_path = dir_.File("perfgate.db");
    auto started = Coordinator::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    coordinator_ = *std::move(started);
    ASSERT_THAT(coordinator_->address(), ::testing::StartsWith("127.0.0.1:"));
    ASSERT_NE(coordinator_->address(), "127.0.0.1:0");
  }
  void TearDown() override {
    for (auto& a : agents_) a->Stop();
    for (auto& t : threads_) t.join();
    coordinator_->Shutdown();
  }
  void StartAgents(int n) {
    for (int i = 0; i < n; ++i) {
      WorkerOptions options;
      options.coordinator = coordinator_->address();
      options.agent_id = "t" + std::to_string(i);
      options.log = [](const std::string&) {};
      agents_.push_back(std::make_unique<AgentWorker>(options, ProbeHost()));
    }
    for (auto& a : agents_) threads_.emplace_back([p = a.get()] { p->Run(); });
    ASSERT_TRUE(coordinator_->scheduler().WaitForAgents(static_cast<size_t>(n), 10'000));
  }

  testing::TempDir dir_;
  std::unique_ptr<Coordinator> coordinator_;
  std::vector<std::unique_ptr<AgentWorker>> agents_;
  std::vector<std::thread> threads_;
};

TEST_F(GrpcRoundTripTest, SubmitRunsEveryCaseOnceAndReportsResults) {
  StartAgents(2);
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("roundtrip");
  for (int i = 0; i < 6; ++i) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name("echo" + std::to_string(i));
    c->add_argv("/bin/echo");
    c->add_argv("hello");
    c->set_repeats(2);
    c->set_timeout_ms(10'000);
  }
  request.set_commit("abc123");
  GateClientOptions client;
  client.coordinator = coordinator_->address();
  auto run = SubmitAndWatch(client, request, nullptr);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state(), v1::RUN_STATE_FINISHED);
  EXPECT_EQ(run->commit(), "abc123");
  ASSERT_EQ(run->cases_size(), 6);
  for (const auto& c : run->cases()) {
    EXPECT_EQ(c.state(), v1::CASE_STATE_DONE) << c.name();
    EXPECT_EQ(c.attempts(), 1u);
    EXPECT_EQ(c.result().outcome(), v1::CaseResult::OUTCOME_OK);
    EXPECT_EQ(c.result().samples_size(), 2);
    EXPECT_EQ(c.result().stdout_tail(), "hello\n");
    EXPECT_FALSE(c.result().host().kernel().empty());
  }
  auto stats = coordinator_->scheduler().Stats();
  EXPECT_EQ(stats.results_counted, 6u);
  EXPECT_EQ(stats.leases_granted, 6u);
  EXPECT_EQ(agents_[0]->cases_completed() + agents_[1]->cases_completed(), 6u);
}

TEST_F(GrpcRoundTripTest, RefusedSuiteIsInvalidArgument) {
  StartAgents(1);
  v1::SubmitRunRequest request;  // no cases
  GateClientOptions client;
  client.coordinator = coordinator_->address();
  auto run = SubmitAndWatch(client, request, nullptr);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GrpcRoundTripTest, InterruptCancelsTheRunAndKillsTheCase) {
  StartAgents(1);
  testing::TempDir dir;
  const std::string fifo = dir.File("started");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("cancel");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("sleeper");
  c->add_argv("/bin/sh");
  c->add_argv("-c");
  c->add_argv("echo $$$$ > " + fifo + "; exec sleep 300");  // "$$" is perfgate's escape for "$"
  c->set_repeats(1);
  c->set_warmup(0);
  c->set_timeout_ms(600'000);
  Interrupt interrupt;
  pid_t case_pid = 0;
  std::thread interrupter([&] {
    // Opening the FIFO blocks until the case runs and writes its pid: then "press Ctrl-C".
    std::ifstream started(fifo);
    started >> case_pid;
    interrupt.Fire();
  });
  GateClientOptions client;
  client.coordinator = coordinator_->address();
  auto run = SubmitAndWatch(client, request, &interrupt);
  interrupter.join();
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state(), v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(run->cases(0).state(), v1::CASE_STATE_CANCELLED);
  // The agent killed the case's process group; wait for its report, which comes after the kill.
  ASSERT_GT(case_pid, 0);
  ASSERT_TRUE(agents_[0]->WaitForCasesCompleted(1, 30'000));
  EXPECT_TRUE(testing::ProcessGone(case_pid));
}

}  // namespace
}  // namespace perfgate
