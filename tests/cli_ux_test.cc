// The CLI helping its user: typos named, completion scripts that complete,
// an ad-hoc command measured without a suite, JSON alone on stdout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/typo.h"
#include "core/exit_codes.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::PerfgateBinary;
using testing::RunCommand;

std::string ReadFile(const std::string& path) {
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  return text.str();
}

// Runs `command` in a shell with stdout to a file; returns {exit code, stdout alone}.
testing::CommandResult StdoutOf(const testing::TempDir& dir, const std::string& command) {
  const std::string out = dir.File("stdout");
  auto r = RunCommand({"/bin/sh", "-c", command + " >" + out});
  return {r.exit_code, ReadFile(out)};
}

TEST(TypoTest, EditDistanceCountsTranspositionsOnce) {
  EXPECT_EQ(EditDistance("--repeats", "--repeats"), 0u);
  EXPECT_EQ(EditDistance("--repets", "--repeats"), 1u);
  EXPECT_EQ(EditDistance("--rpeeats", "--repeats"), 1u);
  EXPECT_EQ(EditDistance("gat", "gate"), 1u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
}

TEST(TypoTest, NearestCandidateOnlyWhenCloseEnough) {
  const std::vector<std::string> flags = {"--repeats", "--json", "--junit", "--label"};
  EXPECT_EQ(NearestCandidate("--repets", flags), "--repeats");
  EXPECT_EQ(NearestCandidate("--jsn", flags), "--json");
  EXPECT_EQ(NearestCandidate("--frobnicate", flags), std::nullopt);
  EXPECT_EQ(NearestCandidate("-x", flags), std::nullopt);
}

// -5 read as 2^64 - 5 ms, and the kill deadline overflowed to no grace.
TEST(CliUxTest, AKillGraceOutOfRangeIsRefused) {
  for (const char* value : {"-5", "10000000000000", "600001"}) {
    auto r = RunCommand({PerfgateBinary(), "agent", "--coordinator", "127.0.0.1:1", "--insecure",
                         absl::StrCat("--kill-grace-ms=", value)});
    EXPECT_EQ(r.exit_code, kExitBadInput) << r.output;
    EXPECT_THAT(r.output, HasSubstr(absl::StrCat("--kill-grace-ms: Value ", value, " not in range 0 to 600000")));
  }
}

TEST(CliUxTest, MistypedFlagOrCommandNamesTheOneMeant) {
  struct Expect {
    std::vector<std::string> args;
    std::string hint;
  } expectations[] = {
      {{"run", "--repets", "3", "suite.yaml"}, "unknown flag '--repets' for 'perfgate run'; did you mean '--repeats'?"},
      {{"gate", "--suite", "s.yaml", "--coordinater", "h:1"},
       "unknown flag '--coordinater' for 'perfgate gate'; did you mean '--coordinator'?"},
      {{"gat", "--suite", "s.yaml"}, "unknown command 'gat' for 'perfgate'; did you mean 'gate'?"},
      {{"baseline", "updte"}, "unknown command 'updte' for 'perfgate baseline'; did you mean 'update'?"},
      {{"run", "s.yaml", "--jsn=r.json"}, "unknown flag '--jsn' for 'perfgate run'; did you mean '--json'?"},
      {{"agent", "--frobnicate"}, "unknown flag '--frobnicate' for 'perfgate agent'; see 'perfgate agent --help'"},
  };
  for (const auto& e : expectations) {
    std::vector<std::string> argv = {PerfgateBinary()};
    argv.insert(argv.end(), e.args.begin(), e.args.end());
    auto r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, kExitBadInput) << r.output;
    EXPECT_THAT(r.output, HasSubstr("perfgate: " + e.hint)) << r.output;
    // CLI11's own words ("The following arguments were not expected: 3 --repets") only mislead here.
    EXPECT_THAT(r.output, Not(HasSubstr("not expected"))) << r.output;
    EXPECT_THAT(r.output, Not(HasSubstr("is required"))) << r.output;
  }
}

