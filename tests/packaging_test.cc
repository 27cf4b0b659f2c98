// How the services are configured and identified: config files (one key per
// flag, flags and PERFGATE_* variables override), the example configs the
// package installs, environment variables on the client flags, --version.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/service_config.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using testing::PerfgateBinary;
using testing::RunCommand;
using testing::SourceDir;

// The real `perfgate` command line, parsed up to the point where the chosen
// command would start: options are converted, checked and stored, then the
// top-level callback (which runs before the commands' own) stops there. The
// commands' callbacks stay in place: they own the variables the options fill.
struct ParsedCommand {
  struct Parsed {};
  CLI::App app;
  CLI::App* cmd = nullptr;
  int exit_code = 0;

  explicit ParsedCommand(const std::string& name) {
    AddCoordinatorCommand(app, &exit_code);
    AddAgentCommand(app, &exit_code);
    cmd = app.get_subcommand(name);
    app.parse_complete_callback([] { throw Parsed{}; });
  }
  void Parse(std::vector<std::string> args) {
    std::vector<const char*> argv = {"perfgate"};
    for (const auto& a : args) argv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const Parsed&) {
      return;
    }
    ADD_FAILURE() << "the command ran";
  }
  std::string Value(const std::string& flag) { return cmd->get_option(flag)->as<std::string>(); }
};

// The message of the CLI::Error that parsing `args` throws; "" if none.
std::string ParseError(ParsedCommand& command, std::vector<std::string> args) {
  try {
    command.Parse(std::move(args));
  } catch (const CLI::Error& e) {
    return e.what();
  }
  return "";
}

TEST(ServiceConfigTest, ParsesBareQuotedAndListValuesWithComments) {
  auto entries = ParseConfigText(
      "# a comment\r\n"
      "\n"
      "listen = 0.0.0.0:7600   # where\r\n"
      "db = \"/var/lib/a #b/perfgate.db\"\n"
      "label = [gpu, \"a100 80gb\", x]\n"
      "token-file=\"/etc/perfgate/t#1\"\n"
      "quote = \"say \\\"hi\\\" \\\\ bye\"\n",
      "f.conf");
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 5u);
  EXPECT_EQ((*entries)[0].line, 3);
  EXPECT_EQ((*entries)[0].key, "listen");
  EXPECT_THAT((*entries)[0].values, ElementsAre("0.0.0.0:7600"));
  EXPECT_THAT((*entries)[1].values, ElementsAre("/var/lib/a #b/perfgate.db"));
  EXPECT_THAT((*entries)[2].values, ElementsAre("gpu", "a100 80gb", "x"));
  EXPECT_THAT((*entries)[3].values, ElementsAre("/etc/perfgate/t#1"));  // quoted, a '#' is the value's
  EXPECT_THAT((*entries)[4].values, ElementsAre("say \"hi\" \\ bye"));
}

TEST(ServiceConfigTest, MalformedLinesNameFileAndLine) {
  struct Case {
    const char* text;
    const char* error;
  } cases[] = {
      {"listen = a\n[coordinator]\n", "f.conf:2: sections are not used"},
      {"\n\nlisten 0.0.0.0:1\n", "f.conf:3: expected `key = value`"},
      {"--listen = x\n", "f.conf:1: '--listen' is not a key"},
      {"db = \"unterminated\n", "f.conf:1: db: a quoted value has no closing '\"'"},
      {"label = [a b\n", "f.conf:1: label: a list is [a, b, ...] on one line"},
      {"db =\n", "f.conf:1: db: no value"},
      {"db = \"x\" y\n", "f.conf:1: db: unexpected 'y' after the value"},
      // A comment without a space before it was part of the value: pool "h100# rack 3".
      {"pool = h100# rack 3\n", "f.conf:1: pool: 'h100# rack 3': a '#' in a bare value"},
      {"label = [gpu#cuda]\n", "f.conf:1: label: 'gpu#cuda': a '#' in a bare value"},
  };
  for (const auto& c : cases) {
    auto entries = ParseConfigText(c.text, "f.conf");
    ASSERT_FALSE(entries.ok()) << c.text;
    EXPECT_THAT(entries.status().message(), HasSubstr(c.error)) << c.text;
  }
}

