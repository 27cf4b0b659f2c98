// The per-run summaries' arithmetic: a case's duration orders the next runs
// and decides whether a lease may be held ahead; each series' median is what
// history compares with.
#include "coordinator/run_summary.h"

#include <gtest/gtest.h>

namespace perfgate {
namespace {

v1::CaseResult BusyFor(uint64_t busy_us) {
  v1::CaseResult r;
  r.set_busy_us(busy_us);
  return r;
}

TEST(RunSummaryTest, ADurationIsTheAgentsBusyTimeRoundedUpAndNeverLongerThanItsLease) {
  EXPECT_EQ(DurationMs(BusyFor(2'000), 50), 2);
  EXPECT_EQ(DurationMs(BusyFor(2'001), 50), 3);  // rounded up: 1 us busy is not 0 ms
  EXPECT_EQ(DurationMs(BusyFor(1), 50), 1);
  // An agent cannot stretch a case past the lease that ran it.
  EXPECT_EQ(DurationMs(BusyFor(90'000'000), 40), 40);
  EXPECT_EQ(DurationMs(BusyFor(5'000), -3), 0);  // a clock step back: no negative duration
  // No busy time said: the lease's span.
  EXPECT_EQ(DurationMs(BusyFor(0), 17), 17);
}

TEST(RunSummaryTest, MediansAreTakenPerSeriesOfUnsortedPairs) {
  const std::vector<std::pair<int64_t, double>> medians =
      Medians({{7, 3.0}, {2, 10.0}, {7, 1.0}, {2, 20.0}, {7, 2.0}, {9, 5.0}});
  ASSERT_EQ(medians.size(), 3u);
  EXPECT_EQ(medians[0], (std::pair<int64_t, double>{2, 15.0}));  // even count: the mean of the middle two
  EXPECT_EQ(medians[1], (std::pair<int64_t, double>{7, 2.0}));
  EXPECT_EQ(medians[2], (std::pair<int64_t, double>{9, 5.0}));
  EXPECT_TRUE(Medians({}).empty());
  EXPECT_EQ(Median({4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_EQ(Median({4.0}), 4.0);
}

TEST(RunSummaryTest, HistoryKeepsPlainSamplesAndTheHeadSideNeverTheBase) {
  v1::CaseResult result;
  result.set_outcome(v1::CaseResult::OUTCOME_OK);
  for (const auto& [variant, value] :
       std::vector<std::pair<std::string, double>>{{"", 1.0}, {"", 2.0}, {"head", 3.0}, {"base", 100.0}}) {
    auto* sample = result.add_samples();
    sample->set_variant(variant);
    auto* v = sample->add_values();
    v->set_benchmark("b");
    v->set_metric("wall_time");
    v->set_source("agent:clock");
    v->set_value(value);
  }
  const auto values = HistoryValues(result);
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values.begin()->first,
            std::make_tuple(std::string("b"), std::string("wall_time"), std::string("agent:clock")));
  EXPECT_EQ(values.begin()->second, (std::vector<double>{1.0, 2.0, 3.0}));

  // A case that failed on its third repeat kept the wall times of its first
  // two, which main-branch history used to take.
  for (auto outcome : {v1::CaseResult::OUTCOME_FAILED, v1::CaseResult::OUTCOME_TIMED_OUT, v1::CaseResult::OUTCOME_CRASHED}) {
    result.set_outcome(outcome);
    EXPECT_TRUE(HistoryValues(result).empty()) << outcome;
  }
}

}  // namespace
}  // namespace perfgate
