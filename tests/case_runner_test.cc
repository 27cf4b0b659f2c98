#include "agent/case_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/cgroup.h"
#include "agent/host_fingerprint.h"
#include "agent/maker_tag.h"
#include "agent/run_supplies.h"
#include "core/judge.h"
#include "core/series.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

v1::CaseSpec Spec(const std::string& name, std::vector<std::string> argv, uint32_t repeats = 3) {
  v1::CaseSpec spec;
  spec.set_name(name);
  for (auto& a : argv) spec.add_argv(a);
  spec.set_repeats(repeats);
  spec.set_warmup(1);
  spec.set_timeout_ms(60'000);
  return spec;
}

const Series* Find(const std::vector<Series>& all, const std::string& metric, const std::string& benchmark = "") {
  for (const auto& s : all) {
    if (s.metric == metric && (benchmark.empty() || s.benchmark == benchmark)) return &s;
  }
  return nullptr;
}

TEST(CaseRunnerTest, WarmupIsNotRecordedAndEachRepeatIsASample) {
  testing::TempDir dir;
  const std::string count = dir.File("count");
  auto spec = Spec("count_runs", {"/bin/sh", "-c", "echo x >> " + count}, 4);
  spec.set_warmup(2);
  v1::CaseResult r = RunCase(spec, ProbeHost(), {});
  ASSERT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error();
  EXPECT_EQ(r.samples_size(), 4);
  auto series = CollectSeries(r);
  for (const char* metric : {kWallTime, kUserCpuTime, kSysCpuTime, kPeakRss}) {
    const Series* s = Find(series, metric);
    ASSERT_NE(s, nullptr) << metric;
    EXPECT_EQ(s->values.size(), 4u) << metric;
    EXPECT_EQ(s->benchmark, "count_runs");
  }
  auto lines = testing::RunCommand({"/usr/bin/wc", "-l", count});
  EXPECT_THAT(lines.output, HasSubstr("6 "));  // 2 warm-up + 4 measured runs happened
}

// With supplies (as in the agent) a case's scratch folder is made ahead and
// removed at the next Tidy(), while the agent waits for the coordinator, or
// reused if the case left it exactly as made: each case still starts in an
// empty folder of the agent's, mode 0700, and none is left.
TEST(CaseRunnerTest, SuppliedScratchFoldersAreFreshPerCaseAndRemovedByTidy) {
  // The folder the case ran in, and whether it found it empty.
  auto run = [](RunSupplies* supplies, const std::string& leave) -> std::pair<std::string, bool> {
    CaseRunOptions options;
    options.supplies = supplies;
    v1::CaseSpec spec = Spec("scratch",
                             {"/bin/sh", "-c",
                              "d=$(dirname \"$PERFGATE_RESULT_FILE\"); echo \"$d\"; "
                              "[ -z \"$(ls -A \"$d\")\" ] && [ $(stat -c %a \"$d\") = 700 ] && echo empty; " +
                                  leave},
                             1);
    spec.set_warmup(0);  // a warm-up run would leave its file behind for the sample to see
    v1::CaseResult r = RunCase(spec, ProbeHost(), options);
    EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error();
    const std::string out = r.stdout_tail();
    return {out.substr(0, out.find('\n')), out.find("\nempty\n") != std::string::npos};
  };
  testing::TempDir tmp;
  auto folders_in_tmp = [&] {
    return std::distance(std::filesystem::directory_iterator(tmp.path()), std::filesystem::directory_iterator());
  };
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved_tmpdir = old_tmpdir ? old_tmpdir : "";
  setenv("TMPDIR", tmp.path().c_str(), 1);
  {
    RunSupplies supplies(DefaultCgroupParent());
    supplies.Tidy();
    const auto [first, first_empty] = run(&supplies, "touch \"$d/left-behind\"");
    EXPECT_TRUE(first_empty);
    EXPECT_TRUE(std::filesystem::exists(first + "/left-behind")) << "removed at Tidy(), not before";
    supplies.Tidy();
    EXPECT_FALSE(std::filesystem::exists(first)) << first;
    const auto [second, second_empty] = run(&supplies, "touch \"$d/left-behind\"");
    EXPECT_NE(second, first);
    EXPECT_TRUE(second_empty) << second;
    supplies.Tidy();
    EXPECT_FALSE(std::filesystem::exists(second)) << second;
    const auto [third, third_empty] = run(&supplies, "true");
    EXPECT_TRUE(third_empty) << third;
    supplies.Tidy();
    EXPECT_TRUE(std::filesystem::is_empty(third)) << "left empty: may serve again, as it was made";
    const auto [fourth, fourth_empty] = run(&supplies, "chmod 755 \"$d\"");
    EXPECT_TRUE(fourth_empty) << fourth;
    supplies.Tidy();
    EXPECT_FALSE(std::filesystem::exists(fourth)) << "changed by its case, yet kept: " << fourth;
    EXPECT_EQ(folders_in_tmp(), static_cast<long>(RunSupplies::kSpares)) << "only the spares";
  }
  EXPECT_EQ(folders_in_tmp(), 0) << "a folder outlived the supplies";
  if (old_tmpdir)
    setenv("TMPDIR", saved_tmpdir.c_str(), 1);
  else
    unsetenv("TMPDIR");
}

// An agent killed with SIGKILL leaves its spare and retired folders behind;
// the next agent's supplies remove them, and only those of agents that are
// gone: exited, a zombie, or its pid now another process's. A folder of
// another pid namespace is never judged, nor one named otherwise.
TEST(CaseRunnerTest, SuppliesRemoveTheScratchFoldersOfAgentsThatAreGone) {
  testing::TempDir tmp;
  const pid_t gone = fork();
  if (gone == 0) _exit(0);
  ASSERT_GT(gone, 0);
  waitpid(gone, nullptr, 0);
  const pid_t zombie = fork();  // exited, not yet reaped
  if (zombie == 0) _exit(0);
  ASSERT_GT(zombie, 0);
  ASSERT_EQ(waitid(P_PID, zombie, nullptr, WEXITED | WNOWAIT), 0);
  const MakerTag self = OwnMakerTag();
  const auto tagged = [&](MakerTag tag) { return tmp.File("perfgate-case-" + ToString(tag) + "-AbC123"); };
  const std::vector<std::string> removed = {
      tmp.File("perfgate-case-" + std::to_string(gone) + "-AbC123"),  // named before tags: a pid
      tagged({self.pid_namespace, gone, 1}),
      tagged({self.pid_namespace, zombie, 1}),
      tagged({self.pid_namespace, self.pid, self.start_ticks + 1}),  // this pid, a later process
      tmp.File("perfgate-cases-" + ToString({self.pid_namespace, gone, 1}) + "-AbC123"),
  };
  const std::vector<std::string> kept = {
      tmp.File("perfgate-case-1-AbC123"),                       // init never exits
      tagged(self), tagged({self.pid_namespace + 1, gone, 1}),  // another namespace's pid means nothing here
      tmp.File("perfgate-case-AbC123"),                         // no pid: not ours to judge
  };
  for (const std::string& folder : removed) ASSERT_TRUE(std::filesystem::create_directory(folder)) << folder;
  for (const std::string& folder : kept) ASSERT_TRUE(std::filesystem::create_directory(folder)) << folder;
  std::ofstream(removed[0] + "/results") << "left behind";
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved_tmpdir = old_tmpdir ? old_tmpdir : "";
  setenv("TMPDIR", tmp.path().c_str(), 1);
  { RunSupplies supplies(DefaultCgroupParent()); }
  if (old_tmpdir)
    setenv("TMPDIR", saved_tmpdir.c_str(), 1);
  else
    unsetenv("TMPDIR");
  waitpid(zombie, nullptr, 0);
  for (const std::string& folder : removed) EXPECT_FALSE(std::filesystem::exists(folder)) << folder;
  for (const std::string& folder : kept) EXPECT_TRUE(std::filesystem::exists(folder)) << folder;
}

// /proc shows a process's start shifted by the reader's time namespace: a
// live agent in another one (unshare --time) reads a start other than its
// folders' tag says, as a later process on a reused pid would. Its folder
// stays: judged by its start, it went, with the run it served.
TEST(CaseRunnerTest, AnAgentInAnotherTimeNamespaceKeepsItsScratchFolders) {
  testing::Subprocess maker({"/usr/bin/unshare", "--time", "--boottime", "100000", "--fork", "--kill-child", "/bin/sh",
                             "-c", "echo tag $$ $(cut -d' ' -f22 /proc/$$/stat); exec sleep 300"});
  const std::optional<std::string> line = maker.WaitForLine("tag ", 30'000);
  if (!line) GTEST_SKIP() << "no time namespace here: " << maker.output();
  pid_t pid = 0;
  unsigned long long start = 0;
  ASSERT_EQ(sscanf(line->c_str(), "tag %d %llu", &pid, &start), 2) << *line;
  testing::TempDir tmp;
  const std::string folder =
      tmp.File("perfgate-case-" + ToString({OwnMakerTag().pid_namespace, pid, start}) + "-AbC123");
  ASSERT_TRUE(std::filesystem::create_directory(folder));
  const char* old_tmpdir = std::getenv("TMPDIR");
  const std::string saved_tmpdir = old_tmpdir ? old_tmpdir : "";
  setenv("TMPDIR", tmp.path().c_str(), 1);
  RemoveStaleScratchFolders();
  if (old_tmpdir)
    setenv("TMPDIR", saved_tmpdir.c_str(), 1);
  else
    unsetenv("TMPDIR");
  EXPECT_TRUE(std::filesystem::exists(folder)) << "a live agent's, in another time namespace";
}

TEST(CaseRunnerTest, CallgrindInstructionCountsAreDeterministic) {
  auto spec = Spec("spin", {testing::CaseBinary("spin"), "100000"}, 3);
  spec.set_instructions(v1::INSTRUCTION_COUNTER_CALLGRIND);
  v1::CaseResult r = RunCase(spec, ProbeHost(), {});
  ASSERT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error();
  const auto series = CollectSeries(r);
  const Series* s = Find(series, kCallgrindInstructions);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->source, "agent:callgrind");
  ASSERT_EQ(s->values.size(), 3u);
  EXPECT_GT(s->values[0], 100000 * 5);  // several instructions per round
  EXPECT_EQ(s->values[0], s->values[1]);
  EXPECT_EQ(s->values[1], s->values[2]);
  EXPECT_THAT(r.notes(0), HasSubstr("callgrind"));
}

// Callgrind starts over in a process that execs: what the case ran before
// its exec was written nowhere, and a wrapper's regression went uncounted.
TEST(CaseRunnerTest, CallgrindCountsWhatAProcessRanBeforeItExeced) {
  const std::string spin = testing::CaseBinary("spin");
  auto direct = Spec("direct", {spin, "1000"}, 1);
  direct.set_instructions(v1::INSTRUCTION_COUNTER_CALLGRIND);
  // The shell's loop runs before it execs spin (exec: no fork).
  auto wrapped =
      Spec("wrapped", {"/bin/sh", "-c", "i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done; exec " + spin + " 1000"}, 1);
  wrapped.set_instructions(v1::INSTRUCTION_COUNTER_CALLGRIND);
  v1::CaseResult alone = RunCase(direct, ProbeHost(), {});
  v1::CaseResult after_loop = RunCase(wrapped, ProbeHost(), {});
  ASSERT_EQ(alone.outcome(), v1::CaseResult::OUTCOME_OK) << alone.error();
  ASSERT_EQ(after_loop.outcome(), v1::CaseResult::OUTCOME_OK) << after_loop.error();
  const auto alone_series = CollectSeries(alone);
  const auto wrapped_series = CollectSeries(after_loop);
  const Series* a = Find(alone_series, kCallgrindInstructions);
  const Series* w = Find(wrapped_series, kCallgrindInstructions);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(w, nullptr);
  // 5,000 rounds of the shell's loop are millions of instructions; spin 1000 is a few hundred thousand.
  EXPECT_GT(w->values[0], a->values[0] + 5000 * 200) << "the shell's loop before its exec is counted";

  // Children forked after the loop start with the shell's counts: counted
  // again in each child's profile before its exec, the loop read 2 and 3
  // times over. The children's own work is sized to dwarf what the shell's
  // loop costs more or less with the command's length (its buffers move:
  // some 300 k instructions either way, and the spin path differs by host).
  auto child = Spec("child", {spin, "1000000"}, 1);
  child.set_instructions(v1::INSTRUCTION_COUNTER_CALLGRIND);
  auto forked = Spec("forked",
                     {"/bin/sh", "-c",
                      absl::StrCat("i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done; ", spin, " 1000000; ", spin,
                                   " 1000000; exec ", spin, " 1000")},
                     1);
  forked.set_instructions(v1::INSTRUCTION_COUNTER_CALLGRIND);
  v1::CaseResult one_child = RunCase(child, ProbeHost(), {});
  v1::CaseResult with_children = RunCase(forked, ProbeHost(), {});
  ASSERT_EQ(one_child.outcome(), v1::CaseResult::OUTCOME_OK) << one_child.error();
  ASSERT_EQ(with_children.outcome(), v1::CaseResult::OUTCOME_OK) << with_children.error();
  const auto child_series = CollectSeries(one_child);
  const auto forked_series = CollectSeries(with_children);
  const Series* c = Find(child_series, kCallgrindInstructions);
  const Series* f = Find(forked_series, kCallgrindInstructions);
  ASSERT_NE(c, nullptr);
  ASSERT_NE(f, nullptr);
  const double loop = w->values[0] - a->values[0];
  ASSERT_GT(c->values[0], loop / 20) << "each child's work is far above the loop's noise";
  EXPECT_GT(f->values[0], w->values[0] + 1.5 * c->values[0]) << "the two children are counted";
  EXPECT_LT(f->values[0], w->values[0] + 2 * c->values[0] + loop / 2) << "the loop is counted once";
}

// What a case left running when it ended is killed then; the result says
// so, since whatever those processes would still have reported is lost.
TEST(CaseRunnerTest, ProcessesLeftRunningAreKilledAndTheResultSaysSo) {
  auto spec = Spec("late", {"/bin/sh", "-c", "sleep 30 & echo started"}, 2);
  v1::CaseResult r = RunCase(spec, ProbeHost(), {});
  ASSERT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error();
  bool said = false;
  for (const auto& note : r.notes()) said |= absl::StrContains(note, "left processes running when it ended, in 2 of 2");
  EXPECT_TRUE(said) << "notes: " << absl::StrJoin(r.notes(), " | ");

  auto clean = Spec("clean", {"/bin/sh", "-c", "sleep 0 & wait"}, 2);
  v1::CaseResult quiet = RunCase(clean, ProbeHost(), {});
  ASSERT_EQ(quiet.outcome(), v1::CaseResult::OUTCOME_OK) << quiet.error();
  for (const auto& note : quiet.notes()) EXPECT_THAT(note, ::testing::Not(HasSubstr("left processes")));
}

TEST(CaseRunnerTest, AutoCounterSaysWhichInstrumentItUsed) {
  auto spec = Spec("spin", {testing::CaseBinary("spin"), "1000"}, 1);
  spec.set_instructions(v1::INSTRUCTION_COUNTER_AUTO);
  v1::CaseResult r = RunCase(spec, ProbeHost(), {});
  ASSERT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error();
  const auto series = CollectSeries(r);
  const Series* s = Find(series, kInstructions);
  if (!s) s = Find(series, kCallgrindInstructions);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->metric, s->source == "agent:perf" ? kInstructions : kCallgrindInstructions);
  ASSERT_EQ(r.notes_size(), 1);
  EXPECT_THAT(r.notes(0), HasSubstr(s->source == "agent:perf" ? "hardware counter" : "callgrind"));
}

