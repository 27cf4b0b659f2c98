// Directions come from the table or the suite, never from a metric's name;
// metrics of the instrument and too-short wall times are shown, not judged.
#include "core/metric_traits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/judge.h"
#include "core/suite.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

TEST(MetricTraitsTest, BuiltInDirections) {
  const MetricDeclarations none;
  for (const char* lower : {"wall_time", "peak_rss", "instructions", "instructions_callgrind",
                            "compile_time_instruction_count", "instruction_count", "real_time", "cpu_time"}) {
    EXPECT_EQ(TraitsOf(lower, "", none).direction, Direction::kLowerIsBetter) << lower;
  }
  for (const char* higher : {"bytes_per_second", "items_per_second"}) {
    EXPECT_EQ(TraitsOf(higher, "case:gbench", none).direction, Direction::kHigherIsBetter) << higher;
  }
}

TEST(MetricTraitsTest, RateCounterIsUnknownUntilDeclared) {
  // A Google Benchmark kIsRate user counter: nothing in its name says which way is better.
  EXPECT_EQ(TraitsOf("elem_rate", "case:gbench", {}).direction, Direction::kUnknown);
  EXPECT_EQ(TraitsOf("throughput_ratio", "case:pytorch", {}).direction, Direction::kUnknown);
  const MetricDeclarations declared = {{"elem_rate", {Direction::kHigherIsBetter, "1/s"}}};
  EXPECT_EQ(TraitsOf("elem_rate", "case:gbench", declared).direction, Direction::kHigherIsBetter);
  EXPECT_EQ(UnitOf("elem_rate", "", declared), "1/s");
  EXPECT_EQ(UnitOf("other", "s", declared), "s");
  auto why = ShownOnlyReason("elem_rate", "case:gbench", 1e6, false, {});
  ASSERT_TRUE(why);
  EXPECT_THAT(*why, HasSubstr("direction unknown: declare it under metrics:"));
  EXPECT_FALSE(ShownOnlyReason("elem_rate", "case:gbench", 1e6, false, declared));
}

TEST(MetricTraitsTest, InstrumentMetricsAreNeverJudged) {
  for (const char* cpu : {"user_cpu_time", "sys_cpu_time"}) {
    auto why = ShownOnlyReason(cpu, "agent:rusage", 1.0, /*listed=*/true, {});
    ASSERT_TRUE(why) << cpu;
    EXPECT_THAT(*why, HasSubstr("scheduler ticks"));
  }
  auto valgrind = ShownOnlyReason("wall_time", "agent:callgrind", 1.0, /*listed=*/true, {});
  ASSERT_TRUE(valgrind);
  EXPECT_THAT(*valgrind, HasSubstr("under callgrind"));
  EXPECT_FALSE(ShownOnlyReason("instructions_callgrind", "agent:callgrind", 2e6, false, {}));
}

TEST(MetricTraitsTest, ShortWallTimeIsShownUnlessListed) {
  auto why = ShownOnlyReason("wall_time", "agent:clock", 0.004, /*listed=*/false, {});
  ASSERT_TRUE(why);
  EXPECT_THAT(*why, HasSubstr("too short to judge"));
  EXPECT_FALSE(ShownOnlyReason("wall_time", "agent:clock", 0.004, /*listed=*/true, {}));
  EXPECT_FALSE(ShownOnlyReason("wall_time", "agent:clock", kShortestJudgedWallTime, false, {}));
  // Case-reported times are averaged by the case itself (Google Benchmark): no floor.
  EXPECT_FALSE(ShownOnlyReason("real_time", "case:gbench", 1e-6, false, {}));
}

// One case with one metric from `source`, one sample per value, on testbed "lab".
v1::Run RunWith(const std::string& metric, const std::string& source, const std::vector<double>& values) {
  v1::Run run;
  run.set_state(v1::RUN_STATE_FINISHED);
  auto* c = run.add_cases();
  c->set_name("t");
  c->set_state(v1::CASE_STATE_DONE);
  c->mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  c->mutable_result()->set_pool("lab");
  for (double v : values) {
    auto* value = c->mutable_result()->add_samples()->add_values();
    value->set_benchmark("t");
    value->set_metric(metric);
    value->set_value(v);
    value->set_source(source);
  }
  return run;
}

