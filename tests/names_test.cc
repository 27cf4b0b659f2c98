// Every closed set's name table: each value has its own name, and parsing
// that name gives the value back.
#include "core/names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/identifiers.h"
#include "core/verdict.h"

namespace perfgate {
namespace {

using ::testing::ElementsAre;

template <typename T, typename NameFn, typename ParseFn>
void ExpectRoundTrip(std::initializer_list<T> values, NameFn name, ParseFn parse) {
  std::set<std::string> seen;
  for (T v : values) {
    const std::string n = name(v);
    EXPECT_NE(n, "?") << "a value without a name: " << static_cast<int>(v);
    EXPECT_TRUE(seen.insert(n).second) << "two values named '" << n << "'";
    EXPECT_EQ(parse(n), v) << n;
  }
  EXPECT_EQ(parse("no such name"), std::nullopt);
}

TEST(NamesTest, MethodRoundTrips) {
  ExpectRoundTrip({Method::kExpected, Method::kHistory, Method::kAB}, MethodName, ParseMethod);
  EXPECT_STREQ(MethodName(Method::kAB), "a/b");  // the word reports have always shown
}

TEST(NamesTest, SideRoundTrips) {
  ExpectRoundTrip({Side::kPlain, Side::kBase, Side::kHead}, SideName, ParseSide);
  EXPECT_STREQ(SideName(Side::kPlain), "") << "a plain run's samples carry no variant on the wire";
}

TEST(NamesTest, DispositionRoundTrips) {
  ExpectRoundTrip({Disposition::kCounted, Disposition::kStale, Disposition::kDuplicate}, DispositionName,
                  ParseDisposition);
}

TEST(NamesTest, EveryProtoOutcomeHasAName) {
  std::set<std::string> seen;
  for (int i = v1::CaseResult::Outcome_MIN; i <= v1::CaseResult::Outcome_MAX; ++i) {
    if (!v1::CaseResult::Outcome_IsValid(i)) continue;
    const auto outcome = static_cast<v1::CaseResult::Outcome>(i);
    const std::string name = OutcomeName(outcome);
    EXPECT_NE(name, "?") << v1::CaseResult::Outcome_Name(outcome) << " is missing from the table";
    EXPECT_TRUE(seen.insert(name).second) << name;
    EXPECT_EQ(ParseOutcome(name), outcome) << name;
  }
  EXPECT_EQ(LabelValue(OutcomeName(v1::CaseResult::OUTCOME_TIMED_OUT)), "timed_out");
}

TEST(NamesTest, VerdictRoundTripsInBothSpellings) {
  const std::initializer_list<Verdict> all = {Verdict::kPass,          Verdict::kRegression, Verdict::kImprovement,
                                              Verdict::kError,         Verdict::kMissingResult,
                                              Verdict::kNoBaseline,    Verdict::kNoCapableAgent,
                                              Verdict::kCancelled};
  ExpectRoundTrip(all, VerdictName, [](const std::string& n) { return ParseVerdict(n); });
  for (Verdict v : all) EXPECT_EQ(ParseVerdict(LabelValue(VerdictName(v))), v) << VerdictName(v);
}

TEST(NamesTest, FailOnKeysAreTheVerdictsAPolicyMayFailOn) {
  EXPECT_THAT(FailOnVerdictKeys(), ElementsAre("regression", "improvement", "error", "missing_result",
                                               "no_baseline", "no_capable_agent"));
}

// Names become report rows, keys and label values: bounded, no control
// characters, and a metric without the comma that joins a PyTorch row's key.
TEST(IdentifiersTest, NamesAreBoundedAndHoldNoControlCharacters) {
  EXPECT_EQ(CaseNameProblem("add_one.eager:cpu-1"), "");
  for (const std::string bad :
       {std::string(), std::string(201, 'a'), std::string("a b"), std::string("a/b"), std::string("a\0b", 3)}) {
    EXPECT_NE(CaseNameProblem(bad), "") << bad;
  }
  EXPECT_EQ(SuiteNameProblem("PyTorch runtime overhead"), "");
  EXPECT_THAT(SuiteNameProblem(std::string(201, 's')), ::testing::HasSubstr("at most 200 bytes, not 201"));
  EXPECT_THAT(SuiteNameProblem("a\nb"), ::testing::HasSubstr("control characters"));
  // C1 controls and Unicode line breaks were accepted and exported to /metrics.
  EXPECT_THAT(SuiteNameProblem("a\u0085b"), ::testing::HasSubstr("line breaks")) << "NEL";
  EXPECT_THAT(SuiteNameProblem("a\u2028b"), ::testing::HasSubstr("line breaks"));
  EXPECT_THAT(SuiteNameProblem("a\u2029"), ::testing::HasSubstr("line breaks"));
  EXPECT_THAT(SeriesNameProblem("b\u009f", "m"), ::testing::HasSubstr("line breaks"));
  EXPECT_EQ(SuiteNameProblem("a\u00a0b \u2027 \u202a \u00e9"), "") << "NBSP, U+2027, U+202A and letters are not breaks";
  EXPECT_THAT(SuiteNameProblem(""), ::testing::HasSubstr("must not be empty")) << "JUnit named its cases '.a'";
  EXPECT_EQ(SeriesNameProblem("BM_F<int, float>/1024", "real_time"), "");
  // Older agents sent these; the coordinator takes them. An expected file's
  // row can hold neither (its reader strips names, as PyTorch's does).
  EXPECT_EQ(SeriesNameProblem("", "wall_time"), "");
  EXPECT_EQ(SeriesNameProblem("BM_sort ", "real_time"), "");
  EXPECT_THAT(RowNameProblem("", "wall_time"), ::testing::HasSubstr("must not be empty"));
  EXPECT_THAT(RowNameProblem("BM_sort ", "real_time"), ::testing::HasSubstr("whitespace"));
  EXPECT_THAT(RowNameProblem("\xe3\x80\x80"
                             "BM_sort",
                             "real_time"),
              ::testing::HasSubstr("whitespace"));
  EXPECT_THAT(RowNameProblem("BM_sort", "real_time\xc2\xa0"), ::testing::HasSubstr("whitespace"));
  EXPECT_THAT(RowNameProblem("b", "m,n"), ::testing::HasSubstr("comma")) << "and SeriesNameProblem's rules";
  EXPECT_EQ(RowNameProblem("BM sort\xc2\xa0x", "real_time"), "") << "whitespace inside a name is kept";
  EXPECT_THAT(SeriesNameProblem(std::string(513, 'b'), "m"), ::testing::HasSubstr("at most 512 bytes"));
  EXPECT_THAT(SeriesNameProblem("b\tc", "m"), ::testing::HasSubstr("control characters"));
  EXPECT_THAT(SeriesNameProblem("b", ""), ::testing::HasSubstr("must not be empty"));
  EXPECT_THAT(SeriesNameProblem("b", std::string(129, 'm')), ::testing::HasSubstr("at most 128 bytes"));
  EXPECT_THAT(SeriesNameProblem("a", "b,compile_time_instruction_count"), ::testing::HasSubstr("comma"));
}

}  // namespace
}  // namespace perfgate
