// Exact numbers for every verdict and the boundary cases.
#include "core/compare.h"

#include <gtest/gtest.h>

#include "core/expected_file.h"
#include "core/report.h"

namespace perfgate {
namespace {

constexpr Direction kLower = Direction::kLowerIsBetter;
constexpr Direction kHigher = Direction::kHigherIsBetter;

ExpectedRow Row(double expected, double margin) { return ExpectedRow{"b", "instructions", expected, margin, 1}; }

TEST(CompareExpectedTest, PytorchLimitsAreInclusive) {
  // E = 1000, m = 0.1: low = 900, high = 1100.
  EXPECT_EQ(CompareWithExpected(kLower, 1100, Row(1000, 0.1)).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithExpected(kLower, 900, Row(1000, 0.1)).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithExpected(kLower, 1100.0001, Row(1000, 0.1)).verdict, Verdict::kRegression);
  EXPECT_EQ(CompareWithExpected(kLower, 899.9999, Row(1000, 0.1)).verdict, Verdict::kImprovement);
  // A negative expected value keeps its band the right way round (E*m
  // would make low > high: the expected value itself a regression).
  EXPECT_EQ(CompareWithExpected(kLower, -10, Row(-10, 0.1)).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithExpected(kLower, -8.9, Row(-10, 0.1)).verdict, Verdict::kRegression);
  EXPECT_EQ(CompareWithExpected(kLower, -11.1, Row(-10, 0.1)).verdict, Verdict::kImprovement);
  EXPECT_EQ(CompareWithExpected(Direction::kHigherIsBetter, -10.9, Row(-10, 0.1)).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithExpected(Direction::kHigherIsBetter, -11.1, Row(-10, 0.1)).verdict, Verdict::kRegression);
  Comparison c = CompareWithExpected(kLower, 1150, Row(1000, 0.1));
  EXPECT_DOUBLE_EQ(c.change, 0.15);
  EXPECT_DOUBLE_EQ(c.threshold, 0.1);
  EXPECT_DOUBLE_EQ(c.baseline, 1000);
  EXPECT_EQ(ExplainComparison(c, Series{"b", "m", "", "", "", {}}), "1.15 k (+15.00%) vs expected 1.00 k (margin 10.00%)");
}

TEST(CompareExpectedTest, MatchesPytorchDoubleArithmeticAtTheEdge) {
  // 3058000000 * (1 + 0.015) is not exactly representable; PyTorch computes
  // high = E + E*m, and so must we, or a result on the edge flips.
  const double e = 3058000000, m = 0.015;
  const double high = e + e * m;
  EXPECT_EQ(CompareWithExpected(kLower, high, Row(e, m)).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithExpected(kLower, std::nextafter(high, 1e300), Row(e, m)).verdict, Verdict::kRegression);
}

TEST(CompareExpectedTest, ZeroExpectedValue) {
  // low = high = 0: any positive result regresses, the change has no percentage.
  Comparison c = CompareWithExpected(kLower, 1, Row(0, 0.1));
  EXPECT_EQ(c.verdict, Verdict::kRegression);
  EXPECT_TRUE(std::isnan(c.change));
  EXPECT_EQ(CompareWithExpected(kLower, 0, Row(0, 0.1)).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithExpected(kLower, -1, Row(0, 0.1)).verdict, Verdict::kImprovement);
  EXPECT_EQ(ExplainComparison(c, Series{"b", "m", "", "", "", {}}), "1 (n/a) vs expected 0 (margin 10.00%)");
}

TEST(CompareExpectedTest, UnknownDirectionIsNeverARegression) {
  EXPECT_EQ(CompareWithExpected(Direction::kUnknown, 5000, Row(1000, 0.1)).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithHistory(Direction::kUnknown, {500}, std::vector<double>(10, 100), CompareOptions{}).verdict,
            Verdict::kPass);
}

TEST(CompareExpectedTest, RatesGetWorseWhenTheyFall) {
  EXPECT_EQ(CompareWithExpected(kHigher, 800, Row(1000, 0.1)).verdict, Verdict::kRegression);
  EXPECT_EQ(CompareWithExpected(kHigher, 1200, Row(1000, 0.1)).verdict, Verdict::kImprovement);
}

TEST(CompareHistoryTest, ThresholdFromHistoryNoiseWithFloor) {
  CompareOptions options;  // k = 4, floor 1%, min 5 runs
  // Medians 100 +- 2: median 100, MAD 1 -> s_h = 1.4826%; the history median of
  // 8 runs adds pi/2/8 of that variance; a run without spread adds nothing:
  // noise = 1.4826% * sqrt(1 + pi/16) = 1.6216%, threshold 6.49%.
  const std::vector<double> history = {98, 99, 100, 101, 102, 100, 99, 101};
  Comparison c = CompareWithHistory(kLower, {106, 106, 106}, history, options);
  EXPECT_EQ(c.verdict, Verdict::kPass);
  EXPECT_DOUBLE_EQ(c.baseline, 100);
  EXPECT_NEAR(c.noise, 0.014826 * std::sqrt(1 + M_PI / 16), 1e-9);
  EXPECT_NEAR(c.threshold, 4 * c.noise, 1e-12);
  EXPECT_EQ(CompareWithHistory(kLower, {107, 107, 107}, history, options).verdict, Verdict::kRegression);
  EXPECT_EQ(CompareWithHistory(kLower, {93, 93, 93}, history, options).verdict, Verdict::kImprovement);
  EXPECT_EQ(c.baseline_n, history.size());

  // A perfectly quiet history and run (a deterministic counter) still needs a 1% move: the floor.
  const std::vector<double> quiet(10, 100.0);
  EXPECT_EQ(CompareWithHistory(kLower, {100.9}, quiet, options).verdict, Verdict::kPass);
  Comparison floor = CompareWithHistory(kLower, {101.1}, quiet, options);
  EXPECT_EQ(floor.verdict, Verdict::kRegression);
  EXPECT_DOUBLE_EQ(floor.threshold, 0.01);
  EXPECT_EQ(CompareWithHistory(kLower, {102, 102, 102}, quiet, options).verdict, Verdict::kRegression)
      << "+2% of work in an instruction count fails every time";
}

TEST(CompareHistoryTest, TimedMetricsHaveTheirOwnFloor) {
  CompareOptions options;  // floor 1%, time floor 5%
  // A timed metric as steady as steady_kernel's (spread ~0.2%) moved +2% on
  // unchanged code when the load rose: no regression of a timed metric ...
  const std::vector<double> steady = {100, 100.2, 99.8, 100.1, 99.9, 100, 100.2, 99.8, 100.1, 100};
  Comparison drift = CompareWithHistory(kLower, {102, 102, 102}, steady, options, /*timed=*/true);
  EXPECT_EQ(drift.verdict, Verdict::kPass);
  EXPECT_DOUBLE_EQ(drift.threshold, 0.05);
  // ... while a count that moves +2% is real work and fails.
  EXPECT_EQ(CompareWithHistory(kLower, {102, 102, 102}, steady, options, /*timed=*/false).verdict,
            Verdict::kRegression);
  // A 10% slowdown measured 2% low still fails.
  EXPECT_EQ(CompareWithHistory(kLower, {108, 108, 108}, steady, options, /*timed=*/true).verdict,
            Verdict::kRegression);
  // The noise still rules when it is larger than the floor.
  const std::vector<double> noisy = {90, 95, 100, 105, 110, 100, 95, 105};
  EXPECT_GT(CompareWithHistory(kLower, {100}, noisy, options, /*timed=*/true).threshold, 0.05);
  options.history_time_floor = 0.01;
  EXPECT_EQ(CompareWithHistory(kLower, {102, 102, 102}, steady, options, /*timed=*/true).verdict,
            Verdict::kRegression);
}

TEST(CompareHistoryTest, ThisRunsOwnSpreadWidensTheThreshold) {
  CompareOptions options;
  const std::vector<double> history = {98, 99, 100, 101, 102, 100, 99, 101};
  // The same +8% median: measured quietly it is a regression ...
  options.history_time_floor = 0.05;
  const std::vector<double> quiet_run = {108, 108, 108, 108, 108};
  EXPECT_EQ(CompareWithHistory(kLower, quiet_run, history, options, /*timed=*/true).verdict, Verdict::kRegression);
  // ... measured in a burst of noise (samples 100..116, MAD 4 -> 5.49% per
  // sample, 3.08% for the median of 5, more than the history's 1.62%) it is
  // not evidence enough: threshold 4 * 3.08% = 12.3%.
  const std::vector<double> noisy_run = {100, 104, 108, 112, 116};
  Comparison c = CompareWithHistory(kLower, noisy_run, history, options, /*timed=*/true);
  EXPECT_DOUBLE_EQ(c.result, 108);
  EXPECT_NEAR(c.noise, 1.2533 * 1.4826 * 4 / 108 / std::sqrt(5.0), 1e-9);
  EXPECT_EQ(c.verdict, Verdict::kPass);
  // A quieter run than the history's spread leaves the history's noise in charge.
  EXPECT_NEAR(CompareWithHistory(kLower, {107, 107.1, 107.2}, history, options, /*timed=*/true).noise,
              0.014826 * std::sqrt(1 + M_PI / 16), 1e-9);
}

// No load moves a count, so its run's spread is the code's: a change that
// made an instruction count vary (x1.0 to x1.5 over the repeats) hid its own
// +25% behind a limit of 33%.
TEST(CompareHistoryTest, ACountsOwnSpreadDoesNotWidenItsThreshold) {
  CompareOptions options;
  const std::vector<double> history(6, 1'000'000);
  const std::vector<double> varying = {1'000'000, 1'125'000, 1'250'000, 1'375'000, 1'500'000};
  Comparison c = CompareWithHistory(kLower, varying, history, options, /*timed=*/false, /*count=*/true);
  EXPECT_EQ(c.verdict, Verdict::kRegression);
  EXPECT_DOUBLE_EQ(c.threshold, options.history_floor);
  EXPECT_EQ(CompareWithHistory(kLower, varying, history, options, /*timed=*/false, /*count=*/false).verdict,
            Verdict::kPass)
      << "a rate (items/s) measured in such noise is no evidence: load moves rates";
  EXPECT_TRUE(IsCount("instructions_callgrind", "count"));
  EXPECT_TRUE(IsCount("instruction_count", ""));
  EXPECT_TRUE(IsCount("graph_breaks", "count"));
  EXPECT_FALSE(IsCount("items_per_second", "1/s"));
  EXPECT_FALSE(IsCount("bytes_per_second", "B/s"));
  EXPECT_FALSE(IsCount("elem_rate", ""));
}

TEST(CompareHistoryTest, TooShortHistoryIsNoBaseline) {
  CompareOptions options;
  EXPECT_EQ(CompareWithHistory(kLower, {1}, {1, 1, 1, 1}, options).verdict, Verdict::kNoBaseline);
  EXPECT_EQ(CompareWithHistory(kLower, {1}, {}, options).verdict, Verdict::kNoBaseline);
  // Only the newest `history_runs` count.
  options.history_runs = 5;
  std::vector<double> history = {100, 100, 100, 100, 100, 1, 1, 1, 1, 1, 1};
  EXPECT_DOUBLE_EQ(CompareWithHistory(kLower, {100}, history, options).baseline, 100);
}

TEST(CompareAbTest, SignificantShiftAboveMinimumEffect) {
  CompareOptions options;  // alpha 0.01, min effect 1%
  std::vector<double> base = {100.0, 100.2, 99.8, 100.1, 99.9, 100.3, 99.7, 100.0, 100.2, 99.8};
  std::vector<double> head;
  for (double v : base) head.push_back(v * 1.03);
  Comparison c = CompareAB(kLower, base, head, options);
  EXPECT_EQ(c.verdict, Verdict::kRegression);
  EXPECT_LT(c.p_value, 0.001);
  EXPECT_NEAR(c.change, 0.03, 1e-9);
  EXPECT_EQ(CompareAB(kLower, head, base, options).verdict, Verdict::kImprovement);
}

TEST(CompareAbTest, SignificantButTinyShiftPasses) {
  CompareOptions options;
  std::vector<double> base, head;
  for (int i = 0; i < 20; ++i) {
    base.push_back(100 + i * 0.001);
    head.push_back(100.5 + i * 0.001);  // +0.5%: significant, below the 1% minimum effect
  }
  Comparison c = CompareAB(kLower, base, head, options);
  EXPECT_LT(c.p_value, 0.01);
  EXPECT_EQ(c.verdict, Verdict::kPass);
}

TEST(CompareAbTest, OverlappingSamplesPass) {
  CompareOptions options;
  Comparison c = CompareAB(kLower, {100, 103, 98, 101, 99, 102, 100.5, 97.5, 101.5, 99.5},
                           {101, 97, 102, 100, 104, 98.5, 100.2, 103.5, 99.2, 101.2}, options);
  EXPECT_GT(c.p_value, 0.05);
  EXPECT_EQ(c.verdict, Verdict::kPass);
}

TEST(CompareAbTest, TooFewSamplesForTheRankTestIsAnErrorNotAPass) {
  // Three a side: no arrangement reaches p < 0.01, so even a doubling read
  // "pass" (perfgate run --repeats 3 with A/B flags did this).
  CompareOptions options;
  Comparison c = CompareAB(kLower, {1000, 1003, 998}, {2000, 2010, 1990}, options);
  EXPECT_EQ(c.verdict, Verdict::kError);
  options.ab_min_samples = 3;
  EXPECT_EQ(CompareAB(kLower, {1000, 1003, 998}, {2000, 2010, 1990}, options).verdict, Verdict::kPass)
      << "with the minimum lowered, the powerless test passes: the minimum is what guards it";
}

TEST(CompareAbTest, DeterministicCountsNeedNoRankTest) {
  CompareOptions options;
  Comparison c = CompareAB(kLower, {1000, 1000, 1000}, {1020, 1020, 1020}, options);
  EXPECT_EQ(c.p_value, 0);
  EXPECT_EQ(c.verdict, Verdict::kRegression);
  EXPECT_EQ(CompareAB(kLower, {1000, 1000}, {1005, 1005}, options).verdict, Verdict::kPass)
      << "0.5% is below the minimum effect";
  EXPECT_EQ(CompareAB(kLower, {1000, 1000}, {1000, 1000}, options).p_value, 1);
}

// callgrind runs three a side; a Python case's count moves ~0.1% run to run,
// so unchanged code on both sides failed with "too few samples" (exit 1).
TEST(CompareAbTest, ACountThatBarelyMovesIsJudgedOnThreeSamples) {
  CompareOptions options;
  const std::vector<double> base = {32'920'000, 32'950'000, 32'980'000};
  EXPECT_EQ(CompareAB(kLower, base, {32'930'000, 32'960'000, 32'990'000}, options, /*count=*/true).verdict,
            Verdict::kPass)
      << "+0.03%: within the smallest effect";
  EXPECT_EQ(CompareAB(kLower, base, {33'600'000, 33'620'000, 33'650'000}, options, /*count=*/true).verdict,
            Verdict::kRegression)
      << "+2%, the sides apart";
  EXPECT_EQ(CompareAB(kLower, {100, 110, 120}, {95, 115, 125}, options, /*count=*/true).verdict, Verdict::kError)
      << "past the smallest effect but overlapping: nothing can be said";
  EXPECT_EQ(CompareAB(kLower, base, {32'930'000, 32'960'000, 32'990'000}, options, /*count=*/false).verdict,
            Verdict::kError)
      << "a time or a rate on three samples is still an error: load moves it";
}

// A zero baseline has no relative change; as in the expected file's rule, any
// step to the worse side regresses (graph breaks 0 -> 5 used to pass).
TEST(CompareHistoryTest, ZeroHistoryMedianJudgesTheStepItself) {
  CompareOptions options;
  const std::vector<double> zeros = {0, 0, 0, 0, 0};
  Comparison c = CompareWithHistory(kLower, {5, 5, 5}, zeros, options);
  EXPECT_EQ(c.verdict, Verdict::kRegression);
  EXPECT_TRUE(std::isnan(c.change));
  EXPECT_EQ(CompareWithHistory(kLower, {0, 0, 0}, zeros, options).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithHistory(kHigher, {5, 5, 5}, zeros, options).verdict, Verdict::kImprovement);
  EXPECT_EQ(CompareWithHistory(kHigher, {-5, -5, -5}, zeros, options).verdict, Verdict::kRegression);
  // A count that is mostly zero: worse than every run of the window but the
  // worst regresses, within that passes.
  const std::vector<double> mostly_zero = {0, 0, 0, 1, 2};
  EXPECT_EQ(CompareWithHistory(kLower, {1}, mostly_zero, options).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithHistory(kLower, {3}, mostly_zero, options).verdict, Verdict::kRegression);
  // One outlier run does not blind the window: 40 graph breaks against [0 x 9, 50] passed.
  const std::vector<double> one_outlier = {0, 0, 0, 0, 50, 0, 0, 0, 0, 0};
  EXPECT_EQ(CompareWithHistory(kLower, {40}, one_outlier, options).verdict, Verdict::kRegression);
  EXPECT_EQ(CompareWithHistory(kLower, {0}, one_outlier, options).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithHistory(kHigher, {-40}, {0, 0, 0, 0, -50, 0, 0, 0, 0, 0}, options).verdict,
            Verdict::kRegression);
}

// More than half the runs tie, the rest differ: the MAD is 0 and the 1%
// floor alone failed a result that main itself measured in two runs.
TEST(CompareHistoryTest, AResultNoWorseThanMainsUsualWorstRunIsNoRegressionWhenTheMadIsZero) {
  CompareOptions options;
  const std::vector<double> ties = {1000, 1000, 1030, 1000, 970, 1000, 1030, 1000, 970, 1000};
  EXPECT_EQ(CompareWithHistory(kLower, {1030}, ties, options, false, /*count=*/true).verdict, Verdict::kPass);
  EXPECT_EQ(CompareWithHistory(kLower, {1040}, ties, options, false, true).verdict, Verdict::kRegression);
  EXPECT_EQ(CompareWithHistory(kHigher, {970}, ties, options, false, true).verdict, Verdict::kPass);
  // One run alone does not make a value usual, and a steady count still fails at +2%.
  const std::vector<double> one_high = {1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1030};
  EXPECT_EQ(CompareWithHistory(kLower, {1030}, one_high, options, false, true).verdict, Verdict::kRegression);
  EXPECT_EQ(CompareWithHistory(kLower, {1020}, std::vector<double>(10, 1000), options, false, true).verdict,
            Verdict::kRegression);
}

TEST(CompareAbTest, ZeroBaseMedianJudgesTheStepItself) {
  CompareOptions options;
  const std::vector<double> base(10, 0), head(10, 5);
  Comparison c = CompareAB(kLower, base, head, options);
  EXPECT_EQ(c.p_value, 0);
  EXPECT_EQ(c.verdict, Verdict::kRegression);
  EXPECT_EQ(CompareAB(kLower, head, base, options).verdict, Verdict::kImprovement);
  EXPECT_EQ(CompareAB(kLower, base, base, options).verdict, Verdict::kPass);
  // Not significant: a single stray count on the head side is no regression.
  std::vector<double> one_stray = base;
  one_stray[3] = 1;
  EXPECT_EQ(CompareAB(kLower, base, one_stray, options).verdict, Verdict::kPass);
}

TEST(MannWhitneyTest, ANonFiniteValueHasNoPValue) {
  // It used to stall the tie loop forever (a NaN equals nothing, itself included).
  EXPECT_TRUE(std::isnan(MannWhitneyPValue({1, NAN, 3}, {4, 5, 6})));
  EXPECT_TRUE(std::isnan(MannWhitneyPValue({1, 2, 3}, {4, INFINITY, 6})));
}

TEST(MannWhitneyTest, ExactSmallSampleValues) {
  // Complete separation of 5 and 5: two of C(10,5) = 252 arrangements are as extreme.
  EXPECT_NEAR(MannWhitneyPValue({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}), 2.0 / 252, 1e-12);
  // 3 vs 3 fully separated: 2 / C(6,3) = 0.1.
  EXPECT_NEAR(MannWhitneyPValue({1, 2, 3}, {4, 5, 6}), 0.1, 1e-12);
  // Symmetric: U at the mean gives p = 1.
  EXPECT_NEAR(MannWhitneyPValue({1, 4}, {2, 3}), 1.0, 1e-12);
  // Identical samples (all ties): no evidence at all.
  EXPECT_EQ(MannWhitneyPValue({5, 5, 5}, {5, 5, 5}), 1.0);
}

TEST(MannWhitneyTest, NormalApproximationWithTies) {
  // Tie-corrected normal approximation with continuity correction (as
  // scipy.stats.mannwhitneyu(..., method='asymptotic')): U = 62.5, z = 4.9554.
  std::vector<double> a, b;
  for (int r = 0; r < 5; ++r) {
    for (double v : {1, 2, 2, 3, 4}) a.push_back(v);
    for (double v : {3, 4, 4, 5, 6}) b.push_back(v);
  }
  EXPECT_NEAR(MannWhitneyPValue(a, b), 7.2197e-7, 1e-10);
}

TEST(ExpectedFileTest, ParsesPytorchFilesWithBlankLines) {
  auto rows = ParseExpectedFile(
      "add_loop_eager,compile_time_instruction_count,3058000000,0.015\n\n\n"
      "add_loop_inductor,compile_time_instruction_count,29380000000,0.015\n",
      "expected_results.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1].benchmark, "add_loop_inductor");
  EXPECT_EQ((*rows)[1].expected, 29380000000.0);
  EXPECT_EQ((*rows)[1].margin, 0.015);
  EXPECT_EQ((*rows)[1].line, 4);
}

// check_results.py strips names with str.strip(), which removes Unicode
// whitespace too: a row whose name ends in a no-break space is the plain
// name's row there, and was a row of no result (and the plain name's series
// had no baseline) while names were stripped of ASCII blanks only.
TEST(ExpectedFileTest, NamesAreStrippedOfWhitespaceAsPythonStripsThem) {
  auto rows = ParseExpectedFile(
      "add_loop_eager\xc2\xa0,compile_time_instruction_count\xe3\x80\x80,1000,0.1\n"
      "\xe2\x80\x89"
      "add_loop_inductor\x1f, compile_time_instruction_count ,2000\xc2\xa0,0.1\n"
      "\xc2\xa0\n"
      "mid\xc2\xa0space,m,1,0.1\n",
      "expected.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[0].Key(), "add_loop_eager,compile_time_instruction_count");
  EXPECT_EQ((*rows)[1].Key(), "add_loop_inductor,compile_time_instruction_count");
  EXPECT_EQ((*rows)[1].expected, 2000);
  EXPECT_EQ((*rows)[2].benchmark, "mid\xc2\xa0space") << "only the ends are stripped";
  EXPECT_EQ((*rows)[2].line, 4) << "a line of a no-break space is blank";
}

TEST(ExpectedFileTest, ErrorsNameFileAndLine) {
  auto dup = ParseExpectedFile("a,m,1,0.1\n\na,m,2,0.1\n", "e.csv");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(std::string(dup.status().message()), "e.csv:3: duplicate row for a,m (first on line 1) (got 'a,m,2,0.1')");
  auto cols = ParseExpectedFile("a,m,1\n", "e.csv");
  ASSERT_FALSE(cols.ok());
  EXPECT_NE(std::string(cols.status().message()).find("e.csv:1: expected 4 columns"), std::string::npos);
  auto nan = ParseExpectedFile("a,m,lots,0.1\n", "e.csv");
  ASSERT_FALSE(nan.ok());
  EXPECT_NE(std::string(nan.status().message()).find("e.csv:1: expected_value is not a number"), std::string::npos);
  auto neg = ParseExpectedFile("a,m,1,-0.1\n", "e.csv");
  ASSERT_FALSE(neg.ok());
  EXPECT_NE(std::string(neg.status().message()).find("noise_margin must be a number >= 0"), std::string::npos);
}

}  // namespace
}  // namespace perfgate
