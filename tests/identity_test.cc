// Agent identity with real processes: two `perfgate agent`s given the same
// --id against one `perfgate coordinator`. They used to fence each other in a
// loop (hundreds of registrations a second, a session row each); now the
// second is refused and exits, and a restarted agent takes its dead
// predecessor's id at once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::PerfgateBinary;
using testing::Subprocess;

size_t Occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Leases and sessions far longer than the test: nothing here may be explained by a timeout.
    coordinator_ = std::make_unique<Subprocess>(std::vector<std::string>{
        PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", db_, "--lease-ttl", "120s"});
    address_ = testing::CoordinatorAddress(*coordinator_);
    ASSERT_FALSE(address_.empty()) << coordinator_->output();
  }
  std::unique_ptr<Subprocess> StartAgent(const std::string& id) {
    return std::make_unique<Subprocess>(
        std::vector<std::string>{PerfgateBinary(), "agent", "--coordinator", address_, "--insecure", "--id", id});
  }
  // A one-case gate run; it can pass only if some agent takes the lease from its Work stream.
  testing::CommandResult Gate() {
    const std::string suite = dir_.Write(
        "suite.yaml", "suite: id\ndefaults: {repeats: 1, warmup: 0}\ncases:\n  - name: spin\n    command: [\"" +
                          testing::CaseBinary("spin") + "\", \"1000\"]\n");
    return testing::RunCommand(
        {PerfgateBinary(), "gate", "--coordinator", address_, "--insecure", "--suite", suite, "--no-color"});
  }
  int64_t SessionRows() { return testing::QueryInt(db_, "SELECT COUNT(*) FROM sessions"); }

  testing::TempDir dir_;
  const std::string db_ = dir_.File("perfgate.db");
  std::unique_ptr<Subprocess> coordinator_;
  std::string address_;
};

TEST_F(IdentityTest, SecondLiveAgentWithTheSameIdIsRefusedAndARestartedOneTakesOver) {
  auto first = StartAgent("twin");
  ASSERT_TRUE(first->WaitForLine("registered with", 30'000)) << first->output();
  auto gate = Gate();  // the first agent's Work stream is open: it ran the case
  ASSERT_EQ(gate.exit_code, 0) << gate.output;
  ASSERT_TRUE(first->WaitForLine("finished spin", 30'000)) << first->output();

  auto second = StartAgent("twin");
  EXPECT_EQ(second->Wait(60'000), 2) << second->output();
  EXPECT_THAT(second->output(), HasSubstr("agent id 'twin' is in use by a live agent"));
  EXPECT_THAT(second->output(), HasSubstr("give this agent another --id"));
  EXPECT_THAT(second->output(), Not(HasSubstr("registered with")));
  EXPECT_LE(SessionRows(), 3);

  // The first keeps working: it runs the next case too.
  gate = Gate();
  ASSERT_EQ(gate.exit_code, 0) << gate.output;
  EXPECT_TRUE(first->WaitForLine("finished spin", 30'000)) << first->output();
  EXPECT_EQ(SessionRows(), 1);

  // Killed, its kernel closes its stream: a restarted agent gets the id without waiting for the session TTL.
  first->Signal(SIGKILL);
  first->Wait(30'000);
  EXPECT_THAT(first->output(), Not(HasSubstr("session refused"))) << "it was never fenced";
  EXPECT_EQ(Occurrences(first->output(), "registered with"), 1u);
  auto restarted = StartAgent("twin");
  ASSERT_TRUE(restarted->WaitForLine("registered with", 30'000)) << restarted->output();
  gate = Gate();
  ASSERT_EQ(gate.exit_code, 0) << gate.output;
  EXPECT_TRUE(restarted->WaitForLine("finished spin", 30'000)) << restarted->output();
  EXPECT_EQ(SessionRows(), 1);

  coordinator_->Signal(SIGTERM);
  EXPECT_EQ(coordinator_->Wait(30'000), 0) << coordinator_->output() << " (the coordinator survived)";
}

}  // namespace
}  // namespace perfgate