TEST(ServiceConfigTest, FileSetsFlagsIncludingARequiredOneAndTheCommandLineOverrides) {
  testing::TempDir dir;
  const std::string conf = dir.Write("agent.conf",
                                     "coordinator = lab:7600\n"
                                     "pool = from-file\n"
                                     "label = [gpu, cuda]\n"
                                     "label = a100\n"
                                     "kill-grace-ms = 500\n"
                                     "insecure = true\n");
  ParsedCommand agent("agent");
  agent.Parse({"agent", "--config", conf, "--pool", "from-flag"});
  EXPECT_EQ(agent.Value("--coordinator"), "lab:7600");  // --coordinator is required: the file satisfies it
  EXPECT_EQ(agent.Value("--pool"), "from-flag");
  EXPECT_EQ(agent.cmd->get_option("--label")->as<std::vector<std::string>>(),
            (std::vector<std::string>{"gpu", "cuda", "a100"}));
  EXPECT_EQ(agent.cmd->get_option("--kill-grace-ms")->as<int>(), 500);
  EXPECT_TRUE(agent.cmd->get_option("--insecure")->as<bool>());
}

TEST(ServiceConfigTest, EnvironmentOverridesTheFileAndTheCommandLineOverridesBoth) {
  testing::TempDir dir;
  const std::string conf = dir.Write("agent.conf", "coordinator = file:1\ntls-ca = /file/ca.pem\n");
  setenv("PERFGATE_COORDINATOR", "env:2", 1);
  setenv("PERFGATE_TLS_CA", "/env/ca.pem", 1);
  ParsedCommand agent("agent");
  agent.Parse({"agent", "--config", conf, "--tls-ca", "/flag/ca.pem"});
  unsetenv("PERFGATE_COORDINATOR");
  unsetenv("PERFGATE_TLS_CA");
  EXPECT_EQ(agent.Value("--coordinator"), "env:2");
  EXPECT_EQ(agent.Value("--tls-ca"), "/flag/ca.pem");
}

TEST(ServiceConfigTest, UnknownRepeatedOrInvalidKeysAreErrorsNamingFileLineAndKey) {
  testing::TempDir dir;
  struct Case {
    const char* text;
    std::string error;
  } cases[] = {
      {"listen = 127.0.0.1:0\n\ndb-file = x.db\n",
       ":3: unknown key 'db-file': perfgate coordinator has no --db-file; its keys are listen, db,"},
      {"db = a.db\ndb = b.db\n", ":2: 'db' is set again (first on line 1); it takes one value"},
      {"db = [a.db, b.db]\n", ":1: 'db' takes one value, not a list"},
      {"max-attempts = many\n", ":1: max-attempts: "},
      {"max-attempts = 1000\n", ":1: max-attempts: "},
      // Values with a grammar of their own are checked as they are read, so the error can name the line.
      {"db = x.db\nlease-ttl = banana\n", ":2: lease-ttl: --lease-ttl: 'banana' is not a duration like 500ms"},
      {"lease-ttl = 5ms\n", ":1: lease-ttl: --lease-ttl: '5ms' is shorter than 100 ms"},
      {"no-agent-grace = soon\n", ":1: no-agent-grace: --no-agent-grace: 'soon' is not a duration"},
      {"artifact-quota = lots\n", ":1: artifact-quota: --artifact-quota: 'lots' is not a size like 512KiB"},
      {"max-submit-size = 2GiB\n", ":1: max-submit-size: --max-submit-size: '2GiB' is more than 1.00 GiB"},
      {"config = other.conf\n", ":1: unknown key 'config'"},  // config files do not nest
      {"help = true\n", ":1: unknown key 'help'"},
  };
  for (const auto& c : cases) {
    const std::string conf = dir.Write("c.conf", c.text);
    ParsedCommand coordinator("coordinator");
    EXPECT_THAT(ParseError(coordinator, {"coordinator", "--config", conf}), HasSubstr(conf + c.error)) << c.text;
  }
  ParsedCommand agent("agent");
  EXPECT_THAT(ParseError(agent, {"agent", "--config", dir.Write("a.conf", "pool = p\nartifact-cache-size = 0\n")}),
              HasSubstr("a.conf:2: artifact-cache-size: --artifact-cache-size: '0' is less than 1 B"));
  ParsedCommand coordinator("coordinator");
  EXPECT_THAT(ParseError(coordinator, {"coordinator", "--config", dir.File("missing.conf")}),
              HasSubstr(dir.File("missing.conf") + ": cannot open config file"));
}

