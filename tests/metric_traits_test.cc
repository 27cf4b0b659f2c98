// Directions come from the table or the suite, never from a metric's name;
// metrics of the instrument and too-short wall times are shown, not judged.
#include "core/metric_traits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/suite.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

TEST(MetricTraitsTest, BuiltInDirections) {
  const MetricDeclarations none;
  for (const char* lower : {"wall_time", "peak_rss", "instructions", "instructions_callgrind",
                            "compile_time_instruction_count", "real_time", "cpu_time"}) {
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
}

}  // namespace
}  // namespace perfgate
