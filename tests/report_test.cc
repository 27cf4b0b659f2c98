// Verdicts and rules from runs, confirmation, and the report files read by
// real consumers: xmllint against a JUnit schema, cmark-gfm for Markdown.
#include "core/judge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/baseline_update.h"
#include "core/units.h"
#include "core/utf8.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

v1::CaseStatus OkCase(const std::string& name, const std::string& metric, std::vector<double> values,
                      const std::string& source = "agent:callgrind", const std::string& benchmark = "") {
  v1::CaseStatus c;
  c.set_name(name);
  c.set_state(v1::CASE_STATE_DONE);
  c.set_agent_id("a1");
  c.set_attempts(1);
  auto* r = c.mutable_result();
  r->set_outcome(v1::CaseResult::OUTCOME_OK);
  r->set_pool("lab");
  uint32_t i = 0;
  for (double v : values) {
    auto* s = r->add_samples();
    s->set_index(i++);
    auto* value = s->add_values();
    value->set_benchmark(benchmark.empty() ? name : benchmark);
    value->set_metric(metric);
    value->set_value(v);
    value->set_unit("count");
    value->set_source(source);
  }
  return c;
}

v1::Run RunOf(std::vector<v1::CaseStatus> cases) {
  v1::Run run;
  run.set_run_id("run-1");
  run.set_suite_name("s");
  run.set_commit("abc");
  run.set_state(v1::RUN_STATE_FINISHED);
  for (auto& c : cases) *run.add_cases() = std::move(c);
  return run;
}

Baselines Expected(std::vector<ExpectedRow> rows, const std::string& testbed = "lab") {
  Baselines b;
  b.expected[testbed] = std::move(rows);
  return b;
}

TEST(ReportTest, RegressionAgainstExpectedFailsTheGateAndNamesTheRule) {
  Policy policy;
  GateReport r =
      BuildGateReport(RunOf({OkCase("add", "instructions", {1150, 1150}), OkCase("mul", "instructions", {1000})}),
                      Expected({{"add", "instructions", 1000, 0.1, 1}, {"mul", "instructions", 1000, 0.1, 3}}), policy);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kRegression);
  EXPECT_EQ(r.cases[1].verdict, Verdict::kPass);
  ASSERT_EQ(r.failed_rules.size(), 1u);
  EXPECT_EQ(r.failed_rules[0], "regression fails the gate: 1 case (add)");
  EXPECT_EQ(DescribeMetric(r.cases[0], r.cases[0].metrics[0]),
            "add: instructions 1.15 k instr (+15.00%) vs expected 1.00 k instr (margin 10.00%)");
}

TEST(ReportTest, ImprovementPassesWithABaselinePatch) {
  Policy policy;
  GateReport r = BuildGateReport(RunOf({OkCase("add", "instructions", {812345})}),
                                 Expected({{"add", "instructions", 1000000, 0.1, 1}}), policy);
  EXPECT_TRUE(r.passed);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kImprovement);
  ASSERT_EQ(r.baseline_patch.size(), 1u);
  EXPECT_EQ(FormatExpectedRow(r.baseline_patch[0]), "add,instructions,812300,0.1");
  // Unless a policy says improvements fail (PyTorch's own behaviour).
  policy.fail_on.insert(Verdict::kImprovement);
  EXPECT_FALSE(BuildGateReport(RunOf({OkCase("add", "instructions", {812345})}),
                               Expected({{"add", "instructions", 1000000, 0.1, 1}}), policy)
                   .passed);
}

TEST(ReportTest, MissingResultsOnEitherSide) {
  Policy policy;
  // The case ran but did not report a row its benchmark has, and a row names a benchmark nobody ran.
  v1::CaseStatus c = OkCase("add", "instructions", {1000});
  GateReport r = BuildGateReport(
      RunOf({c}),
      Expected(
          {{"add", "instructions", 1000, 0.1, 1}, {"add", "wall_s", 2, 0.1, 3}, {"gone", "instructions", 5, 0.1, 5}}),
      policy);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kMissingResult);
  ASSERT_EQ(r.missing_rows.size(), 1u);
  EXPECT_EQ(r.missing_rows[0], "gone,instructions (line 5)");
  EXPECT_FALSE(r.passed);
  EXPECT_THAT(r.failed_rules, ::testing::Contains(HasSubstr("missing result fails the gate: 1 case (add)")));
  // A partial run (perfgate run --case) does not blame rows of cases it did not run.
  GateReport partial =
      BuildGateReport(RunOf({OkCase("add", "instructions", {1000})}),
                      Expected({{"add", "instructions", 1000, 0.1, 1}, {"gone", "instructions", 5, 0.1, 5}}), policy,
                      /*complete_run=*/false);
  EXPECT_TRUE(partial.missing_rows.empty());
  EXPECT_TRUE(partial.passed);
  // Nor a row of a benchmark it shares with a case that did not run: that
  // case may report the row's metric. Said, not charged to the case run.
  GateReport shared = BuildGateReport(RunOf({OkCase("add", "instructions", {1000})}),
                                      Expected({{"add", "instructions", 1000, 0.1, 1}, {"add", "wall_s", 2, 0.1, 3}}),
                                      policy, /*complete_run=*/false);
  EXPECT_EQ(shared.cases[0].verdict, Verdict::kPass);
  EXPECT_TRUE(shared.passed);
  EXPECT_THAT(shared.warnings, ::testing::Contains(HasSubstr("no result for add,wall_s (line 3)")));
  // Still said after a confirmation round judged the report again.
  ApplyConfirmation(&shared, RunOf({OkCase("add", "instructions", {1000})}),
                    Expected({{"add", "instructions", 1000, 0.1, 1}, {"add", "wall_s", 2, 0.1, 3}}), policy);
  EXPECT_THAT(shared.warnings, ::testing::Contains(HasSubstr("no result for add,wall_s (line 3)")));
  // A result with no row is "no baseline": a warning, not a failure.
  GateReport fresh = BuildGateReport(RunOf({OkCase("new", "instructions", {1})}), Baselines{}, policy);
  EXPECT_TRUE(fresh.passed);
  EXPECT_EQ(fresh.cases[0].verdict, Verdict::kNoBaseline);
  ASSERT_EQ(fresh.warnings.size(), 1u);
  EXPECT_THAT(fresh.warnings[0], HasSubstr("no baseline for 1 case (new)"));
}

// Two cases may report metrics of one benchmark: a row is missing only if
// no case of the run reported it, whichever case comes first.
TEST(ReportTest, ARowAnotherCaseReportedIsNotMissingWhateverTheOrder) {
  const Baselines rows =
      Expected({{"bench", "compile_time_instruction_count", 1000, 0.1, 1}, {"bench", "instructions", 5000, 0.1, 2}});
  v1::CaseStatus a = OkCase("a", "compile_time_instruction_count", {1000}, "case:pytorch", "bench");
  v1::CaseStatus b = OkCase("b", "instructions", {5000}, "case:pytorch", "bench");
  for (const auto& run : {RunOf({a, b}), RunOf({b, a})}) {
    GateReport r = BuildGateReport(run, rows, Policy{});
    EXPECT_TRUE(r.passed) << r.failed_rules.size();
    for (const auto& c : r.cases) EXPECT_EQ(c.verdict, Verdict::kPass) << c.name;
  }
  // Neither reports a third row of the benchmark: the first case is charged with it, once.
  const Baselines three = Expected({{"bench", "compile_time_instruction_count", 1000, 0.1, 1},
                                    {"bench", "instructions", 5000, 0.1, 2},
                                    {"bench", "peak", 1, 0.1, 3}});
  GateReport r = BuildGateReport(RunOf({a, b}), three, Policy{});
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kMissingResult);
  EXPECT_EQ(r.cases[1].verdict, Verdict::kPass);
}

// A suite of thousands of new cases gets one short line, not every name:
// each case's own row already says it has no baseline.
TEST(ReportTest, LongCaseListsAreShortened) {
  std::vector<v1::CaseStatus> cases;
  for (int i = 0; i < 2000; ++i) cases.push_back(OkCase("c" + std::to_string(i), "instructions", {1}));
  Policy policy;
  GateReport r = BuildGateReport(RunOf(cases), Baselines{}, policy);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0],
            "no baseline for 2000 cases (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, ... and 1990 more): "
            "nothing to compare with yet");
  EXPECT_EQ(r.cases.size(), 2000u);
}

