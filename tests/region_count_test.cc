// Region-only instruction counts (`instructions: region`): a real case
// (bench_cases/src/region_spin.cc, callgrind.h client requests, no torch)
// under real valgrind, and a real host where valgrind cannot run a library.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "agent/callgrind.h"
#include "agent/case_runner.h"
#include "core/suite.h"
#include "core/utf8.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

v1::CaseSpec RegionSpin(const std::string& outside, const std::string& inside, const std::string& extra = "") {
  v1::CaseSpec spec;
  spec.set_name("region_spin");
  spec.add_argv(testing::CaseBinary("region_spin"));
  spec.add_argv(outside);
  spec.add_argv(inside);
  if (!extra.empty()) spec.add_argv(extra);
  spec.set_repeats(2);
  spec.set_timeout_ms(120'000);
  spec.set_instructions(v1::INSTRUCTION_COUNTER_REGION);
  return spec;
}

// "benchmark,metric" -> every value measured by `source`.
std::map<std::string, std::vector<double>> Values(const v1::CaseResult& result, const std::string& source) {
  std::map<std::string, std::vector<double>> out;
  for (const auto& sample : result.samples()) {
    for (const auto& v : sample.values()) {
      if (v.source() == source) out[v.benchmark() + "," + v.metric()].push_back(v.value());
    }
  }
  return out;
}

std::string Notes(const v1::CaseResult& result) {
  std::string all;
  for (const auto& note : result.notes()) all += note + "\n";
  return all;
}

class RegionCountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!FindValgrind().ok()) GTEST_SKIP() << "valgrind is not installed";
  }
  v1::HostFingerprint host_;  // a host where region counts are available
};

TEST_F(RegionCountTest, SuiteAsksForRegionCounts) {
  auto suite = ParseSuite("suite: s\ncases:\n  - name: c\n    command: [x]\n    instructions: region\n", "s.yaml", "/");
  ASSERT_TRUE(suite.ok()) << suite.status();
  EXPECT_EQ(suite->cases(0).instructions(), v1::INSTRUCTION_COUNTER_REGION);
}

TEST_F(RegionCountTest, CountsOnlyTheRegionsIdenticallyRunToRun) {
  const v1::CaseResult small_start = RunCase(RegionSpin("1000", "20000"), host_, {});
  const v1::CaseResult big_start = RunCase(RegionSpin("2000000", "20000"), host_, {});
  ASSERT_EQ(small_start.outcome(), v1::CaseResult::OUTCOME_OK) << small_start.error();
  ASSERT_EQ(big_start.outcome(), v1::CaseResult::OUTCOME_OK) << big_start.error();
  auto small = Values(small_start, "agent:callgrind-region");
  auto big = Values(big_start, "agent:callgrind-region");
  ASSERT_EQ(small.size(), 2u) << Notes(small_start);
  const std::vector<double>& region = small["spin_region,instruction_count"];
  const std::vector<double>& doubled = small["spin_region_x2,compile_time_instruction_count"];
  ASSERT_EQ(region.size(), 1u);
  ASSERT_EQ(doubled.size(), 1u);
  // 2,000 times more work before the regions changes nothing in them.
  EXPECT_EQ(big["spin_region,instruction_count"], region);
  EXPECT_EQ(big["spin_region_x2,compile_time_instruction_count"], doubled);
  EXPECT_NEAR(doubled[0] / region[0], 2.0, 0.01);
  EXPECT_GT(region[0], 20000 * 3);  // a few instructions per round, not zero
  const v1::CaseResult again = RunCase(RegionSpin("1000", "20000"), host_, {});
  EXPECT_EQ(Values(again, "agent:callgrind-region"), small);
  // Timed metrics still come from the ordinary runs.
  EXPECT_EQ(Values(small_start, "agent:clock")["region_spin,wall_time"].size(), 2u);
  EXPECT_THAT(Notes(small_start), HasSubstr("the case's regions only"));

}

