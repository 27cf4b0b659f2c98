// The perfgate binary as a user meets it: help, bad input, exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
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
    EXPECT_THAT(help.output, HasSubstr(std::string("Usage: perfgate ") + e.cmd + " [OPTIONS]")) << e.cmd;
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

// Port 1 refuses connections: the gate says so (exit 3, naming the address)
// after its short connect wait, not after the 30 s submit deadline.
TEST(CliTest, UnreachableCoordinatorIsAnInfrastructureFailureNamingTheAddress) {
  auto r = RunCommand({PerfgateBinary(), "gate", "--suite", testing::SourceDir() + "/bench_cases/demo.yaml",
                       "--coordinator", "127.0.0.1:1", "--insecure", "--no-color"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_THAT(r.output, HasSubstr("coordinator 127.0.0.1:1 unreachable: no connection within 5 s"));
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
  EXPECT_THAT(unknown.output, HasSubstr("has no case 'nope'; its cases: spin_2m, alloc_64mib, "));
}

// A run killed mid-case (SIGKILL) leaves its case's scratch folder; the
// next run by hand removes it, as an agent's start does for agents.
TEST(CliTest, AKilledRunsScratchFolderIsRemovedByTheNextRun) {
  testing::TempDir tmp;
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_EQ(waitpid(dead, nullptr, 0), dead);
  const std::string left = tmp.File("perfgate-case-" + std::to_string(dead) + "-AbCdEf");
  std::filesystem::create_directories(left + "/deep");
  const std::string live = tmp.File("perfgate-case-" + std::to_string(getpid()) + "-AbCdEf");  // a running agent's
  std::filesystem::create_directories(live);
  const std::string others = tmp.File("perfgate-case-" + std::to_string(dead) + "-XyZxYz");  // named so by another user
  std::filesystem::create_directories(others);
  const bool root = geteuid() == 0;  // only root can give a folder to another user
  if (root) ASSERT_EQ(chown(others.c_str(), 65534, 65534), 0);
  auto result = RunCommand({"/usr/bin/env", "TMPDIR=" + tmp.path(), PerfgateBinary(), "run", "--repeats", "1",
                            "--warmup", "0", "--", "/bin/true"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_FALSE(std::filesystem::exists(left));
  EXPECT_TRUE(std::filesystem::exists(live));
  if (root) EXPECT_TRUE(std::filesystem::exists(others)) << "not this user's";
}

TEST(CliTest, GpuSuiteOnAMachineWithoutAGpu) {
  // This test documents the CPU-only path (CI); on a GPU machine the case runs instead.
  auto probe = RunCommand({PerfgateBinary(), "run", testing::SourceDir() + "/bench_cases/gpu.yaml"});
  if (probe.output.find("skipped cuda_add_one") == std::string::npos) GTEST_SKIP() << "this machine has a GPU";
  EXPECT_EQ(probe.exit_code, 0) << "by hand, a case the machine cannot run is skipped, not failed";
  EXPECT_THAT(probe.output, HasSubstr("skipped cuda_add_one: needs a GPU; host has none ("));
  EXPECT_THAT(probe.output, HasSubstr("GATE PASSED (0 of 2 cases ran)")) << "not '(2 cases)', as if measured";
  testing::TempDir dir;
  auto gate = RunCommand({PerfgateBinary(), "gate", "--suite", testing::SourceDir() + "/bench_cases/gpu.yaml",
                          "--state-dir", dir.File("state")});
  EXPECT_EQ(gate.exit_code, 1) << gate.output;
  EXPECT_THAT(gate.output, HasSubstr("no capable agent fails the gate: 2 cases (cuda_add_one, cuda_bandwidth)"));
}

TEST(CliTest, TorchSuiteMeasuresRealPytorchWhereItIsInstalled) {
  auto probe = RunCommand({"/usr/bin/python3", "-c", "import torch"});
  if (probe.exit_code != 0) GTEST_SKIP() << "python3-torch is not installed (scripts/install-torch.sh)";
  testing::TempDir dir;
  const std::string json = dir.File("torch.json");
  // Timed rows are judged against the suite's expected times (a 100% margin), which a loaded machine
  // overshoots: only what does not depend on the machine's load fails this run. Instruction counts
  // (callgrind) must still match theirs, within 2%.
  auto r = RunCommand({PerfgateBinary(), "run", testing::SourceDir() + "/bench_cases/torch.yaml", "--label", "torch",
                       "--repeats", "2", "--json", json, "--fail-on", "error,missing_result,no_capable_agent"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"add_one_eager_requires_grad", "add_one_jit_script_inference_mode"}) {
    EXPECT_THAT(r.output, HasSubstr(name)) << r.output;
  }
  EXPECT_THAT(r.output, HasSubstr("instruction_count")) << r.output;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("regression") != std::string::npos) {
      EXPECT_THAT(line, Not(HasSubstr("instruction_count")));
    }
  }
  // Without the label, a machine is not taken to have PyTorch.
  auto unlabelled = RunCommand({PerfgateBinary(), "run", testing::SourceDir() + "/bench_cases/torch.yaml"});
  EXPECT_THAT(unlabelled.output, HasSubstr("skipped add_one: needs label 'torch'"));
}

// The data files come from tests/data/baseline_update_reference.py, which
// restates PyTorch's check_results.py for the test.
std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A perfgate JSON report with one case per result line "benchmark,metric,value".
std::string ReportOf(const std::string& results_csv, const std::string& skip = "") {
  nlohmann::json cases = nlohmann::json::array();
  std::istringstream in(results_csv);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || (!skip.empty() && line.starts_with(skip))) continue;
    const size_t a = line.find(','), b = line.rfind(',');
    const std::string benchmark = line.substr(0, a);
    cases.push_back({{"name", benchmark},
                     {"ran", true},
                     {"pool", "local"},
                     {"metrics",
                      {{{"benchmark", benchmark},
                        {"metric", line.substr(a + 1, b - a - 1)},
                        {"variant", ""},
                        {"n", 1},
                        {"median", std::stod(line.substr(b + 1))}}}}});
  }
  return nlohmann::json{{"schema_version", 1}, {"cases", cases}}.dump();
}

