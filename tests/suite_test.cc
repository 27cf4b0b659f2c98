#include "core/suite.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/policy.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<v1::Suite> Parse(const std::string& text) { return ParseSuite(text, "s.yaml", "/suites"); }

TEST(SuiteTest, ParsesCasesWithDefaultsAndOverrides) {
  auto suite = Parse(R"(
suite: demo
defaults:
  repeats: 7
  timeout: 2s
cases:
  - name: a
    command: [./bin/a, "--x", "${SUITE_DIR}/data"]
    env: {MODE: fast}
  - name: b
    command: [true]
    repeats: 2
    warmup: 0
    results: pytorch
    results_from: file
    instructions: auto
    output_limit: 64KiB
    requires: {device: gpu, min_gpu_memory: 16GiB, min_compute_capability: "8.0", labels: [a100]}
)");
  ASSERT_TRUE(suite.ok()) << suite.status();
  EXPECT_EQ(suite->name(), "demo");
  ASSERT_EQ(suite->cases_size(), 2);
  const auto& a = suite->cases(0);
  EXPECT_EQ(a.argv(0), "/suites/bin/a");  // relative program anchored at the suite's folder
  EXPECT_EQ(a.argv(2), "/suites/data");
  EXPECT_EQ(a.env().at("MODE"), "fast");
  EXPECT_EQ(a.repeats(), 7u);
  EXPECT_EQ(a.timeout_ms(), 2000u);
  EXPECT_EQ(a.warmup(), kDefaultWarmup);
  const auto& b = suite->cases(1);
  EXPECT_EQ(b.argv(0), "true");  // bare names are looked up in PATH on the agent
  EXPECT_EQ(b.repeats(), 2u);
  EXPECT_EQ(b.warmup(), 0u);
  EXPECT_EQ(b.result_format(), v1::RESULT_FORMAT_PYTORCH_CSV);
  EXPECT_EQ(b.result_source(), v1::RESULT_SOURCE_FILE);
  EXPECT_EQ(b.instructions(), v1::INSTRUCTION_COUNTER_AUTO);
  EXPECT_EQ(b.output_limit_bytes(), 65536u);
  EXPECT_EQ(b.requirements().device(), v1::Requirements::DEVICE_GPU);
  EXPECT_EQ(b.requirements().min_gpu_memory_bytes(), 16ull << 30);
  EXPECT_EQ(b.requirements().min_compute_capability(), 80u);
  EXPECT_EQ(b.requirements().labels(0), "a100");
}

TEST(SuiteTest, TypoInKeyNamesFileLineAndSuggestion) {
  auto suite = Parse("suite: s\ncases:\n  - name: a\n    comand: [true]\n");
  ASSERT_FALSE(suite.ok());
  EXPECT_THAT(suite.status().message(), HasSubstr("s.yaml:4:5: unknown key 'comand' in case 'a'"));
  EXPECT_THAT(suite.status().message(), HasSubstr("did you mean 'command'?"));
}