// A case that ran nowhere has no pool; the file for every pool serves both
// it and the cases run on a pool without a file of their own, and its rows
// were listed once for each.
TEST(ReportTest, ARowNothingProducedIsListedOnce) {
  v1::CaseStatus cancelled;
  cancelled.set_name("queued");
  cancelled.set_state(v1::CASE_STATE_CANCELLED);
  GateReport r = BuildGateReport(
      RunOf({cancelled, OkCase("add", "instructions", {1000})}),
      Expected({{"add", "instructions", 1000, 0.1, 1}, {"gone", "instructions", 5, 0.1, 3}}, "*"), Policy{});
  EXPECT_THAT(r.missing_rows, ::testing::ElementsAre("gone,instructions (line 3)"));
}

// A GPU case by hand on a CPU machine: `perfgate run` skips it, and the rows
// of its kernels (named unlike the case) are a warning, not missing results
// that failed the run on a case it had skipped. With every case run, the
// same row is missing.
TEST(ReportTest, RowsNothingProducedWhereACaseCouldNotRunAreAWarning) {
  v1::CaseStatus gpu;
  gpu.set_name("cuda_add_one");
  gpu.set_state(v1::CASE_STATE_NO_CAPABLE_AGENT);
  Policy by_hand;
  by_hand.fail_on.erase(Verdict::kNoCapableAgent);
  const Baselines rows =
      Expected({{"add", "instructions", 1000, 0.1, 1}, {"add_one_kernel", "gpu_time_per_kernel_s", 1e-6, 0.1, 2}}, "*");
  GateReport skipped = BuildGateReport(RunOf({gpu, OkCase("add", "instructions", {1000})}), rows, by_hand);
  EXPECT_TRUE(skipped.missing_rows.empty());
  EXPECT_TRUE(skipped.passed) << ::testing::PrintToString(skipped.failed_rules);
  EXPECT_THAT(skipped.warnings,
              ::testing::Contains(HasSubstr("1 expected row with no result (add_one_kernel,gpu_time_per_kernel_s (line "
                                            "2)), which a case no agent could run may report (cuda_add_one)")));

  GateReport all_ran = BuildGateReport(RunOf({OkCase("add", "instructions", {1000})}), rows, by_hand);
  EXPECT_THAT(all_ran.missing_rows, ::testing::ElementsAre("add_one_kernel,gpu_time_per_kernel_s (line 2)"));
  EXPECT_FALSE(all_ran.passed);
}

TEST(ReportTest, CaseFailuresAndTestbeds) {
  Policy policy;
  v1::CaseStatus crashed = OkCase("crash", "instructions", {});
  crashed.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_CRASHED);
  crashed.mutable_result()->set_signal(11);
  crashed.set_error("sample 1: killed by SIGSEGV");
  v1::CaseStatus gpu;
  gpu.set_name("gpu");
  gpu.set_state(v1::CASE_STATE_NO_CAPABLE_AGENT);
  gpu.set_error("no registered agent can run it");
  // Rows for another testbed never judge this one; on a testbed without a
  // file of its own they were checked by nothing, which is a missing result.
  GateReport r = BuildGateReport(RunOf({crashed, gpu, OkCase("add", "instructions", {5000})}),
                                 Expected({{"add", "instructions", 1000, 0.1, 1}}, "other-lab"), policy);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kError);
  EXPECT_EQ(r.cases[0].outcome, "signal 11");
  EXPECT_EQ(r.cases[1].verdict, Verdict::kNoCapableAgent);
  EXPECT_EQ(r.cases[2].verdict, Verdict::kMissingResult);
  EXPECT_THAT(r.cases[2].metrics[0].note, HasSubstr("not checked: the expected file for pool 'other-lab' has a row"));
  EXPECT_THAT(r.failed_rules, ::testing::ElementsAre("error fails the gate: 1 case (crash)",
                                                     "missing result fails the gate: 1 case (add)",
                                                     "no capable agent fails the gate: 1 case (gpu)"));
  // A testbed with a file of its own is judged by it, and other files' rows wait for their own testbeds.
  Baselines both = Expected({{"add", "instructions", 1000, 0.1, 1}}, "other-lab");
  both.expected["lab"] = {{"add", "instructions", 5000, 0.1, 1}};
  EXPECT_EQ(BuildGateReport(RunOf({OkCase("add", "instructions", {5000})}), both, policy).cases[0].verdict,
            Verdict::kPass);
  // History on this testbed judged it: checked.
  Baselines history = Expected({{"add", "instructions", 1000, 0.1, 1}}, "other-lab");
  history.history[{"lab", "add", "instructions", "agent:callgrind"}] = {5000, 5000, 5000, 5000, 5000};
  EXPECT_EQ(BuildGateReport(RunOf({OkCase("add", "instructions", {5000})}), history, policy).cases[0].verdict,
            Verdict::kPass);
  // "*" applies to every testbed without its own file.
  GateReport any = BuildGateReport(RunOf({OkCase("add", "instructions", {5000})}),
                                   Expected({{"add", "instructions", 1000, 0.1, 1}}, "*"), policy);
  EXPECT_EQ(any.cases[0].verdict, Verdict::kRegression);
}

// A metric the case's judge: list names that its result does not hold
// passed as "no baseline" in history mode, history or not; a result of no
// sample at all passed too. Instruction counts a host may not make are left
// to the note that says so.
TEST(ReportTest, AListedMetricTheResultLacksIsAMissingResult) {
  Policy policy;
  policy.judged_metrics["counter"] = {"iterations"};
  GateReport r =
      BuildGateReport(RunOf({OkCase("counter", "loops", {5, 5, 5}, "case:pytorch", "bm")}), Baselines{}, policy);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kMissingResult);
  ASSERT_EQ(r.cases[0].metrics.size(), 2u);
  EXPECT_EQ(r.cases[0].metrics[1].series.metric, "iterations");
  EXPECT_THAT(r.cases[0].metrics[1].note, HasSubstr("listed under judge:, and the result holds no value of it"));
  EXPECT_FALSE(r.passed);

  policy.judged_metrics["counter"] = {"loops"};
  EXPECT_TRUE(BuildGateReport(RunOf({OkCase("counter", "loops", {5, 5, 5}, "case:pytorch", "bm")}), Baselines{}, policy)
                  .passed);

  // An instruction count is left to the note only where the host could not make it.
  policy.judged_metrics["counter"] = {"instructions"};
  EXPECT_FALSE(
      BuildGateReport(RunOf({OkCase("counter", "loops", {5}, "case:pytorch", "bm")}), Baselines{}, policy).passed)
      << "never asked for (no instructions: setting), never made";
  v1::CaseStatus unavailable = OkCase("counter", "loops", {5}, "case:pytorch", "bm");
  unavailable.mutable_result()->add_notes("region instruction counts unavailable on this host: valgrind stopped");
  EXPECT_TRUE(BuildGateReport(RunOf({unavailable}), Baselines{}, policy).passed);
  EXPECT_TRUE(BuildGateReport(RunOf({OkCase("counter", "instructions_callgrind", {5})}), Baselines{}, policy).passed)
      << "auto's count by another name";

  GateReport empty = BuildGateReport(RunOf({OkCase("nothing", "wall_time", {})}), Baselines{}, Policy{});
  EXPECT_EQ(empty.cases[0].verdict, Verdict::kMissingResult);
  EXPECT_THAT(empty.cases[0].metrics[0].note, HasSubstr("the result holds no sample"));
}

TEST(ReportTest, HistoryBaselineSkipsCpuTimes) {
  Policy policy;
  Baselines b;
  b.history[{"lab", "t", "wall_time", "agent:clock"}] = {1.0, 1.01, 0.99, 1.0, 1.0, 1.02};
  b.history[{"lab", "t", "user_cpu_time", "agent:rusage"}] = {1.0, 1.0, 1.0, 1.0, 1.0};
  v1::CaseStatus c = OkCase("t", "wall_time", {1.2, 1.21, 1.19}, "agent:clock");
  auto* extra = c.mutable_result()->mutable_samples(0)->add_values();
  extra->set_benchmark("t");
  extra->set_metric("user_cpu_time");
  extra->set_value(5.0);
  extra->set_source("agent:rusage");
  GateReport r = BuildGateReport(RunOf({c}), b, policy);
  ASSERT_EQ(r.cases[0].metrics.size(), 2u);
  EXPECT_EQ(r.cases[0].metrics[0].verdict, Verdict::kRegression);
  EXPECT_EQ(r.cases[0].metrics[0].comparison->method, Method::kHistory);
  EXPECT_FALSE(r.cases[0].metrics[1].comparison.has_value()) << "CPU times are shown, not gated";
}

