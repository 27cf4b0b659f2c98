// The gRPC path in one process: a coordinator on port 0, agents as threads,
// the gate client watching the run.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/host_fingerprint.h"
#include "agent/worker.h"
#include "coordinator/coordinator.h"
#include "core/suite.h"
#include "gate/gate_client.h"
#include "perfgate/v1/agent.grpc.pb.h"
#include "perfgate/v1/gate.grpc.pb.h"
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
  // An agent counts a case when its completion is answered, which can come
  // just after the run is seen finished: wait for the count (bounded).
  auto total = [&] { return agents_[0]->cases_completed() + agents_[1]->cases_completed(); };
  for (int i = 0; i < 300 && total() < 6; ++i) {
    agents_[0]->WaitForCasesCompleted(agents_[0]->cases_completed() + 1, 100);
  }
  EXPECT_EQ(total(), 6u);
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

// A history request is checked against the reply limit before anything is
// read: its reply is built whole in the coordinator's memory.
TEST_F(GrpcRoundTripTest, AHistoryRequestWhoseReplyCouldNotBeSentIsRefusedUpFront) {
  auto gate =
      v1::GateService::NewStub(grpc::CreateChannel(coordinator_->address(), grpc::InsecureChannelCredentials()));
  v1::HistoryRequest request;
  request.set_branch("main");
  v1::HistoryKey key;
  key.set_pool("local");
  key.set_benchmark("b");
  key.set_metric("wall_time");
  key.set_source("agent:clock");
  *request.add_keys() = key;
  {
    grpc::ClientContext context;
    v1::HistoryResponse response;
    grpc::Status status = gate->GetHistory(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "max_runs 0: every run ever stored";
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr("max_runs must be at least 1"));
  }
  request.set_max_runs(1'000'000);
  for (int i = 0; i < 20; ++i) *request.add_keys() = key;
  {
    grpc::ClientContext context;
    v1::HistoryResponse response;
    grpc::Status status = gate->GetHistory(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr("ask for fewer keys or runs"));
  }
  request.set_max_runs(30);
  grpc::ClientContext context;
  v1::HistoryResponse response;
  ASSERT_TRUE(gate->GetHistory(&context, request, &response).ok());
  EXPECT_EQ(response.series_size(), 21);
  grpc::ClientContext pools_only;
  EXPECT_TRUE(gate->GetHistory(&pools_only, v1::HistoryRequest(), &response).ok()) << "no keys: the known pools";
}

// One coordinator per store and per socket: gRPC unlinked a live socket
// and bound anew, and a second coordinator on the same database resumed the
// first one's runs, ran their cases again and stored other results than
// the verdicts saw. Either is refused (UNAVAILABLE, exit 3); once the first
// is gone, its database and socket serve the next.
TEST(CoordinatorStartTest, ASecondCoordinatorOnTheSameDatabaseOrSocketIsRefused) {
  testing::TempDir dir;
  CoordinatorOptions first;
  first.listen = "unix:" + dir.File("c.sock");
  first.db_path = dir.File("perfgate.db");
  auto running = Coordinator::Start(first);
  ASSERT_TRUE(running.ok()) << running.status();

  CoordinatorOptions same_db = first;
  same_db.listen = "unix:" + dir.File("other.sock");
  auto refused = Coordinator::Start(same_db);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("is in use by another coordinator"));

  CoordinatorOptions same_socket = first;
  same_socket.db_path = dir.File("other.db");
  refused = Coordinator::Start(same_socket);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("a process already serves on that socket"));

  running->reset();
  auto next = Coordinator::Start(first);
  EXPECT_TRUE(next.ok()) << next.status();
}

