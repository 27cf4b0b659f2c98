// Real processes on loopback: a `perfgate coordinator`, two `perfgate agent`s
// and `perfgate gate --coordinator`, checked through the SQLite file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using testing::PerfgateBinary;
using testing::Subprocess;

TEST(MultiProcessTest, CoordinatorAndTwoAgentProcessesRunEveryCaseExactlyOnce) {
  testing::TempDir dir;
  const std::string db = dir.File("perfgate.db");
  // A unix socket in a folder only this user can write: the plaintext address clients trust without --insecure.
  const std::string address = "unix:" + dir.File("coordinator.sock");
  Subprocess coordinator({PerfgateBinary(), "coordinator", "--listen", address, "--db", db});
  ASSERT_TRUE(coordinator.WaitForLine("listening on", 30'000)) << coordinator.output();
  Subprocess agent1({PerfgateBinary(), "agent", "--coordinator", address, "--id", "agent-1"});
  Subprocess agent2({PerfgateBinary(), "agent", "--coordinator", address, "--id", "agent-2"});
  ASSERT_TRUE(agent1.WaitForLine("registered", 30'000)) << agent1.output();
  ASSERT_TRUE(agent2.WaitForLine("registered", 30'000)) << agent2.output();

  std::string suite = "suite: mp\ndefaults: {repeats: 2, warmup: 0}\ncases:\n";
  for (int i = 0; i < 8; ++i) {
    suite +=
        "  - name: spin" + std::to_string(i) + "\n    command: [\"" + testing::CaseBinary("spin") + "\", \"20000\"]\n";
  }
  const std::string suite_path = dir.Write("suite.yaml", suite);
  const std::string json = dir.File("report.json");
  auto gate = testing::RunCommand(
      {PerfgateBinary(), "gate", "--coordinator", address, "--suite", suite_path, "--json", json, "--commit", "c1"});
  ASSERT_EQ(gate.exit_code, 0) << gate.output;
  EXPECT_THAT(gate.output, ::testing::HasSubstr("GATE PASSED (8 cases)"));

  nlohmann::json report = nlohmann::json::parse(std::ifstream(json));
  ASSERT_EQ(report["cases"].size(), 8u);
  std::set<std::string> agents;
  for (const auto& c : report["cases"]) {
    EXPECT_EQ(c["verdict"], "no_baseline");  // ran fine; this suite names no baselines
    EXPECT_EQ(c["outcome"], "ok");
    agents.insert(c["agent_id"].get<std::string>());
  }
  EXPECT_EQ(agents.size(), 2u) << "both agents took work";
  const std::string run_id = report["run_id"];

  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM results WHERE counted = 1 AND run_id = '" + run_id + "'"), 8);
  EXPECT_EQ(testing::QueryInt(
                db, "SELECT COUNT(DISTINCT case_index) FROM results WHERE counted = 1 AND run_id = '" + run_id + "'"),
            8);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM leases JOIN runs ON seq = run_seq WHERE run_id = '" + run_id + "'"), 8);
  EXPECT_EQ(testing::QueryInt(db, "SELECT state FROM runs WHERE run_id = '" + run_id + "'"),
            2 /* RUN_STATE_FINISHED */);

  coordinator.Signal(SIGTERM);
  EXPECT_EQ(coordinator.Wait(30'000), 0) << coordinator.output();
}

TEST(MultiProcessTest, ASecondCoordinatorOnABoundPortFailsAtStart) {
  testing::TempDir dir;
  Subprocess first({PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", dir.File("first.db")});
  const std::string address = testing::CoordinatorAddress(first);
  ASSERT_FALSE(address.empty()) << first.output();
  auto second = testing::RunCommand(
      {PerfgateBinary(), "coordinator", "--listen", address, "--db", dir.File("second.db")}, 60'000);
  EXPECT_EQ(second.exit_code, 3) << second.output;
  EXPECT_THAT(second.output, ::testing::HasSubstr("cannot listen on " + address));
  EXPECT_THAT(second.output, ::testing::HasSubstr("another coordinator?"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("second.db"))) << "failed before opening its store";
  first.Signal(SIGTERM);
  EXPECT_EQ(first.Wait(30'000), 0) << first.output();
}

TEST(MultiProcessTest, InsecureWarnsOnEveryStart) {
  testing::TempDir dir;
  Subprocess coordinator(
      {PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", dir.File("p.db"), "--insecure"});
  ASSERT_FALSE(testing::CoordinatorAddress(coordinator).empty()) << coordinator.output();
  EXPECT_THAT(coordinator.output(), ::testing::HasSubstr("WARNING: --insecure"));
  coordinator.Signal(SIGTERM);
  EXPECT_EQ(coordinator.Wait(30'000), 0) << coordinator.output();
}

// Makes a CA and a server certificate for 127.0.0.1 with the openssl command.
void MakeCertificates(const testing::TempDir& dir) {
  dir.Write("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  const std::string script =
      "cd '" + dir.path() +
      "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=test-ca "
      "-keyout ca.key -out ca.pem && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-subj /CN=server -keyout server.key -out server.csr && openssl x509 -req -in server.csr -CA ca.pem "
      "-CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem";
  ASSERT_EQ(testing::RunCommand({"/bin/sh", "-c", script}).exit_code, 0);
}

TEST(MultiProcessTest, GateAgentAndCoordinatorOverTlsWithTokens) {
  testing::TempDir dir;
  MakeCertificates(dir);
  const std::string agent_token = dir.Write("agent.token", "agent-token-1234\n");
  const std::string submit_token = dir.Write("submit.token", "submit-token-5678\n");
  Subprocess coordinator({PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", dir.File("p.db"),
                          "--tls-cert", dir.File("server.pem"), "--tls-key", dir.File("server.key"),
                          "--agent-token-file", agent_token, "--submit-token-file", submit_token});
  const std::string address = testing::CoordinatorAddress(coordinator);
  ASSERT_FALSE(address.empty()) << coordinator.output();
  EXPECT_THAT(coordinator.output(), ::testing::HasSubstr("TLS, tokens required"));
  Subprocess agent({PerfgateBinary(), "agent", "--coordinator", address, "--id", "tls-agent", "--tls-ca",
                    dir.File("ca.pem"), "--token-file", agent_token});
  ASSERT_TRUE(agent.WaitForLine("registered", 30'000)) << agent.output();

  const std::string suite = dir.Write(
      "suite.yaml", "suite: tls\ndefaults: {repeats: 2, warmup: 0}\ncases:\n  - name: spin\n    command: [\"" +
                        testing::CaseBinary("spin") + "\", \"20000\"]\n");
  const std::vector<std::string> gate = {PerfgateBinary(), "gate", "--coordinator", address,
                                         "--suite",        suite,  "--tls-ca",      dir.File("ca.pem")};
  auto with_agent_token = gate;
  with_agent_token.insert(with_agent_token.end(), {"--token-file", agent_token});
  auto refused = testing::RunCommand(with_agent_token);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output, ::testing::HasSubstr("SubmitRun needs a submitter token"));

  auto with_submit_token = gate;
  with_submit_token.insert(with_submit_token.end(), {"--token-file", submit_token});
  auto passed = testing::RunCommand(with_submit_token);
  EXPECT_EQ(passed.exit_code, 0) << passed.output;
  EXPECT_THAT(passed.output, ::testing::HasSubstr("GATE PASSED (1 case)"));

  coordinator.Signal(SIGTERM);
  EXPECT_EQ(coordinator.Wait(30'000), 0) << coordinator.output();
}

}  // namespace
}  // namespace perfgate