// Completes `line` (the cursor at its end) with the generated bash script.
std::string BashComplete(const testing::TempDir& dir, const std::string& line) {
  const std::string script = dir.File("perfgate.bash");
  auto gen = RunCommand({PerfgateBinary(), "completion", "bash"});
  EXPECT_EQ(gen.exit_code, 0) << gen.output;
  std::ofstream(script) << gen.output;
  auto r = RunCommand({"/bin/bash", "-c",
                       "source " + script + "; COMP_LINE='" + line + "'; read -ra COMP_WORDS <<< \"$COMP_LINE\"; " +
                           "[[ \"$COMP_LINE\" == *' ' ]] && COMP_WORDS+=(''); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); " +
                           "_perfgate; echo \"${COMPREPLY[*]}\""});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output.substr(0, r.output.find('\n'));
}

TEST(CliUxTest, BashCompletionCompletesSubcommandsAndTheirFlags) {
  testing::TempDir dir;
  EXPECT_EQ(BashComplete(dir, "perfgate ga"), "gate");
  EXPECT_EQ(BashComplete(dir, "perfgate run --rep"), "--repeats");
  EXPECT_EQ(BashComplete(dir, "perfgate baseline up"), "update");
  EXPECT_EQ(BashComplete(dir, "perfgate baseline update --rep"), "--report");
  // Every subcommand of the app, generated from it: including this one.
  const std::string all = BashComplete(dir, "perfgate ");
  for (const char* cmd : {"gate", "run", "coordinator", "agent", "baseline", "completion"}) {
    EXPECT_THAT(all, HasSubstr(cmd));
  }
  // Flags of one subcommand are not offered for another.
  EXPECT_THAT(BashComplete(dir, "perfgate agent --"), Not(HasSubstr("--suite")));
}