// Streams hold a server thread each: WatchRun calls with the read token took
// them all, and agents' heartbeats and results were refused. Each kind of
// stream has a share of the pool; beyond it a stream is refused, and short
// calls are still served.
TEST(CoordinatorStreamsTest, WatchRunStreamsBeyondTheirShareAreRefusedAndShortCallsStillServed) {
  testing::TempDir dir;
  CoordinatorOptions options;
  options.listen = "127.0.0.1:0";
  options.db_path = dir.File("perfgate.db");
  options.max_threads = 16;  // a quarter: 4 WatchRun streams
  auto started = Coordinator::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<Coordinator> coordinator = *std::move(started);
  auto gate = v1::GateService::NewStub(grpc::CreateChannel(coordinator->address(), grpc::InsecureChannelCredentials()));
  v1::SubmitRunRequest submit;
  submit.mutable_suite()->set_name("waits");
  auto* c = submit.mutable_suite()->add_cases();
  c->set_name("a");
  c->add_argv("/bin/true");
  v1::SubmitRunResponse submitted;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(gate->SubmitRun(&context, submit, &submitted).ok());  // no agent: it stays running
  }
  v1::WatchRunRequest watch;
  watch.set_run_id(submitted.run_id());
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::RunEvent>>> readers;
  for (int i = 0; i < 4; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(gate->WatchRun(contexts.back().get(), watch));
    v1::RunEvent first;
    ASSERT_TRUE(readers.back()->Read(&first)) << "stream " << i;  // its slot is held by now
    ASSERT_EQ(first.snapshot().state(), v1::RUN_STATE_RUNNING);
  }
  {
    grpc::ClientContext context;
    auto refused = gate->WatchRun(&context, watch);
    v1::RunEvent event;
    EXPECT_FALSE(refused->Read(&event));
    grpc::Status status = refused->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << "the code clients retry with backoff";
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr("4 WatchRun streams are open"));
  }
  {
    grpc::ClientContext context;
    v1::GetRunRequest get;
    get.set_run_id(submitted.run_id());
    v1::Run run;
    EXPECT_TRUE(gate->GetRun(&context, get, &run).ok()) << "a short call is still served";
  }
  // A stream that ends gives its slot back.
  contexts[0]->TryCancel();
  readers[0]->Finish();
  bool watched_again = false;
  for (int attempt = 0; attempt < 600 && !watched_again; ++attempt) {
    grpc::ClientContext context;
    auto again = gate->WatchRun(&context, watch);
    v1::RunEvent event;
    watched_again = again->Read(&event);
    context.TryCancel();
    again->Finish();
    if (!watched_again) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(watched_again);
  for (size_t i = 1; i < contexts.size(); ++i) {
    contexts[i]->TryCancel();
    readers[i]->Finish();
  }
  coordinator->Shutdown();
}

// An ended run, not stored, of one case whose result holds 8,000 judged
// series, benchmarks named `prefix` and a number.
v1::Run RunOfManySeries(const std::string& prefix) {
  v1::Run run;
  run.set_run_id("not-stored");
  auto* c = run.add_cases();
  c->set_name("many");
  c->set_state(v1::CASE_STATE_DONE);
  c->mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  c->mutable_result()->set_pool("local");
  auto* sample = c->mutable_result()->add_samples();
  for (int i = 0; i < 8'000; ++i) {
    auto* v = sample->add_values();
    v->set_benchmark(absl::StrCat(prefix, i));
    v->set_metric("instructions");
    v->set_source("agent:perf");
    v->set_value(1);
  }
  return run;
}

