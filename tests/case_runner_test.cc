#include "agent/case_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/host_fingerprint.h"
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