TEST(CaseRunnerTest, PytorchResultFileBecomesSampleValues) {
  auto spec = Spec("harmonic", {testing::CaseBinary("pytorch_style"), "${PERFGATE_RESULT_FILE}"}, 2);
  spec.set_result_format(v1::RESULT_FORMAT_PYTORCH_CSV);
  spec.set_result_source(v1::RESULT_SOURCE_FILE);
  v1::CaseResult r = RunCase(spec, ProbeHost(), {});
  ASSERT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error();
  const auto series = CollectSeries(r);
  const Series* s = Find(series, "iterations", "harmonic_sum");
  ASSERT_NE(s, nullptr);
  // The file is fresh for each sample: one value per run, not an accumulation.
  EXPECT_EQ(s->values, (std::vector<double>{1999999, 1999999}));
}

TEST(CaseRunnerTest, UnparsableOutputIsAnErrorNotAZero) {
  auto spec = Spec("bad_output", {"/bin/echo", "not,a"}, 1);
  spec.set_result_format(v1::RESULT_FORMAT_PYTORCH_CSV);
  v1::CaseResult r = RunCase(spec, ProbeHost(), {});
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_ERROR);
  EXPECT_THAT(r.error(), HasSubstr("sample 1 stdout:1: expected a PyTorch result line"));
}