TEST(CliUxTest, ZshCompletionNamesEveryCommandWithItsHelp) {
  auto r = RunCommand({PerfgateBinary(), "completion", "zsh"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("#compdef perfgate\n", 0), 0u);
  EXPECT_THAT(r.output, HasSubstr("\"/baseline\") path_=\"baseline\" ;;"));
  EXPECT_THAT(r.output, HasSubstr("\"baseline/update\") path_=\"baseline update\" ;;"));
  EXPECT_THAT(r.output, HasSubstr("'--repeats:measured runs per case, overriding the suite'"));
  EXPECT_EQ(RunCommand({PerfgateBinary(), "completion", "fish"}).exit_code, kExitBadInput);
}

// Runs the generated zsh script in a real zsh with the completion system's
// _describe and _files stubbed to print what they were given.
std::string ZshComplete(const testing::TempDir& dir, const std::string& words, int current, const std::string& prefix) {
  const std::string script = dir.File("_perfgate");
  std::ofstream(script) << RunCommand({PerfgateBinary(), "completion", "zsh"}).output;
  auto r = RunCommand({"/usr/bin/zsh", "-c",
                       "_describe() { local arr=${@[-1]}; print -l -- \"${(@P)arr}\" }; _files() { print FILES }; "
                       "compdef() { }; source " +
                           script + "; words=(" + words + "); CURRENT=" + std::to_string(current) + "; PREFIX='" +
                           prefix + "'; _perfgate"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.output;
}

TEST(CliUxTest, ZshCompletionCompletesInARealZsh) {
  testing::TempDir dir;
  EXPECT_THAT(ZshComplete(dir, "perfgate ga", 2, "ga"), HasSubstr("gate:Run a suite for one commit"));
  EXPECT_THAT(ZshComplete(dir, "perfgate baseline update --rep", 4, "--rep"), HasSubstr("--report:"));
  EXPECT_THAT(ZshComplete(dir, "perfgate run --rep", 3, "--rep"), HasSubstr("--repeats:measured runs per case"));
  EXPECT_EQ(ZshComplete(dir, "perfgate run ''", 3, ""), "FILES\n") << "a suite file comes next";
}

TEST(CliUxTest, AdHocCommandIsMeasuredLikeHyperfine) {
  testing::TempDir dir;
  const std::string json = dir.File("r.json");
  auto r = RunCommand({PerfgateBinary(), "run", "--repeats", "3", "--warmup", "0", "--json", json, "--",
                       testing::CaseBinary("spin"), "1000"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("Benchmark 1: spin 1000\n  Time (median ± MAD):"));
  EXPECT_THAT(r.output, HasSubstr("3 runs\n"));
  nlohmann::json doc = nlohmann::json::parse(ReadFile(json));
  ASSERT_EQ(doc["cases"].size(), 1u);
  EXPECT_EQ(doc["cases"][0]["name"], "spin 1000");
  EXPECT_EQ(doc["cases"][0]["outcome"], "ok");
  EXPECT_EQ(doc["cases"][0]["raw_samples"].size(), 3u) << "no warm-up recorded, three samples";
  // Its arguments are the command's, never perfgate's: `--json` after `--` goes to the command.
  auto echo = RunCommand({PerfgateBinary(), "run", "--repeats", "1", "--", "/bin/echo", "--json", "x"});
  EXPECT_EQ(echo.exit_code, 0) << echo.output;
  EXPECT_THAT(echo.output, HasSubstr("Benchmark 1: echo --json x"));
  // The command's words are shown as text: a newline, an escape or a stray byte cannot forge or hide a line.
  auto odd = RunCommand({PerfgateBinary(), "run", "--repeats", "1", "--", "/bin/echo", "a\nGATE PASSED\x1b[2K\xff"});
  EXPECT_EQ(odd.exit_code, 0) << odd.output;
  EXPECT_THAT(odd.output, HasSubstr("Benchmark 1: echo a\\x0AGATE PASSED\\x1B[2K\\xFF\n"));
}

// A step summary nobody can write was found only after the run: a passing
// run exited 3. Checked first, as the report flags are.
TEST(CliUxTest, AStepSummaryThatCannotBeWrittenIsRefusedBeforeTheRun) {
  testing::TempDir dir;
  const std::string summary = dir.File("gone/summary.md");
  auto r = RunCommand(
      {"/usr/bin/env", "GITHUB_STEP_SUMMARY=" + summary, PerfgateBinary(), "run", "--repeats", "1", "--", "/bin/true"});
  EXPECT_EQ(r.exit_code, kExitBadInput) << r.output;
  EXPECT_THAT(r.output, HasSubstr("GITHUB_STEP_SUMMARY " + summary + ": no folder " + dir.File("gone")));
  EXPECT_THAT(r.output, Not(HasSubstr("Benchmark 1"))) << "refused before it ran";
}

TEST(CliUxTest, AdHocCommandThatFailsFailsTheRun) {
  auto r = RunCommand({PerfgateBinary(), "run", "--repeats", "1", "--warmup", "0", "--", "/bin/false"});
  EXPECT_EQ(r.exit_code, kExitGateFailed) << r.output;
  EXPECT_THAT(r.output, HasSubstr("error: exit 1"));
  EXPECT_EQ(RunCommand({PerfgateBinary(), "run", "--"}).exit_code, kExitBadInput);
  auto both = RunCommand({PerfgateBinary(), "run", "suite.yaml", "--", "/bin/true"});
  EXPECT_EQ(both.exit_code, kExitBadInput);
  EXPECT_THAT(both.output, HasSubstr("give a suite file or -- CMD ARGS..., not both"));
}

// The command runs as given, as hyperfine runs it: suite-style expansion
// turned `sh -c 'kill -9 $$'` into `kill -9 $` and refused ${FOO:-x}.
TEST(CliUxTest, AnAdHocCommandIsNotExpandedAsASuitesCommandIs) {
  testing::TempDir dir;
  const std::string marker = dir.File("ran");
  auto r = RunCommand({PerfgateBinary(), "run", "--repeats", "1", "--warmup", "0", "--", "/bin/sh", "-c",
                       "echo \"${PERFGATE_UNSET_FOR_TEST:-default} $$\" > " + marker + "; kill -9 $$"});
  EXPECT_EQ(r.exit_code, kExitGateFailed) << r.output;
  EXPECT_THAT(r.output, HasSubstr("killed by SIGKILL"));
  EXPECT_THAT(ReadFile(marker), ::testing::MatchesRegex("default [0-9]+\n"));
}

// A TMPDIR that is not a folder failed every case as a result error (exit
// 1), as if the code under test had; now the run does not start (exit 2).
TEST(CliUxTest, ATmpdirThatIsNoFolderIsBadConfigurationNotAFailedCase) {
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"run", "--", "/bin/true"},
        std::vector<std::string>{"gate", "--suite", testing::SourceDir() + "/bench_cases/demo.yaml"},
        std::vector<std::string>{"agent", "--coordinator", "unix:/run/perfgate-test-none/c.sock"}}) {
    std::vector<std::string> argv = {"/usr/bin/env", "TMPDIR=/nonexistent-perfgate-tmp", PerfgateBinary()};
    argv.insert(argv.end(), command.begin(), command.end());
    auto r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, kExitBadInput) << command[0] << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("cannot make scratch folders in /nonexistent-perfgate-tmp")) << command[0];
  }
}