// A suite of thousands of judged series at a long history window asks in
// several calls, each of whose largest reply fits: asked in one, the
// coordinator refuses it.
TEST_F(GrpcRoundTripTest, TheGateAsksForALargeHistoryInCallsThatFit) {
  Policy policy;
  policy.compare.history_runs = kMaxHistoryRuns;  // 8,000 x 1,000 medians could not fit one 64 MiB reply
  GateClientOptions client;
  client.coordinator = coordinator_->address();
  Baselines baselines;
  ASSERT_TRUE(FetchHistory(client, RunOfManySeries("b"), policy, &baselines).ok());
  EXPECT_EQ(baselines.history.size(), 8'000u);
  EXPECT_TRUE(baselines.known_pools.has_value());
}

// The calls are bounded by bytes too: split by count alone, 8,000 series
// of 500-byte names made one request of 4.2 MB, over the coordinator's
// 4 MiB limit on it, and the gate failed after its run had ended.
TEST_F(GrpcRoundTripTest, AHistoryOfLongNamesIsAskedInRequestsWithinTheLimit) {
  GateClientOptions client;
  client.coordinator = coordinator_->address();
  Baselines baselines;
  const absl::Status fetched = FetchHistory(client, RunOfManySeries(std::string(490, 'b')), Policy{}, &baselines);
  ASSERT_TRUE(fetched.ok()) << fetched;
  EXPECT_EQ(baselines.history.size(), 8'000u);
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

// A hand-driven agent session over real gRPC: the test decides what it sends.
class RawAgent {
 public:
  RawAgent(const std::string& address, const std::string& agent_id, const std::string& instance)
      : stub_(v1::AgentService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))) {
    v1::RegisterRequest request;
    request.set_agent_id(agent_id);
    request.set_instance(instance);
    grpc::ClientContext context;
    status_ = stub_->Register(&context, request, &registered_);
  }
  ~RawAgent() {
    if (!work_) return;
    work_context_.TryCancel();
    work_->Finish().IgnoreError();
  }
  const grpc::Status& status() const { return status_; }
  const std::string& session() const { return registered_.session_id(); }
  // Opens the Work stream and waits for the first item on it.
  v1::WorkItem FirstWorkItem() {
    v1::WorkRequest request;
    request.set_session_id(session());
    work_ = stub_->Work(&work_context_, request);
    v1::WorkItem item;
    EXPECT_TRUE(work_->Read(&item));
    return item;
  }
  grpc::Status Complete(const std::string& session, const std::string& lease, v1::CaseResult::Outcome outcome,
                        v1::CompleteLeaseResponse* response) {
    v1::CompleteLeaseRequest request;
    request.set_session_id(session);
    request.set_lease_id(lease);
    request.mutable_result()->set_outcome(outcome);
    grpc::ClientContext context;
    return stub_->CompleteLease(&context, request, response);
  }

 private:
  std::unique_ptr<v1::AgentService::Stub> stub_;
  grpc::Status status_;
  v1::RegisterResponse registered_;
  grpc::ClientContext work_context_;
  std::unique_ptr<grpc::ClientReader<v1::WorkItem>> work_;
};

TEST_F(GrpcRoundTripTest, ForgedCompletionIsRefusedAndTheRightfulOneCounts) {
  RawAgent owner(coordinator_->address(), "owner", "owner-process");
  ASSERT_TRUE(owner.status().ok()) << owner.status().error_message();
  auto gate = v1::GateService::NewStub(grpc::CreateChannel(coordinator_->address(), grpc::InsecureChannelCredentials()));
  v1::SubmitRunRequest submit;
  submit.mutable_suite()->set_name("owned");
  auto* c = submit.mutable_suite()->add_cases();
  c->set_name("c");
  c->add_argv("/bin/true");
  v1::SubmitRunResponse submitted;
  grpc::ClientContext submit_context;
  ASSERT_TRUE(gate->SubmitRun(&submit_context, submit, &submitted).ok());
  const std::string lease = owner.FirstWorkItem().lease().lease_id();
  ASSERT_FALSE(lease.empty());

  RawAgent intruder(coordinator_->address(), "intruder", "intruder-process");
  ASSERT_TRUE(intruder.status().ok());
  v1::CompleteLeaseResponse response;
  grpc::Status forged = intruder.Complete(intruder.session(), lease, v1::CaseResult::OUTCOME_FAILED, &response);
  EXPECT_EQ(forged.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(forged.error_message(), ::testing::HasSubstr("only its holder may complete it"));

  ASSERT_TRUE(owner.Complete(owner.session(), lease, v1::CaseResult::OUTCOME_OK, &response).ok());
  EXPECT_EQ(response.disposition(), v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
  v1::GetRunRequest get;
  get.set_run_id(submitted.run_id());
  v1::Run run;
  grpc::ClientContext get_context;
  ASSERT_TRUE(gate->GetRun(&get_context, get, &run).ok());
  EXPECT_EQ(run.cases(0).state(), v1::CASE_STATE_DONE);
  EXPECT_EQ(run.cases(0).result().outcome(), v1::CaseResult::OUTCOME_OK);
  EXPECT_EQ(coordinator_->scheduler().Stats().results_counted, 1u);
  EXPECT_EQ(testing::QueryInt(dir_.File("perfgate.db"), "SELECT COUNT(*) FROM results"), 1);
}

TEST_F(GrpcRoundTripTest, AnIdHeldByAConnectedAgentIsRefusedNamingWhere) {
  RawAgent holder(coordinator_->address(), "lab-1", "first-process");
  ASSERT_TRUE(holder.status().ok());
  v1::SubmitRunRequest submit;  // a lease on the Work stream shows the stream is open
  submit.mutable_suite()->set_name("s");
  auto* c = submit.mutable_suite()->add_cases();
  c->set_name("c");
  c->add_argv("/bin/true");
  ASSERT_TRUE(coordinator_->scheduler().Submit(submit).ok());
  ASSERT_TRUE(holder.FirstWorkItem().has_lease());

  RawAgent duplicate(coordinator_->address(), "lab-1", "second-process");
  EXPECT_EQ(duplicate.status().error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(duplicate.status().error_message(),
              ::testing::MatchesRegex("agent id 'lab-1' is in use by a live agent at ipv[46]:.*; give this agent "
                                      "another --id"));
  EXPECT_EQ(coordinator_->scheduler().Stats().sessions_by_pool.at(""), 1u);
}

}  // namespace
}  // namespace perfgate