TEST(CliTest, BaselineUpdateWritesWhatCheckResultsWrites) {
  testing::TempDir dir;
  const std::string data = testing::SourceDir() + "/tests/data/";
  const std::string expected = dir.Write("expected.csv", ReadFile(data + "baseline_update_in.csv"));
  const std::string results = ReadFile(data + "baseline_update_results.csv");
  const std::string report = dir.Write("report.json", ReportOf(results));
  auto update = RunCommand({PerfgateBinary(), "baseline", "update", "--report", report, "--expected", expected,
                            "--output", dir.File("new.csv")});
  EXPECT_EQ(update.exit_code, 0) << update.output;
  EXPECT_EQ(ReadFile(dir.File("new.csv")), ReadFile(data + "baseline_update_out.csv"));
  EXPECT_THAT(update.output,
              HasSubstr("changed add_loop_eager,compile_time_instruction_count: 3066000000 -> 3123000000"));

  // A row without a result stops the update, as it stops check_results.py: nothing is written.
  const std::string partial = dir.Write("partial.json", ReportOf(results, "symint_sum,"));
  auto stopped = RunCommand({PerfgateBinary(), "baseline", "update", "--report", partial, "--expected", expected,
                             "--output", dir.File("partial.csv")});
  EXPECT_EQ(stopped.exit_code, 1) << stopped.output;
  EXPECT_THAT(stopped.output, HasSubstr("has no result for 1 row of " + expected +
                                        ": symint_sum,compile_time_instruction_count (line 9)"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("partial.csv")));
  auto kept = RunCommand({PerfgateBinary(), "baseline", "update", "--report", partial, "--expected", expected,
                          "--output", dir.File("partial.csv"), "--keep-missing"});
  EXPECT_EQ(kept.exit_code, 0) << kept.output;
  EXPECT_THAT(ReadFile(dir.File("partial.csv")),
              HasSubstr("symint_sum,compile_time_instruction_count,3324000000,0.003\r\n"));

  // The same result twice is ambiguous (PyTorch asserts on it).
  const std::string twice = dir.Write("twice.json", ReportOf(results + results));
  auto duplicate = RunCommand({PerfgateBinary(), "baseline", "update", "--report", twice, "--expected", expected,
                               "--output", dir.File("twice.csv")});
  EXPECT_EQ(duplicate.exit_code, 2) << duplicate.output;
  EXPECT_THAT(duplicate.output, HasSubstr("add_loop_eager,compile_time_instruction_count is reported twice"));
  auto nan_margin = RunCommand({PerfgateBinary(), "baseline", "update", "--report", report, "--expected", expected,
                                "--output", dir.File("nan.csv"), "--new-margin", "nan"});
  EXPECT_EQ(nan_margin.exit_code, 2) << nan_margin.output;

  // A report of another schema is not read as if it were this one.
  nlohmann::json other = nlohmann::json::parse(ReadFile(report));
  other["schema_version"] = 2;
  const std::string v2 = dir.Write("v2.json", other.dump());
  auto refused = RunCommand({PerfgateBinary(), "baseline", "update", "--report", v2, "--expected", expected,
                             "--output", dir.File("v2.csv")});
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("v2.json: a report of schema_version 2; this perfgate reads version 1"));

  // A name an expected file cannot hold: its row would read back as another's ("BM_sort") or as none ("").
  for (const char* name : {"BM_sort ", ""}) {
    const std::string odd = dir.Write("odd.json", ReportOf(absl::StrCat(name, ",real_time,0.001\n")));
    auto odd_update = RunCommand({PerfgateBinary(), "baseline", "update", "--report", odd, "--expected", expected,
                                  "--output", dir.File("odd.csv"), "--add", "real_time"});
    EXPECT_EQ(odd_update.exit_code, 2) << odd_update.output;
    EXPECT_THAT(odd_update.output,
                HasSubstr(absl::StrCat("odd.json: '", name, ",real_time' of case ", name, ": a benchmark")));
    EXPECT_FALSE(std::filesystem::exists(dir.File("odd.csv")));
  }
}