// A rate is a count over a time, and moves with the load as the time does:
// it had the counts' 1% floor, and items_per_second fell 1.96% (a
// regression, confirmed) where real_time of the same benchmark rose 2%
// within its 5%.
TEST(ReportTest, RatesHaveTheTimeFloorInHistory) {
  Baselines b;
  const std::vector<double> steady = {1000, 1002, 998, 1001, 999, 1000, 1002, 998, 1001, 1000};
  b.history[{"lab", "bm", "items_per_second", "case:gbench"}] = steady;
  b.history[{"lab", "bm", "custom_per_second", "case:gbench"}] = steady;
  auto rate = [](double value) {
    v1::CaseStatus c = OkCase("bm", "items_per_second", {value, value, value}, "case:gbench");
    for (auto& sample : *c.mutable_result()->mutable_samples()) {
      sample.mutable_values(0)->set_unit("1/s");
      auto* other = sample.add_values();
      other->set_benchmark("bm");
      other->set_metric("custom_per_second");
      other->set_value(value);
      other->set_source("case:gbench");
    }
    return c;
  };
  Policy policy;
  policy.compare.declared["custom_per_second"] = MetricDeclaration{Direction::kHigherIsBetter, ""};
  GateReport drift = BuildGateReport(RunOf({rate(980)}), b, policy);
  ASSERT_EQ(drift.cases[0].metrics.size(), 2u);
  for (const auto& m : drift.cases[0].metrics) {
    EXPECT_EQ(m.verdict, Verdict::kPass) << m.series.metric;
    ASSERT_TRUE(m.comparison) << m.series.metric;
    EXPECT_DOUBLE_EQ(m.comparison->threshold, 0.05) << m.series.metric;
  }
  GateReport slower = BuildGateReport(RunOf({rate(900)}), b, policy);
  for (const auto& m : slower.cases[0].metrics) EXPECT_EQ(m.verdict, Verdict::kRegression) << m.series.metric;
}

// A wall time judged in the first round (121 ms against a history of
// 12.6 ms) was re-measured at 90 ms, which against 12.6 ms is "too short to
// judge": shown only, and the 7x slowdown passed as not confirmed.
TEST(ReportTest, AConfirmationJudgesWhatTheFirstRoundJudged) {
  Baselines b;
  b.history[{"lab", "t", "wall_time", "agent:clock"}] = {0.0126, 0.0127, 0.0125, 0.0126, 0.0126, 0.0127};
  const Policy policy;
  GateReport r = BuildGateReport(RunOf({OkCase("t", "wall_time", {0.121, 0.121, 0.121}, "agent:clock")}), b, policy);
  ASSERT_EQ(r.cases[0].metrics[0].verdict, Verdict::kRegression);
  ApplyConfirmation(&r, RunOf({OkCase("t", "wall_time", {0.09, 0.09, 0.09}, "agent:clock")}), b, policy);
  EXPECT_EQ(r.cases[0].metrics[0].verdict, Verdict::kRegression) << r.cases[0].metrics[0].note;
  EXPECT_THAT(r.cases[0].metrics[0].note, HasSubstr("confirmed by re-measurement"));
  EXPECT_FALSE(r.passed);
}

// Two cases report one benchmark and metric (one Google Benchmark binary
// built two ways): the store keeps one history of both, whose median sat
// between them, and every run failed the slower one as a regression.
TEST(ReportTest, ASeriesSeveralCasesReportIsNotJudgedAgainstTheirOneHistory) {
  Baselines b;
  b.history[{"lab", "BM_x", "real_time", "case:gbench"}] = {1.15, 1.15, 1.15, 1.15, 1.15, 1.15};
  b.history[{"lab", "BM_y", "real_time", "case:gbench"}] = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
  auto gbench = [](const std::string& name, const std::string& benchmark, double value) {
    v1::CaseStatus c = OkCase(name, "real_time", {value, value, value}, "case:gbench", benchmark);
    for (auto& sample : *c.mutable_result()->mutable_samples()) sample.mutable_values(0)->set_unit("s");
    return c;
  };
  GateReport r = BuildGateReport(
      RunOf({gbench("gcc_build", "BM_x", 1.0), gbench("clang_build", "BM_x", 1.3), gbench("other", "BM_y", 1.3)}), b,
      Policy{});
  EXPECT_EQ(r.cases[0].metrics[0].verdict, Verdict::kNoBaseline);
  EXPECT_EQ(r.cases[1].metrics[0].verdict, Verdict::kNoBaseline);
  EXPECT_EQ(r.cases[2].metrics[0].verdict, Verdict::kRegression) << "a series of one case is judged";
  EXPECT_THAT(r.warnings,
              ::testing::Contains(
                  HasSubstr("not judged against history: BM_x real_time is reported by cases gcc_build, clang_build")));
}

TEST(ReportTest, ConfirmationClearsANoisyRegressionAndKeepsARealOne) {
  Policy policy;
  Baselines b = Expected({{"noisy", "instructions", 1000, 0.1, 1}, {"real", "instructions", 1000, 0.1, 2}});
  GateReport r = BuildGateReport(
      RunOf({OkCase("noisy", "instructions", {1200}), OkCase("real", "instructions", {1200})}), b, policy);
  EXPECT_THAT(SuspectedRegressions(r), ::testing::ElementsAre("noisy", "real"));
  ApplyConfirmation(&r, RunOf({OkCase("noisy", "instructions", {1010}), OkCase("real", "instructions", {1190})}), b,
                    policy);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kPass);
  EXPECT_THAT(r.cases[0].metrics[0].note, HasSubstr("not confirmed: first 1.20 k instr (+20.00%)"));
  EXPECT_THAT(r.cases[0].metrics[0].note, HasSubstr("re-measured 1.01 k instr (+1.00%)"));
  EXPECT_EQ(r.cases[1].verdict, Verdict::kRegression);
  ASSERT_EQ(r.cases[1].metrics[0].confirmations.size(), 1u);
  EXPECT_THAT(r.failed_rules, ::testing::ElementsAre("regression fails the gate: 1 case (real)"));
}

// With fail_on leaving out no_capable_agent, a run in which no agent could
// run anything passed with nothing measured.
TEST(ReportTest, ARunInWhichNothingWasMeasuredFailsTheGate) {
  Policy policy;
  policy.fail_on = {Verdict::kRegression, Verdict::kError};
  v1::CaseStatus away;
  away.set_name("add");
  away.set_state(v1::CASE_STATE_NO_CAPABLE_AGENT);
  away.set_error("no agent is registered");
  GateReport r = BuildGateReport(RunOf({away}), Baselines{}, policy);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.failed_rules,
              ::testing::ElementsAre("a run in which no case was measured fails the gate: 1 case (add: no capable agent)"));
  std::stringstream junit;
  JunitReporter().Write(r, junit);
  EXPECT_THAT(junit.str(), HasSubstr("errors=\"1\"")) << "red, as the exit code says";
  policy.fail_unmeasured_run = false;  // perfgate run by hand: skipped, and said so
  EXPECT_EQ(BuildGateReport(RunOf({away}), Baselines{}, policy).exit_code, 0);
  // One measured case is enough: the rest is fail_on's to judge.
  policy.fail_unmeasured_run = true;
  EXPECT_EQ(BuildGateReport(RunOf({away, OkCase("mul", "instructions", {1})}), Baselines{}, policy).exit_code, 0);
}

// Ctrl-C while re-measuring used to exit 1, as if the gate had judged.
TEST(ReportTest, AConfirmationTheUserCancelledLeavesTheGateInterrupted) {
  Policy policy;
  Baselines b = Expected({{"real", "instructions", 1000, 0.1, 1}});
  GateReport r = BuildGateReport(RunOf({OkCase("real", "instructions", {1200})}), b, policy);
  v1::Run cancelled = RunOf({OkCase("real", "instructions", {1000})});
  cancelled.set_state(v1::RUN_STATE_CANCELLED);
  ApplyConfirmation(&r, cancelled, b, policy);
  EXPECT_EQ(r.exit_code, 130);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kRegression) << "not cleared by a run that did not finish";
}