TEST(CaseRunnerTest, FailuresCarryTheirCause) {
  v1::CaseResult r = RunCase(Spec("fails", {"/bin/sh", "-c", "echo oops >&2; exit 4"}), ProbeHost(), {});
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_FAILED);
  EXPECT_EQ(r.exit_code(), 4);
  EXPECT_THAT(r.error(), HasSubstr("warm-up run 1: exit 4"));
  EXPECT_EQ(r.stderr_tail(), "oops\n");

  auto slow = Spec("slow", {"/bin/sleep", "30"});
  slow.set_warmup(0);
  slow.set_timeout_ms(100);
  CaseRunOptions options;
  options.kill_grace_ms = 100;
  r = RunCase(slow, ProbeHost(), options);
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_TIMED_OUT);

  r = RunCase(Spec("unset_var", {"/bin/echo", "${PERFGATE_SURELY_UNSET}"}), ProbeHost(), {});
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_ERROR);
  EXPECT_THAT(r.error(), HasSubstr("${PERFGATE_SURELY_UNSET} is not set on this agent"));

  setenv("PERFGATE_TOKEN", "secret-token", 1);  // the agent's own: never expanded into a case's command
  r = RunCase(Spec("token", {"/bin/echo", "${PERFGATE_TOKEN}"}), ProbeHost(), {});
  unsetenv("PERFGATE_TOKEN");
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_ERROR);
  EXPECT_THAT(r.error(), HasSubstr("${PERFGATE_TOKEN} is not set on this agent"));
  EXPECT_THAT(r.stdout_tail(), ::testing::Not(HasSubstr("secret-token")));
}