// `perfgate baseline update --report REPORT --expected EXPECTED FLAGS...`.
testing::CommandResult UpdateBaseline(const std::string& report, const std::string& expected,
                                      std::vector<std::string> flags) {
  std::vector<std::string> argv = {PerfgateBinary(), "baseline", "update", "--report", report, "--expected", expected};
  argv.insert(argv.end(), flags.begin(), flags.end());
  return RunCommand(argv);
}

// Only results of cases that ran to the end, on one pool, update a file;
// a benchmark name with a comma keeps it.
TEST(CliTest, BaselineUpdateTakesOnlyFinishedCasesOfOnePool) {
  testing::TempDir dir;
  const std::string expected = dir.Write("expected.csv", "a,instructions,1000,0.1\r\n");
  auto report_of = [](nlohmann::json cases) {
    return nlohmann::json{{"schema_version", 1}, {"cases", std::move(cases)}}.dump();
  };
  auto case_of = [](const std::string& name, const std::string& benchmark, double median, bool ran,
                    const std::string& pool) {
    return nlohmann::json{
        {"name", name},
        {"ran", ran},
        {"pool", pool},
        {"metrics",
         {{{"benchmark", benchmark}, {"metric", "instructions"}, {"variant", ""}, {"n", 3}, {"median", median}}}}};
  };
  // The case failed on its third repeat: its medians are not a result.
  const std::string failed = dir.Write("failed.json", report_of({case_of("a", "a", 1500, false, "lab")}));
  auto stopped = UpdateBaseline(failed, expected, {"--output", dir.File("failed.csv")});
  EXPECT_EQ(stopped.exit_code, 1) << stopped.output;
  EXPECT_THAT(stopped.output, HasSubstr("has no result for 1 row"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("failed.csv")));

  // Two pools: which machine's numbers? Say, or be told.
  const std::string pools = dir.Write(
      "pools.json", report_of({case_of("a", "a", 2000, true, "xeon"), case_of("b", "a", 3000, true, "epyc")}));
  auto ambiguous = UpdateBaseline(pools, expected, {"--output", dir.File("pools.csv")});
  EXPECT_EQ(ambiguous.exit_code, 2) << ambiguous.output;
  EXPECT_THAT(ambiguous.output, HasSubstr("cases ran on 2 pools (epyc, xeon); give --pool NAME"));
  auto epyc = UpdateBaseline(pools, expected, {"--output", dir.File("pools.csv"), "--pool", "epyc"});
  EXPECT_EQ(epyc.exit_code, 0) << epyc.output;
  EXPECT_THAT(ReadFile(dir.File("pools.csv")), HasSubstr("a,instructions,3000,0.1\r\n"));

  // --add keeps a benchmark name that holds a comma, quoted.
  const std::string comma = dir.Write("comma.json", report_of({case_of("t", "BM_Foo<int, float>", 1000, true, "lab")}));
  auto added = UpdateBaseline(comma, dir.File("new.csv"), {"--add", "instructions"});
  EXPECT_EQ(added.exit_code, 0) << added.output;
  EXPECT_THAT(ReadFile(dir.File("new.csv")), HasSubstr("\"BM_Foo<int, float>\",instructions,1000,0.1\r\n"));

  // A count's median of an even number of samples is written as an integer,
  // as PyTorch writes counts and reads them back with int().
  nlohmann::json even = case_of("a", "a", 999.5, true, "lab");
  even["metrics"][0]["unit"] = "count";
  even["metrics"][0]["median"] = 1999.5;
  const std::string halves = dir.Write("halves.json", report_of({even}));
  auto rounded = UpdateBaseline(halves, expected, {"--output", dir.File("halves.csv")});
  EXPECT_EQ(rounded.exit_code, 0) << rounded.output;
  EXPECT_THAT(ReadFile(dir.File("halves.csv")), HasSubstr("a,instructions,2000,0.1\r\n"));
}