// A confirmation run may land on another pool (it is not pinned to one):
// judged against the first pool's row, an H100's numbers once cleared a
// Xeon's regression.
TEST(ReportTest, AReMeasurementOnAnotherPoolLeavesTheFirstStanding) {
  Policy policy;
  Baselines b = Expected({{"real", "instructions", 1000, 0.1, 1}});
  GateReport r = BuildGateReport(RunOf({OkCase("real", "instructions", {1200})}), b, policy);
  v1::CaseStatus elsewhere = OkCase("real", "instructions", {1000});
  elsewhere.mutable_result()->set_pool("h100");
  ApplyConfirmation(&r, RunOf({elsewhere}), b, policy);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kRegression);
  EXPECT_THAT(r.cases[0].metrics[0].note, HasSubstr("re-measured on pool 'h100', not 'lab'"));
  EXPECT_FALSE(r.passed);
}

// NaN is neither above nor below any limit: a series holding one used to
// pass against an expected row, and in a confirmation to clear a regression.
TEST(ReportTest, ANonFiniteSampleIsAnErrorNeverAPass) {
  Policy policy;
  Baselines b = Expected({{"nan", "instructions", 1000, 0.1, 1}, {"real", "instructions", 1000, 0.1, 2}});
  GateReport r = BuildGateReport(
      RunOf({OkCase("nan", "instructions", {1000, NAN, 1000}), OkCase("real", "instructions", {1200})}), b, policy);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kError);
  EXPECT_THAT(r.cases[0].metrics[0].note, HasSubstr("not a finite number"));
  ApplyConfirmation(&r, RunOf({OkCase("real", "instructions", {INFINITY})}), b, policy);
  EXPECT_EQ(r.cases[1].verdict, Verdict::kRegression);
  EXPECT_THAT(r.cases[1].metrics[0].note, HasSubstr("first measurement stands"));
}

// Ten base and ten head samples of wall time, head 5% slower.
v1::CaseStatus AbCase() {
  v1::CaseStatus c;
  c.set_name("ab");
  c.set_state(v1::CASE_STATE_DONE);
  c.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  for (int i = 0; i < 10; ++i) {
    for (const char* variant : {"base", "head"}) {
      auto* s = c.mutable_result()->add_samples();
      s->set_variant(variant);
      auto* v = s->add_values();
      v->set_benchmark("ab");
      v->set_metric("wall_time");
      v->set_source("agent:clock");
      v->set_value((std::string(variant) == "head" ? 1.05 : 1.0) + i * 0.001);
    }
  }
  return c;
}

// An A/B regression that a confirmation run re-measured.
GateReport ConfirmedAbReport() {
  GateReport r = BuildGateReport(RunOf({AbCase()}), Baselines{}, Policy{});
  ApplyConfirmation(&r, RunOf({AbCase()}), Baselines{}, Policy{});
  return r;
}

// Rows of another pool's file, on a pool without one: charged to the case
// that measured their series (two cases may report one benchmark, each its
// own metrics), never to an A/B case (judged side against side), and never
// over a verdict that already says more (a broken series stays an error).
TEST(ReportTest, RowsOfAnotherPoolAreChargedOnlyWhereTheyWentUnchecked) {
  Policy policy;
  Baselines b = Expected({{"bm", "m1", 10, 0.1, 1}, {"bm", "m2", 10, 0.1, 2}}, "xeon");
  b.history[{"lab", "bm", "m1", "case:pytorch"}] = {10, 10, 10, 10, 10};
  b.history[{"lab", "bm", "m2", "case:pytorch"}] = {10, 10, 10, 10, 10};
  policy.compare.declared["m1"] = MetricDeclaration{Direction::kLowerIsBetter, ""};
  policy.compare.declared["m2"] = MetricDeclaration{Direction::kLowerIsBetter, ""};
  GateReport shared = BuildGateReport(
      RunOf({OkCase("a", "m1", {10}, "case:pytorch", "bm"), OkCase("b", "m2", {10}, "case:pytorch", "bm")}), b, policy);
  EXPECT_TRUE(shared.passed) << "history on lab judged both series";
  EXPECT_EQ(shared.cases[0].metrics.size(), 1u);
  EXPECT_EQ(shared.cases[1].metrics.size(), 1u);

  v1::CaseStatus ab = AbCase();
  ab.mutable_result()->set_pool("lab");
  GateReport ab_report = BuildGateReport(RunOf({ab}), Expected({{"ab", "wall_time", 1, 0.1, 1}}, "xeon"), policy);
  ASSERT_EQ(ab_report.cases[0].metrics.size(), 1u);
  EXPECT_EQ(ab_report.cases[0].metrics[0].verdict, Verdict::kRegression) << "judged side against side";

  GateReport broken = BuildGateReport(RunOf({OkCase("c", "instructions", {std::nan("")})}),
                                      Expected({{"c", "instructions", 10, 0.1, 1}}, "xeon"), policy);
  EXPECT_EQ(broken.cases[0].metrics[0].verdict, Verdict::kError);
  EXPECT_THAT(broken.cases[0].metrics[0].note, HasSubstr("not a finite number"));

  // Partial runs (perfgate run --case): a row of a benchmark no case of the run measured is a warning.
  GateReport partial = BuildGateReport(RunOf({OkCase("a", "m1", {10}, "case:pytorch", "bm")}), b, policy,
                                       /*complete_run=*/false);
  EXPECT_TRUE(partial.passed);
  ASSERT_EQ(partial.unclaimed_rows.size(), 1u);
  EXPECT_THAT(partial.unclaimed_rows[0], HasSubstr("no result for bm,m2"));
}

// A count below zero is no count: a lying agent's -1e308 iterations (a
// metric the suite declares a count) read as an improvement.
TEST(ReportTest, ACountBelowZeroIsAnError) {
  Policy policy;
  policy.compare.declared["iterations"] = MetricDeclaration{Direction::kLowerIsBetter, "count"};
  v1::CaseStatus c = OkCase("spin", "iterations", {-1e308}, "case:pytorch");
  c.mutable_result()->mutable_samples(0)->mutable_values(0)->clear_unit();
  GateReport r = BuildGateReport(RunOf({c}), Expected({{"spin", "iterations", 1999000, 0.01, 1}}), policy);
  EXPECT_EQ(r.cases[0].metrics[0].verdict, Verdict::kError);
  EXPECT_THAT(r.cases[0].metrics[0].note, HasSubstr("a count below zero"));
  EXPECT_TRUE(r.baseline_patch.empty());
}

TEST(ReportTest, AbVariantsCompareHeadWithBase) {
  Policy policy;
  GateReport r = BuildGateReport(RunOf({AbCase()}), Baselines{}, policy);
  ASSERT_EQ(r.cases[0].metrics.size(), 1u) << "base is shown beside head, not as its own row";
  const MetricReport& m = r.cases[0].metrics[0];
  EXPECT_EQ(m.verdict, Verdict::kRegression);
  EXPECT_EQ(m.comparison->method, Method::kAB);
  ASSERT_TRUE(m.base.has_value());
  EXPECT_NEAR(m.base->median, 1.0045, 1e-9);
}

// Ten samples of `metric` of `benchmark` on the base side of `c` alone.
void AddBaseOnly(v1::CaseStatus* c, const std::string& benchmark, const std::string& metric,
                 const std::string& source) {
  for (int i = 0; i < 10; ++i) {
    auto* s = c->mutable_result()->add_samples();
    s->set_variant("base");
    auto* v = s->add_values();
    v->set_benchmark(benchmark);
    v->set_metric(metric);
    v->set_source(source);
    v->set_value(1000);
  }
}

