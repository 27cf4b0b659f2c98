// `--head-env CASE:NAME=VALUE`: an A/B setting for one case of a suite. Judged
// on callgrind counts, which are deterministic: a busy machine cannot make
// these pass or fail.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::RunCommand;

// Two identical deterministic cases.
std::string TwoSpins(const testing::TempDir& dir) {
  std::string cases;
  for (const char* name : {"spin_a", "spin_b"}) {
    cases += std::string("  - name: ") + name + "\n    command: [\"" + testing::CaseBinary("spin") +
             "\", \"50000\"]\n    instructions: callgrind\n    judge: [instructions_callgrind]\n";
  }
  return dir.Write("two.yaml", "suite: two\ndefaults: {repeats: 2, warmup: 0}\ncases:\n" + cases);
}

testing::CommandResult Gate(const testing::TempDir& dir, std::vector<std::string> more) {
  std::vector<std::string> argv = {PerfgateBinary(), "gate",         "--suite",  TwoSpins(dir),
                                   "--state-dir",    dir.File("state"), "--no-color", "--local-agents",
                                   "1"};
  argv.insert(argv.end(), more.begin(), more.end());
  return RunCommand(argv);
}

TEST(PerCaseAbTest, SlowdownOnOneCasesHeadRegressesThatCaseAndNoOther) {
  testing::TempDir dir;
  const std::string json = dir.File("ab.json");
  auto r = Gate(dir, {"--head-env", "spin_b:PERFGATE_SLOWDOWN_PCT=5", "--json", json});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  nlohmann::json doc = nlohmann::json::parse(std::ifstream(json));
  std::map<std::string, std::string> verdicts;
  for (const auto& c : doc["cases"]) {
    for (const auto& m : c["metrics"]) {
      if (m["metric"] != "instructions_callgrind" || m["variant"] != "head") continue;
      EXPECT_EQ(m["comparison"]["method"], "ab");
      verdicts[c["name"]] = m["verdict"];
    }
  }
  EXPECT_EQ(verdicts["spin_a"], "pass") << r.output;
  EXPECT_EQ(verdicts["spin_b"], "regression") << r.output;
}

TEST(PerCaseAbTest, UnknownCaseIsBadInputNamingTheCases) {
  testing::TempDir dir;
  auto r = Gate(dir, {"--head-env", "spin_c:PERFGATE_SLOWDOWN_PCT=5"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--head-env spin_c:PERFGATE_SLOWDOWN_PCT=5: suite 'two' has no case 'spin_c' "
                                  "(its cases: spin_a, spin_b)"));
  auto empty_name = Gate(dir, {"--base-env", "spin_a:=1"});
  EXPECT_EQ(empty_name.exit_code, 2) << empty_name.output;
  EXPECT_THAT(empty_name.output, HasSubstr("--base-env takes NAME=VALUE or CASE:NAME=VALUE, got 'spin_a:=1'"));
  // A mistyped root failed every case on its side: the gate failed "on results" (exit 1).
  auto no_root = Gate(dir, {"--base-root", dir.File("no-such-build"), "--head-root", dir.path()});
  EXPECT_EQ(no_root.exit_code, 2) << no_root.output;
  EXPECT_THAT(no_root.output, HasSubstr("--base-root " + dir.File("no-such-build") + ": there is no such folder"));
}

}  // namespace
}  // namespace perfgate
