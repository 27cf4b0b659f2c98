// The perfgate binary as a user meets it: help, bad input, exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::RunCommand;

TEST(CliTest, HelpDescribesEveryCommandAndTheExitCodes) {
  auto top = RunCommand({PerfgateBinary(), "--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"gate", "run", "coordinator", "agent"}) EXPECT_THAT(top.output, HasSubstr(cmd));
  EXPECT_THAT(top.output, HasSubstr("Exit codes: 0 passed; 1 the gate failed on results; 2 bad usage or input"));
  struct Expect {
    const char* cmd;
    const char* flag;
  } expectations[] = {{"gate", "--suite"},         {"gate", "--coordinator"}, {"run", "--repeats"},
                      {"coordinator", "--listen"}, {"coordinator", "--db"},   {"agent", "--coordinator"}};
  for (const auto& e : expectations) {
    auto help = RunCommand({PerfgateBinary(), e.cmd, "--help"});
    EXPECT_EQ(help.exit_code, 0) << e.cmd;
    EXPECT_THAT(help.output, HasSubstr(e.flag)) << e.cmd;
    EXPECT_THAT(help.output, HasSubstr("Exit codes")) << e.cmd;
  }
}

TEST(CliTest, BadUsageExitsTwo) {
  EXPECT_EQ(RunCommand({PerfgateBinary()}).exit_code, 2);
  EXPECT_EQ(RunCommand({PerfgateBinary(), "gate"}).exit_code, 2);  // --suite is required
  EXPECT_EQ(RunCommand({PerfgateBinary(), "frobnicate"}).exit_code, 2);
}

TEST(CliTest, SuiteWithATypoIsRefusedWithFileAndLine) {
  testing::TempDir dir;
  const std::string suite = dir.Write("typo.yaml", "suite: s\ncases:\n  - name: a\n    comand: [true]\n");
  for (auto cmd :
       {std::vector<std::string>{PerfgateBinary(), "gate", "--suite", suite, "--state-dir", dir.File("state")},
        std::vector<std::string>{PerfgateBinary(), "run", suite}}) {
    auto result = RunCommand(cmd);
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_THAT(result.output, HasSubstr(suite + ":4:5: unknown key 'comand' in case 'a'; did you mean 'command'?"));
  }
}

TEST(CliTest, EmbeddedGateRunsTheBundledDemoAndPasses) {
  testing::TempDir dir;
  auto result = RunCommand({PerfgateBinary(), "gate", "--suite", testing::SourceDir() + "/bench_cases/demo.yaml",
                            "--state-dir", dir.File("state")});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("GATE PASSED"));
  EXPECT_THAT(result.output, HasSubstr("spin_2m"));
}

TEST(CliTest, FailingCaseFailsTheGateWithExitOne) {
  testing::TempDir dir;
  const std::string suite = dir.Write("s.yaml",
                                      "suite: s\ndefaults: {repeats: 1, warmup: 0}\ncases:\n"
                                      "  - name: ok\n    command: [/bin/true]\n"
                                      "  - name: broken\n    command: [/bin/false]\n");
  auto result =
      RunCommand({PerfgateBinary(), "gate", "--suite", suite, "--state-dir", dir.File("state"), "--no-color"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_THAT(result.output, HasSubstr("GATE FAILED"));
  EXPECT_THAT(result.output, HasSubstr("error fails the gate: 1 case"));
}

TEST(CliTest, ManualRunWorksWithoutACoordinator) {
  testing::TempDir dir;
  const std::string json = dir.File("run.json");
  auto result = RunCommand({PerfgateBinary(), "run", testing::SourceDir() + "/bench_cases/demo.yaml", "--case",
                            "spin_2m", "--repeats", "3", "--json", json});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("wall_time"));
  EXPECT_THAT(result.output, HasSubstr("peak_rss"));
  auto unknown =
      RunCommand({PerfgateBinary(), "run", testing::SourceDir() + "/bench_cases/demo.yaml", "--case", "nope"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.output, HasSubstr("has no case 'nope'"));
}

TEST(CliTest, GpuSuiteOnAMachineWithoutAGpu) {
  // This test documents the CPU-only path (CI); on a GPU machine the case runs instead.
  auto probe = RunCommand({PerfgateBinary(), "run", testing::SourceDir() + "/bench_cases/gpu.yaml"});
  if (probe.output.find("skipped cuda_add_one") == std::string::npos) GTEST_SKIP() << "this machine has a GPU";
  EXPECT_EQ(probe.exit_code, 0) << "by hand, a case the machine cannot run is skipped, not failed";
  EXPECT_THAT(probe.output, HasSubstr("skipped cuda_add_one: needs a GPU; host has none ("));
  testing::TempDir dir;
  auto gate = RunCommand({PerfgateBinary(), "gate", "--suite", testing::SourceDir() + "/bench_cases/gpu.yaml",
                          "--state-dir", dir.File("state")});
  EXPECT_EQ(gate.exit_code, 1) << gate.output;
  EXPECT_THAT(gate.output, HasSubstr("no capable agent fails the gate: 1 case (cuda_add_one)"));
}

TEST(CliTest, TorchSuiteMeasuresRealPytorchWhereItIsInstalled) {
  auto probe = RunCommand({"/usr/bin/python3", "-c", "import torch"});
  if (probe.exit_code != 0) GTEST_SKIP() << "python3-torch is not installed (scripts/install-torch.sh)";
  testing::TempDir dir;
  const std::string json = dir.File("torch.json");
  auto r = RunCommand({PerfgateBinary(), "run", testing::SourceDir() + "/bench_cases/torch.yaml", "--label", "torch",
                       "--repeats", "2", "--json", json});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"add_one_eager_requires_grad", "torch_function_tensor_like"}) {
    EXPECT_THAT(r.output, HasSubstr(name)) << r.output;
  }
  // Without the label, a machine is not taken to have PyTorch.
  auto unlabelled = RunCommand({PerfgateBinary(), "run", testing::SourceDir() + "/bench_cases/torch.yaml"});
  EXPECT_THAT(unlabelled.output, HasSubstr("skipped add_one: needs label 'torch'"));
}

}  // namespace
}  // namespace perfgate