// A benchmark the base side measured and the head side lost is a missing
// result of head, never dropped from every report.
TEST(ReportTest, ABenchmarkOnlyTheBaseSideMeasuredIsMissingOnHead) {
  v1::CaseStatus c = AbCase();
  AddBaseOnly(&c, "bench_b", "compile_time_instruction_count", "case:pytorch");
  GateReport r = BuildGateReport(RunOf({c}), Baselines{}, Policy{});
  EXPECT_FALSE(r.passed);
  ASSERT_EQ(r.cases[0].metrics.size(), 2u);
  const MetricReport& lost = r.cases[0].metrics[1];
  EXPECT_EQ(lost.series.benchmark, "bench_b");
  EXPECT_EQ(lost.series.variant, "head");
  EXPECT_EQ(lost.verdict, Verdict::kMissingResult);
  EXPECT_THAT(lost.note, HasSubstr("measured on the base side, not on the head side"));
  // A metric the head side would only have shown (not in the case's judge:
  // list, or of unknown direction) is no loss to fail on.
  Policy listed;
  listed.judged_metrics["ab"] = {"wall_time"};
  EXPECT_NE(BuildGateReport(RunOf({c}), Baselines{}, listed).cases[0].verdict, Verdict::kMissingResult);
  v1::CaseStatus counter = AbCase();
  AddBaseOnly(&counter, "ab", "diagnostic_counter", "case:gbench");
  EXPECT_NE(BuildGateReport(RunOf({counter}), Baselines{}, Policy{}).cases[0].verdict, Verdict::kMissingResult);
}

// Writes `report` with `reporter` to a file and returns its path.
std::string WriteTo(const testing::TempDir& dir, const std::string& name, const Reporter& reporter,
                    const GateReport& report) {
  std::ofstream out(dir.File(name));
  reporter.Write(report, out);
  return dir.File(name);
}

std::string Render(const Reporter& reporter, const GateReport& report) {
  std::stringstream out;
  reporter.Write(report, out);
  return out.str();
}

// Adds a measured wall time (seconds) to each sample of `c`.
v1::CaseStatus WithWallTime(v1::CaseStatus c, double seconds) {
  for (auto& s : *c.mutable_result()->mutable_samples()) {
    auto* v = s.add_values();
    v->set_benchmark(c.name());
    v->set_metric("wall_time");
    v->set_value(seconds);
    v->set_unit("s");
    v->set_source("agent:clock");
  }
  return c;
}

// What a reviewer sees on a bad day: a regression, a crash, a case no agent
// could run, an improvement, a metric with no baseline and a case name with
// markup in it.
GateReport MixedReport(const std::string& run_id = "run-1") {
  Policy policy;
  v1::CaseStatus crashed = OkCase("crash<&>", "instructions", {});
  crashed.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_CRASHED);
  crashed.set_error("killed by \"SIGSEGV\" & <core>");
  v1::CaseStatus gpu;
  gpu.set_name("gpu");
  gpu.set_state(v1::CASE_STATE_NO_CAPABLE_AGENT);
  gpu.set_error("no agent with a GPU");
  v1::Run run =
      RunOf({WithWallTime(OkCase("add", "instructions", {1150}), 0.25), OkCase("ok|pipe", "instructions", {1000}),
             crashed, gpu, OkCase("faster", "instructions", {500}), OkCase("new", "instructions", {7})});
  run.set_run_id(run_id);
  return BuildGateReport(run,
                         Expected({{"add", "instructions", 1000, 0.1, 1},
                                   {"ok|pipe", "instructions", 1000, 0.1, 2},
                                   {"faster", "instructions", 1000, 0.1, 3}}),
                         policy);
}

TEST(ReportFilesTest, JunitValidatesAgainstJenkinsSchemaWithErrorsFailuresAndSkips) {
  testing::TempDir dir;
  const std::string path = WriteTo(dir, "junit.xml", JunitReporter(), MixedReport());
  auto lint = testing::RunCommand(
      {"/usr/bin/xmllint", "--noout", "--schema", testing::SourceDir() + "/tests/data/junit.xsd", path});
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_THAT(lint.output, HasSubstr("validates"));
  std::stringstream read;
  read << std::ifstream(path).rdbuf();
  const std::string xml = read.str();
  EXPECT_THAT(xml, HasSubstr("\n<testsuites name=\"perfgate\" tests=\"7\" failures=\"1\" errors=\"2\""));
  EXPECT_THAT(xml, HasSubstr("<testsuite name=\"s\" tests=\"7\" failures=\"1\" errors=\"2\""));
  EXPECT_THAT(xml, HasSubstr("skipped=\"2\""));
  // The regression: a failure with its numbers, named suite.case.metric, timed by its measured wall time.
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"s.add\" name=\"s.add.instructions\" time=\"0.250000\">\n"
                             "      <failure type=\"regression\""));
  EXPECT_THAT(xml, HasSubstr("baseline: 1.00 k instr (expected)\nresult: 1.15 k instr (median of 1)\nchange: +15.00%"
                             "\nthreshold: 10.00%\nnoise: 10.00%"));
  // The crash is an error, not a failure: the case produced no result to judge.
  EXPECT_THAT(xml, HasSubstr("<testcase classname=\"s.crash&lt;&amp;&gt;\" name=\"s.crash&lt;&amp;&gt;.run\" "
                             "time=\"0.000000\">\n      <error type=\"error\" message=\"error: signal 0"));
  // The GPU case no agent could run fails the gate by default: an error too.
  EXPECT_THAT(xml, HasSubstr("name=\"s.gpu.run\" time=\"0.000000\">\n      <error type=\"no capable agent\""));
  // Nothing to compare with: skipped, with the reason.
  EXPECT_THAT(xml, HasSubstr("name=\"s.new.instructions\" time=\"0.000000\">\n      <skipped message=\"no baseline: "));
  // The improvement passes.
  EXPECT_THAT(xml, HasSubstr("name=\"s.faster.instructions\" time=\"0.000000\">\n      <system-out>"));
}

// A CI's JUnit view must be red exactly when the gate fails: a metric
// without a baseline under `--fail-on no_baseline` used to be skipped (green
// beside exit 1), and missing rows under a policy that lets them pass were
// errors (red beside exit 0).
TEST(ReportFilesTest, JunitIsRedExactlyWhenTheGateFails) {
  Policy strict;
  strict.fail_on = {Verdict::kRegression, Verdict::kNoBaseline};
  GateReport no_baseline = BuildGateReport(RunOf({OkCase("new", "instructions", {7})}), Baselines{}, strict);
  EXPECT_EQ(no_baseline.exit_code, 1);
  EXPECT_THAT(Render(JunitReporter(), no_baseline), HasSubstr("failures=\"1\" errors=\"0\""));

  Policy lenient;
  lenient.fail_on = {Verdict::kRegression, Verdict::kError};
  const Baselines rows = Expected({{"add", "instructions", 1000, 0.1, 1},
                                   {"add", "instructions_missing", 1000, 0.1, 2},
                                   {"gone", "instructions", 1000, 0.1, 3}});
  GateReport missing = BuildGateReport(RunOf({OkCase("add", "instructions", {1000})}), rows, lenient);
  ASSERT_EQ(missing.missing_rows.size(), 1u);
  EXPECT_EQ(missing.exit_code, 0);
  const std::string xml = Render(JunitReporter(), missing);
  EXPECT_THAT(xml, HasSubstr("failures=\"0\" errors=\"0\""));
  EXPECT_THAT(xml, HasSubstr("skipped=\"2\""));
  lenient.fail_on.insert(Verdict::kMissingResult);
  missing = BuildGateReport(RunOf({OkCase("add", "instructions", {1000})}), rows, lenient);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(Render(JunitReporter(), missing), HasSubstr("failures=\"0\" errors=\"2\""));
}

// A case that ran with nothing judged fails `--fail-on no_baseline` through
// its own verdict; its JUnit test is red as the exit code is.
TEST(ReportFilesTest, JunitIsRedForACaseWithNothingJudgedThatFailsTheGate) {
  Policy strict;
  strict.fail_on = {Verdict::kRegression, Verdict::kNoBaseline};
  strict.judged_metrics["s4"] = {"graph_breaks"};  // of unknown direction: shown only
  GateReport r = BuildGateReport(RunOf({OkCase("s4", "graph_breaks", {3}, "case:pytorch")}), Baselines{}, strict);
  ASSERT_EQ(r.exit_code, 1);
  const std::string xml = Render(JunitReporter(), r);
  EXPECT_THAT(xml, HasSubstr("failures=\"1\""));
  EXPECT_THAT(xml, HasSubstr("no metric of this case was judged"));
  strict.fail_on = {Verdict::kRegression};
  GateReport passing = BuildGateReport(RunOf({OkCase("s4", "graph_breaks", {3}, "case:pytorch")}), Baselines{}, strict);
  ASSERT_EQ(passing.exit_code, 0);
  EXPECT_THAT(Render(JunitReporter(), passing), HasSubstr("failures=\"0\" errors=\"0\""));
}