TEST(MetricTraitsReportTest, ALoadedRunOfAShortCaseIsStillTooShortToJudge) {
  // History says 4 ms; this run took 30 ms because the machine was busy.
  // Judged by its own median alone it would be a +650% "regression".
  Baselines b;
  b.history[{"lab", "t", "wall_time", "agent:clock"}] = {0.004, 0.0041, 0.0039, 0.004, 0.0042};
  GateReport r = BuildGateReport(RunWith("wall_time", "agent:clock", {0.03, 0.031, 0.029}), b, Policy{});
  ASSERT_EQ(r.cases[0].metrics.size(), 1u);
  EXPECT_FALSE(r.cases[0].metrics[0].comparison);
  EXPECT_THAT(r.cases[0].metrics[0].note, HasSubstr("too short to judge"));
  EXPECT_TRUE(r.passed);
  // Listed under judge:, the suite asks for it: then it is judged.
  Policy listed;
  listed.judged_metrics["t"] = {"wall_time"};
  EXPECT_EQ(BuildGateReport(RunWith("wall_time", "agent:clock", {0.03, 0.031, 0.029}), b, listed).cases[0].verdict,
            Verdict::kRegression);
}

// The report of case t's `row.metric` read as `values` by `source`, against
// an expected file of `row` alone on pool lab.
GateReport AgainstRow(const ExpectedRow& row, const std::string& source, const std::vector<double>& values) {
  Baselines b;
  b.expected["lab"] = {row};
  return BuildGateReport(RunWith(row.metric, source, values), b, Policy{});
}

TEST(MetricTraitsReportTest, AShortCaseThatNowTakesHalfASecondIsJudged) {
  // Its baseline says 5 ms, and that alone kept a 100x slowdown from being judged.
  Baselines b;
  b.expected["lab"] = {ExpectedRow{"t", "wall_time", 0.005, 0.1, 1}};
  GateReport r = AgainstRow(b.expected["lab"][0], "agent:clock", {0.5, 0.502, 0.501});
  EXPECT_EQ(r.cases[0].verdict, Verdict::kRegression);
  EXPECT_FALSE(r.passed);
  // Against a history, just under the bound it is still the short case a loaded machine stretched.
  Baselines history;
  history.history[{"lab", "t", "wall_time", "agent:clock"}] = std::vector<double>(10, 0.005);
  EXPECT_FALSE(BuildGateReport(RunWith("wall_time", "agent:clock", {0.09, 0.091}), history, Policy{})
                   .cases[0]
                   .metrics[0]
                   .comparison);
  // A row asks for it to be judged, as a judge: entry does: 4 ms -> 90 ms is a regression.
  EXPECT_EQ(BuildGateReport(RunWith("wall_time", "agent:clock", {0.09, 0.091}), b, Policy{}).cases[0].verdict,
            Verdict::kRegression);
  EXPECT_EQ(SpanJudgedForShortness(0.03, 0.004), 0.004);
  EXPECT_EQ(SpanJudgedForShortness(kShortBaselineJudgedFrom, 0.004), kShortBaselineJudgedFrom);
  EXPECT_EQ(SpanJudgedForShortness(0.004, std::nullopt), 0.004);
}

TEST(MetricTraitsReportTest, AWallTimeTheCaseTimedItselfIsJudgedAtAnyLength) {
  // PyTorch-style benchmarks time themselves in process: no spawn in it.
  EXPECT_FALSE(TraitsOf("wall_time", "case:pytorch", {}).process_wall_time);
  EXPECT_TRUE(TraitsOf("wall_time", "agent:clock", {}).process_wall_time);
  Baselines b;
  b.expected["lab"] = {ExpectedRow{"t", "wall_time", 0.005, 0.1, 1}};
  GateReport r = BuildGateReport(RunWith("wall_time", "case:pytorch", {0.008, 0.008}), b, Policy{});
  EXPECT_EQ(r.cases[0].verdict, Verdict::kRegression);
}

