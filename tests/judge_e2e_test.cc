// The whole judging path through the real binary: history built by
// main-branch gate runs in one state folder, confirmation, A/B by hand,
// expected files, baseline updates and the report files CI reads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::RunCommand;

// A deterministic case whose work is set by $ROUNDS in the agent's environment.
std::string SpinSuite(const testing::TempDir& dir, const std::string& extra = "") {
  return dir.Write("suite.yaml", "suite: judged\n" + extra +
                                     "defaults: {repeats: 2, warmup: 0}\ncases:\n"
                                     "  - name: spin\n    command: [\"" +
                                     testing::CaseBinary("spin") +
                                     "\", \"${ROUNDS}\"]\n    instructions: callgrind\n"
                                     "    judge: [instructions_callgrind]\n");  // timings: shown, not gated
}

testing::CommandResult Gate(const testing::TempDir& dir, const std::string& suite, const std::string& rounds,
                            const std::string& branch, std::vector<std::string> more = {}) {
  std::vector<std::string> argv = {
      "/usr/bin/env",    "ROUNDS=" + rounds, PerfgateBinary(), "gate",       "--suite",        suite, "--state-dir",
      dir.File("state"), "--branch",         branch,           "--no-color", "--local-agents", "1"};
  argv.insert(argv.end(), more.begin(), more.end());
  return RunCommand(argv);
}

TEST(JudgeE2eTest, HistoryOfTheMainBranchCatchesARegressionAndConfirmsIt) {
  testing::TempDir dir;
  const std::string suite = SpinSuite(dir);
  // No history yet: nothing to compare with, the gate warns and passes.
  auto first = Gate(dir, suite, "50000", "main");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_THAT(first.output, HasSubstr("warning: no baseline for 1 case (spin)"));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(Gate(dir, suite, "50000", "main").exit_code, 0);

  // Five main-branch runs: a PR doing the same work passes against them ...
  auto same = Gate(dir, suite, "50000", "pr-1");
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_THAT(same.output, HasSubstr("spin  pass"));
  // ... and one doing 20% more work fails, confirmed by a re-measurement.
  const std::string junit = dir.File("junit.xml"), md = dir.File("report.md");
  auto slower = Gate(dir, suite, "60000", "pr-2", {"--junit", junit, "--markdown", md});
  EXPECT_EQ(slower.exit_code, 1) << slower.output;
  EXPECT_THAT(slower.output, HasSubstr("re-measuring 1 case(s) with a suspected regression: spin"));
  EXPECT_THAT(slower.output, ::testing::ContainsRegex("instructions_callgrind [0-9.]+ k instr \\(\\+[0-9.]+%\\) vs main-branch median"));
  EXPECT_THAT(slower.output, HasSubstr("of 5 runs"));
  EXPECT_THAT(slower.output, HasSubstr("confirmed by re-measurement"));
  EXPECT_THAT(slower.output, HasSubstr("regression fails the gate: 1 case (spin)"));
  std::stringstream xml;
  xml << std::ifstream(junit).rdbuf();
  EXPECT_THAT(xml.str(), HasSubstr("<failure type=\"regression\""));
  std::stringstream markdown;
  markdown << std::ifstream(md).rdbuf();
  EXPECT_THAT(markdown.str(), HasSubstr("### ❌ perfgate failed: 1 regression"));
  // The PR runs never became history: the main-branch median is unchanged.
  auto again = Gate(dir, suite, "50000", "pr-3", {"--metrics"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_THAT(again.output, HasSubstr("of 5 runs"));
}

TEST(JudgeE2eTest, ExpectedFileFromTheSuiteAndBaselineUpdate) {
  testing::TempDir dir;
  const std::string expected = dir.Write("expected.csv", "spin,instructions_callgrind,1000,0.05\n");
  const std::string suite = SpinSuite(dir, "gate: {expected: {local: expected.csv}, confirm: 0}\n");
  const std::string json = dir.File("report.json");
  // 1000 is far below what spin does: a regression against the expected file.
  auto r = Gate(dir, suite, "50000", "pr", {"--json", json});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("vs expected 1.00 k instr (margin 5.00%)"));

  auto update = RunCommand({PerfgateBinary(), "baseline", "update", "--report", json, "--expected", expected});
  ASSERT_EQ(update.exit_code, 0) << update.output;
  EXPECT_THAT(update.output, HasSubstr("changed spin,instructions_callgrind: 1000 -> "));
  std::stringstream text;
  text << std::ifstream(expected).rdbuf();
  EXPECT_THAT(text.str(), ::testing::MatchesRegex("spin,instructions_callgrind,[0-9]{4}0+,0.05\r\n\r\n\r\n\r\n"));

  // Against the updated file the same work passes, and a no-change update changes nothing.
  auto pass = Gate(dir, suite, "50000", "pr", {"--json", json});
  EXPECT_EQ(pass.exit_code, 0) << pass.output;
  auto noop = RunCommand({PerfgateBinary(), "baseline", "update", "--report", json, "--expected", expected});
  EXPECT_THAT(noop.output, HasSubstr("0 changed, 0 added"));
}

TEST(JudgeE2eTest, BadBaselineFileIsBadInputNamingTheLine) {
  testing::TempDir dir;
  const std::string bad =
      dir.Write("bad.csv", "spin,instructions_callgrind,1000,0.05\n\nspin,instructions_callgrind,9,0.1\n");
  auto r = Gate(dir, SpinSuite(dir), "50000", "pr", {"--baseline", bad});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr(bad + ":3: duplicate row for spin,instructions_callgrind (first on line 1)"));
}