TEST(CaseRunnerTest, GpuCaseIsSkippedWithAReasonOnAHostWithoutGpu) {
  auto spec = Spec("gpu_case", {"/bin/true"});
  spec.mutable_requirements()->set_device(v1::Requirements::DEVICE_GPU);
  v1::HostFingerprint host;  // no GPUs
  host.set_gpu_note("no driver");
  v1::CaseResult r = RunCase(spec, host, {});
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_SKIPPED);
  EXPECT_THAT(r.error(), HasSubstr("needs a GPU; host has none (no driver)"));
  EXPECT_EQ(r.samples_size(), 0);
}

TEST(CaseRunnerTest, PeakMemoryNamesTheInstrumentThatMeasuredIt) {
  const v1::HostFingerprint host = ProbeHost();
  v1::CaseResult r = RunCase(Spec("true", {"/bin/true"}, 2), host, {});
  ASSERT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error();
  const auto series = CollectSeries(r);
  const Series* peak = Find(series, kPeakRss);
  ASSERT_NE(peak, nullptr);
  EXPECT_EQ(peak->source, MemorySourceName(DefaultCgroupParent().memory_source()));
  EXPECT_EQ(peak->values.size(), 2u);
  EXPECT_EQ(host.memory_note(), DefaultCgroupParent().description());
  EXPECT_THAT(host.memory_note(), HasSubstr("peak memory: "));
}

