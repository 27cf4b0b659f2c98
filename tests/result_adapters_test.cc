#include "agent/result_adapters.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "agent/executor.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

TEST(PytorchResultsTest, ParsesLinesAndSkipsBlankOnes) {
  auto values = ParsePytorchResults(
      "add_loop_eager,compile_time_instruction_count,3058000000\n\nadd_loop_inductor,wall_s,1.5\n", "results.csv");
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 2u);
  EXPECT_EQ((*values)[0].benchmark(), "add_loop_eager");
  EXPECT_EQ((*values)[0].metric(), "compile_time_instruction_count");
  EXPECT_EQ((*values)[0].value(), 3058000000.0);
  EXPECT_EQ((*values)[0].unit(), "count");
  EXPECT_EQ((*values)[0].source(), "case:pytorch");
  EXPECT_EQ((*values)[1].value(), 1.5);
}

TEST(PytorchResultsTest, MalformedLineIsAnErrorNamingTheLine) {
  auto values = ParsePytorchResults("a,b,1\na,b\n", "results.csv");
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()), HasSubstr("results.csv:2: expected a PyTorch result line"));
  values = ParsePytorchResults("a,b,fast\n", "results.csv");
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()), HasSubstr("results.csv:1:"));
  values = ParsePytorchResults("\n\n", "results.csv");
  ASSERT_FALSE(values.ok()) << "no lines is an error, never a silent zero";
}

TEST(GbenchJsonTest, ParsesRealOutputKeepingEveryRepetition) {
  // Run the real Google Benchmark binary built with the tests and parse what it printed.
  ExecSpec spec;
  spec.argv = {testing::CaseBinary("gbench_sort"), "--benchmark_format=json", "--benchmark_repetitions=3",
               "--benchmark_min_time=0.001", "--benchmark_filter=BM_SortInts/1024$"};
  ExecResult run = Execute(spec);
  ASSERT_TRUE(run.ok()) << run.Describe() << run.err;
  auto values = ParseGbenchJson(run.out, "stdout");
  ASSERT_TRUE(values.ok()) << values.status();
  std::map<std::string, int> per_metric;
  for (const auto& v : *values) {
    EXPECT_EQ(v.benchmark(), "BM_SortInts/1024");
    EXPECT_EQ(v.source(), "case:gbench");
    EXPECT_GT(v.value(), 0);
    ++per_metric[v.metric()];
  }
  // Three repetitions each; the mean/median/stddev/cv aggregates are not samples.
  EXPECT_EQ(per_metric["real_time"], 3);
  EXPECT_EQ(per_metric["cpu_time"], 3);
  EXPECT_EQ(per_metric["items_per_second"], 3);
  EXPECT_EQ(per_metric.size(), 3u);
  for (const auto& v : *values) {
    if (v.metric() == "real_time") {
      EXPECT_EQ(v.unit(), "s");
      EXPECT_LT(v.value(), 0.1) << "converted from ns to seconds";
    }
  }
}

TEST(GbenchJsonTest, ErrorsAreReportedNotZeroed) {
  auto values = ParseGbenchJson(
      "{\"benchmarks\": [{\"name\": \"BM_x\", \"error_occurred\": true, "
      "\"error_message\": \"boom\"}]}",
      "out.json");
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()), HasSubstr("BM_x) reported an error: boom"));
  values = ParseGbenchJson("{\"benchmarks\": [", "out.json");
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()), HasSubstr("out.json: not Google Benchmark JSON"));
  values = ParseGbenchJson("{\"context\": {}}", "out.json");
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()), HasSubstr("no 'benchmarks' array"));
}

}  // namespace
}  // namespace perfgate