TEST(MetricTraitsReportTest, UnknownDirectionIsShownWithAWarningNotJudged) {
  // A rate counter at half its history: the old name-guessing judged it
  // "lower is better" and called this an improvement.
  Baselines history;
  history.history[{"lab", "t", "elem_rate", "case:gbench"}] = {1000, 1001, 999, 1000, 1002};
  GateReport r = BuildGateReport(RunWith("elem_rate", "case:gbench", {500}), history, Policy{});
  EXPECT_FALSE(r.cases[0].metrics[0].comparison);
  EXPECT_THAT(r.cases[0].metrics[0].note, HasSubstr("direction unknown: declare it under metrics:"));
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_THAT(r.warnings.back(), HasSubstr("direction unknown: declare it under metrics: for t elem_rate"));
  // A row of an expected file asks for the metric to be gated: one that no
  // direction can judge is an error, not a pass whatever the change.
  Baselines b;
  b.expected["lab"] = {ExpectedRow{"t", "elem_rate", 1000, 0.1, 7}};
  GateReport row = BuildGateReport(RunWith("elem_rate", "case:gbench", {500}), b, Policy{});
  EXPECT_EQ(row.cases[0].verdict, Verdict::kError);
  EXPECT_FALSE(row.passed);
  EXPECT_THAT(row.cases[0].metrics[0].note, HasSubstr("row for elem_rate (line 7) but its direction is unknown"));
  Policy declared;
  declared.compare.declared["elem_rate"] = {Direction::kHigherIsBetter, "1/s"};
  GateReport d = BuildGateReport(RunWith("elem_rate", "case:gbench", {500}), b, declared);
  EXPECT_EQ(d.cases[0].verdict, Verdict::kRegression);
  EXPECT_EQ(d.cases[0].metrics[0].series.unit, "1/s");
}

// PyTorch's benchmark_base.py with enable_instruction_count writes rows
// NAME,instruction_count,N, as perfgate's region counter does: judged
// against the expected file like check_results.py does, lower is better.
TEST(MetricTraitsReportTest, PytorchsInstructionCountRowsAreJudged) {
  Baselines b;
  b.expected["lab"] = {ExpectedRow{"t", "instruction_count", 1'000'000, 0.015, 1}};
  GateReport r = BuildGateReport(RunWith("instruction_count", "case:pytorch", {1'500'000}), b, Policy{});
  EXPECT_EQ(r.cases[0].verdict, Verdict::kRegression);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(BuildGateReport(RunWith("instruction_count", "agent:callgrind", {1'010'000}), b, Policy{}).cases[0].verdict,
            Verdict::kPass);
}

// A case's judge: list names what history and A/B judge; a row of an
// expected file for one of its other metrics is still gated (it was
// ignored, and a 50% regression passed).
TEST(MetricTraitsReportTest, AnExpectedRowIsJudgedWhateverTheCasesJudgeList) {
  Baselines b;
  b.expected["lab"] = {ExpectedRow{"t", "compile_time_instruction_count", 1000, 0.01, 1}};
  Policy memory_only;
  memory_only.judged_metrics["t"] = {"peak_rss"};
  GateReport r = BuildGateReport(RunWith("compile_time_instruction_count", "case:pytorch", {1500}), b, memory_only);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kRegression);
  EXPECT_TRUE(r.cases[0].metrics[0].judged);
  EXPECT_FALSE(r.passed);
  // Without a row the list still decides.
  GateReport unlisted =
      BuildGateReport(RunWith("compile_time_instruction_count", "case:pytorch", {1500}), Baselines{}, memory_only);
  EXPECT_FALSE(unlisted.cases[0].metrics[0].judged);
}

TEST(MetricTraitsTest, CgroupPeakMemoryResolvesTwoChargeBatches) {
  EXPECT_EQ(kCgroupPeakMemoryResolution, 512 * 1024);
  EXPECT_EQ(TraitsOf("peak_rss", "agent:cgroup-v1", {}).resolution, kCgroupPeakMemoryResolution);
  EXPECT_EQ(TraitsOf("peak_rss", "agent:cgroup-v2", {}).resolution, kCgroupPeakMemoryResolution);
  // ru_maxrss counts the pages themselves: no batches.
  EXPECT_EQ(TraitsOf("peak_rss", "agent:rusage", {}).resolution, 0);
  EXPECT_EQ(TraitsOf("wall_time", "agent:clock", {}).resolution, 0);
}

