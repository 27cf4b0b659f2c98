// Issue 10 as an outsider would try it. A real `perfgate coordinator` (TLS,
// agent and submitter token files), a real `perfgate agent` and a real
// `perfgate gate` run a small suite while an attacker in this process, on
// its own channels, tries everything issue 10 found open: submit a command,
// register as the live agent, cancel the gate's run, post a verdict on it,
// complete a guessed lease, send 100 MB messages and flood registrations,
// first with no token, then with a made-up one, then with the token of the
// other role. Each is refused with the right code, counted, and leaves no
// trace in the store; the gate's run passes as if nobody had tried.
//
// Also here: a run whose results do not fit one message is fetched in parts.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "agent/host_fingerprint.h"
#include "agent/worker.h"
#include "gate/gate_client.h"
#include "coordinator/coordinator.h"
#include "perfgate/v1/agent.grpc.pb.h"
#include "perfgate/v1/gate.grpc.pb.h"
#include "tests/test_util.h"
#include "transport/transport.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::PerfgateBinary;
using testing::Subprocess;
using Code = grpc::StatusCode;

constexpr int kFloodRegistrations = 200;
constexpr size_t kHugeBytes = 100'000'000;  // 100 MB
constexpr int kConcurrentHuge = 6;

std::chrono::system_clock::time_point In(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

// A CA and a certificate for 127.0.0.1 it signed, made by openssl now.
void MakeCertificates(const testing::TempDir& dir) {
  dir.Write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  for (const std::string command :
       {"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=outsider-ca "
        "-keyout ca.key -out ca.pem",
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=server -keyout server.key "
        "-out server.csr",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext "
        "-out server.pem"}) {
    const std::string full = "cd '" + dir.path() + "' && " + command + " >>openssl.log 2>&1";
    ASSERT_EQ(std::system(full.c_str()), 0) << command;
  }
}

// A client of the coordinator's port that holds `token` (maybe none, maybe
// made up) and trusts its certificate: the best position an outsider gets.
class Attacker {
 public:
  // `payload` is the file the command it submits would create.
  Attacker(const std::string& address, const std::string& ca_file, const std::string& token,
           const std::string& payload = "/nonexistent/owned")
      : payload_(payload) {
    ClientSecurityFlags flags;
    flags.tls_ca = ca_file;
    auto security = LoadClientSecurity(flags, address);
    EXPECT_TRUE(security.ok()) << security.status();
    if (security.ok()) security->token = token;
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(256 << 20);  // let 100 MB requests reach the coordinator
    auto channel = OpenChannel(address, security.ok() ? *security : ClientSecurity{}, args);
    agent_ = v1::AgentService::NewStub(channel);
    gate_ = v1::GateService::NewStub(channel);
  }

  grpc::Status SubmitCommand(size_t padding = 0) {
    v1::SubmitRunRequest request;
    request.mutable_suite()->set_name("owned");
    auto* c = request.mutable_suite()->add_cases();
    c->set_name("payload");
    c->add_argv("/usr/bin/touch");
    c->add_argv(payload_);
    if (padding) c->set_description(std::string(padding, 'x'));
    v1::SubmitRunResponse response;
    grpc::ClientContext context;
    context.set_deadline(In(60'000));
    return gate_->SubmitRun(&context, request, &response);
  }
  grpc::Status Register(const std::string& agent_id, size_t padding = 0) {
    v1::RegisterRequest request;
    request.set_agent_id(agent_id);
    request.set_pool("lab");
    if (padding) request.add_labels(std::string(padding, 'x'));
    v1::RegisterResponse response;
    grpc::ClientContext context;
    context.set_deadline(In(60'000));
    return agent_->Register(&context, request, &response);
  }
  grpc::Status TakeWork() {
    v1::WorkRequest request;
    request.set_session_id(GuessedId());
    grpc::ClientContext context;
    context.set_deadline(In(10'000));
    auto reader = agent_->Work(&context, request);
    v1::WorkItem item;
    while (reader->Read(&item)) {
    }
    return reader->Finish();
  }
  // A passing result for the case the gate's run is holding.
  grpc::Status CompleteGuessedLease(size_t padding = 0) {
    v1::CompleteLeaseRequest request;
    request.set_session_id(GuessedId());
    request.set_lease_id(GuessedId());
    request.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
    request.mutable_result()->set_case_name("hold");
    if (padding) request.mutable_result()->set_stdout_tail(std::string(padding, 'x'));
    v1::CompleteLeaseResponse response;
    grpc::ClientContext context;
    context.set_deadline(In(60'000));
    return agent_->CompleteLease(&context, request, &response);
  }
  grpc::Status Heartbeat() {
    v1::HeartbeatRequest request;
    request.set_session_id(GuessedId());
    request.add_lease_ids(GuessedId());
    v1::HeartbeatResponse response;
    grpc::ClientContext context;
    context.set_deadline(In(10'000));
    return agent_->Heartbeat(&context, request, &response);
  }
  grpc::Status Cancel(const std::string& run_id) {
    v1::CancelRunRequest request;
    request.set_run_id(run_id);
    v1::CancelRunResponse response;
    grpc::ClientContext context;
    context.set_deadline(In(10'000));
    return gate_->CancelRun(&context, request, &response);
  }
  grpc::Status PostVerdict(const std::string& run_id) {
    v1::ReportVerdictRequest request;
    request.set_run_id(run_id);
    request.set_passed(false);
    v1::ReportVerdictResponse response;
    grpc::ClientContext context;
    context.set_deadline(In(10'000));
    return gate_->ReportVerdict(&context, request, &response);
  }
  grpc::Status Read(const std::string& run_id) {
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    v1::Run response;
    grpc::ClientContext context;
    context.set_deadline(In(10'000));
    return gate_->GetRun(&context, request, &response);
  }

 private:
  // 128 bits in the form the coordinator's ids take; it cannot be right.
  static std::string GuessedId() { return "0123456789abcdef0123456789abcdef"; }

  std::string payload_;
  std::unique_ptr<v1::AgentService::Stub> agent_;
  std::unique_ptr<v1::GateService::Stub> gate_;
};

// VmHWM of a process: the most memory it has held.
uint64_t PeakRssBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "VmHWM:  1234 kB"
  }
  ADD_FAILURE() << "no VmHWM for " << pid;
  return 0;
}

// The value of perfgate_auth_failures_total{reason}; -1 if not exported.
double AuthFailures(const std::string& metrics_address, const std::string& reason) {
  const std::string body = testing::HttpGet(metrics_address, "/metrics");
  const std::string series = "perfgate_auth_failures_total{reason=\"" + reason + "\"} ";
  const size_t at = body.find(series);
  return at == std::string::npos ? -1 : std::stod(body.substr(at + series.size()));
}

class OutsiderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MakeCertificates(dir_);
    // Leases far longer than the test: the held case is never re-run.
    coordinator_ = std::make_unique<Subprocess>(std::vector<std::string>{
        PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", db_, "--lease-ttl", "300s",
        "--metrics-listen", "127.0.0.1:0", "--tls-cert", dir_.File("server.pem"), "--tls-key", dir_.File("server.key"),
        "--agent-token-file", agent_token_, "--submit-token-file", submit_token_});
    address_ = testing::CoordinatorAddress(*coordinator_);
    ASSERT_FALSE(address_.empty()) << coordinator_->output();
    auto metrics_line = coordinator_->WaitForLine("metrics on http://", 30'000);
    ASSERT_TRUE(metrics_line) << coordinator_->output();
    metrics_ = testing::AddressAfter(*metrics_line, "http://");
  }

  testing::TempDir dir_;
  const std::string db_ = dir_.File("perfgate.db");
  const std::string agent_token_ = dir_.Write("agent.token", "agent-7f3c2a9d41e8b650\n");
  const std::string submit_token_ = dir_.Write("submit.token", "submit-c81be04f9a2d3716\n");
  std::unique_ptr<Subprocess> coordinator_;
  std::string address_;
  std::string metrics_;
};

// An agent given the submitter's token (or none) once retried for ever,
// saying so only now and then; it now exits 2 and says which token to give.
TEST_F(OutsiderTest, AnAgentWhoseTokenIsRefusedExitsAsMisconfigured) {
  const std::string ca = dir_.File("ca.pem");
  for (const std::vector<std::string>& token : {std::vector<std::string>{"--token-file", submit_token_},
                                                std::vector<std::string>{}}) {
    std::vector<std::string> argv = {PerfgateBinary(), "agent", "--coordinator", address_, "--tls-ca", ca};
    argv.insert(argv.end(), token.begin(), token.end());
    const testing::CommandResult agent = testing::RunCommand(argv);
    EXPECT_EQ(agent.exit_code, 2) << agent.output;
    EXPECT_THAT(agent.output, HasSubstr("not registered: "));
    EXPECT_THAT(agent.output, HasSubstr("give the coordinator's agent token with --token-file"));
  }
}

TEST_F(OutsiderTest, EveryAttackIsRefusedAndTheRealGateStillPasses) {
  const std::string ca = dir_.File("ca.pem");
  Subprocess agent({PerfgateBinary(), "agent", "--coordinator", address_, "--tls-ca", ca, "--token-file", agent_token_,
                    "--id", "lab-1", "--pool", "lab"});
  ASSERT_TRUE(agent.WaitForLine("registered with", 60'000)) << agent.output();

  // The demo spin case, and one held open until the attacks are over, so
  // the gate's run is live while they happen.
  const std::string fifo = dir_.File("release");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const std::string suite = dir_.Write(
      "suite.yaml", "suite: outsider\ndefaults: {repeats: 1, warmup: 0}\ncases:\n  - name: spin\n    command: [\"" +
                        testing::CaseBinary("spin") + "\", \"1000\"]\n  - name: hold\n    command: [\"/bin/cat\", \"" +
                        fifo + "\"]\n");
  Subprocess gate({PerfgateBinary(), "gate", "--coordinator", address_, "--tls-ca", ca, "--token-file", submit_token_,
                   "--suite", suite, "--branch", "main", "--no-color"});
  auto submitted = gate.WaitForLine(" submitted to ", 60'000);
  ASSERT_TRUE(submitted) << gate.output();
  // The outsider learns the run id (it is in every CI log).
  const std::string marker = "perfgate: run ";
  const size_t at = submitted->find(marker);
  ASSERT_NE(at, std::string::npos) << *submitted;
  const std::string run_id =
      submitted->substr(at + marker.size(), submitted->find(' ', at + marker.size()) - (at + marker.size()));
  ASSERT_TRUE(agent.WaitForLine("running hold", 60'000)) << agent.output();

  const std::string owned = dir_.File("owned");
  std::map<std::string, int> refused;  // by the reason perfgate_auth_failures_total counts
  const auto expect = [&](const grpc::Status& s, Code code, const char* reason, const std::string& what) {
    EXPECT_EQ(s.error_code(), code) << what << ": " << s.error_message();
    if (reason) ++refused[reason];
  };

  // No token, then a made-up one: every call of either service.
  for (const auto& [token, reason] : {std::pair<std::string, const char*>{"", "missing_token"},
                                      std::pair<std::string, const char*>{"guessed-token", "unknown_token"}}) {
    SCOPED_TRACE(reason);
    Attacker outsider(address_, ca, token, owned);
    expect(outsider.SubmitCommand(), Code::UNAUTHENTICATED, reason, "submit a command");
    expect(outsider.Register("lab-1"), Code::UNAUTHENTICATED, reason, "register as the live agent");
    expect(outsider.TakeWork(), Code::UNAUTHENTICATED, reason, "open a work stream");
    expect(outsider.Heartbeat(), Code::UNAUTHENTICATED, reason, "renew a guessed lease");
    expect(outsider.CompleteGuessedLease(), Code::UNAUTHENTICATED, reason, "complete a guessed lease");
    expect(outsider.Cancel(run_id), Code::UNAUTHENTICATED, reason, "cancel the gate's run");
    expect(outsider.PostVerdict(run_id), Code::UNAUTHENTICATED, reason, "post a verdict");
    expect(outsider.Read(run_id), Code::UNAUTHENTICATED, reason, "read the run");
  }
  // An agent's token on submitter calls.
  {
    Attacker agent_holder(address_, ca, "agent-7f3c2a9d41e8b650", owned);
    expect(agent_holder.SubmitCommand(), Code::PERMISSION_DENIED, "wrong_role", "agent token submits");
    expect(agent_holder.Cancel(run_id), Code::PERMISSION_DENIED, "wrong_role", "agent token cancels");
    expect(agent_holder.PostVerdict(run_id), Code::PERMISSION_DENIED, "wrong_role", "agent token posts a verdict");
    expect(agent_holder.Read(run_id), Code::PERMISSION_DENIED, "wrong_role", "agent token reads the run");
  }
  // A submitter's token on agent calls.
  Attacker submitter_holder(address_, ca, "submit-c81be04f9a2d3716");
  expect(submitter_holder.Register("lab-1"), Code::PERMISSION_DENIED, "wrong_role", "submit token registers");
  expect(submitter_holder.TakeWork(), Code::PERMISSION_DENIED, "wrong_role", "submit token takes work");
  expect(submitter_holder.Heartbeat(), Code::PERMISSION_DENIED, "wrong_role", "submit token renews");
  expect(submitter_holder.CompleteGuessedLease(), Code::PERMISSION_DENIED, "wrong_role",
         "submit token completes a lease");

  // A flood of registrations, bounded: without a token and with the wrong role.
  Attacker flooder(address_, ca, "", owned);
  for (int i = 0; i < kFloodRegistrations; ++i) {
    expect(flooder.Register("flood-" + std::to_string(i)), Code::UNAUTHENTICATED, "missing_token", "flood");
    expect(submitter_holder.Register(i % 2 ? "lab-1" : "flood-" + std::to_string(i)), Code::PERMISSION_DENIED,
           "wrong_role", "flood with the submit token");
  }

  // 100 MB messages: refused by size, token or not. Refused as too large, or,
  // when the message's buffers fill the server's memory quota first, by gRPC
  // closing the connection to reclaim them: the sender reads UNAVAILABLE
  // (GOAWAY, or a broken pipe or reset while it still writes; one run in a
  // few under a busy loop). Either is a refusal; that the coordinator lives
  // on and serves is checked below.
  const auto expect_too_large = [&](const grpc::Status& s, const std::string& what) {
    if (s.error_code() == Code::UNAVAILABLE) return;
    expect(s, Code::RESOURCE_EXHAUSTED, nullptr, what);
  };
  expect_too_large(flooder.SubmitCommand(kHugeBytes), "100 MB SubmitRun");
  expect_too_large(flooder.Register("lab-1", kHugeBytes), "100 MB Register");
  expect_too_large(flooder.CompleteGuessedLease(kHugeBytes), "100 MB Complete");
  expect_too_large(submitter_holder.CompleteGuessedLease(kHugeBytes), "100 MB Complete, submit token");

  // Several at once: refused too, and what the coordinator holds stays
  // bounded. Each is read whole before it is refused; without a bound on
  // all calls' buffers together six took the coordinator from 25 MB to 620 MB,
  // and nothing stopped sixty.
  {
    std::vector<std::thread> senders;
    std::vector<grpc::Status> results(kConcurrentHuge);
    for (int i = 0; i < kConcurrentHuge; ++i) {
      senders.emplace_back([&, i] { results[i] = Attacker(address_, ca, "").SubmitCommand(kHugeBytes); });
    }
    for (auto& t : senders) t.join();
    // As above: refused as too large, or by a closed connection when their
    // buffers together fill the quota first (1 run in 4 under a busy loop).
    for (const auto& r : results) expect_too_large(r, "100 MB SubmitRun, concurrently");
    ASSERT_EQ(kill(coordinator_->pid(), 0), 0) << "the coordinator died: " << coordinator_->output();
    EXPECT_LT(PeakRssBytes(coordinator_->pid()), 400 * kMiB) << "128 MiB of buffers, and their TLS copies";
  }

  // Plaintext to the TLS port does not even reach the door.
  {
    auto plain = v1::GateService::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
    v1::GetRunRequest request;
    request.set_run_id(run_id);
    v1::Run response;
    grpc::ClientContext context;
    context.set_deadline(In(10'000));
    EXPECT_EQ(plain->GetRun(&context, request, &response).error_code(), Code::UNAVAILABLE);
  }

  // Still serving: the rightful submitter reads the live run.
  Attacker rightful(address_, ca, "submit-c81be04f9a2d3716");
  EXPECT_TRUE(rightful.Read(run_id).ok());
  EXPECT_EQ(testing::QueryInt(db_, "SELECT state FROM runs WHERE run_id = '" + run_id + "'"), v1::RUN_STATE_RUNNING);

  // Release the held case; the gate finishes as if nobody had tried.
  int release = open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // the case's cat holds the other end
  ASSERT_GE(release, 0);
  close(release);
  ASSERT_EQ(gate.Wait(120'000), 0) << gate.output();
  EXPECT_THAT(gate.output(), Not(HasSubstr("cancel")));

  // Every refusal counted, by reason.
  for (const char* reason : {"missing_token", "unknown_token", "wrong_role"}) {
    EXPECT_EQ(AuthFailures(metrics_, reason), refused[reason]) << reason;
  }
  EXPECT_EQ(refused["missing_token"], 8 + kFloodRegistrations);
  EXPECT_EQ(refused["wrong_role"], 8 + kFloodRegistrations);

  // Nothing the attacker sent is in the store.
  EXPECT_EQ(testing::QueryInt(db_, "SELECT COUNT(*) FROM runs"), 1);
  EXPECT_EQ(testing::QueryInt(db_, "SELECT state FROM runs WHERE run_id = '" + run_id + "'"), v1::RUN_STATE_FINISHED);
  EXPECT_EQ(testing::QueryInt(db_, "SELECT COUNT(*) FROM runs WHERE verdict = 'passed'"), 1)
      << "the gate's own verdict";
  EXPECT_EQ(testing::QueryInt(db_, "SELECT COUNT(*) FROM cases"), 2);
  EXPECT_EQ(testing::QueryInt(db_, "SELECT COUNT(*) FROM cases WHERE agent_id = 'lab-1' AND state = 3"), 2);
  EXPECT_EQ(testing::QueryInt(db_, "SELECT COUNT(*) FROM results"), 2) << "one per case, both the agent's";
  EXPECT_EQ(testing::QueryInt(db_, "SELECT COUNT(*) FROM results WHERE counted = 1"), 2);
  EXPECT_EQ(testing::QueryInt(db_, "SELECT COUNT(*) FROM sessions WHERE agent_id <> 'lab-1'"), 0);
  EXPECT_LE(testing::QueryInt(db_, "SELECT COUNT(*) FROM sessions"), 1);
  // The live agent was never fenced by the registrations in its name.
  EXPECT_THAT(agent.output(), Not(HasSubstr("session refused")));
  EXPECT_NE(access(owned.c_str(), F_OK), 0) << "the submitted command never ran";
}

// A finished run whose results together exceed the client's receive limit:
// GetRun hands it over in parts, each under the limit.
TEST(RunPagingTest, ARunTooLargeForOneMessageIsFetchedInParts) {
  testing::TempDir dir;
  CoordinatorOptions options;
  options.db_path = dir.File("perfgate.db");
  auto coordinator = Coordinator::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  WorkerOptions worker;
  worker.coordinator = (*coordinator)->address();
  worker.agent_id = "pager";
  worker.log = [](const std::string&) {};
  AgentWorker agent(worker, ProbeHost());
  std::thread thread([&] { agent.Run(); });
  ASSERT_TRUE((*coordinator)->scheduler().WaitForAgents(1, 30'000));

  // Eight cases with a full output tail (4 KiB) each; the client takes 16 KiB a message.
  constexpr int kCases = 8;
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("pages");
  for (int i = 0; i < kCases; ++i) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name("out" + std::to_string(i));
    for (const char* arg : {"/bin/sh", "-c", "head -c 10000 /dev/zero | tr '\\0' x"}) c->add_argv(arg);
    c->set_repeats(1);
  }
  GateClientOptions client;
  client.coordinator = (*coordinator)->address();
  client.limits.reply_bytes = 16 << 10;
  Interrupt interrupt;
  auto run = SubmitAndWatch(client, request, &interrupt);
  // A client whose limit is under one case's size gets an error naming it, at once.
  GateClientOptions tiny = client;
  tiny.limits.reply_bytes = 4 << 10;
  request.mutable_suite()->mutable_cases()->DeleteSubrange(1, kCases - 1);
  auto too_small = SubmitAndWatch(tiny, request, &interrupt);
  agent.Stop();
  thread.join();
  EXPECT_EQ(too_small.status().code(), absl::StatusCode::kResourceExhausted) << too_small.status();
  EXPECT_THAT(too_small.status().message(), HasSubstr("case 'out0' alone is"));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->cases_size(), kCases);
  EXPECT_GT(run->ByteSizeLong(), client.limits.reply_bytes) << "the test needs a run that does not fit one message";
  EXPECT_TRUE(run->next_page_token().empty());
  for (int i = 0; i < kCases; ++i) {
    EXPECT_EQ(run->cases(i).name(), "out" + std::to_string(i));
    EXPECT_EQ(run->cases(i).result().outcome(), v1::CaseResult::OUTCOME_OK) << run->cases(i).result().error();
  }

  // The parts themselves: each within what was asked, together the whole run.
  auto stub = v1::GateService::NewStub(grpc::CreateChannel(client.coordinator, grpc::InsecureChannelCredentials()));
  v1::GetRunRequest get;
  get.set_run_id(run->run_id());
  get.set_max_reply_bytes(12'000);
  int parts = 0, cases = 0;
  do {
    v1::Run part;
    grpc::ClientContext context;
    ASSERT_TRUE(stub->GetRun(&context, get, &part).ok());
    EXPECT_LE(part.ByteSizeLong(), 12'000u);
    EXPECT_EQ(part.run_id(), run->run_id());
    cases += part.cases_size();
    ++parts;
    get.set_page_token(part.next_page_token());
  } while (!get.page_token().empty() && parts <= kCases);
  EXPECT_EQ(cases, kCases);
  EXPECT_GT(parts, 1);

  get.set_page_token("not-a-token");
  v1::Run none;
  grpc::ClientContext bad_context;
  grpc::Status bad = stub->GetRun(&bad_context, get, &none);
  EXPECT_EQ(bad.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("page_token"));

  get.set_page_token("");
  get.set_max_reply_bytes(2'000);  // less than one case
  grpc::ClientContext small_context;
  grpc::Status small = stub->GetRun(&small_context, get, &none);
  EXPECT_EQ(small.error_code(), Code::RESOURCE_EXHAUSTED);
  EXPECT_THAT(small.error_message(), HasSubstr("case 'out0' alone is"));
}

}  // namespace
}  // namespace perfgate
