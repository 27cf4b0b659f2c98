// Verdicts and rules from runs, confirmation, and the report files read by
// real consumers: xmllint against a JUnit schema, cmark-gfm for Markdown.
#include "core/judge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/baseline_update.h"
#include "core/units.h"
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
  // A result with no row is "no baseline": a warning, not a failure.
  GateReport fresh = BuildGateReport(RunOf({OkCase("new", "instructions", {1})}), Baselines{}, policy);
  EXPECT_TRUE(fresh.passed);
  EXPECT_EQ(fresh.cases[0].verdict, Verdict::kNoBaseline);
  ASSERT_EQ(fresh.warnings.size(), 1u);
  EXPECT_THAT(fresh.warnings[0], HasSubstr("no baseline for 1 case (new)"));
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
  // Rows for another testbed never judge this one.
  GateReport r = BuildGateReport(RunOf({crashed, gpu, OkCase("add", "instructions", {5000})}),
                                 Expected({{"add", "instructions", 1000, 0.1, 1}}, "other-lab"), policy);
  EXPECT_EQ(r.cases[0].verdict, Verdict::kError);
  EXPECT_EQ(r.cases[0].outcome, "signal 11");
  EXPECT_EQ(r.cases[1].verdict, Verdict::kNoCapableAgent);
  EXPECT_EQ(r.cases[2].verdict, Verdict::kNoBaseline);
  EXPECT_THAT(r.failed_rules, ::testing::ElementsAre("error fails the gate: 1 case (crash)",
                                                     "no capable agent fails the gate: 1 case (gpu)"));
  // "*" applies to every testbed without its own file.
  GateReport any = BuildGateReport(RunOf({OkCase("add", "instructions", {5000})}),
                                   Expected({{"add", "instructions", 1000, 0.1, 1}}, "*"), policy);
  EXPECT_EQ(any.cases[0].verdict, Verdict::kRegression);
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

TEST(ReportTest, AbVariantsCompareHeadWithBase) {
  Policy policy;
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
  GateReport r = BuildGateReport(RunOf({c}), Baselines{}, policy);
  ASSERT_EQ(r.cases[0].metrics.size(), 1u) << "base is shown beside head, not as its own row";
  const MetricReport& m = r.cases[0].metrics[0];
  EXPECT_EQ(m.verdict, Verdict::kRegression);
  EXPECT_EQ(m.comparison->method, Method::kAB);
  ASSERT_TRUE(m.base.has_value());
  EXPECT_NEAR(m.base->median, 1.0045, 1e-9);
}

// Writes `report` with `reporter` to a file and returns its path.
std::string WriteTo(const testing::TempDir& dir, const std::string& name, const Reporter& reporter,
                    const GateReport& report) {
  std::ofstream out(dir.File(name));
  reporter.Write(report, out);
  return dir.File(name);
}

GateReport MixedReport() {
  Policy policy;
  v1::CaseStatus crashed = OkCase("crash<&>", "instructions", {});
  crashed.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_CRASHED);
  crashed.set_error("killed by \"SIGSEGV\" & <core>");
  return BuildGateReport(
      RunOf({OkCase("add", "instructions", {1150}), OkCase("ok|pipe", "instructions", {1000}), crashed}),
      Expected({{"add", "instructions", 1000, 0.1, 1}, {"ok|pipe", "instructions", 1000, 0.1, 2}}), policy);
}

TEST(ReportFilesTest, JunitValidatesAgainstTheSchemaAndCarriesTheNumbers) {
  testing::TempDir dir;
  const std::string path = WriteTo(dir, "junit.xml", JunitReporter(), MixedReport());
  auto lint = testing::RunCommand(
      {"/usr/bin/xmllint", "--noout", "--schema", testing::SourceDir() + "/tests/data/junit.xsd", path});
  EXPECT_EQ(lint.exit_code, 0) << lint.output;
  EXPECT_THAT(lint.output, HasSubstr("validates"));
  std::stringstream xml;
  xml << std::ifstream(path).rdbuf();
  EXPECT_THAT(xml.str(), HasSubstr("tests=\"3\" failures=\"2\""));
  EXPECT_THAT(xml.str(),
              HasSubstr("baseline: 1.00 k instr (expected)\nresult: 1.15 k instr (median of 1)\nchange: +15.00%"));
  EXPECT_THAT(xml.str(), HasSubstr("classname=\"perfgate.s.crash&lt;&amp;&gt;\""));
}

TEST(ReportFilesTest, MarkdownRendersAsTables) {
  testing::TempDir dir;
  const std::string path = WriteTo(dir, "report.md", MarkdownReporter(), MixedReport());
  auto html = testing::RunCommand({"/usr/bin/cmark-gfm", "-e", "table", path});
  ASSERT_EQ(html.exit_code, 0) << html.output;
  EXPECT_THAT(html.output, HasSubstr("<h2>perfgate: ❌ failed</h2>"));
  EXPECT_THAT(html.output, HasSubstr("<table>"));
  // A '|' inside a cell stays in its cell.
  EXPECT_THAT(html.output, HasSubstr("<code>ok|pipe</code>"));
  EXPECT_THAT(html.output, HasSubstr("<td align=\"right\">+15.00%</td>"));
  // Text that looks like HTML is shown, not swallowed as markup.
  EXPECT_THAT(html.output, HasSubstr("&amp; &lt;core&gt;"));
  EXPECT_THAT(html.output, HasSubstr("regression fails the gate: 1 case (add)"));
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
  std::stringstream out;
  JsonReporter().Write(MixedReport(), out);
  nlohmann::json doc = nlohmann::json::parse(out.str());
  EXPECT_EQ(doc["passed"], false);
  EXPECT_EQ(doc["exit_code"], 1);
  EXPECT_EQ(doc["cases"][0]["verdict"], "regression");
  EXPECT_EQ(doc["cases"][0]["metrics"][0]["comparison"]["baseline"], 1000);
  EXPECT_EQ(doc["cases"][0]["metrics"][0]["comparison"]["explain"],
            "1.15 k instr (+15.00%) vs expected 1.00 k instr (margin 10.00%)");
  EXPECT_EQ(doc["cases"][0]["metrics"][0]["samples"][0], 1150);
  EXPECT_EQ(doc["run"]["cases"][0]["result"]["samples"][0]["values"][0]["value"], 1150);
}

}  // namespace
}  // namespace perfgate
