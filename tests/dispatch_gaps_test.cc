// bench/dispatch's arithmetic on timestamps: the figures #11's rows are read
// from (rates beside history calls, the longest moment with nothing going
// on, what chance gives) must be right before the bench's numbers mean anything.
#include "bench/dispatch/gaps.h"

#include <gtest/gtest.h>

#include <cmath>

namespace perfgate::dispatch {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(DispatchGapsTest, PercentileIsTheNearestRank) {
  std::vector<double> v;
  for (int i = 101; i >= 1; --i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 0.5), 51);
  EXPECT_EQ(Percentile(v, 0.99), 100);
  EXPECT_EQ(Percentile(v, 0), 1);
  EXPECT_EQ(Percentile({}, 0.5), 0);
}

TEST(DispatchGapsTest, RateRatioComparesTheRateInsideCallsWithTheRateOutside) {
  // One a millisecond over a second: the same inside the call as outside.
  std::vector<int64_t> even;
  for (int64_t t = 0; t <= 1000; ++t) even.push_back(t * kMs);
  EXPECT_NEAR(RateRatio(even, {{200 * kMs, 400 * kMs}}), 1.0, 0.02);

  // Half as dense inside the call: every other start dropped there.
  std::vector<int64_t> thinner;
  for (int64_t t = 0; t <= 1000; ++t) {
    if (t > 200 && t < 400 && t % 2) continue;
    thinner.push_back(t * kMs);
  }
  EXPECT_NEAR(RateRatio(thinner, {{200 * kMs, 400 * kMs}}), 0.5, 0.02);

  // Nothing to compare: no call, or a call outside the starts.
  EXPECT_EQ(RateRatio(even, {}), 0);
  EXPECT_EQ(RateRatio(even, {{2000 * kMs, 3000 * kMs}}), 0);
}

TEST(DispatchGapsTest, ChanceIsTheHarmonicNumberOfTheGapsOverTheRate) {
  std::vector<int64_t> starts;
  for (int64_t i = 0; i <= 1000; ++i) starts.push_back(i * 10 * kMs);  // 100 a second, 1,000 gaps
  HistoryFigures f;
  SetChance(starts, &f);
  EXPECT_NEAR(f.starts_per_s, 100, 1e-9);
  // H(1000) = 7.4855; at 100 a second the longest of 1,000 exponential gaps averages 74.9 ms.
  EXPECT_NEAR(f.chance_max_ms, 74.855, 0.01);

  HistoryFigures none;
  SetChance({5 * kMs}, &none);
  EXPECT_EQ(none.starts_per_s, 0);
  EXPECT_EQ(none.chance_max_ms, 0);
}

TEST(DispatchGapsTest, CasesLeaveAGapOnlyWhereNoCaseRuns) {
  // Two overlapping cases (0-10, 5-20 ms), then nothing until 50 ms: a 30 ms
  // moment inside a history call; later a 1 ms one outside it.
  const Spans cases = {{50 * kMs, 60 * kMs}, {0, 10 * kMs}, {61 * kMs, 62 * kMs}, {5 * kMs, 20 * kMs}};
  const HistoryFigures f = CaseFigures(cases, {{25 * kMs, 30 * kMs}});
  EXPECT_DOUBLE_EQ(f.idle_max_ms, 30);
  EXPECT_DOUBLE_EQ(f.idle_max_at_ms, 20);
  EXPECT_DOUBLE_EQ(f.idle_max_outside_ms, 1);
  EXPECT_EQ(f.calls, 1);
  EXPECT_DOUBLE_EQ(f.call_ms_p50, 5);
}

TEST(DispatchGapsTest, LeaseGapsAreBetweenArrivalsInTimeOrder) {
  const HistoryFigures f = LeaseFigures({0, 3 * kMs, 1 * kMs, 10 * kMs}, {{4 * kMs, 5 * kMs}});
  EXPECT_DOUBLE_EQ(f.idle_max_ms, 7);
  EXPECT_DOUBLE_EQ(f.idle_max_at_ms, 3);
  EXPECT_DOUBLE_EQ(f.idle_max_outside_ms, 2);
}

}  // namespace
}  // namespace perfgate::dispatch
