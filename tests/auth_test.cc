// The coordinator's door: TLS (and mutual TLS) with certificates made at
// test time by the openssl command, role tokens on every RPC, per-call
// request size limits, and the refusal to serve plaintext off loopback.
// Real gRPC on loopback port 0 throughout.
#include "coordinator/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "agent/host_fingerprint.h"
#include "agent/worker.h"
#include "coordinator/coordinator.h"
#include "core/exit_codes.h"
#include "gate/gate_client.h"
#include "gate/local_cluster.h"
#include "perfgate/v1/agent.grpc.pb.h"
#include "perfgate/v1/artifact.grpc.pb.h"
#include "perfgate/v1/gate.grpc.pb.h"
#include "tests/test_util.h"
#include "transport/transport.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A CA, a server certificate for 127.0.0.1 and localhost, a client
// certificate, and an unrelated CA, made once for the whole test binary.
class Certificates {
 public:
  static const Certificates& Get() {
    static const Certificates certs;  // destroyed at exit, with its folder
    return certs;
  }
  std::string File(const std::string& name) const { return dir_.File(name); }

 private:
  Certificates() {
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=perfgate-test-ca -keyout ca.key -out ca.pem");
    Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=someone-else -keyout other-ca.key -out other-ca.pem");
    dir_.Write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    dir_.Write("client.ext", "extendedKeyUsage=clientAuth\n");
    for (const std::string who : {"server", "client"}) {
      Run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + who + " -keyout " + who +
          ".key -out " + who + ".csr");
      Run("openssl x509 -req -in " + who + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile " + who +
          ".ext -out " + who + ".pem");
    }
  }
  void Run(const std::string& command) {
    const std::string full = "cd '" + dir_.path() + "' && " + command + " >openssl.log 2>&1";
    if (std::system(full.c_str()) != 0) {
      ADD_FAILURE() << "openssl failed: " << command;
    }
  }
  testing::TempDir dir_;
};

const RoleTokens kTokens{"agent-secret", "submitter-secret", "reader-secret"};

std::string TokenOf(Role role) {
  switch (role) {
    case Role::kAgent:
      return kTokens.agent;
    case Role::kSubmitter:
      return kTokens.submitter;
    case Role::kReader:
      return kTokens.reader;
  }
  return "";
}

constexpr Rpc kAllRpcs[] = {Rpc::kRegister,  Rpc::kWork,          Rpc::kHeartbeat,  Rpc::kCompleteLease,
                            Rpc::kSubmitRun, Rpc::kWatchRun,      Rpc::kGetRun,     Rpc::kGetHistory,
                            Rpc::kCancelRun, Rpc::kReportVerdict, Rpc::kFindMissingArtifacts,
                            Rpc::kUploadArtifact, Rpc::kDownloadArtifact};
constexpr Role kAllRoles[] = {Role::kAgent, Role::kSubmitter, Role::kReader};

// What issue 10 asks for, written out independently of the coordinator's table.
bool Allowed(Role role, Rpc rpc) {
  switch (rpc) {
    case Rpc::kRegister:
    case Rpc::kWork:
    case Rpc::kHeartbeat:
    case Rpc::kCompleteLease:
      return role == Role::kAgent;
    case Rpc::kDownloadArtifact:  // issue 12: agents download, the gate uploads
      return role == Role::kAgent;
    case Rpc::kSubmitRun:
    case Rpc::kCancelRun:
    case Rpc::kReportVerdict:
    case Rpc::kFindMissingArtifacts:
    case Rpc::kUploadArtifact:
      return role == Role::kSubmitter;
    case Rpc::kWatchRun:
    case Rpc::kGetRun:
    case Rpc::kGetHistory:
      return role == Role::kSubmitter || role == Role::kReader;
  }
  return false;
}