// Missing results the policy lets pass are not counted as the errors of a
// passing comment's headline.
TEST(ReportFilesTest, MarkdownHeadlineSaysWhichErrorsDoNotFail) {
  Policy lenient;
  lenient.fail_on = {Verdict::kRegression};
  GateReport r =
      BuildGateReport(RunOf({OkCase("add", "instructions", {1000})}),
                      Expected({{"add", "instructions", 1000, 0.1, 1}, {"gone", "instructions", 5, 0.1, 2}}), lenient);
  ASSERT_TRUE(r.passed);
  const std::string md = Render(MarkdownReporter(), r);
  EXPECT_THAT(md, HasSubstr("perfgate passed: 1 error not failing the gate"));
  lenient.fail_on.insert(Verdict::kMissingResult);
  r = BuildGateReport(RunOf({OkCase("add", "instructions", {1000})}),
                      Expected({{"add", "instructions", 1000, 0.1, 1}, {"gone", "instructions", 5, 0.1, 2}}), lenient);
  EXPECT_THAT(Render(MarkdownReporter(), r), HasSubstr("perfgate failed: 1 error "));
}

TEST(ReportFilesTest, JunitOfACancelledRunSkipsWhatDidNotRun) {
  GateReport report = MixedReport();
  report.run.set_state(v1::RUN_STATE_CANCELLED);
  const std::string xml = Render(JunitReporter(), report);
  EXPECT_THAT(xml, HasSubstr("failures=\"0\" errors=\"0\""));
  EXPECT_THAT(xml, HasSubstr("skipped=\"4\""));
}