// A main-branch history of peak_rss measured by rusage (the agent's RSS
// included) must not judge a value measured by the case's cgroup.
TEST(CaseRunnerTest, PeakMemoryIsNeverComparedAcrossInstruments) {
  if (DefaultCgroupParent().memory_source() == MemorySource::kRusage) {
    GTEST_SKIP() << "no cgroup can be made here: " << DefaultCgroupParent().description();
  }
  v1::Run run;
  auto* status = run.add_cases();
  status->set_name("true");
  status->set_state(v1::CASE_STATE_DONE);
  *status->mutable_result() = RunCase(Spec("true", {"/bin/true"}, 3), ProbeHost(), {});
  status->mutable_result()->set_pool("lab");
  ASSERT_EQ(status->result().outcome(), v1::CaseResult::OUTCOME_OK) << status->result().error();
  const std::string source = MemorySourceName(DefaultCgroupParent().memory_source());
  auto verdict_with_history_from = [&](const std::string& history_source) {
    Baselines baselines;
    baselines.history[{"lab", "true", kPeakRss, history_source}] = std::vector<double>(10, 16.0 * (1 << 20));
    GateReport report = BuildGateReport(run, baselines, Policy{});
    for (const auto& m : report.cases.at(0).metrics) {
      if (m.series.metric == kPeakRss) return m.verdict;
    }
    return Verdict::kMissingResult;
  };
  EXPECT_EQ(verdict_with_history_from("agent:rusage"), Verdict::kNoBaseline);
  EXPECT_EQ(verdict_with_history_from(source), Verdict::kImprovement) << "the same instrument is compared";
}