// The case reads its whole environment inside the region; an agent variable
// that is none of the case's business (a shell's OLDPWD, a CI job id, what a
// script exported) must not change the count, while the case's own do.
TEST_F(RegionCountTest, AgentsOwnEnvironmentDoesNotChangeTheCount) {
  auto count = [&](const v1::CaseSpec& spec) {
    const v1::CaseResult result = RunCase(spec, host_, {});
    EXPECT_EQ(result.outcome(), v1::CaseResult::OUTCOME_OK) << result.error();
    return Values(result, "agent:callgrind-region")["spin_region,instruction_count"].at(0);
  };
  const v1::CaseSpec spec = RegionSpin("1000", "20000", "environ");
  const double plain = count(spec);
  ASSERT_EQ(setenv("REGION_TEST_UNRELATED", std::string(4096, 'x').c_str(), 1), 0);
  ASSERT_EQ(setenv("PERFGATE_REPORT_DIR", "/tmp/what-a-script-exported", 1), 0);
  const double with_unrelated = count(spec);
  unsetenv("REGION_TEST_UNRELATED");
  unsetenv("PERFGATE_REPORT_DIR");
  EXPECT_EQ(with_unrelated, plain);
  v1::CaseSpec own = spec;
  (*own.mutable_env())["REGION_TEST_OWN"] = std::string(4096, 'x');
  EXPECT_GT(count(own), plain + 4096);
  const std::map<std::string, std::string> env = RegionEnvironment({{"PYTHONHASHSEED", "7"}}, "/shim.so");
  EXPECT_EQ(env.at("PYTHONHASHSEED"), "7");
  EXPECT_EQ(env.at(kRegionCounterEnv), "callgrind");
  EXPECT_EQ(env.at("LD_PRELOAD").rfind("/shim.so", 0), 0u);
  EXPECT_EQ(RegionEnvironment({}, "").at("PYTHONHASHSEED"), "0");
}

TEST_F(RegionCountTest, SlowdownAddsWorkInsideTheRegion) {
  v1::CaseSpec slowed = RegionSpin("1000", "20000");
  (*slowed.mutable_env())["PERFGATE_SLOWDOWN_PCT"] = "5";
  const v1::CaseResult base = RunCase(RegionSpin("1000", "20000"), host_, {});
  const v1::CaseResult head = RunCase(slowed, host_, {});
  ASSERT_EQ(head.outcome(), v1::CaseResult::OUTCOME_OK) << head.error();
  const double before = Values(base, "agent:callgrind-region")["spin_region,instruction_count"].at(0);
  const double after = Values(head, "agent:callgrind-region")["spin_region,instruction_count"].at(0);
  EXPECT_NEAR(after / before, 1.05, 0.005);
}

TEST_F(RegionCountTest, HostWhereValgrindCannotRunTheCaseKeepsTimedMetrics) {
  // The case runs natively; under valgrind it executes an instruction
  // valgrind cannot decode, as libhwy's RDTSCP does on some hosts.
  const v1::CaseResult result = RunCase(RegionSpin("1000", "20000", "unhandled"), host_, {});
  ASSERT_EQ(result.outcome(), v1::CaseResult::OUTCOME_OK) << result.error();
  EXPECT_TRUE(Values(result, "agent:callgrind-region").empty());
  EXPECT_EQ(Values(result, "agent:clock")["region_spin,wall_time"].size(), 2u);
  EXPECT_THAT(Notes(result), HasSubstr("region instruction counts unavailable on this host: "));
  EXPECT_THAT(Notes(result), HasSubstr("unhandled instruction bytes"));
}

TEST_F(RegionCountTest, FingerprintMarksRegionCountsUnavailable) {
  v1::HostFingerprint blocked;
  blocked.set_region_counter_unavailable(true);
  blocked.set_region_counter_note("valgrind cannot run the start-up of libhwy.so.1: ...");
  const v1::CaseResult result = RunCase(RegionSpin("1000", "20000"), blocked, {});
  ASSERT_EQ(result.outcome(), v1::CaseResult::OUTCOME_OK) << result.error();
  EXPECT_TRUE(Values(result, "agent:callgrind-region").empty());
  EXPECT_EQ(Values(result, "agent:clock")["region_spin,wall_time"].size(), 2u);
  EXPECT_THAT(Notes(result), HasSubstr("unavailable on this host: valgrind cannot run the start-up of libhwy.so.1"));
}

