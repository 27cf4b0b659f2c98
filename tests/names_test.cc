// Every closed set's name table: each value has its own name, and parsing
// that name gives the value back.
#include "core/names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

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

}  // namespace
}  // namespace perfgate