// The files the package installs in /etc/perfgate, and the lab lines commented out in them.
TEST(ServiceConfigTest, ExampleConfigsUseOnlyKeysTheirCommandsKnow) {
  for (const char* name : {"coordinator", "agent"}) {
    const std::string path = SourceDir() + "/packaging/etc/" + name + ".conf";
    std::ifstream in(path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(text.empty()) << path;
    ParsedCommand as_shipped(name);
    EXPECT_EQ(ParseError(as_shipped, {name, "--config", path}), "") << path;

    testing::TempDir dir;
    std::string uncommented;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      // "# key = value" lines are settings to enable; other comments are prose.
      if (std::regex_search(std::string(line), std::regex("^(# )?[a-z][a-z0-9-]* = "))) {
        if (line[0] == '#') line.remove_prefix(2);
        absl::StrAppend(&uncommented, line, "\n");
      }
    }
    // A key set twice on purpose (listen, pool) keeps its last value for this check.
    std::map<std::string, std::string> last;
    for (absl::string_view line : absl::StrSplit(uncommented, '\n', absl::SkipEmpty())) {
      last[std::string(line.substr(0, line.find(" = ")))] = std::string(line);
    }
    std::string lab;
    for (const auto& [key, line] : last) absl::StrAppend(&lab, line, "\n");
    ParsedCommand for_a_lab(name);
    EXPECT_EQ(ParseError(for_a_lab, {name, "--config", dir.Write("lab.conf", lab)}), "") << lab;
  }
}