// An unwritable report path was found only after the run (hours, in a lab), with no reason given.
TEST(CliUxTest, AReportPathThatCannotBeWrittenIsRefusedBeforeTheRun) {
  testing::TempDir dir;
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"run", "--json", "/nonexistent/dir/r.json", "--", "/bin/true"}, "--json /nonexistent/dir/r.json: no folder"},
      {{"run", "--markdown", dir.path(), "--", "/bin/true"}, "is a folder; name a file"},
      {{"gate", "--suite", "x.yaml", "--junit", "/nonexistent/j.xml"}, "--junit /nonexistent/j.xml: no folder"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv = {PerfgateBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, kExitBadInput) << r.output;
    EXPECT_THAT(r.output, HasSubstr(message));
    EXPECT_THAT(r.output, Not(HasSubstr("Benchmark 1"))) << "it ran first";
  }
}

// A suite of one short case, measured once.
std::string OneSpinSuite(const testing::TempDir& dir) {
  return dir.Write("s.yaml", "suite: s\ndefaults: {repeats: 1, warmup: 0}\ncases:\n  - name: spin\n    command: [\"" +
                                 testing::CaseBinary("spin") + "\", \"1000\"]\n");
}

TEST(CliUxTest, JsonDashWritesOnlyJsonToStdoutAndTheTableToStderr) {
  testing::TempDir dir;
  const std::string suite = OneSpinSuite(dir);
  auto r = StdoutOf(dir, PerfgateBinary() + " run " + suite + " --no-color --json - 2>" + dir.File("stderr"));
  EXPECT_EQ(r.exit_code, 0) << ReadFile(dir.File("stderr"));
  nlohmann::json doc = nlohmann::json::parse(r.output, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded()) << "stdout is not JSON alone:\n" << r.output;
  EXPECT_EQ(doc["schema_version"], 1);
  EXPECT_THAT(ReadFile(dir.File("stderr")), HasSubstr("GATE PASSED"));
}

// The same for JUnit and Markdown: the table went to stdout in the middle of the XML.
TEST(CliUxTest, JunitOrMarkdownDashWritesOnlyThatReportToStdout) {
  testing::TempDir dir;
  const std::string suite = OneSpinSuite(dir);
  auto junit = StdoutOf(dir, PerfgateBinary() + " run " + suite + " --no-color --junit - 2>" + dir.File("stderr"));
  EXPECT_EQ(junit.exit_code, 0) << ReadFile(dir.File("stderr"));
  EXPECT_TRUE(junit.output.starts_with("<?xml")) << junit.output;
  EXPECT_THAT(junit.output, Not(HasSubstr("GATE PASSED")));
  EXPECT_THAT(ReadFile(dir.File("stderr")), HasSubstr("GATE PASSED"));
  auto md = StdoutOf(dir, PerfgateBinary() + " run " + suite + " --no-color --markdown - 2>" + dir.File("stderr"));
  EXPECT_TRUE(md.output.starts_with("### ")) << md.output;
  auto both = RunCommand({PerfgateBinary(), "run", suite, "--json", "-", "--junit", "-"});
  EXPECT_EQ(both.exit_code, kExitBadInput);
  EXPECT_THAT(both.output, HasSubstr("--json - and --junit -: only one report can go to stdout"));
}

// --fail-on takes the words a suite's gate.fail_on takes, no others.
TEST(CliUxTest, FailOnRefusesWhatTheSuiteRefuses) {
  for (const char* word : {"cancelled", "pass", "missing result"}) {
    auto r = RunCommand({PerfgateBinary(), "run", "--fail-on", word, "--", "/bin/true"});
    EXPECT_EQ(r.exit_code, kExitBadInput) << word << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("--fail-on: unknown verdict")) << word;
  }
  EXPECT_EQ(RunCommand({PerfgateBinary(), "run", "--repeats", "1", "--fail-on", "missing_result", "--", "/bin/true"})
                .exit_code,
            0);
}

}  // namespace
}  // namespace perfgate