// A row of peak memory read by rusage (the agent's own resident set with
// the case's) was later compared with a cgroup's reading: a 14 MiB case
// passed as an improvement on a 19.85 MB row. Such series make no row, and a
// metric that is never judged cannot be added.
TEST(CliTest, BaselineUpdateWritesNoRowOfAnInstrumentThatIsNeverJudged) {
  testing::TempDir dir;
  nlohmann::json metric = {{"benchmark", "mem"},   {"metric", "peak_rss"}, {"variant", ""},           {"n", 3},
                           {"median", 19'850'000}, {"unit", "bytes"},      {"source", "agent:rusage"}};
  nlohmann::json c = {{"name", "mem"}, {"ran", true}, {"pool", "lab"}, {"metrics", {metric}}};
  const std::string report = dir.Write("r.json", nlohmann::json{{"schema_version", 1}, {"cases", {c}}}.dump());
  auto rusage = UpdateBaseline(report, dir.File("new.csv"), {"--add", "peak_rss"});
  EXPECT_EQ(rusage.exit_code, 0) << rusage.output;
  EXPECT_THAT(rusage.output, HasSubstr("skipped mem,peak_rss: peak memory from rusage includes the agent's own"));
  EXPECT_THAT(ReadFile(dir.File("new.csv")), Not(HasSubstr("peak_rss")));
  auto cpu = UpdateBaseline(report, dir.File("cpu.csv"), {"--add", "user_cpu_time"});
  EXPECT_EQ(cpu.exit_code, 2) << cpu.output;
  EXPECT_THAT(cpu.output, HasSubstr("--add user_cpu_time: it is shown, never judged"));
}

// A metric whose direction the suite did not declare: a row of it made the
// next run fail ("its direction is unknown"). The report says which way is
// better, and no row is written for `unknown`.
TEST(CliTest, BaselineUpdateWritesNoRowOfAMetricWithoutADirection) {
  testing::TempDir dir;
  const std::string suite = dir.Write("s.yaml",
                                      "suite: s\ndefaults: {repeats: 1, warmup: 0}\ncases:\n  - name: und\n"
                                      "    command: [/bin/sh, -c, 'echo bm,loop_time_s,0.5']\n    results: pytorch\n");
  auto run = RunCommand({PerfgateBinary(), "run", suite, "--json", dir.File("r.json")});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(ReadFile(dir.File("r.json")), HasSubstr("\"better\": \"unknown\""));
  auto update = UpdateBaseline(dir.File("r.json"), dir.File("new.csv"), {"--add", "loop_time_s"});
  EXPECT_EQ(update.exit_code, 0) << update.output;
  EXPECT_THAT(update.output, HasSubstr("skipped bm,loop_time_s: direction unknown; declare it under metrics:"));
  EXPECT_THAT(ReadFile(dir.File("new.csv")), Not(HasSubstr("loop_time_s")));
}