TEST(SuiteTest, WrongTypesAndValuesAreErrorsWithLines) {
  struct Bad {
    std::string text;
    std::string expected;
  } cases[] = {
      {"suite: s\ncases:\n  - name: a\n    command: true\n", "s.yaml:4:14: command must be a non-empty list"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    repeats: 0\n",
       "s.yaml:5:14: repeats must be a whole number >= 1"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    repeats: many\n", "repeats must be a whole number"},
      {"suite: s\ncases:\n  - name: a\n    command: [/bin/false]\n    command: [/bin/true]\n",
       "s.yaml:5:5: 'command' is given twice (first on line 4); which one is meant? Keep one"},
      {"suite: s\nsuite: t\ncases:\n  - name: a\n    command: [x]\n", "s.yaml:2:1: 'suite' is given twice"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    env: {A: 1, A: 2}\n", "s.yaml:5:17: 'A' is given twice"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    requires: {labels: [gpu=a100]}\n",
       "s.yaml:5:25: requires.labels: 'gpu=a100': an agent's label must be 1 to 128"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    repeats: 100001\n",
       "s.yaml:5:14: repeats must be at most 100000 (the samples one result may carry), got 100001"},
      // Ten digits and more read as "not a whole number"; a warm-up had no bound at all.
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    repeats: 1000000000\n",
       "s.yaml:5:14: repeats must be at most 100000 (the samples one result may carry), got 1000000000"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    repeats: 99999999999999999999999\n",
       "s.yaml:5:14: repeats must be at most 100000"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    warmup: 999999999\n",
       "s.yaml:5:13: warmup must be at most 1000, got 999999999"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    repeats: 0000000000000\n",
       "s.yaml:5:14: repeats must be a whole number >= 1, got '0000000000000'"},
      {"suite: s\ngate: {confirm: 11}\ncases:\n  - name: a\n    command: [x]\n",
       "s.yaml:2:17: gate.confirm must be at most 10, got 11"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    timeout: soon\n",
       "s.yaml:5:14: timeout must be a duration"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    results: csv\n",
       "results must be one of none, pytorch, gbench"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n  - name: a\n    command: [y]\n",
       "s.yaml:5:11: duplicate case name 'a'"},
      {"suite: s\ncases:\n  - name: a\n", "s.yaml:3:5: case 'a' has no 'command'"},
      {"cases:\n  - name: a\n    command: [x]\n", "missing key 'suite'"},
      {"suite: s\ncases: []\n", "cases must be a non-empty list"},
      {"suite: s\ncases:\n  - name: a b\n    command: [x]\n", "may use only letters"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    requires: {device: tpu}\n",
       "requires.device must be one of any, cpu, gpu"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    requires: {gpus: 2}\n", "unknown key 'gpus' in requires"},
      {"suite: s\ncases:\n  - name: a\n    command: [x\n", "s.yaml:5:1: not valid YAML"},
      {"suite: s\ntypo: 1\ncases:\n  - name: a\n    command: [x]\n",
       "s.yaml:2:1: unknown key 'typo' in the suite file"},
  };
  for (const auto& bad : cases) {
    auto suite = Parse(bad.text);
    ASSERT_FALSE(suite.ok()) << bad.text;
    EXPECT_THAT(std::string(suite.status().message()), HasSubstr(bad.expected)) << bad.text;
  }
}

// A judge: entry perfgate does not know the direction of could never be
// judged: a misspelt name judged nothing, and the gate passed.
TEST(SuiteTest, AJudgeEntryOfUnknownDirectionIsAnErrorWithASuggestion) {
  auto typo = Parse(
      "suite: s\ncases:\n  - name: a\n    command: [x]\n    results: pytorch\n"
      "    judge: [compile_time_instructions_count]\n");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.status().message(),
              HasSubstr("s.yaml:6:13: judge: 'compile_time_instructions_count' is not a metric whose direction "
                        "perfgate knows; did you mean 'compile_time_instruction_count'?"));
  auto undeclared = Parse("suite: s\ndefaults: {judge: [gpu_time_s]}\ncases:\n  - name: a\n    command: [x]\n");
  ASSERT_FALSE(undeclared.ok());
  EXPECT_THAT(undeclared.status().message(),
              HasSubstr("Declare it under metrics: (gpu_time_s: {better: lower|higher})"));
  EXPECT_TRUE(Parse("suite: s\nmetrics: {gpu_time_s: {better: lower, unit: s}}\ndefaults: {judge: [gpu_time_s]}\n"
                    "cases:\n  - name: a\n    command: [x]\n")
                  .ok());
}