std::chrono::system_clock::time_point In(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

v1::SubmitRunRequest OneCaseRun() {
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("auth");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("true");
  c->add_argv("/bin/true");
  c->set_repeats(1);
  return request;
}

// Makes one call of `rpc` with plausible but unknown ids; returns its status.
grpc::Status Call(const std::shared_ptr<grpc::Channel>& channel, Rpc rpc) {
  auto agent = v1::AgentService::NewStub(channel);
  auto gate = v1::GateService::NewStub(channel);
  auto artifacts = v1::ArtifactService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(In(10'000));
  switch (rpc) {
    case Rpc::kRegister: {
      v1::RegisterRequest request;
      request.set_agent_id("auth-test");
      v1::RegisterResponse response;
      return agent->Register(&context, request, &response);
    }
    case Rpc::kWork: {
      v1::WorkRequest request;
      request.set_session_id("no-such-session");
      auto reader = agent->Work(&context, request);
      v1::WorkItem item;
      while (reader->Read(&item)) {
      }
      return reader->Finish();
    }
    case Rpc::kHeartbeat: {
      v1::HeartbeatRequest request;
      request.set_session_id("no-such-session");
      v1::HeartbeatResponse response;
      return agent->Heartbeat(&context, request, &response);
    }
    case Rpc::kCompleteLease: {
      v1::CompleteLeaseRequest request;
      request.set_session_id("no-such-session");
      request.set_lease_id("no-such-lease");
      v1::CompleteLeaseResponse response;
      return agent->CompleteLease(&context, request, &response);
    }
    case Rpc::kSubmitRun: {
      v1::SubmitRunResponse response;
      return gate->SubmitRun(&context, OneCaseRun(), &response);
    }
    case Rpc::kWatchRun: {
      v1::WatchRunRequest request;
      request.set_run_id("no-such-run");
      auto reader = gate->WatchRun(&context, request);
      v1::RunEvent event;
      while (reader->Read(&event)) {
      }
      return reader->Finish();
    }
    case Rpc::kGetRun: {
      v1::GetRunRequest request;
      request.set_run_id("no-such-run");
      v1::Run response;
      return gate->GetRun(&context, request, &response);
    }
    case Rpc::kGetHistory: {
      v1::HistoryRequest request;
      request.set_branch("main");
      v1::HistoryResponse response;
      return gate->GetHistory(&context, request, &response);
    }
    case Rpc::kCancelRun: {
      v1::CancelRunRequest request;
      request.set_run_id("no-such-run");
      v1::CancelRunResponse response;
      return gate->CancelRun(&context, request, &response);
    }
    case Rpc::kReportVerdict: {
      v1::ReportVerdictRequest request;
      request.set_run_id("no-such-run");
      v1::ReportVerdictResponse response;
      return gate->ReportVerdict(&context, request, &response);
    }
    case Rpc::kFindMissingArtifacts: {
      v1::FindMissingArtifactsRequest request;
      request.add_digests(std::string(64, 'a'));
      v1::FindMissingArtifactsResponse response;
      return artifacts->FindMissingArtifacts(&context, request, &response);
    }
    case Rpc::kUploadArtifact: {
      v1::UploadArtifactResponse response;
      auto writer = artifacts->UploadArtifact(&context, &response);
      v1::UploadArtifactChunk chunk;
      chunk.set_digest(std::string(64, 'a'));
      chunk.set_size(1);
      writer->Write(chunk);
      writer->WritesDone();
      return writer->Finish();
    }
    case Rpc::kDownloadArtifact: {
      v1::DownloadArtifactRequest request;
      request.set_digest(std::string(64, 'a'));
      auto reader = artifacts->DownloadArtifact(&context, request);
      v1::ArtifactChunk chunk;
      while (reader->Read(&chunk)) {
      }
      return reader->Finish();
    }
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "unreachable");
}

bool RefusedAtTheDoor(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAUTHENTICATED || s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
         s.error_code() == grpc::StatusCode::UNAVAILABLE;
}

// The value of the perfgate_auth_failures_total series with this reason, 0 if absent.
double AuthFailures(const std::string& metrics_address, const std::string& reason) {
  const std::string body = testing::HttpGet(metrics_address, "/metrics");
  const std::string series = "perfgate_auth_failures_total{reason=\"" + reason + "\"} ";
  const size_t at = body.find(series);
  return at == std::string::npos ? 0 : std::stod(body.substr(at + series.size()));
}

class AuthTest : public ::testing::Test {
 protected:
  void Start(CoordinatorOptions options) {
    options.db_path = dir_.File("perfgate.db");
    if (options.listen.empty()) options.listen = "127.0.0.1:0";
    auto started = Coordinator::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    coordinator_ = *std::move(started);
  }
  CoordinatorOptions Tls(bool mutual) const {
    const auto& certs = Certificates::Get();
    CoordinatorOptions options;
    options.tls_cert_file = certs.File("server.pem");
    options.tls_key_file = certs.File("server.key");
    if (mutual) options.tls_client_ca_file = certs.File("ca.pem");
    options.tokens = kTokens;
    return options;
  }
  std::shared_ptr<grpc::Channel> Channel(ClientSecurityFlags flags, const std::string& token) {
    auto security = LoadClientSecurity(flags, coordinator_->address());
    EXPECT_TRUE(security.ok()) << security.status();
    if (!security.ok()) return nullptr;
    security->token = token;
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(64 << 20);  // let oversized requests reach the coordinator
    return OpenChannel(coordinator_->address(), *security, args);
  }
  ClientSecurityFlags TrustingClient() const {
    ClientSecurityFlags flags;
    flags.tls_ca = Certificates::Get().File("ca.pem");
    return flags;
  }
  ClientSecurityFlags ClientWithCertificate() const {
    ClientSecurityFlags flags = TrustingClient();
    flags.tls_cert = Certificates::Get().File("client.pem");
    flags.tls_key = Certificates::Get().File("client.key");
    return flags;
  }

  testing::TempDir dir_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(AuthTest, EveryRpcWantsATokenOfARoleAllowedToCallIt) {
  CoordinatorOptions options = Tls(/*mutual=*/false);
  options.metrics_listen = "127.0.0.1:0";
  Start(options);
  const std::string metrics = coordinator_->metrics_address();

  for (Rpc rpc : kAllRpcs) {
    SCOPED_TRACE(RpcName(rpc));
    grpc::Status none = Call(Channel(TrustingClient(), ""), rpc);
    EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << none.error_message();
    grpc::Status forged = Call(Channel(TrustingClient(), "guessed"), rpc);
    EXPECT_EQ(forged.error_code(), grpc::StatusCode::UNAUTHENTICATED) << forged.error_message();
    for (Role role : kAllRoles) {
      SCOPED_TRACE(RoleName(role));
      EXPECT_EQ(RoleMayCall(role, rpc), Allowed(role, rpc));
      grpc::Status s = Call(Channel(TrustingClient(), TokenOf(role)), rpc);
      if (Allowed(role, rpc)) {
        // Past the door: whatever the scheduler says about unknown ids.
        EXPECT_FALSE(RefusedAtTheDoor(s)) << s.error_code() << " " << s.error_message();
      } else {
        EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
        EXPECT_THAT(s.error_message(), HasSubstr(RpcName(rpc)));
      }
    }
  }
  EXPECT_EQ(AuthFailures(metrics, "missing_token"), 13);
  EXPECT_EQ(AuthFailures(metrics, "unknown_token"), 13);
  // 5 agent RPCs x 2 other roles, 5 submitter-only x 2, 3 reads x the agent.
  EXPECT_EQ(AuthFailures(metrics, "wrong_role"), 10 + 10 + 3);
}

TEST_F(AuthTest, RightRoleRunsACaseEndToEndOverTls) {
  Start(Tls(/*mutual=*/true));
  WorkerOptions worker;
  worker.coordinator = coordinator_->address();
  worker.agent_id = "tls-agent";
  worker.log = [](const std::string&) {};
  auto security = LoadClientSecurity(ClientWithCertificate(), coordinator_->address());
  ASSERT_TRUE(security.ok()) << security.status();
  worker.security = *security;
  worker.security.token = kTokens.agent;
  AgentWorker agent(worker, ProbeHost());
  std::thread thread([&] { agent.Run(); });
  ASSERT_TRUE(coordinator_->scheduler().WaitForAgents(1, 30'000));

  GateClientOptions client;
  client.coordinator = coordinator_->address();
  client.security = *security;
  client.security.token = kTokens.submitter;
  Interrupt interrupt;
  auto run = SubmitAndWatch(client, OneCaseRun(), &interrupt);
  agent.Stop();
  thread.join();
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->cases_size(), 1);
  EXPECT_EQ(run->cases(0).result().outcome(), v1::CaseResult::OUTCOME_OK);
}

TEST_F(AuthTest, TlsClientsThatDoNotTrustTheCoordinatorOrLackACertificateAreRefused) {
  Start(Tls(/*mutual=*/true));
  EXPECT_FALSE(RefusedAtTheDoor(Call(Channel(ClientWithCertificate(), kTokens.reader), Rpc::kGetRun)));

  ClientSecurityFlags plaintext;
  plaintext.insecure = true;  // a client that would talk plaintext to it
  EXPECT_EQ(Call(Channel(plaintext, kTokens.reader), Rpc::kGetRun).error_code(), grpc::StatusCode::UNAVAILABLE);
  ClientSecurityFlags wrong_ca = ClientWithCertificate();
  wrong_ca.tls_ca = Certificates::Get().File("other-ca.pem");
  EXPECT_EQ(Call(Channel(wrong_ca, kTokens.reader), Rpc::kGetRun).error_code(), grpc::StatusCode::UNAVAILABLE);
  // Mutual TLS: trusting the coordinator is not enough without a certificate of our own.
  EXPECT_EQ(Call(Channel(TrustingClient(), kTokens.reader), Rpc::kGetRun).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(AuthTest, OversizedRequestsAreRefusedPerCallAndTheCoordinatorKeepsServing) {
  Start(Tls(/*mutual=*/false));
  auto agent = v1::AgentService::NewStub(Channel(TrustingClient(), kTokens.agent));
  auto gate = v1::GateService::NewStub(Channel(TrustingClient(), kTokens.submitter));
  {
    v1::RegisterRequest request;
    request.set_agent_id("big");
    request.add_labels(std::string(2 << 20, 'x'));  // 2 MiB: over Register's 1 MiB
    v1::RegisterResponse response;
    grpc::ClientContext context;
    grpc::Status s = agent->Register(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(s.error_message(), HasSubstr("Register request is"));
    EXPECT_THAT(s.error_message(), HasSubstr("1 MiB"));
  }
  {
    v1::SubmitRunRequest request = OneCaseRun();
    request.mutable_suite()->mutable_cases(0)->set_name(std::string(20 << 20, 'x'));  // 20 MiB: over 16 MiB
    v1::SubmitRunResponse response;
    grpc::ClientContext context;
    grpc::Status s = gate->SubmitRun(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(s.error_message(), HasSubstr("SubmitRun request is"));
    EXPECT_THAT(s.error_message(), HasSubstr("16 MiB"));
  }
  {
    // Over the 32 MiB that gRPC itself takes: refused by the transport.
    v1::SubmitRunRequest request = OneCaseRun();
    request.mutable_suite()->mutable_cases(0)->set_name(std::string(40 << 20, 'x'));
    v1::SubmitRunResponse response;
    grpc::ClientContext context;
    EXPECT_EQ(gate->SubmitRun(&context, request, &response).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  // Still serving, on the same channels.
  v1::RegisterRequest normal;
  normal.set_agent_id("small");
  v1::RegisterResponse registered;
  grpc::ClientContext register_context;
  EXPECT_TRUE(agent->Register(&register_context, normal, &registered).ok());
  v1::SubmitRunResponse submitted;
  grpc::ClientContext submit_context;
  EXPECT_TRUE(gate->SubmitRun(&submit_context, OneCaseRun(), &submitted).ok());
}

// A suite whose case `big` writes a 20 KB output tail, in among `small` cases of /bin/true.
v1::SubmitRunRequest WithOneBigResult(int small, int big) {
  v1::SubmitRunRequest request = OneCaseRun();
  request.mutable_suite()->clear_cases();
  for (int i = 0; i <= small; ++i) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name("case" + std::to_string(i));
    c->set_repeats(1);
    if (i != big) {
      c->add_argv("/bin/true");
      continue;
    }
    for (const char* arg : {"/bin/sh", "-c", "head -c 20000 /dev/zero | tr '\\0' x"}) c->add_argv(arg);
  }
  return request;
}

class OversizedResultTest : public AuthTest {
 protected:
  // Runs `request` on one agent against a coordinator that takes CompleteLease calls of 3,000 bytes at most.
  absl::StatusOr<v1::Run> RunWithSmallCompleteLimit(const v1::SubmitRunRequest& request) {
    CoordinatorOptions options;
    options.limits.complete_bytes = 3000;  // a result with a 20 KB output tail does not fit; an error does
    Start(options);
    WorkerOptions worker;
    worker.coordinator = coordinator_->address();
    worker.agent_id = "big-results";
    worker.log = [](const std::string&) {};
    AgentWorker agent(worker, ProbeHost());
    std::thread thread([&] { agent.Run(); });
    absl::StatusOr<v1::Run> run = absl::DeadlineExceededError("the agent did not register");
    if (coordinator_->scheduler().WaitForAgents(1, 30'000)) {
      GateClientOptions client;
      client.coordinator = coordinator_->address();
      Interrupt interrupt;
      run = SubmitAndWatch(client, request, &interrupt);
    }
    agent.Stop();
    thread.join();
    return run;
  }

  static void ExpectTooLargeError(const v1::CaseStatus& c) {
    EXPECT_EQ(c.result().outcome(), v1::CaseResult::OUTCOME_ERROR) << c.name();
    EXPECT_THAT(c.result().error(), HasSubstr("too large"));
    EXPECT_THAT(c.result().error(), HasSubstr("CompleteLease"));
    EXPECT_EQ(c.attempts(), 1u) << "not re-run: a re-run would be just as large";
  }
};

TEST_F(OversizedResultTest, AResultOverTheCompleteLeaseLimitBecomesACaseErrorSayingSo) {
  auto run = RunWithSmallCompleteLimit(WithOneBigResult(0, 0));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->cases_size(), 1);
  ExpectTooLargeError(run->cases(0));
}

// Short cases are reported several to a call. A call refused as too large
// may be about any of its results, so each is offered alone: only the
// oversized one becomes an error, and the others count as they ran.
TEST_F(OversizedResultTest, AnOversizedResultAmongSeveralToACallIsTheOnlyOneMadeAnError) {
  auto run = RunWithSmallCompleteLimit(WithOneBigResult(20, 6));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->cases_size(), 21);
  for (const auto& c : run->cases()) {
    if (c.name() == "case6") {
      ExpectTooLargeError(c);
      continue;
    }
    EXPECT_EQ(c.result().outcome(), v1::CaseResult::OUTCOME_OK) << c.name() << ": " << c.result().error();
    EXPECT_EQ(c.attempts(), 1u) << c.name();
  }
}

// An admin learns at start that a token file every user may read, one
// token for two roles, or a short token weakens the door.
TEST(CredentialWarningsTest, TheCoordinatorWarnsOfReadableSharedOrShortTokens) {
  testing::TempDir dir;
  const std::string shared = dir.Write("agent.token", "0123456789abcdef0123456789abcdef\n");
  const std::string same = dir.Write("submit.token", "0123456789abcdef0123456789abcdef\n");
  const std::string short_one = dir.Write("read.token", "x\n");
  std::filesystem::permissions(shared, std::filesystem::perms(0644));
  std::filesystem::permissions(same, std::filesystem::perms(0600));
  std::filesystem::permissions(short_one, std::filesystem::perms(0600));
  testing::Subprocess coordinator({testing::PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db",
                                   dir.File("db"), "--priority-levels", "0", "--agent-token-file", shared,
                                   "--submit-token-file", same, "--read-token-file", short_one});
  ASSERT_TRUE(coordinator.WaitForLine("results acknowledged", 30'000)) << coordinator.output();
  const std::string out = coordinator.output();
  EXPECT_THAT(out,
              HasSubstr("--agent-token-file " + shared + " can be read by every user of this machine (mode 0644)"));
  EXPECT_THAT(out, Not(HasSubstr("--submit-token-file " + same + " can be read")));
  EXPECT_THAT(out, HasSubstr("the agent and submitter tokens are the same: whoever holds it holds both roles"));
  EXPECT_THAT(out, HasSubstr("the reader token is 1 characters; use at least 16"));
  coordinator.Signal(SIGTERM);
  EXPECT_EQ(coordinator.Wait(30'000), 0) << coordinator.output();
}

// A CA file with no certificate in it is a configuration error naming it:
// gRPC said only "Could not load any root certificate", and an agent
// retried registering for ever.
TEST(CredentialWarningsTest, ACaFileWithNoCertificateIsRefusedNamingIt) {
  ClientSecurityFlags flags;
  flags.tls_ca = Certificates::Get().File("server.ext");
  auto security = LoadClientSecurity(flags, "127.0.0.1:7600");
  ASSERT_FALSE(security.ok());
  EXPECT_EQ(security.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(security.status().message(), HasSubstr("--tls-ca " + flags.tls_ca + ": no PEM certificate in it"));
  flags.tls_ca = Certificates::Get().File("ca.pem");
  EXPECT_TRUE(LoadClientSecurity(flags, "127.0.0.1:7600").ok());
}

// A --db in a folder that does not exist is a configuration error (exit 2,
// which the unit does not restart on), not a store failure (exit 3).
TEST(CredentialWarningsTest, ADatabaseInAFolderThatDoesNotExistIsBadConfiguration) {
  auto r = testing::RunCommand({testing::PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db",
                                "/nonexistent-perfgate/dir/x.db", "--priority-levels", "0"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("--db '/nonexistent-perfgate/dir/x.db': there is no folder /nonexistent-perfgate/dir"));
  // Nor can a restart fix these: "" and ":memory:" kept results nowhere (every gate then failed on
  // "no such table"); a folder, a device and another file were a store failure restarted for ever.
  testing::TempDir dir;
  const std::string text = dir.Write("notes.txt", "not a database\n");
  const std::pair<std::string, std::string> bad[] = {{"", "name a database file"},
                                                     {":memory:", "name a database file"},
                                                     {dir.path(), "it is not a regular file"},
                                                     {"/dev/null", "it is not a regular file"},
                                                     {text, "it is not a SQLite database"}};
  for (const auto& [db, why] : bad) {
    auto refused = testing::RunCommand(
        {testing::PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", db, "--priority-levels", "0"});
    EXPECT_EQ(refused.exit_code, kExitBadInput) << db << ": " << refused.output;
    EXPECT_THAT(refused.output, HasSubstr("--db '" + db + "': " + why));
  }
}

// A key of another pair, or a file with no PEM in it, is a configuration
// error naming the file: gRPC's own failure read "the port is in use"
// (exit 3, which the unit restarts every two seconds).
TEST_F(AuthTest, ACertificateAndAKeyThatDoNotBelongTogetherAreRefusedNamingThem) {
  const auto& certs = Certificates::Get();
  CoordinatorOptions mismatched = Tls(/*mutual=*/false);
  mismatched.db_path = dir_.File("never.db");
  mismatched.listen = "127.0.0.1:0";
  mismatched.tls_key_file = certs.File("client.key");
  auto refused = Coordinator::Start(mismatched);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("client.key is not the key of the certificate in --tls-cert"));
  CoordinatorOptions garbage = mismatched;
  garbage.tls_key_file = certs.File("server.ext");  // a file of text, no PEM
  refused = Coordinator::Start(garbage);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("server.ext: no PEM private key in it"));
  garbage = mismatched;
  garbage.tls_cert_file = certs.File("client.ext");
  refused = Coordinator::Start(garbage);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("--tls-cert " + certs.File("client.ext") + ": no PEM certificate"));
  // The clients' CA: a key, an empty file or a folder gave "the port is in use", or a mutual TLS no client passed.
  for (const std::string& ca : {certs.File("server.key"), dir_.Write("empty.pem", ""), dir_.path()}) {
    CoordinatorOptions bad_ca = Tls(/*mutual=*/true);
    bad_ca.db_path = dir_.File("never.db");
    bad_ca.listen = "127.0.0.1:0";
    bad_ca.tls_client_ca_file = ca;
    refused = Coordinator::Start(bad_ca);
    ASSERT_FALSE(refused.ok()) << ca;
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
    EXPECT_THAT(refused.status().message(), HasSubstr("--tls-client-ca")) << ca;
  }
}

TEST_F(AuthTest, NonLoopbackListenersNeedTlsAndAuthenticationUnlessInsecure) {
  CoordinatorOptions plaintext;
  plaintext.listen = "0.0.0.0:0";
  plaintext.db_path = dir_.File("never.db");
  auto refused = Coordinator::Start(plaintext);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("refusing plaintext on 0.0.0.0:0"));

  CoordinatorOptions no_tokens = Tls(/*mutual=*/false);
  no_tokens.tokens = {};
  no_tokens.listen = "0.0.0.0:0";
  no_tokens.db_path = dir_.File("never.db");
  auto unauthenticated = Coordinator::Start(no_tokens);
  ASSERT_FALSE(unauthenticated.ok());
  EXPECT_THAT(unauthenticated.status().message(), HasSubstr("without authentication"));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("never.db"))) << "refused before opening anything";

  auto cli = testing::RunCommand(
      {testing::PerfgateBinary(), "coordinator", "--listen", "0.0.0.0:0", "--db", dir_.File("never.db")});
  EXPECT_EQ(cli.exit_code, 2) << cli.output;
  EXPECT_THAT(cli.output, HasSubstr("refusing plaintext"));
}

// What CheckExposure lets through is said at every start: a loopback
// coordinator without tokens lets any local user run commands on agents.
TEST_F(AuthTest, WhatIsLeftOpenIsWarnedOfAtStart) {
  CoordinatorOptions open;
  open.listen = "127.0.0.1:0";
  open.metrics_listen = "0.0.0.0:0";
  auto warnings = ExposureWarnings(open);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_THAT(warnings[0], HasSubstr("no tokens: anyone who can reach 127.0.0.1:0 (any user of this machine)"));
  EXPECT_THAT(warnings[1], HasSubstr("/metrics on 0.0.0.0:0 needs no token"));
  CoordinatorOptions mutual = Tls(/*mutual=*/true);
  mutual.tokens = {};
  ASSERT_EQ(ExposureWarnings(mutual).size(), 1u);
  EXPECT_THAT(ExposureWarnings(mutual)[0], HasSubstr("every client certificate the CA signed holds every role"));
  EXPECT_TRUE(ExposureWarnings(Tls(/*mutual=*/true)).empty()) << "tokens and mutual TLS: nothing to warn of";

  testing::Subprocess cli({testing::PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db",
                           dir_.File("open.db")});
  auto warning = cli.WaitForLine("perfgate coordinator: warning: no tokens: anyone who can reach", 30'000);
  ASSERT_TRUE(warning) << cli.output();
  EXPECT_THAT(*warning, Not(HasSubstr("127.0.0.1:0 "))) << "the port it took, not the one asked for";
  EXPECT_THAT(*warning, HasSubstr(testing::CoordinatorAddress(cli) + " (any user"));
}

TEST(EmbeddedClusterTest, MakesItsOwnTokensAndRequiresThem) {
  testing::TempDir dir;
  LocalClusterOptions options;
  options.state_dir = dir.path();
  options.agents = 1;
  auto cluster = LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status();  // its agent registered with its own token
  ASSERT_FALSE((*cluster)->submitter().token.empty());
  EXPECT_EQ(Call(OpenChannel((*cluster)->address(), ClientSecurity{}, {}), Rpc::kSubmitRun).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Call(OpenChannel((*cluster)->address(), (*cluster)->submitter(), {}), Rpc::kSubmitRun).ok());
  EXPECT_EQ(Call(OpenChannel((*cluster)->address(), (*cluster)->submitter(), {}), Rpc::kRegister).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  (*cluster)->Shutdown();
}

// gRPC read port 99999 as 34463 and a missing port as 443: a coordinator
// listened, and an agent dialled, somewhere else than the flag said.
TEST(ClientSecurityTest, AddressesNeedAPortInRange) {
  for (const char* good : {"127.0.0.1:7600", "[::1]:1", "lab-coord:65535", "unix:/tmp/s", "dns:///lab:7600"}) {
    EXPECT_TRUE(CheckAddress(good, "--coordinator", false).ok()) << good;
  }
  EXPECT_TRUE(CheckAddress("127.0.0.1:0", "--listen", true).ok());
  const std::pair<const char*, const char*> bad[] = {
      {"127.0.0.1:99999", "port 99999 is out of range (1-65535)"},
      {"localhost", "no port"},
      {"[::1]", "no port"},
      {":7600", "no host"},
      {"lab:76x0", "'76x0' is not a port number"},
      {"lab:+80", "'+80' is not a port number"},
      {"127.0.0.1:0", "port 0 is out of range (1-65535)"},
  };
  for (const auto& [address, why] : bad) {
    absl::Status s = CheckAddress(address, "--coordinator", false);
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("--coordinator '", address, "': ", why))) << address;
  }
  EXPECT_THAT(LoadClientSecurity({}, "127.0.0.1:99999").status().message(), HasSubstr("out of range"));
  const testing::CommandResult listen =
      testing::RunCommand({testing::PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:99999"});
  EXPECT_EQ(listen.exit_code, kExitBadInput);
  EXPECT_THAT(listen.output, HasSubstr("--listen: address '127.0.0.1:99999': port 99999 is out of range (0-65535)"));
  // Checked as the flag is read, so a config file's error names its line.
  testing::TempDir dir;
  const testing::CommandResult agent = testing::RunCommand(
      {testing::PerfgateBinary(), "agent", "--config", dir.Write("a.conf", "pool = p\ncoordinator = lab\n")});
  EXPECT_EQ(agent.exit_code, kExitBadInput);
  EXPECT_THAT(agent.output, HasSubstr("a.conf:2: coordinator: --coordinator: address 'lab': no port"));
}

TEST(ClientSecurityTest, PlaintextOnlyTowardsLoopbackUnlessInsecure) {
  for (const char* local : {"127.0.0.1:7600", "127.3.4.5:1", "localhost:7600", "[::1]:7600", "unix:/tmp/s"}) {
    EXPECT_TRUE(IsLoopbackAddress(local)) << local;
  }
  for (const char* remote : {"0.0.0.0:7600", "10.0.0.1:7600", "[::]:7600", "perf.example.com:7600", "128.0.0.1:1"}) {
    EXPECT_FALSE(IsLoopbackAddress(remote)) << remote;
  }
  ClientSecurityFlags flags;
  auto refused = LoadClientSecurity(flags, "perf.example.com:7600");
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("--tls-ca"));
  flags.insecure = true;
  EXPECT_TRUE(LoadClientSecurity(flags, "perf.example.com:7600").ok());
}

// Any local user may listen on a loopback port while the coordinator is
// down; whoever answered an agent there got its token and had it run their
// commands (as root, on most lab machines). A client trusts plaintext only to
// a unix socket that no one else could have put where it is.
TEST(ClientSecurityTest, PlaintextOnLoopbackPortsIsTrustedOnlyWithInsecure) {
  ClientSecurityFlags flags;
  for (const char* address : {"127.0.0.1:7600", "localhost:7600", "[::1]:7600", "unix-abstract:perfgate"}) {
    auto refused = LoadClientSecurity(flags, address);
    ASSERT_FALSE(refused.ok()) << address;
    EXPECT_THAT(refused.status().message(), HasSubstr("any user of this machine can listen on it")) << address;
    EXPECT_THAT(refused.status().message(), HasSubstr("unix:/run/perfgate/coordinator.sock")) << address;
  }
  flags.insecure = true;
  EXPECT_TRUE(LoadClientSecurity(flags, "127.0.0.1:7600").ok());
}

TEST(ClientSecurityTest, AUnixSocketIsTrustedOnlyInFoldersNoOneElseCanWrite) {
  testing::TempDir dir;  // mkdtemp: 0700, this user's; /tmp above it is sticky
  ClientSecurityFlags flags;
  EXPECT_TRUE(LoadClientSecurity(flags, "unix:" + dir.File("c.sock")).ok());
  EXPECT_TRUE(LoadClientSecurity(flags, "unix://" + dir.File("c.sock")).ok());

  const std::string shared = dir.File("shared");
  ASSERT_EQ(mkdir(shared.c_str(), 0700), 0);
  ASSERT_EQ(chmod(shared.c_str(), 0777), 0);
  auto open = LoadClientSecurity(flags, "unix:" + shared + "/c.sock");
  ASSERT_FALSE(open.ok());
  EXPECT_THAT(open.status().message(), HasSubstr(shared + " (above the socket " + shared + "/c.sock) is owned by"));
  EXPECT_THAT(open.status().message(), HasSubstr("with mode 0777"));
  ASSERT_EQ(chmod(shared.c_str(), 01777), 0);  // sticky: fine above the socket's folder, not as it
  EXPECT_FALSE(LoadClientSecurity(flags, "unix:" + shared + "/c.sock").ok());
  const std::string mine = shared + "/mine";
  ASSERT_EQ(mkdir(mine.c_str(), 0700), 0);
  EXPECT_TRUE(LoadClientSecurity(flags, "unix:" + mine + "/c.sock").ok());
  // Not made yet (the coordinator is down): judged by who could make it. An
  // agent that starts first must wait for its coordinator, not exit.
  EXPECT_TRUE(LoadClientSecurity(flags, "unix:" + dir.File("not-yet/c.sock")).ok());
  EXPECT_FALSE(LoadClientSecurity(flags, "unix:" + shared + "/not-yet/c.sock").ok()) << "anyone can make it";

  if (geteuid() == 0) {  // a folder of another user, above one of this user's: that user could swap it
    const std::string theirs = dir.File("theirs");
    ASSERT_EQ(mkdir(theirs.c_str(), 0755), 0);
    const std::string inner = theirs + "/inner";
    ASSERT_EQ(mkdir(inner.c_str(), 0700), 0);
    // Not nobody's: the case-user tests remove what nobody owns under /tmp, and found it.
    ASSERT_EQ(chown(theirs.c_str(), 54321, 54321), 0);
    auto swapped = LoadClientSecurity(flags, "unix:" + inner + "/c.sock");
    ASSERT_FALSE(swapped.ok());
    EXPECT_THAT(swapped.status().message(), HasSubstr(theirs + " (above the socket"));
    // Their own folder in a sticky one: whoever made it under /tmp must not be trusted for making it.
    const std::string made = shared + "/made-by-them";
    ASSERT_EQ(mkdir(made.c_str(), 0755), 0);
    ASSERT_EQ(chown(made.c_str(), 54321, 54321), 0);
    EXPECT_FALSE(LoadClientSecurity(flags, "unix:" + made + "/c.sock").ok());

    // A link of theirs to a trusted folder: the connection follows the link,
    // which they could swap for one to their own socket (they did, and had
    // a root agent run their commands). As the path names it, it is judged.
    const std::string link_in_theirs = theirs + "/to-mine";
    ASSERT_EQ(symlink(mine.c_str(), link_in_theirs.c_str()), 0);
    auto through_theirs = LoadClientSecurity(flags, "unix:" + link_in_theirs + "/c.sock");
    ASSERT_FALSE(through_theirs.ok());
    EXPECT_THAT(through_theirs.status().message(), HasSubstr(theirs + " (above the socket"));
    const std::string their_link = shared + "/their-link";  // theirs to swap, in a sticky folder
    ASSERT_EQ(symlink(mine.c_str(), their_link.c_str()), 0);
    ASSERT_EQ(lchown(their_link.c_str(), 54321, 54321), 0);
    EXPECT_FALSE(LoadClientSecurity(flags, "unix:" + their_link + "/c.sock").ok());
    EXPECT_FALSE(LoadClientSecurity(flags, "unix:" + their_link + "/../mine/c.sock").ok()) << "link/.. too";
    const std::string my_link = shared + "/my-link";  // this user's link, which only this user can swap
    ASSERT_EQ(symlink(mine.c_str(), my_link.c_str()), 0);
    EXPECT_TRUE(LoadClientSecurity(flags, "unix:" + my_link + "/c.sock").ok());
  }
  flags.insecure = true;
  EXPECT_TRUE(LoadClientSecurity(flags, "unix:" + shared + "/c.sock").ok());
}

TEST(ClientSecurityTest, TokenComesFromFlagFileThenEnvironmentFileThenEnvironment) {
  testing::TempDir dir;
  const std::string flag_file = dir.Write("flag", "from-flag\n");
  const std::string env_file = dir.Write("env", "  from-env-file\n");
  setenv("PERFGATE_TOKEN", "from-env", 1);
  setenv("PERFGATE_TOKEN_FILE", env_file.c_str(), 1);
  ClientSecurityFlags flags;
  flags.token_file = flag_file;
  flags.insecure = true;
  EXPECT_EQ(LoadClientSecurity(flags, "127.0.0.1:1")->token, "from-flag");
  flags.token_file.clear();
  EXPECT_EQ(LoadClientSecurity(flags, "127.0.0.1:1")->token, "from-env-file");
  unsetenv("PERFGATE_TOKEN_FILE");
  EXPECT_EQ(LoadClientSecurity(flags, "127.0.0.1:1")->token, "from-env");
  unsetenv("PERFGATE_TOKEN");
  EXPECT_EQ(LoadClientSecurity(flags, "127.0.0.1:1")->token, "");
  flags.token_file = dir.Write("empty", "\n");
  auto empty = LoadClientSecurity(flags, "127.0.0.1:1");
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(empty.status().message(), HasSubstr("holds no token"));
}

TEST(ClientSecurityTest, RandomTokensAre256BitsAndDiffer) {
  const std::string a = RandomToken();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_NE(a, RandomToken());
}

}  // namespace
}  // namespace perfgate