TEST(CliTest, JudgingOptionsOutOfRangeAreRefused) {
  testing::TempDir dir;
  const std::string head = "suite: s\ncases:\n  - name: a\n    command: [/bin/true]\n";
  struct Bad {
    std::string yaml;
    std::string message;
  } bad[] = {
      {"gate:\n  ab: {alpha: 1.5}\n", ":6:15: gate.ab.alpha must be a significance level in (0, 1)"},
      {"gate:\n  ab: {alpha: 0}\n", ":6:15: gate.ab.alpha must be a significance level in (0, 1)"},
      {"gate:\n  ab: {min_effect: 0%}\n", ":6:20: gate.ab.min_effect must be a relative change > 0"},
      {"gate:\n  history: {k: .inf}\n", ":6:16: gate.history.k must be a finite number > 0"},
      {"gate:\n  history: {k: nan}\n", ":6:16: gate.history.k must be a finite number > 0"},
      {"gate:\n  history: {floor: -1%}\n", ":6:20: gate.history.floor must be a fraction"},
      {"gate:\n  history: {time_floor: -1%}\n", ":6:25: gate.history.time_floor must be a fraction"},
      {"gate:\n  history: {max_age: 1e300d}\n", ":6:22: gate.history.max_age must be a duration"},
      {"defaults: {output_limit: 2GiB}\n",
       ":5:26: output_limit must be a size like 65536, 64KiB or 8MiB, at most 1GiB"},
  };
  for (const auto& b : bad) {
    const std::string suite = dir.Write("bad.yaml", head + b.yaml);
    auto result = RunCommand({PerfgateBinary(), "run", suite});
    EXPECT_EQ(result.exit_code, 2) << b.yaml << result.output;
    EXPECT_THAT(result.output, HasSubstr(suite + b.message)) << b.yaml;
  }
  const std::string suite = dir.Write("good.yaml", head);
  struct Flag {
    std::vector<std::string> args;
    std::string message;
  } flags[] = {
      {{"run", suite, "--alpha", "0"}, "--alpha must be a significance level in (0, 1), like 0.05, got '0'"},
      {{"run", suite, "--alpha", "inf"}, "--alpha must be a significance level in (0, 1)"},
      {{"run", suite, "--min-effect", "nan"}, "--min-effect must be a relative change > 0"},
      {{"gate", "--suite", suite, "--history-k", "inf"}, "--history-k must be a finite number > 0"},
      {{"gate", "--suite", suite, "--history-floor", "-0.01"}, "--history-floor must be a relative change >= 0"},
      {{"gate", "--suite", suite, "--history-time-floor", "x"}, "--history-time-floor must be a relative change >= 0"},
  };
  for (const auto& f : flags) {
    std::vector<std::string> argv = {PerfgateBinary()};
    argv.insert(argv.end(), f.args.begin(), f.args.end());
    auto result = RunCommand(argv);
    EXPECT_EQ(result.exit_code, 2) << f.message << result.output;
    EXPECT_THAT(result.output, HasSubstr(f.message));
  }
}

TEST(CliTest, BaselineForAPoolNoAgentHasIsRefusedNamingThePools) {
  testing::TempDir dir;
  const std::string suite = dir.Write(
      "s.yaml", "suite: s\ndefaults: {repeats: 1, warmup: 0}\ncases:\n  - name: a\n    command: [/bin/true]\n");
  const std::string rows = dir.Write("rows.csv", "a,wall_time,1,0.5\n");
  auto result = RunCommand(
      {PerfgateBinary(), "gate", "--suite", suite, "--state-dir", dir.File("state"), "--baseline", "gpu-lab=" + rows});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_THAT(result.output, HasSubstr("is for pool 'gpu-lab', but no agent has ever registered with that pool "
                                       "(pools that ran: local; pools known to the coordinator: local)"));
}

