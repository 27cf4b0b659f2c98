// A coordinator whose database reaches a file-size limit (ulimit -f,
// systemd's LimitFSIZE): a real process under prlimit, a real submit that
// outgrows the limit. It must say the write failed and keep serving, not
// die of SIGXFSZ without a word.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "perfgate/v1/gate.grpc.pb.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::Subprocess;

TEST(CoordinatorFileSizeLimitTest, ASubmitPastTheLimitFailsWithAnIoErrorAndTheCoordinatorServesOn) {
  testing::TempDir dir;
  // A fresh database's migrations write about 230 KB of WAL; the suite below
  // writes several MB.
  Subprocess coordinator({"/usr/bin/prlimit", "--fsize=1000000", PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0",
                          "--db", dir.File("perfgate.db")});
  const std::string address = testing::CoordinatorAddress(coordinator);
  ASSERT_FALSE(address.empty()) << coordinator.output();
  auto stub = v1::GateService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));

  v1::SubmitRunRequest big;
  big.mutable_suite()->set_name("big");
  for (int i = 0; i < 6000; ++i) {
    auto* c = big.mutable_suite()->add_cases();
    c->set_name(absl::StrCat("case_with_a_rather_long_name_", i, "_padding_padding_padding"));
    c->add_argv("/bin/true");
    c->add_argv(absl::StrCat("an-argument-to-make-the-row-longer-", i));
  }
  grpc::ClientContext submit_context;
  v1::SubmitRunResponse submitted;
  const grpc::Status refused = stub->SubmitRun(&submit_context, big, &submitted);
  ASSERT_FALSE(refused.ok()) << "the suite fitted under the limit: make it larger";
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("disk I/O error")) << coordinator.output();

  // Still serving: an unknown run is NOT_FOUND, not a dead socket.
  grpc::ClientContext get_context;
  v1::GetRunRequest get;
  get.set_run_id("run-0123456789abcdef0123456789abcdef");
  v1::Run run;
  EXPECT_EQ(stub->GetRun(&get_context, get, &run).error_code(), grpc::StatusCode::NOT_FOUND);
  coordinator.Signal(SIGTERM);
  EXPECT_EQ(coordinator.Wait(30'000), 0) << coordinator.output();
}

}  // namespace
}  // namespace perfgate