// A case reporting `first` on its first run and `later` on every run after
// (a state file beside it), judged against an expected 1000 by `perfgate run`.
testing::CommandResult RunFirstThenLater(const testing::TempDir& dir, const std::string& first,
                                         const std::string& later, std::vector<std::string> more = {}) {
  const std::string state = dir.File("ran-once"),
                    expected = dir.Write("expected.csv", "b,instruction_count,1000,0.05\n");
  const std::string script = "if [ -e " + state + " ]; then v=" + later + "; else : > " + state + "; v=" + first +
                             "; fi; echo b,instruction_count,$$v > $$PERFGATE_RESULT_FILE";
  const std::string suite = dir.Write("once.yaml",
                                      "suite: once\ndefaults: {repeats: 1, warmup: 0}\ncases:\n"
                                      "  - name: once\n    command: [\"/bin/sh\", \"-c\", \"" +
                                          script + "\"]\n    results: pytorch\n    results_from: file\n");
  std::vector<std::string> argv = {PerfgateBinary(), "run", suite, "--baseline", expected, "--no-color"};
  argv.insert(argv.end(), more.begin(), more.end());
  return RunCommand(argv);
}

// By hand as in the gate: one unlucky measurement is re-measured before it
// fails the run. Before, `perfgate run` failed on it at once.
TEST(JudgeE2eTest, RunByHandReMeasuresASuspectedRegressionAndClearsIt) {
  testing::TempDir dir;
  const std::string json = dir.File("r.json");
  auto r = RunFirstThenLater(dir, "2000", "1000", {"--json", json});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("perfgate run: re-measuring 1 case(s) with a suspected regression: once"));
  nlohmann::json doc = nlohmann::json::parse(std::ifstream(json));
  bool judged = false;
  for (const auto& metric : doc["cases"][0]["metrics"]) {
    if (metric["metric"] != "instruction_count") continue;
    judged = true;
    EXPECT_EQ(metric["verdict"], "pass") << r.output;
    EXPECT_THAT(metric["note"].get<std::string>(), HasSubstr("not confirmed")) << r.output;
  }
  EXPECT_TRUE(judged) << r.output;
}