// A folder given as the report aborted the process (ifstream threw); a FIFO
// that nothing writes to kept it waiting with Ctrl-C and SIGTERM blocked.
TEST(CliTest, BaselineUpdateRefusesAFolderAndEndsOnSigtermWhileAFifoWaits) {
  testing::TempDir dir;
  const std::string expected = dir.Write("expected.csv", "a,instruction_count,1000,0.1\n");
  auto folder = RunCommand({PerfgateBinary(), "baseline", "update", "--report", dir.path(), "--expected", expected});
  EXPECT_EQ(folder.exit_code, 2) << folder.output;
  EXPECT_THAT(folder.output, HasSubstr(dir.path()));
  const std::string fifo = dir.File("report.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  testing::Subprocess waiting({PerfgateBinary(), "baseline", "update", "--report", fifo, "--expected", expected});
  waiting.Signal(SIGTERM);
  EXPECT_EQ(waiting.Wait(60'000), 128 + SIGTERM) << waiting.output();
  EXPECT_EQ(ReadFile(expected), "a,instruction_count,1000,0.1\n");
}

// gRPC fails a call whose request protobuf cannot serialise with no
// message: a commit of other bytes than UTF-8 gave "perfgate gate: " and
// exit 3, as if the lab were down. A state folder that cannot be made is
// the flag's error, not the lab's.
TEST(CliTest, GateRefusesANonUtf8CommitAndAStateDirThatIsAFileNamingThem) {
  testing::TempDir dir;
  const std::string suite = dir.Write(
      "s.yaml", "suite: s\ndefaults: {repeats: 1, warmup: 0}\ncases:\n  - name: a\n    command: [/bin/true]\n");
  auto commit = RunCommand({PerfgateBinary(), "gate", "--suite", suite, "--state-dir", dir.File("state"), "--commit",
                            "ab\xff"
                            "cd"});
  EXPECT_EQ(commit.exit_code, 2) << commit.output;
  EXPECT_THAT(commit.output, HasSubstr("the run's commit ('ab\\xFFcd') is not UTF-8"));
  EXPECT_THAT(commit.output, Not(HasSubstr("embedded coordinator on"))) << "refused before anything started";
  auto state = RunCommand({PerfgateBinary(), "gate", "--suite", suite, "--state-dir", suite});
  EXPECT_EQ(state.exit_code, 2) << state.output;
  EXPECT_THAT(state.output, HasSubstr("cannot create state folder '" + suite + "' (--state-dir)"));
}

// A second file for one pool took the first's place, and a regression in a
// row only the first held passed: refused, before anything runs.
TEST(CliTest, TwoBaselinesForOnePoolAreRefusedNamingBoth) {
  testing::TempDir dir;
  const std::string suite = dir.Write(
      "s.yaml", "suite: s\ndefaults: {repeats: 1, warmup: 0}\ncases:\n  - name: a\n    command: [/bin/true]\n");
  const std::string a = dir.Write("a.csv", "a,wall_time,1,0.5\n");
  const std::string b = dir.Write("b.csv", "b,wall_time,1,0.5\n");
  for (const auto& [first, second, who] : {std::tuple{a, b, std::string("every pool")},
                                           std::tuple{"local=" + a, "local=" + b, std::string("pool 'local'")}}) {
    auto result = RunCommand({PerfgateBinary(), "run", suite, "--baseline", first, "--baseline", second});
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_THAT(result.output, HasSubstr(absl::StrCat("--baseline: two expected files for ", who, " (", a, " and ", b,
                                                      "); put their rows in one file")));
    EXPECT_THAT(result.output, Not(HasSubstr("GATE")));
  }
  // A path with '=' in it, where what comes before cannot name a pool, is a file for every pool.
  std::filesystem::create_directories(dir.File("run=3"));
  const std::string odd = dir.Write("run=3/expected.csv", "a,wall_time,0.000001,0.5\n");
  auto result = RunCommand({PerfgateBinary(), "run", suite, "--baseline", odd});
  EXPECT_THAT(result.output, HasSubstr("regression")) << result.output;
  EXPECT_THAT(result.output, Not(HasSubstr("cannot open"))) << result.output;
}

// Against a running coordinator the pools are known before the run: the gate
// refused only after every case had run (hours, in a lab).
TEST(CliTest, BaselineForAPoolNoAgentHasIsRefusedBeforeTheRunIsSubmitted) {
  testing::TempDir dir;
  testing::Subprocess coordinator(
      {PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", dir.File("perfgate.db")});
  const std::string address = testing::CoordinatorAddress(coordinator);
  ASSERT_FALSE(address.empty()) << coordinator.output();
  const std::string suite = dir.Write(
      "s.yaml", "suite: s\ndefaults: {repeats: 1, warmup: 0}\ncases:\n  - name: a\n    command: [/bin/true]\n");
  const std::string rows = dir.Write("rows.csv", "a,wall_time,1,0.5\n");
  auto result = RunCommand({PerfgateBinary(), "gate", "--suite", suite, "--coordinator", address, "--insecure",
                            "--baseline", "xeon=" + rows});
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_THAT(result.output, HasSubstr("is for pool 'xeon', but no agent has ever registered with that pool "
                                       "(pools that ran: none; pools known to the coordinator: none)"));
  EXPECT_THAT(result.output, Not(HasSubstr("submitted to")));
}

// An address that is not this host's is the configuration's error (exit 2,
// which the packaged unit does not restart), named with its flag; a port in
// use may be free later (exit 3). gRPC's failure said only "cannot listen".
TEST(CliTest, AListenAddressNotOnThisHostIsAConfigurationErrorNamingTheFlag) {
  testing::TempDir dir;
  // 192.0.2.0/24 is TEST-NET-1: documentation only, on no host.
  auto away =
      RunCommand({PerfgateBinary(), "coordinator", "--listen", "192.0.2.1:0", "--insecure", "--db", dir.File("a.db")});
  EXPECT_EQ(away.exit_code, 2) << away.output;
  EXPECT_THAT(away.output, HasSubstr("--listen 192.0.2.1:0: '192.0.2.1' is not an address of this host"));
  auto metrics = RunCommand({PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--metrics-listen",
                             "192.0.2.1:9464", "--db", dir.File("b.db")});
  EXPECT_EQ(metrics.exit_code, 2) << metrics.output;
  EXPECT_THAT(metrics.output, HasSubstr("--metrics-listen 192.0.2.1:9464: '192.0.2.1' is not an address"));
  EXPECT_FALSE(std::filesystem::exists(dir.File("a.db"))) << "refused before the store is opened";

  testing::Subprocess first({PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", dir.File("first.db")});
  const std::string address = testing::CoordinatorAddress(first);
  ASSERT_FALSE(address.empty()) << first.output();
  auto second = RunCommand({PerfgateBinary(), "coordinator", "--listen", address, "--db", dir.File("second.db")});
  EXPECT_EQ(second.exit_code, 3) << second.output;
  EXPECT_THAT(second.output, HasSubstr("the port is in use"));
  // Sockets with no host to check still start.
  testing::Subprocess abstract({PerfgateBinary(), "coordinator", "--listen",
                                "unix-abstract:perfgate-test-" + std::to_string(getpid()), "--db",
                                dir.File("abstract.db")});
  EXPECT_FALSE(testing::CoordinatorAddress(abstract).empty()) << abstract.output();
}

// Run by hand under umask 022, the coordinator made its database (suites'
// environments, cases' output) readable by every user of the machine.
TEST(CliTest, WhatTheCoordinatorMakesIsNotForEveryUser) {
  testing::TempDir dir;
  const std::string socket = dir.File("c.sock");
  testing::Subprocess coordinator(
      {"/bin/sh", "-c", "umask 022; exec \"$0\" coordinator --listen unix:" + socket + " --db " + dir.File("p.db"),
       PerfgateBinary()});
  ASSERT_TRUE(coordinator.WaitForLine("listening on", 30'000)) << coordinator.output();
  for (const std::string& path : {dir.File("p.db"), socket}) {
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & S_IRWXO, 0u) << path << " mode " << std::oct << (st.st_mode & 07777);
  }
}

}  // namespace
}  // namespace perfgate