TEST(SuiteTest, GateSectionAndJudgedMetrics) {
  auto suite = Parse(R"(
suite: s
gate:
  fail_on: [regression, error]
  expected: {lab: baselines/lab.csv, "*": /abs/any.csv}
  main_branch: trunk
  history: {min_runs: 3, runs: 10, k: 3.5, floor: 2%, time_floor: 0%, max_age: 14d}
  ab: {alpha: 0.01, min_effect: 0.5%}
  confirm: 2
cases:
  - name: a
    command: [x]
    judge: [instructions, wall_time]
)");
  ASSERT_TRUE(suite.ok()) << suite.status();
  const auto& g = suite->gate();
  EXPECT_THAT(g.fail_on(), ::testing::ElementsAre("regression", "error"));
  EXPECT_EQ(g.expected().at("lab"), "/suites/baselines/lab.csv");
  EXPECT_EQ(g.expected().at("*"), "/abs/any.csv");
  EXPECT_EQ(g.main_branch(), "trunk");
  EXPECT_EQ(g.history_min_runs(), 3u);
  EXPECT_EQ(g.history_runs(), 10u);
  EXPECT_DOUBLE_EQ(g.history_k(), 3.5);
  EXPECT_DOUBLE_EQ(g.history_floor(), 0.02);
  ASSERT_TRUE(g.has_history_time_floor());
  EXPECT_DOUBLE_EQ(g.history_time_floor(), 0);
  EXPECT_EQ(g.history_max_age_ms(), 14ull * 86'400'000);
  EXPECT_DOUBLE_EQ(g.ab_alpha(), 0.01);
  EXPECT_DOUBLE_EQ(g.ab_min_effect(), 0.005);
  EXPECT_EQ(g.confirm(), 2u);
  EXPECT_THAT(suite->cases(0).judged_metrics(), ::testing::ElementsAre("instructions", "wall_time"));

  auto bad = Parse("suite: s\ngate: {fail_on: [regresion]}\ncases:\n  - name: a\n    command: [x]\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("s.yaml:2:18: gate.fail_on: unknown verdict 'regresion'"));
  bad = Parse("suite: s\ngate: {history: {runs: 10000000}}\ncases:\n  - name: a\n    command: [x]\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("gate.history.runs must be at most 1000, got 10000000"));
  bad = Parse("suite: s\ngate: {history: {floor: lots}}\ncases:\n  - name: a\n    command: [x]\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("gate.history.floor must be a fraction like 0.01 or a percentage like 1%"));

  // A window smaller than the runs it needs could never judge: every history
  // comparison would be "no baseline", and the gate would pass forever.
  bad = Parse("suite: s\ngate: {history: {runs: 3}}\ncases:\n  - name: a\n    command: [x]\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("s.yaml:2:24: gate.history.runs (3) is below min_runs (5)"));

  // A floor of 0 is a floor of 0, not "use the default" (as --history-floor 0 is).
  auto no_floor = Parse("suite: s\ngate: {history: {floor: 0}}\ncases:\n  - name: a\n    command: [x]\n");
  ASSERT_TRUE(no_floor.ok()) << no_floor.status();
  EXPECT_EQ(PolicyForSuite(*no_floor).compare.history_floor, 0);
  EXPECT_EQ(PolicyForSuite(*Parse("suite: s\ncases:\n  - name: a\n    command: [x]\n")).compare.history_floor, 0.01);
}

TEST(SuiteTest, LoadsFromFileAnchoredAtItsFolder) {
  testing::TempDir dir;
  std::string path = dir.Write("suite.yaml", "suite: s\ncases:\n  - name: a\n    command: [bin/tool]\n    cwd: work\n");
  auto suite = LoadSuiteFile(path);
  ASSERT_TRUE(suite.ok()) << suite.status();
  EXPECT_EQ(suite->cases(0).argv(0), dir.path() + "/bin/tool");
  EXPECT_EQ(suite->cases(0).cwd(), dir.path() + "/work");
  EXPECT_EQ(suite->source(), path);
}

TEST(SuiteTest, MissingFileSaysSo) {
  auto suite = LoadSuiteFile("/nonexistent/suite.yaml");
  ASSERT_FALSE(suite.ok());
  EXPECT_THAT(std::string(suite.status().message()), HasSubstr("/nonexistent/suite.yaml: cannot open suite file"));
}

TEST(SuiteTest, BundledSuitesLoad) {
  for (const char* name : {"demo", "gpu", "torch"}) {
    auto suite = LoadSuiteFile(testing::SourceDir() + "/bench_cases/" + name + ".yaml");
    ASSERT_TRUE(suite.ok()) << suite.status();
    EXPECT_GE(suite->cases_size(), 1) << name;
  }
}

}  // namespace
}  // namespace perfgate
