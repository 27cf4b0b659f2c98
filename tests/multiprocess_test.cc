// Real processes on loopback: a `perfgate coordinator`, two `perfgate agent`s
// and `perfgate gate --coordinator`, checked through the SQLite file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

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
  Subprocess coordinator({PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", db});
  const std::string address = testing::CoordinatorAddress(coordinator);
  ASSERT_FALSE(address.empty()) << coordinator.output();
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
    EXPECT_EQ(c["verdict"], "no baseline");  // ran fine; this suite names no baselines
    EXPECT_EQ(c["outcome"], "ok");
    agents.insert(c["agent_id"].get<std::string>());
  }
  EXPECT_EQ(agents.size(), 2u) << "both agents took work";
  const std::string run_id = report["run_id"];

  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM results WHERE counted = 1 AND run_id = '" + run_id + "'"), 8);
  EXPECT_EQ(testing::QueryInt(
                db, "SELECT COUNT(DISTINCT case_index) FROM results WHERE counted = 1 AND run_id = '" + run_id + "'"),
            8);
  EXPECT_EQ(testing::QueryInt(db, "SELECT COUNT(*) FROM leases WHERE run_id = '" + run_id + "'"), 8);
  EXPECT_EQ(testing::QueryInt(db, "SELECT state FROM runs WHERE run_id = '" + run_id + "'"),
            2 /* RUN_STATE_FINISHED */);

  coordinator.Signal(SIGTERM);
  EXPECT_EQ(coordinator.Wait(30'000), 0) << coordinator.output();
}

}  // namespace
}  // namespace perfgate