TEST_F(RegionCountTest, PreloadedShimLeavesRegionCountsUnchanged) {
  const v1::CaseResult plain = RunCase(RegionSpin("1000", "20000"), host_, {});
  v1::HostFingerprint worked_around;
  worked_around.set_region_counter_preload(testing::CaseBinary("libperfgate_hwy_shim.so"));
  worked_around.set_region_counter_note("region runs preload libperfgate_hwy_shim.so");
  const v1::CaseResult shimmed = RunCase(RegionSpin("1000", "20000"), worked_around, {});
  ASSERT_EQ(shimmed.outcome(), v1::CaseResult::OUTCOME_OK) << shimmed.error();
  EXPECT_EQ(Values(shimmed, "agent:callgrind-region"), Values(plain, "agent:callgrind-region"));
  EXPECT_THAT(Notes(shimmed), HasSubstr("region runs preload libperfgate_hwy_shim.so"));
}

TEST_F(RegionCountTest, ProbeNamesALibraryValgrindCannotStart) {
  const std::string valgrind = *FindValgrind();
  absl::Status bad = ProbeValgrindLoads(valgrind, {testing::CaseBinary("libunhandled_at_load.so")});
  EXPECT_TRUE(absl::IsUnavailable(bad)) << bad;
  EXPECT_THAT(std::string(bad.message()), HasSubstr("libunhandled_at_load.so"));
  EXPECT_THAT(std::string(bad.message()), HasSubstr("unhandled instruction bytes"));
  EXPECT_TRUE(ProbeValgrindLoads(valgrind, {testing::CaseBinary("libperfgate_region.so")}).ok());
}

TEST_F(RegionCountTest, DumpsWithoutANameTwiceOrLeftOpenAreErrors) {
  auto profile = [](const std::string& trigger, int total) {
    return "# callgrind format\nversion: 1\ndesc: Trigger: " + trigger + "\nevents: Ir\nsummary: 0\n\ntotals: " +
           std::to_string(total) + "\n";
  };
  {
    testing::TempDir dir;
    dir.Write("callgrind.out.7.1", profile("Client Request: a", 10));
    dir.Write("callgrind.out.7.2", profile("Client Request: b,compile_time_instruction_count", 20));
    dir.Write("callgrind.out.7", profile("Program termination", 0));
    auto regions = ReadRegionCounts(dir.path());
    ASSERT_TRUE(regions.ok()) << regions.status();
    ASSERT_EQ(regions->size(), 2u);
    EXPECT_EQ((*regions)[0].benchmark, "a");
    EXPECT_EQ((*regions)[0].metric, "instruction_count");
    EXPECT_EQ((*regions)[0].instructions, 10u);
    EXPECT_EQ((*regions)[1].metric, "compile_time_instruction_count");
  }
  {
    testing::TempDir dir;
    dir.Write("callgrind.out.7.1", profile("Client Request", 10));
    EXPECT_THAT(std::string(ReadRegionCounts(dir.path()).status().message()), HasSubstr("without a region name"));
  }
  {
    testing::TempDir dir;
    dir.Write("callgrind.out.7.1", profile("Client Request: a", 10));
    dir.Write("callgrind.out.7.2", profile("Client Request: a", 10));
    EXPECT_THAT(std::string(ReadRegionCounts(dir.path()).status().message()), HasSubstr("dumped twice"));
  }
  {
    testing::TempDir dir;
    dir.Write("callgrind.out.7.1", profile("Client Request: a", 10));
    dir.Write("callgrind.out.7", profile("Program termination", 5));
    EXPECT_THAT(std::string(ReadRegionCounts(dir.path()).status().message()),
                HasSubstr("collected outside a named region"));
  }
  {
    testing::TempDir dir;
    dir.Write("callgrind.out.7", profile("Program termination", 0));
    EXPECT_THAT(std::string(ReadRegionCounts(dir.path()).status().message()), HasSubstr("dumped no region"));
  }
  {
    // A name is the case's bytes; the result carries it in a proto string, which must be UTF-8.
    testing::TempDir dir;
    dir.Write("callgrind.out.7.1", profile("Client Request: caf\xe9", 10));
    auto regions = ReadRegionCounts(dir.path());
    ASSERT_TRUE(regions.ok()) << regions.status();
    EXPECT_TRUE(IsValidUtf8((*regions)[0].benchmark)) << (*regions)[0].benchmark;
  }
}

}  // namespace
}  // namespace perfgate