TEST(JudgeE2eTest, RunByHandFailsARegressionEveryRoundConfirms) {
  testing::TempDir dir;
  auto r = RunFirstThenLater(dir, "2000", "2000", {"--confirm", "2"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("confirmed by re-measurement"));
  const std::string line = "re-measuring 1 case(s)";
  const size_t once = r.output.find(line);
  ASSERT_NE(once, std::string::npos) << r.output;
  EXPECT_NE(r.output.find(line, once + 1), std::string::npos) << "two rounds: " << r.output;
}

TEST(JudgeE2eTest, RunByHandWithConfirmZeroFailsAtOnce) {
  testing::TempDir dir;
  auto r = RunFirstThenLater(dir, "2000", "1000", {"--confirm", "0"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("re-measuring")));
}

// Judged on the instruction count, which is deterministic: a busy machine
// cannot make this pass or fail (timing rates belong in bench/).
TEST(JudgeE2eTest, ManualAbRunInterleavesVariantsAndFindsTheSlowerHead) {
  testing::TempDir dir;
  const std::string suite = dir.Write(
      "ab.yaml", "suite: ab\ndefaults: {repeats: 10, warmup: 1}\ncases:\n  - name: spin\n    command: [\"" +
                     testing::CaseBinary("spin") +
                     "\", \"${ROUNDS}\"]\n    instructions: callgrind\n    judge: [instructions_callgrind]\n");
  const std::string json = dir.File("ab.json");
  auto r = RunCommand({PerfgateBinary(), "run", suite, "--base-env", "ROUNDS=50000", "--head-env", "ROUNDS=60000",
                       "--json", json, "--no-color"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("vs base median"));
  nlohmann::json doc = nlohmann::json::parse(std::ifstream(json));
  bool judged = false;
  for (const auto& m : doc["cases"][0]["metrics"]) {
    if (m["metric"] == "wall_time") {
      EXPECT_FALSE(m.contains("comparison")) << "not in judge:, shown only";
    }
    if (m["metric"] != "instructions_callgrind") continue;
    judged = true;
    EXPECT_EQ(m["variant"], "head");
    EXPECT_EQ(m["verdict"], "regression") << r.output;
    EXPECT_EQ(m["comparison"]["method"], "ab");
    EXPECT_EQ(m["comparison"]["p_value"].get<double>(), 0) << "identical counts on each side: no rank test needed";
    // 10000 more rounds of about 10 instructions on top of the base's total.
    const double change = m["comparison"]["change"].get<double>();
    EXPECT_GT(change, 0.05) << r.output;
    EXPECT_LT(change, 0.2) << r.output;
  }
  EXPECT_TRUE(judged);
  // Samples alternate base/head in ABBA order.
  const auto& samples = doc["cases"][0]["raw_samples"];
  ASSERT_GE(samples.size(), 20u);
  EXPECT_EQ(samples[0]["variant"], "base");
  EXPECT_EQ(samples[1]["variant"], "head");
  EXPECT_EQ(samples[2]["variant"], "head");
  EXPECT_EQ(samples[3]["variant"], "base");
}

TEST(JudgeE2eTest, AnExpectedRowOfAnUndeclaredRateIsAnErrorAndADeclaredOneIsJudged) {
  // A case-reported metric perfgate does not know: its direction is never
  // guessed from the name, and a row asking to gate it cannot pass
  // whatever the change. Declared under metrics:, it is judged that way.
  testing::TempDir dir;
  const std::string result = dir.Write("result.csv", "b,elem_rate,500\n");
  const std::string expected = dir.Write("expected.csv", "b,elem_rate,1000,0.1\n");
  auto suite = [&](const std::string& metrics) {
    return dir.Write("rate.yaml", "suite: rate\n" + metrics +
                                      "defaults: {repeats: 1, warmup: 0}\ncases:\n  - name: rate\n"
                                      "    command: [\"/bin/cp\", \"" + result +
                                      "\", \"${PERFGATE_RESULT_FILE}\"]\n"
                                      "    results: pytorch\n    results_from: file\n");
  };
  auto undeclared = RunCommand({PerfgateBinary(), "run", suite(""), "--baseline", expected, "--no-color"});
  EXPECT_EQ(undeclared.exit_code, 1) << undeclared.output;
  EXPECT_THAT(undeclared.output,
              HasSubstr("the expected file has a row for elem_rate (line 1) but its direction is unknown: declare it "
                        "under metrics: (elem_rate: {better: lower|higher})"));
  // Half the expected rate: with `better: higher` that is a regression.
  auto declared = RunCommand({PerfgateBinary(), "run", suite("metrics: {elem_rate: {better: higher, unit: 1/s}}\n"),
                              "--baseline", expected, "--no-color"});
  EXPECT_EQ(declared.exit_code, 1) << declared.output;
  EXPECT_THAT(declared.output, HasSubstr("elem_rate"));
  EXPECT_THAT(declared.output, HasSubstr("elem_rate 500/s (-50.00%) vs expected 1.00 k/s"));
}

}  // namespace
}  // namespace perfgate
