// The demo's steady timed case (bench_cases/src/steady_kernel.cc): a
// slowdown adds exactly its share of the timed work, the case reports its
// own timed metric, and the demo suite judges that metric, not the process's
// wall time. Instruction counts under callgrind keep every assertion
// deterministic: nothing here depends on how fast the machine is today.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/case_runner.h"
#include "agent/host_fingerprint.h"
#include "core/metric_traits.h"
#include "core/policy.h"
#include "core/series.h"
#include "core/suite.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

v1::CaseSpec KernelSpec(const std::string& rounds, const std::string& slowdown_pct) {
  v1::CaseSpec spec;
  spec.set_name("steady_kernel");
  for (const std::string& a : {testing::CaseBinary("steady_kernel"), std::string("${PERFGATE_RESULT_FILE}"), rounds,
                               std::string("3")}) {
    spec.add_argv(a);
  }
  (*spec.mutable_env())["PERFGATE_SLOWDOWN_PCT"] = slowdown_pct;
  spec.set_repeats(1);
  spec.set_timeout_ms(120'000);
  spec.set_result_format(v1::RESULT_FORMAT_PYTORCH_CSV);
  spec.set_result_source(v1::RESULT_SOURCE_FILE);
  spec.set_instructions(v1::INSTRUCTION_COUNTER_CALLGRIND);
  return spec;
}

// (instructions counted by callgrind, the kernel_cpu_min the case reported)
std::pair<double, double> RunKernel(const std::string& rounds, const std::string& slowdown_pct) {
  const v1::CaseResult r = RunCase(KernelSpec(rounds, slowdown_pct), ProbeHost(), {});
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_OK) << r.error();
  std::pair<double, double> out{-1, -1};
  for (const Series& s : CollectSeries(r)) {
    if (s.metric == kCallgrindInstructions && !s.values.empty()) out.first = s.values[0];
    if (s.metric == "kernel_cpu_min" && s.benchmark == "steady_kernel" && !s.values.empty()) out.second = s.values[0];
  }
  return out;
}

TEST(SteadyKernelTest, SlowdownAddsExactlyItsShareOfTheTimedWork) {
  // Start-up and exit cost the same in every run, so the extra instructions
  // of a 10% slowdown must be 10% of those that doubling the rounds adds.
  const auto [base, base_time] = RunKernel("100000", "0");
  const auto [slowed, slowed_time] = RunKernel("100000", "10");
  const auto [doubled, doubled_time] = RunKernel("200000", "0");
  ASSERT_GT(base, 0);
  ASSERT_GT(doubled, base);
  EXPECT_NEAR((slowed - base) / (doubled - base), 0.10, 0.001);
  // The case reports its own timed metric, one value per sample.
  EXPECT_GT(base_time, 0);
  EXPECT_GT(slowed_time, 0);
}

TEST(SteadyKernelTest, ArgumentsThatAreNotWholeNumbersAreRefused) {
  v1::CaseSpec spec = KernelSpec("12x", "0");
  spec.set_instructions(v1::INSTRUCTION_COUNTER_OFF);
  const v1::CaseResult r = RunCase(spec, ProbeHost(), {});
  EXPECT_EQ(r.outcome(), v1::CaseResult::OUTCOME_FAILED);
  EXPECT_EQ(r.exit_code(), 2);
  EXPECT_THAT(r.stderr_tail(), HasSubstr("ROUNDS '12x' is not a whole number"));
}

TEST(SteadyKernelTest, DemoSuiteJudgesTheKernelsCpuTimeNotItsWallTime) {
  auto suite = LoadSuiteFile(testing::SourceDir() + "/bench_cases/demo.yaml");
  ASSERT_TRUE(suite.ok()) << suite.status();
  const Policy policy = PolicyForSuite(*suite);
  EXPECT_TRUE(policy.Judged("steady_kernel", "kernel_cpu_min"));
  EXPECT_FALSE(policy.Judged("steady_kernel", kWallTime));
  const MetricDeclarations declared = DeclaredMetrics(*suite);
  EXPECT_EQ(TraitsOf("kernel_cpu_min", "case:pytorch", declared).direction, Direction::kLowerIsBetter);
  EXPECT_EQ(UnitOf("kernel_cpu_min", "", declared), "s");
}

}  // namespace
}  // namespace perfgate
