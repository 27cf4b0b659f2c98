// A result's host: the agent leaves it out where the coordinator implies it
// (RegisterResponse.results_imply_host) and sends it everywhere else; the
// coordinator puts the session's host back wherever the result leaves it.
//
// The agent side talks to a recording AgentService on port 0: the coordinator
// that does not imply hosts is an older one, which cannot run here.
#include <gtest/gtest.h>

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "agent/host_fingerprint.h"
#include "agent/worker.h"
#include "coordinator/coordinator.h"
#include "gate/gate_client.h"
#include "perfgate/v1/agent.grpc.pb.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

// Grants one lease of /bin/true and keeps the first completion it gets.
class RecordingAgentService final : public v1::AgentService::Service {
 public:
  explicit RecordingAgentService(bool imply_host) : imply_host_(imply_host) {}

  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest* request,
                        v1::RegisterResponse* response) override {
    std::lock_guard lock(mu_);
    registered_host_ = request->host();
    response->set_session_id("session-recorded");
    response->set_heartbeat_interval_ms(1'000);
    response->set_lease_ttl_ms(60'000);
    response->set_results_imply_host(imply_host_);
    return grpc::Status::OK;
  }

  grpc::Status Work(grpc::ServerContext* context, const v1::WorkRequest*,
                    grpc::ServerWriter<v1::WorkItem>* writer) override {
    bool first;
    {
      std::lock_guard lock(mu_);
      first = !lease_sent_;
      lease_sent_ = true;
    }
    if (first) {
      v1::WorkItem item;
      v1::Lease* lease = item.mutable_lease();
      lease->set_lease_id("lease-recorded");
      lease->set_run_id("run-recorded");
      lease->set_attempt(1);
      lease->mutable_spec()->set_name("true");
      lease->mutable_spec()->add_argv("/bin/true");
      lease->mutable_spec()->set_timeout_ms(30'000);
      writer->Write(item);
    }
    // Open until the agent goes: its stream ending would make it register again.
    std::unique_lock lock(mu_);
    while (!stopping_ && !context->IsCancelled()) cv_.wait_for(lock, std::chrono::milliseconds(50));
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override {
    for (const auto& id : request->lease_ids()) (*response->mutable_expires_at_ms())[id] = INT64_MAX / 2;
    return grpc::Status::OK;
  }

  grpc::Status CompleteLease(grpc::ServerContext*, const v1::CompleteLeaseRequest* request,
                             v1::CompleteLeaseResponse* response) override {
    std::lock_guard lock(mu_);
    if (!completion_) completion_ = *request;
    response->set_disposition(v1::CompleteLeaseResponse::DISPOSITION_ACCEPTED);
    cv_.notify_all();
    return grpc::Status::OK;
  }

  // The first completion, once it came (bounded wait).
  std::optional<v1::CompleteLeaseRequest> WaitForCompletion() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return completion_.has_value(); });
    return completion_;
  }
  v1::HostFingerprint registered_host() {
    std::lock_guard lock(mu_);
    return registered_host_;
  }
  void Stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }

 private:
  const bool imply_host_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool lease_sent_ = false;
  bool stopping_ = false;
  v1::HostFingerprint registered_host_;
  std::optional<v1::CompleteLeaseRequest> completion_;
};

// The completion an agent sends to a coordinator that does or does not imply hosts.
v1::CompleteLeaseRequest CompletionSentTo(bool imply_host, v1::HostFingerprint* registered) {
  RecordingAgentService service(imply_host);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  EXPECT_GT(port, 0);
  WorkerOptions options;
  options.coordinator = "127.0.0.1:" + std::to_string(port);
  options.agent_id = "recorded";
  options.log = [](const std::string&) {};
  AgentWorker agent(options, ProbeHost());
  std::thread run([&] { agent.Run(); });
  std::optional<v1::CompleteLeaseRequest> completion = service.WaitForCompletion();
  agent.Stop();
  service.Stop();
  run.join();
  server->Shutdown();
  *registered = service.registered_host();
  EXPECT_TRUE(completion.has_value()) << "the agent reported nothing";
  return completion.value_or(v1::CompleteLeaseRequest());
}

TEST(ResultHostTest, AgentLeavesTheHostOutWhereTheCoordinatorImpliesIt) {
  v1::HostFingerprint registered;
  const v1::CompleteLeaseRequest sent = CompletionSentTo(/*imply_host=*/true, &registered);
  EXPECT_FALSE(registered.hostname().empty()) << "the registration names the host";
  EXPECT_EQ(sent.result().outcome(), v1::CaseResult::OUTCOME_OK);
  EXPECT_FALSE(sent.result().has_host());
}

TEST(ResultHostTest, AgentSendsTheHostToACoordinatorThatDoesNotImplyIt) {
  v1::HostFingerprint registered;
  const v1::CompleteLeaseRequest sent = CompletionSentTo(/*imply_host=*/false, &registered);
  EXPECT_EQ(sent.result().outcome(), v1::CaseResult::OUTCOME_OK);
  ASSERT_TRUE(sent.result().has_host());
  EXPECT_EQ(sent.result().host().SerializeAsString(), registered.SerializeAsString());
}

}  // namespace
}  // namespace perfgate
