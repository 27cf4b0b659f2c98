// A real agent over real gRPC takes each next case from its completion's
// reply: one RPC and one commit per case, no Work stream round trip.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "agent/host_fingerprint.h"
#include "agent/worker.h"
#include "coordinator/coordinator.h"
#include "gate/gate_client.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

TEST(NextLeaseTest, AnAgentRunsEveryCaseAfterTheFirstFromItsCompletionsReply) {
  testing::TempDir dir;
  CoordinatorOptions options;
  options.listen = "127.0.0.1:0";
  options.db_path = dir.File("perfgate.db");
  auto coordinator = Coordinator::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WorkerOptions worker;
  worker.coordinator = (*coordinator)->address();
  worker.agent_id = "solo";
  worker.log = [](const std::string&) {};
  worker.artifacts.dir = dir.File("agent");
  AgentWorker agent(worker, ProbeHost());
  std::thread serving([&] { agent.Run(); });
  ASSERT_TRUE((*coordinator)->scheduler().WaitForAgents(1, 10'000));

  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("replies");
  for (int i = 0; i < 5; ++i) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name("true" + std::to_string(i));
    c->add_argv("/bin/true");
    c->set_repeats(1);
  }
  GateClientOptions client;
  client.coordinator = (*coordinator)->address();
  auto run = SubmitAndWatch(client, request, nullptr);
  agent.Stop();
  serving.join();
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->state(), v1::RUN_STATE_FINISHED);
  for (const auto& c : run->cases()) {
    EXPECT_EQ(c.state(), v1::CASE_STATE_DONE) << c.name();
    EXPECT_EQ(c.attempts(), 1u) << c.name();
  }
  const SchedulerStats stats = (*coordinator)->scheduler().Stats();
  EXPECT_EQ(stats.leases_granted, 5u);
  EXPECT_EQ(stats.leases_in_replies, 4u) << "the first case comes on the Work stream, each next one in a reply";
  (*coordinator)->Shutdown();
}

}  // namespace
}  // namespace perfgate