// What a user sees: `perfgate run --json` on /bin/true and on a case that
// touches 256 MiB. The old rusage read 15-21 MiB for /bin/true: the agent's
// own resident set.
TEST(CaseRunnerTest, PerfgateRunReportsTheCasesOwnPeakMemory) {
  const std::string root = "perfgate-test-" + std::to_string(getpid());
  const CgroupParent groups = CgroupParent::Detect(root);
  if (groups.memory_source() == MemorySource::kRusage) {
    groups.RemoveParents();
    GTEST_SKIP() << "no cgroup can be made here: " << groups.description();
  }
  testing::TempDir dir;
  const std::string suite = dir.Write("memory.yaml",
                                      "suite: memory\n"
                                      "defaults: {warmup: 0, repeats: 3, timeout: 60s}\n"
                                      "cases:\n"
                                      "  - name: bin_true\n"
                                      "    command: [/bin/true]\n"
                                      "  - name: touch_256mib\n"
                                      "    command: [\"" +
                                          testing::CaseBinary("alloc") + "\", \"256\"]\n");
  const std::string json = dir.File("run.json");
  auto run = testing::RunCommand({testing::PerfgateBinary(), "run", suite, "--cgroup-root", root, "--json", json});
  groups.RemoveParents();
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr(groups.description()));
  std::ifstream in(json);
  const auto doc = nlohmann::json::parse(in);
  std::map<std::string, nlohmann::json> peaks;
  for (const auto& c : doc["cases"]) {
    for (const auto& m : c["metrics"]) {
      if (m["metric"] == kPeakRss) peaks[c["name"]] = m;
    }
  }
  ASSERT_EQ(peaks.size(), 2u) << run.output;
  constexpr double kMiB = 1 << 20;
  for (const auto& [name, m] : peaks) {
    EXPECT_EQ(m["source"], MemorySourceName(groups.memory_source())) << name;
    EXPECT_EQ(m["samples"].size(), 3u) << name;
  }
  for (double v : peaks["bin_true"]["samples"]) EXPECT_LE(v, 4 * kMiB);
  for (double v : peaks["touch_256mib"]["samples"]) {
    EXPECT_GE(v, 256 * kMiB * 0.95);
    EXPECT_LE(v, 256 * kMiB * 1.05);
  }
}

TEST(HostFingerprintTest, DescribesThisMachine) {
  v1::HostFingerprint host = ProbeHost();
  EXPECT_GT(host.cpu_cores(), 0u);
  EXPECT_GT(host.memory_bytes(), 0u);
  EXPECT_FALSE(host.kernel().empty());
  EXPECT_FALSE(host.instruction_counter_note().empty());
  if (host.gpus_size() == 0) {
    EXPECT_FALSE(host.gpu_note().empty()) << "no GPUs must come with a reason";
  }
}

}  // namespace
}  // namespace perfgate