// cmark-gfm's HTML for the Markdown report.
std::string MarkdownHtml(const GateReport& report) {
  testing::TempDir dir;
  const std::string path = WriteTo(dir, "report.md", MarkdownReporter(), report);
  auto html = testing::RunCommand({"/usr/bin/cmark-gfm", "--unsafe", "-e", "table", path});
  EXPECT_EQ(html.exit_code, 0) << html.output;
  return html.output;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST(ReportFilesTest, MarkdownLeadsWithTheVerdictThenWhatFailedWithUnits) {
  const std::string html = MarkdownHtml(MixedReport());
  // The first block is the one-line verdict with the counts.
  EXPECT_EQ(html.rfind("<h3>❌ perfgate failed: 1 regression, 2 errors, 1 improvement, 2 metrics without baseline · "
                       "6 cases · suite <code>s</code> · commit <code>abc</code></h3>\n",
                       0),
            0u)
      << html;
  EXPECT_THAT(html, HasSubstr("regression fails the gate: 1 case (add)"));
  // Regressions before errors, both before anything folded.
  const size_t regressions = html.find("<h4>Regressions</h4>");
  const size_t errors = html.find("<h4>Errors</h4>");
  const size_t folded = html.find("<details>");
  ASSERT_NE(regressions, std::string::npos) << html;
  ASSERT_NE(errors, std::string::npos) << html;
  EXPECT_LT(regressions, errors);
  EXPECT_LT(errors, folded);
  // The regression's row: baseline, result, change, threshold, noise, all with units.
  EXPECT_THAT(html, HasSubstr("<td><code>add</code> · <code>instructions</code></td>\n"
                              "<td align=\"right\">1.00 k instr (expected)</td>\n"
                              "<td align=\"right\">1.15 k instr (median of 1)</td>\n"
                              "<td align=\"right\">+15.00%</td>\n"
                              "<td align=\"right\">10.00% (noise 10.00%)</td>\n"
                              "<td align=\"right\">–</td>"));
  // Errors name the case and why; text that looks like HTML is shown, not swallowed as markup.
  EXPECT_THAT(html, HasSubstr("<td><code>crash&lt;&amp;&gt;</code></td>"));
  EXPECT_THAT(html, HasSubstr("&amp; &lt;core&gt;"));
  EXPECT_THAT(html, HasSubstr("no agent with a GPU"));
  // Everything else is folded: passes, the improvement, the metric without baseline, the rows to apply.
  const std::string rest = html.substr(folded);
  EXPECT_THAT(rest, HasSubstr("<code>ok|pipe</code>"));  // a '|' inside a cell stays in its cell
  EXPECT_THAT(rest, HasSubstr("🚀 improvement"));
  EXPECT_THAT(rest, HasSubstr("⚪ no baseline"));
  EXPECT_THAT(rest, HasSubstr("faster,instructions,500,0.1"));
  EXPECT_THAT(rest, HasSubstr("250 ms"));  // add's median wall time, with its unit
  EXPECT_EQ(html.substr(0, folded).find("ok|pipe"), std::string::npos) << "a passing case is folded away";
}

TEST(ReportFilesTest, MarkdownTablesHaveAtMostSixColumns) {
  const std::string html = MarkdownHtml(MixedReport());
  size_t tables = 0;
  for (size_t at = html.find("<thead>"); at != std::string::npos; at = html.find("<thead>", at + 1)) {
    const std::string head = html.substr(at, html.find("</thead>", at) - at);
    EXPECT_LE(Count(head, "<th>") + Count(head, "<th "), 6) << head;
    ++tables;
  }
  EXPECT_EQ(tables, 4u) << html;  // regressions, errors, all cases, other metrics
}

TEST(ReportFilesTest, MarkdownOfIdenticalResultsIsIdenticalText) {
  const std::string first = Render(MarkdownReporter(), MixedReport("run-1"));
  EXPECT_EQ(first, Render(MarkdownReporter(), MixedReport("run-1")));
  // Another run with the same results: no run id, time of day or duration that varies.
  EXPECT_EQ(first, Render(MarkdownReporter(), MixedReport("run-2")));
}

TEST(ReportFilesTest, MarkdownOfAPassingRunIsOneLineAndFoldedDetails) {
  Policy policy;
  GateReport r = BuildGateReport(RunOf({OkCase("add", "instructions", {1000})}),
                                 Expected({{"add", "instructions", 1000, 0.1, 1}}), policy);
  const std::string html = MarkdownHtml(r);
  EXPECT_EQ(html.rfind("<h3>✅ perfgate passed · 1 case · suite <code>s</code> · commit <code>abc</code></h3>\n", 0), 0u)
      << html;
  EXPECT_EQ(html.find("<h4>"), std::string::npos) << html;
}

// Names come from suites, agents and cases' output. A benchmark named with
// backticks used to end its code span and put an image and bold text in
// the PR comment; a carriage return made a heading; escape sequences reached
// the gate's terminal, where they can hide "GATE FAILED".
TEST(ReportFilesTest, HostileNamesStayTextInTheCommentAndOnTheTerminal) {
  Policy policy;
  const std::string markup = "a``<img src=x> **APPROVED** ``b";
  const std::string heading = "z\r\r## perfgate passed\r";
  const std::string ansi = "\033[2K\033[1A\033]0;title\007ok";
  GateReport r = BuildGateReport(
      RunOf({OkCase("c1", "instructions", {1200}, "agent:callgrind", markup),
             OkCase("c2", "instructions", {1200}, "agent:callgrind", heading),
             OkCase(ansi, "instructions", {1200})}),
      Expected({{markup, "instructions", 1000, 0.1, 1}, {heading, "instructions", 1000, 0.1, 2},
                {ansi, "instructions", 1000, 0.1, 3}}),
      policy);
  r.warnings.push_back("direction unknown: ![pwn](http://e/p.png) **APPROVED** _x_ [l](http://e) ~~s~~");
  const std::string html = MarkdownHtml(r);
  EXPECT_EQ(html.find("<img"), std::string::npos) << html;
  EXPECT_EQ(html.find("<a href"), std::string::npos) << html;
  EXPECT_EQ(html.find("<em>"), std::string::npos) << html;
  EXPECT_EQ(html.find("<del>"), std::string::npos) << html;
  EXPECT_THAT(html, HasSubstr("![pwn](http://e/p.png) **APPROVED**")) << "shown as the text it is";
  EXPECT_EQ(html.find("<strong>APPROVED"), std::string::npos) << html;
  EXPECT_EQ(html.find("<h2>"), std::string::npos) << html;
  EXPECT_THAT(html, HasSubstr("z\\x0D\\x0D## perfgate passed\\x0D"));
  const std::string table = Render(TerminalReporter(/*color=*/false, /*metrics=*/true), r);
  EXPECT_EQ(table.find('\033'), std::string::npos) << table;
  EXPECT_EQ(table.find('\r'), std::string::npos) << table;
  EXPECT_THAT(table, HasSubstr("\\x1B[2K\\x1B[1A\\x1B]0;title\\x07ok"));
  EXPECT_THAT(table, HasSubstr("GATE FAILED"));
  EXPECT_EQ(EscapeControls("caf\xC3\xA9 \xC2\x9B" "1m"), "caf\xC3\xA9 \\u009B1m") << "C1 CSI escaped, other UTF-8 kept";
}

// Names come from cases' output as bytes: a stray byte made the JUnit file
// no XML (xmllint refused it) and the Markdown row no table row; U+FFFF is
// UTF-8 that XML 1.0 forbids; a long name was cut inside a character.
TEST(ReportFilesTest, NamesOfAnyBytesLeaveEveryReportWellFormed) {
  const std::string stray = "b\xff\xfe";
  const std::string noncharacter = "b\xEF\xBF\xBF";
  const std::string long_name = "x" + std::string(60 * 2, 'a');
  std::string accents;
  for (int i = 0; i < 60; ++i) accents += "\xC3\xA9";
  GateReport r = BuildGateReport(RunOf({OkCase("c1", "instructions", {1200}, "agent:callgrind", stray),
                                        OkCase("c2", "instructions", {1200}, "agent:callgrind", noncharacter),
                                        OkCase("c3", "instructions", {1200}, "agent:callgrind", accents)}),
                                 Expected({{stray, "instructions", 1000, 0.1, 1},
                                           {noncharacter, "instructions", 1000, 0.1, 2},
                                           {accents, "instructions", 1000, 0.1, 3}}),
                                 Policy{});
  testing::TempDir dir;
  const std::string xml = WriteTo(dir, "junit.xml", JunitReporter(), r);
  auto lint = testing::RunCommand(
      {"/usr/bin/xmllint", "--noout", "--schema", testing::SourceDir() + "/tests/data/junit.xsd", xml});
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  const std::string html = MarkdownHtml(r);
  EXPECT_TRUE(IsValidUtf8(html));
  EXPECT_THAT(html, HasSubstr("b\\xFF\\xFE")) << "the bytes shown as \\xNN";
  for (const char* name : {"c1", "c2", "c3"}) {
    EXPECT_THAT(html, HasSubstr(absl::StrCat("<td><code>", name, "</code>"))) << "each case a row of the table";
  }
  const std::string table = Render(TerminalReporter(/*color=*/false, /*metrics=*/true), r);
  EXPECT_TRUE(IsValidUtf8(table)) << table;
}

// A suite of thousands of cases, all regressed: GitHub shows nothing of a
// comment over 65,536 characters (or a step summary over 1 MiB), so the
// report keeps to a budget, leads with what failed and says what it left out.
TEST(ReportFilesTest, MarkdownOfThousandsOfCasesStaysWithinGitHubsLimit) {
  constexpr int kCases = 3000;
  std::vector<v1::CaseStatus> cases;
  std::vector<ExpectedRow> rows;
  for (int i = 0; i < kCases; ++i) {
    const std::string name = "case_" + std::to_string(i);
    cases.push_back(OkCase(name, "instructions", {1150}));
    rows.push_back({name, "instructions", 1000, 0.1, i + 1});
  }
  Policy policy;
  const GateReport r = BuildGateReport(RunOf(cases), Expected(rows), policy);
  const std::string md = Render(MarkdownReporter(), r);
  EXPECT_LT(md.size(), 65'536u);
  EXPECT_EQ(md.rfind("### ❌ perfgate failed: 3000 regressions · 3000 cases", 0), 0u) << md.substr(0, 200);
  // The regressions table comes first and is cut, saying by how much.
  const int shown = Count(md, "| `case_");
  ASSERT_GT(shown, 100);
  ASSERT_LT(shown, kCases);
  EXPECT_THAT(md, HasSubstr("<summary>All cases (3000)</summary>"));
  EXPECT_THAT(md, HasSubstr(absl::StrCat("_", kCases - shown, " more rows not shown, to keep this report within "
                                         "GitHub's size limits: the JSON and JUnit reports have every case._")));
  // What was left out is said as text, not swallowed into the table.
  const std::string html = MarkdownHtml(r);
  EXPECT_THAT(html, HasSubstr("<p><em>3000 more rows not shown"));  // the folded list of all cases
  EXPECT_EQ(Count(html, "<td><code>case_"), shown);
  EXPECT_EQ(Count(html, "<thead>"), 1) << "a table none of whose rows fit is not begun";
}

TEST(ReportTest, ACaseWithoutAMeasuredResultNeverPasses) {
  Policy policy;
  v1::CaseStatus cancelled;
  cancelled.set_name("slow");
  cancelled.set_state(v1::CASE_STATE_CANCELLED);  // the agent gave up its lease on its own
  const Baselines b = Expected({{"add", "instructions", 1000, 0.1, 1}});
  GateReport r = BuildGateReport(RunOf({OkCase("add", "instructions", {1000}), cancelled}), b, policy);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(r.cases[1].fails);
  EXPECT_THAT(r.failed_rules,
              ::testing::ElementsAre("a case without a measured result fails the gate: 1 case (slow: cancelled)"));
  // Whatever fail_on says: an error or a case the run never finished fails too.
  policy.fail_on = {Verdict::kRegression};
  v1::CaseStatus crashed = OkCase("crash", "instructions", {});
  crashed.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_CRASHED);
  v1::CaseStatus pending;
  pending.set_name("late");
  pending.set_state(v1::CASE_STATE_RUNNING);
  GateReport loose = BuildGateReport(RunOf({OkCase("add", "instructions", {1000}), crashed, pending}), b, policy);
  EXPECT_FALSE(loose.passed);
  EXPECT_THAT(loose.failed_rules, ::testing::ElementsAre("a case without a measured result fails the gate: 2 cases "
                                                         "(crash: error, late: missing result)"));
  // A case no agent can run is the policy's call (perfgate run skips them).
  v1::CaseStatus gpu;
  gpu.set_name("gpu");
  gpu.set_state(v1::CASE_STATE_NO_CAPABLE_AGENT);
  EXPECT_TRUE(BuildGateReport(RunOf({OkCase("add", "instructions", {1000}), gpu}), b, policy).passed);
  // A run the user cancelled exits 130, as before.
  v1::Run interrupted = RunOf({OkCase("add", "instructions", {1000}), cancelled});
  interrupted.set_state(v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(BuildGateReport(interrupted, b, Policy{}).exit_code, 130);
}

TEST(ReportTest, FailOnLooksAtEveryVerdictOfEveryMetric) {
  // One case, three metrics: instructions regress, wall time improves, and an expected row has no result.
  v1::CaseStatus c = OkCase("add", "instructions", {1200});
  auto* wall = c.mutable_result()->mutable_samples(0)->add_values();
  wall->set_benchmark("add");
  wall->set_metric("wall_time");
  wall->set_unit("s");
  wall->set_value(0.5);
  wall->set_source("agent:clock");
  const Baselines b = Expected(
      {{"add", "instructions", 1000, 0.1, 1}, {"add", "wall_time", 1, 0.1, 2}, {"add", "peak_rss", 1000, 0.1, 3}});
  auto gate = [&](std::set<Verdict> fail_on) {
    Policy policy;
    policy.fail_on = std::move(fail_on);
    return BuildGateReport(RunOf({c}), b, policy);
  };
  EXPECT_EQ(gate({Verdict::kRegression}).cases[0].verdict, Verdict::kRegression);
  EXPECT_THAT(gate({Verdict::kImprovement}).failed_rules,
              ::testing::ElementsAre("improvement fails the gate: 1 case (add)"));
  EXPECT_THAT(gate({Verdict::kMissingResult}).failed_rules,
              ::testing::ElementsAre("missing result fails the gate: 1 case (add)"));
  EXPECT_THAT(
      gate({Verdict::kRegression, Verdict::kImprovement}).failed_rules,
      ::testing::ElementsAre("regression fails the gate: 1 case (add)", "improvement fails the gate: 1 case (add)"));
  EXPECT_TRUE(gate({Verdict::kError}).passed);
  // Metrics that are only shown (CPU times) never count for the gate.
  v1::CaseStatus cpu = OkCase("t", "user_cpu_time", {5}, "agent:rusage");
  Policy strict;
  strict.fail_on.insert(Verdict::kNoBaseline);
  GateReport shown = BuildGateReport(RunOf({cpu, OkCase("add", "instructions", {1000})}),
                                     Expected({{"add", "instructions", 1000, 0.1, 1}}), strict);
  EXPECT_THAT(shown.failed_rules, ::testing::ElementsAre("no baseline fails the gate: 1 case (t)"));
  EXPECT_FALSE(shown.cases[0].metrics[0].fails) << "shown, not judged";
}

TEST(ReportTest, ExpectedFilesForPoolsNoAgentHasSeenAreRefused) {
  Policy policy;
  policy.expected_files = {{"lab", "lab.csv"}, {"gpu-lab", "gpu.csv"}, {"*", "any.csv"}};
  const v1::Run run = RunOf({OkCase("add", "instructions", {1000})});  // ran on pool "lab"
  absl::Status s = CheckBaselinePools(policy, {"lab", "cpu-lab"}, run);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("gpu.csv is for pool 'gpu-lab', but no agent has ever registered"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("pools that ran: lab; pools known to the coordinator: cpu-lab, lab"));
  EXPECT_TRUE(CheckBaselinePools(policy, {"lab", "gpu-lab"}, run).ok());
  // A known pool that sat this run out: a warning, not a silent pass.
  Baselines b = Expected({{"add", "instructions", 1000, 0.1, 1}});
  b.expected["gpu-lab"] = {{"cuda", "time", 1, 0.1, 1}};
  b.known_pools = std::set<std::string>{"lab", "gpu-lab"};
  GateReport r = BuildGateReport(run, b, Policy{}, /*complete_run=*/false);
  EXPECT_TRUE(r.passed);
  EXPECT_THAT(r.warnings, ::testing::Contains(HasSubstr("the expected file for pool 'gpu-lab' judged nothing")));
}

TEST(UnitsTest, ValuesPrintWithTheirUnits) {
  EXPECT_EQ(FormatValue(0.0012345, "s"), "1.23 ms");
  EXPECT_EQ(FormatValue(0.99996, "s"), "1.00 s");
  EXPECT_EQ(FormatValue(12.5e-6, "s"), "12.5 us");
  EXPECT_EQ(FormatValue(18.4 * 1024 * 1024, "bytes"), "18.4 MiB");
  EXPECT_EQ(FormatValue(512, "bytes"), "512 B");
  EXPECT_EQ(FormatValue(1770000, "count", "instructions_callgrind"), "1.77 M instr");
  EXPECT_EQ(FormatValue(950, "count", "instructions"), "950 instr");
  EXPECT_EQ(FormatValue(3066000000, "count", "compile_time_instruction_count"), "3.07 G instr");
  EXPECT_EQ(FormatValue(42, "count"), "42");
  EXPECT_EQ(FormatValue(0.5, ""), "0.5");
  EXPECT_EQ(FormatValue(2.5e9, "", "items_per_second"), "2.50 G/s");
  EXPECT_EQ(FormatValue(3 * 1024.0 * 1024, "", "bytes_per_second"), "3.00 MiB/s");
  EXPECT_EQ(FormatValue(12345, "1/s"), "12.3 k/s");
}

TEST(ReportFilesTest, TerminalTableShowsUnits) {
  std::stringstream out;
  TerminalReporter(/*color=*/false, /*metrics=*/true).Write(MixedReport(), out);
  EXPECT_THAT(out.str(), HasSubstr("regression  add: instructions 1.15 k instr (+15.00%) vs expected 1.00 k instr"));
  EXPECT_THAT(out.str(), ::testing::Not(HasSubstr(" 1150 ")));
}

TEST(ReportFilesTest, JsonCarriesVerdictsComparisonsAndRawSamples) {
  nlohmann::json doc = nlohmann::json::parse(Render(JsonReporter(), MixedReport()));
  EXPECT_EQ(doc["schema_version"], 1);
  EXPECT_EQ(doc["passed"], false);
  EXPECT_EQ(doc["exit_code"], 1);
  EXPECT_EQ(doc["state"], "finished");
  EXPECT_EQ(doc["cases"][0]["verdict"], "regression");
  EXPECT_EQ(doc["cases"][0]["metrics"][0]["comparison"]["baseline"], 1000);
  EXPECT_EQ(doc["cases"][0]["metrics"][0]["comparison"]["method"], "expected");
  EXPECT_EQ(doc["cases"][0]["metrics"][0]["comparison"]["explain"],
            "1.15 k instr (+15.00%) vs expected 1.00 k instr (margin 10.00%)");
  EXPECT_EQ(doc["cases"][0]["metrics"][0]["samples"][0], 1150);
  EXPECT_EQ(doc["cases"][0]["raw_samples"][0]["values"][0]["value"], 1150);
  EXPECT_EQ(doc["cases"][3]["verdict"], "no_capable_agent");
  EXPECT_EQ(doc["cases"][5]["verdict"], "no_baseline");
  EXPECT_FALSE(doc.contains("run")) << "no protobuf JSON mixed in";
}

// Every key of `j`, recursively, as paths: "cases[].metrics[].comparison.p_value".
void KeyPaths(const nlohmann::json& j, const std::string& prefix, std::set<std::string>* out) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      out->insert(prefix + key);
      KeyPaths(value, prefix + key + ".", out);
    }
  } else if (j.is_array()) {
    for (const auto& item : j) KeyPaths(item, prefix.substr(0, prefix.size() - 1) + "[].", out);
  }
}