TEST(MetricTraitsReportTest, PeakMemoryWithinTheChargeBatchesIsNoChange) {
  // A 256 KiB case read 256 KiB in ten main-branch runs and 400 KiB now: the
  // kernel charged a second CPU's batch, not the case (seen in
  // bench/gate_error_rates: main-branch runs failed on exactly this).
  constexpr double kKiB = 1024;
  const std::vector<double> now = {400 * kKiB, 404 * kKiB, 256 * kKiB, 408 * kKiB, 412 * kKiB};
  auto report = [&](const std::string& source, const std::vector<double>& values) {
    Baselines b;
    b.history[{"lab", "t", "peak_rss", source}] = std::vector<double>(10, 256 * kKiB);
    v1::Run run = RunWith("peak_rss", source, values);
    for (auto& sample : *run.mutable_cases(0)->mutable_result()->mutable_samples()) {
      sample.mutable_values(0)->set_unit("bytes");
    }
    return BuildGateReport(run, b, Policy{});
  };
  const GateReport within = report("agent:cgroup-v1", now);
  ASSERT_EQ(within.cases[0].metrics.size(), 1u);
  ASSERT_TRUE(within.cases[0].metrics[0].comparison);
  EXPECT_EQ(within.cases[0].metrics[0].verdict, Verdict::kPass);
  EXPECT_THAT(within.cases[0].metrics[0].note, HasSubstr("within the instrument's resolution (512 KiB)"));
  EXPECT_TRUE(within.passed);
  // A change the counter can resolve still fails.
  EXPECT_EQ(report("agent:cgroup-v2", {1024 * kKiB}).cases[0].verdict, Verdict::kRegression);
  // ru_maxrss holds the agent's own resident set (/bin/true read 14.9 MiB): shown, never judged.
  const GateReport rusage = report("agent:rusage", {4096 * kKiB});
  EXPECT_FALSE(rusage.cases[0].metrics[0].comparison);
  EXPECT_THAT(rusage.cases[0].metrics[0].note, HasSubstr("includes the agent's own resident set"));
}

// Rows for metrics that are only ever shown were dropped after their
// comparison: +2200% user CPU time against its row passed as "no baseline".
TEST(MetricTraitsReportTest, ARowForAMetricThatIsNeverJudgedIsAnErrorNamingItsLine) {
  GateReport r = AgainstRow(ExpectedRow{"t", "user_cpu_time", 0.01, 0.1, 7}, "agent:rusage", {0.23, 0.23, 0.23});
  EXPECT_EQ(r.cases[0].verdict, Verdict::kError);
  EXPECT_FALSE(r.passed);
  EXPECT_THAT(r.cases[0].metrics[0].note, HasSubstr("row for user_cpu_time (line 7), which cannot be judged here"));
  EXPECT_EQ(AgainstRow(ExpectedRow{"t", "peak_rss", 20e6, 0.1, 3}, "agent:rusage", {14e6}).cases[0].verdict,
            Verdict::kError)
      << "a row made on a cgroup agent, read on one without: another instrument";
}

TEST(MetricTraitsReportTest, ATimedMetricThatDriftsWithTheLoadIsNoRegression) {
  // steady_kernel's kernel_cpu_min strays ~0.2% from run to run, and read
  // +2.0% on unchanged code when the load rose (bench/gate_error_rates): the
  // time floor, not the 1% count floor, applies to a metric declared in seconds.
  Baselines b;
  const std::vector<double> history = {1.000, 1.002, 0.998, 1.001, 0.999, 1.000, 1.002, 0.998, 1.001, 1.000};
  b.history[{"lab", "t", "kernel_cpu_min", "case:pytorch"}] = history;
  b.history[{"lab", "t", "iterations", "case:pytorch"}] = history;
  Policy policy;
  policy.compare.declared["kernel_cpu_min"] = {Direction::kLowerIsBetter, "s"};
  policy.compare.declared["iterations"] = {Direction::kLowerIsBetter, "count"};
  const GateReport timed = BuildGateReport(RunWith("kernel_cpu_min", "case:pytorch", {1.02, 1.02, 1.02}), b, policy);
  ASSERT_TRUE(timed.cases[0].metrics[0].comparison);
  EXPECT_EQ(timed.cases[0].verdict, Verdict::kPass);
  EXPECT_DOUBLE_EQ(timed.cases[0].metrics[0].comparison->threshold, 0.05);
  EXPECT_EQ(BuildGateReport(RunWith("kernel_cpu_min", "case:pytorch", {1.1, 1.1, 1.1}), b, policy).cases[0].verdict,
            Verdict::kRegression);
  EXPECT_EQ(BuildGateReport(RunWith("iterations", "case:pytorch", {1.02, 1.02, 1.02}), b, policy).cases[0].verdict,
            Verdict::kRegression)
      << "a count that moves 2% is 2% more work";
}