TEST(ServiceConfigTest, CoordinatorProcessServesWhatItsConfigFileSays) {
  testing::TempDir dir;
  const std::string conf =
      dir.Write("coordinator.conf", "listen = 127.0.0.1:0\ndb = " + dir.File("from-file.db") + "\n");
  testing::Subprocess coordinator({PerfgateBinary(), "coordinator", "--config", conf});
  auto line = coordinator.WaitForLine("listening on", 30'000);
  ASSERT_TRUE(line) << coordinator.output();
  EXPECT_THAT(*line, HasSubstr("(db " + dir.File("from-file.db")));
  coordinator.Signal(SIGTERM);
  EXPECT_EQ(coordinator.Wait(30'000), 0) << coordinator.output();

  auto bad = RunCommand({PerfgateBinary(), "coordinator", "--config", dir.Write("bad.conf", "lisen = x\n")});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("bad.conf:1: unknown key 'lisen'"));
}

TEST(PackagingTest, GateTakesCommitAndBranchFromTheEnvironment) {
  testing::TempDir dir;
  const std::string suite =
      dir.Write("s.yaml", "suite: s\ncases:\n  - name: t\n    command: [/bin/true]\n    repeats: 1\n");
  auto result = RunCommand({"/usr/bin/env", "PERFGATE_COMMIT=c0ffee", "PERFGATE_BRANCH=feature/x", "GITHUB_SHA=wrong",
                            PerfgateBinary(), "gate", "--suite", suite, "--state-dir", dir.File("state"), "--json",
                            dir.File("r.json")});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream in(dir.File("r.json"));
  auto report = nlohmann::json::parse(in);
  EXPECT_EQ(report["commit"], "c0ffee");
  EXPECT_EQ(report["branch"], "feature/x");
}

TEST(PackagingTest, GateTakesTheCoordinatorFromTheEnvironment) {
  testing::TempDir dir;
  const std::string suite = dir.Write("s.yaml", "suite: s\ncases:\n  - name: t\n    command: [/bin/true]\n");
  // A socket nothing listens on: the gate must fail as unreachable, not run embedded.
  const std::string address = "unix:" + dir.File("nobody.sock");
  auto result = RunCommand({"/usr/bin/env", "PERFGATE_COORDINATOR=" + address, PerfgateBinary(), "gate", "--suite",
                            suite, "--state-dir", dir.File("state")});
  EXPECT_EQ(result.exit_code, 3) << result.output;
  EXPECT_THAT(result.output, HasSubstr(address));
}

TEST(PackagingTest, VersionNamesTheCommitItWasBuiltFrom) {
  auto version = RunCommand({PerfgateBinary(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.output, MatchesRegex("perfgate [0-9]+\\.[0-9]+\\.[0-9]+ \\(commit ([0-9a-f]{12}|unknown)\\)\n"));
  auto head = RunCommand({"/usr/bin/env", "git", "-C", SourceDir(), "rev-parse", "--short=12", "HEAD"});
  if (head.exit_code != 0) GTEST_SKIP() << "no git here: the commit is 'unknown'";
  EXPECT_THAT(version.output, HasSubstr("(commit " + head.output.substr(0, 12) + ")"));
}

// A root folder for `systemd-analyze --root`: the units as installed,
// stand-ins for the programs they start (verify checks only that they are executable)
// and this host's targets, which the units' default dependencies name.
std::string UnitRoot(const testing::TempDir& dir) {
  namespace fs = std::filesystem;
  const fs::path root = dir.path();
  fs::create_directories(root / "lib/systemd/system");
  fs::create_directories(root / "usr/lib/systemd/system");
  fs::create_directories(root / "usr/bin");
  fs::create_directories(root / "etc/systemd/system");
  for (const char* unit : {"perfgate-coordinator.service", "perfgate-agent.service"}) {
    fs::copy_file(SourceDir() + "/packaging/systemd/" + unit, root / "lib/systemd/system" / unit);
  }
  for (const auto& entry : fs::directory_iterator("/lib/systemd/system")) {
    if (entry.path().extension() == ".target" && entry.is_regular_file()) {
      fs::copy_file(entry.path(), root / "usr/lib/systemd/system" / entry.path().filename());
    }
  }
  fs::create_directories(root / "usr/lib/perfgate");
  for (const char* program : {"usr/bin/perfgate", "usr/lib/perfgate/agent-service"}) {
    fs::permissions(dir.Write(program, "#!/bin/sh\n"), fs::perms::owner_all);
  }
  return root.string();
}

TEST(PackagingTest, UnitsPassSystemdVerifyAndTheCoordinatorIsSandboxedTightly) {
  if (RunCommand({"/usr/bin/env", "systemd-analyze", "--version"}).exit_code != 0)
    GTEST_SKIP() << "no systemd-analyze here";
  testing::TempDir dir;
  const std::string root = UnitRoot(dir);
  const std::string units = root + "/lib/systemd/system/";
  auto verify = RunCommand({"/usr/bin/env", "systemd-analyze", "--root=" + root, "verify",
                            units + "perfgate-coordinator.service", units + "perfgate-agent.service"});
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_EQ(verify.output, "");  // an unknown or misspelt directive is only a warning

  // `security` rates exposure from 0 (locked down) to 10; the agent must stay
  // open enough to run arbitrary cases on GPUs, the coordinator need not.
  for (auto [unit, most] : {std::pair{"perfgate-coordinator.service", 2.0}, std::pair{"perfgate-agent.service", 6.0}}) {
    auto security =
        RunCommand({"/usr/bin/env", "systemd-analyze", "--root=" + root, "security", "--offline=yes", units + unit});
    const std::string marker = std::string("Overall exposure level for ") + unit + ": ";
    const size_t at = security.output.find(marker);
    ASSERT_NE(at, std::string::npos) << security.output;
    EXPECT_LE(std::stod(security.output.substr(at + marker.size())), most) << security.output;
  }
}

// Runs packaging/agent-service.sh as a process of a fresh cgroup v2 group
// (the unit's, as systemd would make it) with a stand-in perfgate that prints
// its arguments and its own group. Exit 77 where that group cannot be made.
testing::CommandResult RunAgentService(const testing::TempDir& dir, bool in_own_group) {
  const std::string fake = dir.Write("perfgate", "#!/bin/sh\necho \"args: $*\"\ngrep '^0::' /proc/self/cgroup\n");
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  const std::string find_v2 =
      "v2=$(awk '{ for (i = 7; i < NF; i++) if ($i == \"-\") { if ($(i + 1) == \"cgroup2\" && $4 == \"/\") print $5; "
      "break } }' /proc/self/mountinfo | head -n 1)\n"
      "[ -n \"$v2\" ] && [ -w \"$v2/cgroup.procs\" ] || exit 77\n";
  // Not moved into the fresh group, the script would take the test's own group
  // for the unit's: that is checked only from the root group.
  const std::string from_root = "[ \"$(sed -n 's/^0:://p' /proc/self/cgroup)\" = / ] || exit 77\n";
  const std::string join = in_own_group ? "echo $$ >\"$1/cgroup.procs\"; " : "";
  const std::string script = absl::StrCat(
      find_v2, in_own_group ? "" : from_root, "g=\"$v2/perfgate-agent-service-test-$$\"; mkdir \"$g\" || exit 77\n",
      "PERFGATE_BINARY=", fake, " sh -c '", join, "exec \"$2\" --config /etc/perfgate/agent.conf' _ \"$g\" ",
      SourceDir(), "/packaging/agent-service.sh\n", "code=$?\n", "rmdir \"$g/agent\" 2>/dev/null; rmdir \"$g\"\n",
      "echo \"group: ${g#$v2}\"\n", "exit $code\n");
  return RunCommand({"/bin/sh", "-c", script});
}

TEST(PackagingTest, AgentServiceRunsTheAgentInALeafWithItsCasesBesideIt) {
  testing::TempDir dir;
  auto result = RunAgentService(dir, /*in_own_group=*/true);
  if (result.exit_code == 77) GTEST_SKIP() << "cannot make a cgroup v2 group here (needs root)";
  ASSERT_EQ(result.exit_code, 0) << result.output;
  const std::string group = result.output.substr(result.output.find("group: ") + 7, std::string::npos);
  const std::string unit = group.substr(0, group.find('\n'));
  EXPECT_THAT(result.output,
              HasSubstr("args: agent --cgroup-root " + unit + "/cases --config /etc/perfgate/agent.conf"));
  EXPECT_THAT(result.output, HasSubstr("0::" + unit + "/agent\n"));  // the unit's own group holds no process
}

TEST(PackagingTest, AgentServiceStartsTheAgentAsItIsWithoutADelegatedGroup) {
  testing::TempDir dir;
  auto result = RunAgentService(dir, /*in_own_group=*/false);
  if (result.exit_code == 77) GTEST_SKIP() << "cannot make a cgroup v2 group here (needs root)";
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, HasSubstr("args: agent --config /etc/perfgate/agent.conf\n"));
}

// The names of a job's or composite action's steps, in order.
std::vector<std::string> StepNames(const YAML::Node& steps) {
  std::vector<std::string> names;
  for (const auto& step : steps) names.push_back(step["name"].as<std::string>());
  return names;
}

TEST(PackagingTest, WorkflowBuildsThenGatesWithTheLabSecrets) {
  YAML::Node workflow = YAML::LoadFile(SourceDir() + "/.github/workflows/perfgate.yml");
  EXPECT_TRUE(workflow["on"]["pull_request"]);
  EXPECT_EQ(workflow["permissions"]["checks"].as<std::string>(), "write");
  YAML::Node steps = workflow["jobs"]["gate"]["steps"];
  EXPECT_THAT(StepNames(steps), ElementsAre("Check out", "Install dependencies", "Build", "Gate on the demo suite"));
  EXPECT_EQ(steps[0]["uses"].as<std::string>(), "actions/checkout@v4");
  YAML::Node gate = steps[3];
  EXPECT_EQ(gate["uses"].as<std::string>(), "./.github/actions/perfgate-gate");
  EXPECT_EQ(gate["with"]["coordinator"].as<std::string>(), "${{ secrets.PERFGATE_COORDINATOR }}");
  EXPECT_EQ(gate["with"]["token"].as<std::string>(), "${{ secrets.PERFGATE_TOKEN }}");
  EXPECT_EQ(gate["with"]["tls-ca"].as<std::string>(), "${{ secrets.PERFGATE_CA }}");
}

TEST(PackagingTest, CompositeActionGatesPublishesAndFailsOnTheVerdict) {
  YAML::Node action = YAML::LoadFile(SourceDir() + "/.github/actions/perfgate-gate/action.yml");
  EXPECT_EQ(action["runs"]["using"].as<std::string>(), "composite");
  YAML::Node steps = action["runs"]["steps"];
  EXPECT_THAT(StepNames(steps), ElementsAre("Run the gate", "Publish the JUnit report as a check",
                                            "Keep the JSON report", "Fail on the gate's verdict"));
  for (const auto& step : steps) {
    // GitHub refuses a composite action whose run steps name no shell.
    if (step["run"]) {
      EXPECT_EQ(step["shell"].as<std::string>(), "bash") << step["name"];
    }
    // Each `with:` refers only to inputs the action declares.
    for (const auto& env : step["env"]) {
      const std::string value = env.second.as<std::string>();
      const size_t at = value.find("inputs.");
      if (at == std::string::npos) continue;
      const std::string input = value.substr(at + 7, value.find(' ', at) - at - 7);
      EXPECT_TRUE(action["inputs"][input]) << input;
    }
  }
  EXPECT_TRUE(action["inputs"]["suite"]["required"].as<bool>());
  const std::string gate = steps[0]["run"].as<std::string>();
  EXPECT_THAT(gate, HasSubstr("--json \"$out/report.json\" --markdown \"$out/report.md\""));
  EXPECT_THAT(gate, HasSubstr("--junit \"$out/report.xml\""));
  EXPECT_EQ(steps[1]["uses"].as<std::string>(), "mikepenz/action-junit-report@v4");
  EXPECT_EQ(steps[2]["uses"].as<std::string>(), "actions/upload-artifact@v4");
  EXPECT_EQ(steps[1]["if"].as<std::string>(), steps[2]["if"].as<std::string>());
  EXPECT_THAT(steps[1]["if"].as<std::string>(), HasSubstr("always()"));  // a failed gate still publishes
}

// Runs the shell of one composite-action step as GitHub does (bash -eo
// pipefail, the step's env with expressions already substituted) in `dir`.
testing::CommandResult RunStep(const YAML::Node& step, const testing::TempDir& dir,
                               const std::map<std::string, std::string>& env) {
  const std::string script = dir.Write("step.sh", step["run"].as<std::string>());
  std::vector<std::string> argv = {"/usr/bin/env", "-C", dir.path()};
  for (const auto& [name, value] : env) argv.push_back(name + "=" + value);
  for (const char* arg : {"/bin/bash", "--noprofile", "--norc", "-eo", "pipefail"}) argv.push_back(arg);
  argv.push_back(script);
  return RunCommand(argv);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(PackagingTest, CompositeActionStepsGateWriteTheReportsAndFailWithTheVerdict) {
  YAML::Node steps = YAML::LoadFile(SourceDir() + "/.github/actions/perfgate-gate/action.yml")["runs"]["steps"];
  testing::TempDir dir;
  std::filesystem::create_directories(dir.File("runner-temp"));
  const std::string suite =
      dir.Write("s.yaml", "suite: s\ncases:\n  - name: t\n    command: [/bin/true]\n    repeats: 1\n");
  // Inputs as the workflow passes them from a fork: no coordinator, token or CA, so the gate runs embedded.
  auto gate = RunStep(steps[0], dir,
                      {{"PERFGATE", PerfgateBinary()},
                       {"PERFGATE_SUITE", suite},
                       {"PERFGATE_COORDINATOR", ""},
                       {"PERFGATE_TOKEN", ""},
                       {"PERFGATE_CA_PEM", ""},
                       {"PERFGATE_ARGS", "--state-dir\n" + dir.File("state") + "\n\n--local-agents\n1\n"},
                       {"PERFGATE_COMMIT", "c0ffee"},
                       {"PERFGATE_BRANCH", "pr-1"},
                       {"RUNNER_TEMP", dir.File("runner-temp")},
                       {"GITHUB_OUTPUT", dir.File("output")},
                       {"GITHUB_STEP_SUMMARY", dir.File("summary.md")}});
  ASSERT_EQ(gate.exit_code, 0) << gate.output;  // the verdict fails the last step, not this one
  const std::string report_dir = dir.File("runner-temp") + "/perfgate";
  EXPECT_THAT(ReadAll(dir.File("output")), HasSubstr("exit-code=0\nreport-dir=" + report_dir + "\n"));
  EXPECT_THAT(ReadAll(report_dir + "/report.json"), HasSubstr("\"commit\": \"c0ffee\""));
  EXPECT_THAT(ReadAll(report_dir + "/report.xml"), HasSubstr("<testsuite"));
  EXPECT_THAT(ReadAll(dir.File("summary.md")), HasSubstr("✅ perfgate passed"));  // the job's step summary

  for (auto [code, want] : {std::pair{"0", 0}, std::pair{"1", 1}, std::pair{"2", 2}, std::pair{"130", 130},
                            std::pair{"3", 3}, std::pair{"", 3}}) {
    EXPECT_EQ(RunStep(steps[3], dir, {{"CODE", code}}).exit_code, want) << "perfgate exit " << code;
  }
}

}  // namespace
}  // namespace perfgate