TEST(ReportFilesTest, JsonKeysAreSnakeCaseAndWordsAreTokens) {
  nlohmann::json doc = nlohmann::json::parse(Render(JsonReporter(), MixedReport()));
  std::set<std::string> paths;
  KeyPaths(doc, "", &paths);
  const std::regex snake("^[a-z][a-z0-9_]*$");
  for (const auto& path : paths) {
    const std::string key = path.substr(path.find_last_of(".]") == std::string::npos ? 0 : path.find_last_of(".]") + 1);
    EXPECT_TRUE(std::regex_match(key, snake)) << path;
  }
  for (const auto& c : doc["cases"]) {
    EXPECT_TRUE(std::regex_match(c["verdict"].get<std::string>(), snake)) << c["verdict"];
    for (const auto& m : c["metrics"]) {
      EXPECT_TRUE(std::regex_match(m["verdict"].get<std::string>(), snake)) << m["verdict"];
    }
  }
}

// The example in docs/report-json.md has exactly the keys perfgate writes:
// the documentation cannot drift from the code.
TEST(ReportFilesTest, JsonDocumentationExampleMatchesTheReport) {
  std::ifstream in(testing::SourceDir() + "/docs/report-json.md");
  ASSERT_TRUE(in);
  std::stringstream text;
  text << in.rdbuf();
  const std::string md = text.str();
  const size_t start = md.find("```json\n");
  ASSERT_NE(start, std::string::npos);
  const size_t end = md.find("\n```", start + 8);
  nlohmann::json example = nlohmann::json::parse(md.substr(start + 8, end - start - 8));
  std::set<std::string> documented, written;
  KeyPaths(example, "", &documented);
  KeyPaths(nlohmann::json::parse(Render(JsonReporter(), MixedReport())), "", &written);
  KeyPaths(nlohmann::json::parse(Render(JsonReporter(), ConfirmedAbReport())), "", &written);
  EXPECT_EQ(documented, written);
  for (const auto& path : written) {
    const std::string key = path.substr(path.find_last_of(".]") == std::string::npos ? 0 : path.find_last_of(".]") + 1);
    EXPECT_THAT(md, HasSubstr("`" + key + "`")) << "undocumented field " << path;
  }
}

}  // namespace
}  // namespace perfgate