TEST(MetricTraitsTest, DirectionNamesRoundTrip) {
  for (Direction d : {Direction::kLowerIsBetter, Direction::kHigherIsBetter}) {
    EXPECT_EQ(ParseDirection(DirectionName(d)), d);
  }
  EXPECT_EQ(ParseDirection("unknown"), std::nullopt);
  EXPECT_EQ(ParseDirection("up"), std::nullopt);
}

TEST(SuiteMetricsTest, DeclaredMetricsAreLoaded) {
  auto suite = ParseSuite(
      "suite: s\nmetrics:\n  elem_rate: {better: higher, unit: 1/s}\n  latency: {better: lower}\n"
      "cases:\n  - name: a\n    command: [/bin/true]\n",
      "s.yaml", "/tmp");
  ASSERT_TRUE(suite.ok()) << suite.status();
  const MetricDeclarations declared = DeclaredMetrics(*suite);
  ASSERT_EQ(declared.size(), 2u);
  EXPECT_EQ(declared.at("elem_rate").better, Direction::kHigherIsBetter);
  EXPECT_EQ(declared.at("elem_rate").unit, "1/s");
  EXPECT_EQ(declared.at("latency").better, Direction::kLowerIsBetter);
}

TEST(SuiteMetricsTest, BadDeclarationsNameFileLineAndColumn) {
  auto bad = [](const std::string& metrics) {
    auto s = ParseSuite("suite: s\nmetrics:\n" + metrics + "cases:\n  - name: a\n    command: [/bin/true]\n",
                        "s.yaml", "/tmp");
    return s.ok() ? std::string("ok") : std::string(s.status().message());
  };
  EXPECT_EQ(bad("  elem_rate: {better: up}\n"), "s.yaml:3:23: metrics.elem_rate.better must be 'lower' or 'higher', got 'up'");
  EXPECT_THAT(bad("  elem_rate: {unit: 1/s}\n"), HasSubstr("s.yaml:3:14: metrics.elem_rate needs 'better: lower'"));
  EXPECT_THAT(bad("  elem_rate: {better: higher, units: 1/s}\n"),
              HasSubstr("s.yaml:3:31: unknown key 'units' in metrics.elem_rate; did you mean 'unit'?"));
  EXPECT_THAT(bad("  elem_rate: higher\n"), HasSubstr("s.yaml:3:14: metrics.elem_rate must be a map"));
  // A built-in is declared as it is or not at all: `better: higher` passed a 4x slowdown as an improvement.
  EXPECT_THAT(bad("  wall_time: {better: higher}\n"),
              HasSubstr("s.yaml:3:3: metrics.wall_time: wall_time is built in, and lower is better"));
  EXPECT_THAT(bad("  instructions_callgrind: {better: lower, unit: ms}\n"),
              HasSubstr("measured by the agent in count, not ms"));
  EXPECT_EQ(bad("  instruction_count: {better: lower, unit: count}\n"), "ok") << "as PyTorch suites declare it";
  EXPECT_EQ(bad("  peak_rss: {better: lower, unit: bytes}\n"), "ok");
}

TEST(SuiteMetricsTest, AJudgeListNamingAMetricThatIsNeverJudgedIsRefused) {
  auto s = ParseSuite("suite: s\ncases:\n  - name: a\n    command: [/bin/true]\n    judge: [user_cpu_time]\n", "s.yaml",
                      "/tmp");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("s.yaml:5:13: judge: 'user_cpu_time' is shown, never judged: CPU time from rusage"));
}

}  // namespace
}  // namespace perfgate
