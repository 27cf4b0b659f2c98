#include "agent/result_adapters.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agent/case_runner.h"
#include "agent/executor.h"
#include "agent/host_fingerprint.h"
#include "core/bounded_read.h"
#include "core/expected_file.h"
#include "core/judge.h"
#include "core/policy.h"
#include "core/suite.h"
#include "core/utf8.h"
#include "perfgate/v1/gate.pb.h"
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

// Google Benchmark 1.8 writes a benchmark that skipped itself
// (SkipWithMessage) with times of 0: read as samples, a PR that made a
// benchmark skip passed as a 100% improvement.
TEST(GbenchJsonTest, ASkippedBenchmarkGivesNoValuesAndANote) {
  const std::string doc = R"({"benchmarks": [
    {"name": "BM_Skip", "run_name": "BM_Skip", "run_type": "iteration", "repetitions": 1, "repetition_index": 0,
     "threads": 1, "iterations": 0, "real_time": 0, "cpu_time": 0, "time_unit": "ns",
     "skipped": true, "skip_message": "needs AVX-512"},
    {"name": "BM_Run", "run_name": "BM_Run", "run_type": "iteration", "iterations": 1000,
     "real_time": 50, "cpu_time": 50, "time_unit": "us"}]})";
  std::vector<std::string> notes;
  auto values = ParseGbenchJson(doc, "out.json", &notes);
  ASSERT_TRUE(values.ok()) << values.status();
  for (const auto& v : *values) EXPECT_EQ(v.benchmark(), "BM_Run");
  EXPECT_EQ(values->size(), 2u);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("BM_Skip skipped itself (needs AVX-512): no values"));

  // Nothing but skips measured nothing: an error that says why.
  const std::string only_skips = R"({"benchmarks": [{"name": "BM_Skip", "iterations": 0, "real_time": 0,
    "cpu_time": 0, "skipped": true, "skip_message": "no GPU"}]})";
  values = ParseGbenchJson(only_skips, "out.json", &notes);
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()), HasSubstr("BM_Skip skipped itself (no GPU)"));

  // An unmarked entry of 0 iterations timed nothing either.
  values = ParseGbenchJson(R"({"benchmarks": [{"name": "BM_x", "iterations": 0, "real_time": 0, "cpu_time": 0}]})",
                           "out.json");
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()), HasSubstr("(BM_x): 0 iterations"));
}

// ReportAggregatesOnly leaves a benchmark with its mean, median, stddev and
// cv, which are not samples: it was dropped without a word.
TEST(GbenchJsonTest, ABenchmarkWithAggregatesOnlyIsNamedInANote) {
  const std::string doc = R"({"benchmarks": [
    {"name": "BM_Sort_mean", "run_name": "BM_Sort/repeats:3", "run_type": "aggregate", "aggregate_name": "mean",
     "iterations": 3, "real_time": 50, "cpu_time": 50, "time_unit": "us"},
    {"name": "BM_Sort_median", "run_name": "BM_Sort/repeats:3", "run_type": "aggregate", "aggregate_name": "median",
     "iterations": 3, "real_time": 50, "cpu_time": 50, "time_unit": "us"},
    {"name": "BM_Plain", "run_name": "BM_Plain", "run_type": "iteration", "iterations": 10,
     "real_time": 5, "cpu_time": 5, "time_unit": "us"}]})";
  std::vector<std::string> notes;
  auto values = ParseGbenchJson(doc, "out.json", &notes);
  ASSERT_TRUE(values.ok()) << values.status();
  for (const auto& v : *values) EXPECT_EQ(v.benchmark(), "BM_Plain");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("BM_Sort/repeats:3 reported aggregates only"));
}

// A document of many skips says a bounded number of them.
TEST(GbenchJsonTest, NotesOfManySkipsAreBounded) {
  std::string doc = R"({"benchmarks": [{"name": "BM_Run", "iterations": 1, "real_time": 1, "cpu_time": 1})";
  for (int i = 0; i < 50; ++i) {
    absl::StrAppend(&doc, R"(, {"name": "BM_Skip)", i, R"(", "iterations": 0, "real_time": 0, "cpu_time": 0,)",
                    R"( "skipped": true, "skip_message": ")", std::string(1000, 'x'), R"("})");
  }
  doc += "]}";
  std::vector<std::string> notes;
  auto values = ParseGbenchJson(doc, "out.json", &notes);
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(notes.size(), 11u);
  EXPECT_THAT(notes.back(), HasSubstr("40 more benchmarks skipped"));
  EXPECT_LT(notes[0].size(), 300u) << "a skip message is quoted in part";
  // So is a benchmark's name, which a skip never checks against the bounds on names.
  const std::string long_name = R"({"benchmarks": [{"name": "BM_Run", "iterations": 1, "real_time": 1, "cpu_time": 1},
    {"name": ")" + std::string(300'000, 'n') +
                                R"(", "iterations": 0, "real_time": 0, "cpu_time": 0, "skipped": true}]})";
  notes.clear();
  ASSERT_TRUE(ParseGbenchJson(long_name, "out.json", &notes).ok());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_LT(notes[0].size(), 300u);
}

TEST(PytorchResultsTest, SameBenchmarkAndMetricTwiceIsAnErrorNamingBothLines) {
  auto values = ParsePytorchResults("a,wall_s,1\nb,wall_s,2\n\na,wall_s,3\n", "results.csv");
  ASSERT_FALSE(values.ok()) << "PyTorch asserts on duplicates; they are not two samples";
  EXPECT_THAT(std::string(values.status().message()),
              HasSubstr("results.csv:4: duplicate result for a,wall_s (first on line 1)"));
  EXPECT_TRUE(ParsePytorchResults("a,wall_s,1\na,instructions,2\n", "r").ok()) << "other metric, no duplicate";
}

TEST(PytorchResultsTest, ANegativeTimeOrCountIsAnErrorAndOtherMetricsMayBeNegative) {
  for (const char* line : {"bm,wall_time,-5\n", "bm,compile_time_instruction_count,-1e300\n"}) {
    auto values = ParsePytorchResults(line, "r.csv");
    ASSERT_FALSE(values.ok()) << line;
    EXPECT_THAT(std::string(values.status().message()), HasSubstr("r.csv:1: a negative"));
    EXPECT_THAT(std::string(values.status().message()), HasSubstr("is no measurement"));
  }
  EXPECT_TRUE(ParsePytorchResults("bm,score_delta,-5\n", "r").ok()) << "a declared metric may go below zero";
}

// Names become report rows, keys and label values (core/identifiers.h).
TEST(PytorchResultsTest, ANameBeyondTheRulesIsAnErrorNamingTheLine) {
  auto long_name = ParsePytorchResults("ok,wall_s,1\n" + std::string(600, 'b') + ",wall_s,2\n", "r.csv");
  ASSERT_FALSE(long_name.ok());
  EXPECT_THAT(std::string(long_name.status().message()), HasSubstr("r.csv:2: a benchmark name must be at most 512"));
  auto comma = ParsePytorchResults("a,\"b,compile_time_instruction_count\",1000\n", "r.csv");
  ASSERT_FALSE(comma.ok()) << "its key would be that of the row \"a,b\",compile_time_instruction_count";
  EXPECT_THAT(std::string(comma.status().message()), HasSubstr("r.csv:1: a metric name must not hold a comma"));
}

// A result line's names are stripped as check_results.py strips them
// (Unicode whitespace too), so that it meets its expected row; a Google
// Benchmark name with whitespace at an end, or none, could meet no row, and
// `baseline update` wrote rows for it that read back as another or none.
TEST(PytorchResultsTest, NamesAreStrippedAsPythonStripsThem) {
  auto values = ParsePytorchResults("add_loop_eager\xe3\x80\x80,instruction_count\xc2\xa0,1000\n", "r.csv");
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ((*values)[0].benchmark(), "add_loop_eager");
  EXPECT_EQ((*values)[0].metric(), "instruction_count");
}

TEST(GbenchJsonTest, ANameAnExpectedFileCannotHoldIsAnError) {
  for (const std::string name : {"BM_sort ", "\\u00a0BM_sort", ""}) {
    const std::string json =
        absl::StrCat(R"({"benchmarks": [{"name": ")", name, R"(", "real_time": 1, "cpu_time": 1}]})");
    auto values = ParseCaseResults(v1::RESULT_FORMAT_GBENCH_JSON, json, "out.json", nullptr);
    ASSERT_FALSE(values.ok()) << json;
    EXPECT_THAT(std::string(values.status().message()), HasSubstr("out.json: benchmark '")) << json;
  }
}

// Each value costs the agent memory until the result is sent: a million
// lines took 1.4 GB a sample.
TEST(PytorchResultsTest, MoreValuesThanASampleMayHoldIsAnError) {
  std::string lines;
  for (int i = 0; i <= 50'000; ++i) lines += "b" + std::to_string(i) + ",m,1\n";
  auto values = ParsePytorchResults(lines, "r.csv");
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()), HasSubstr("more than 50000 result values in one sample"));
  lines.resize(lines.rfind("b50000"));
  EXPECT_TRUE(ParsePytorchResults(lines, "r.csv").ok()) << "50,000 fit";
}

TEST(PytorchResultsTest, NonUtf8IsAnErrorWithTheBytesEscaped) {
  auto values = ParsePytorchResults("caf\xc3,wall_s,1\n", "stdout");
  ASSERT_FALSE(values.ok());
  const std::string message(values.status().message());
  EXPECT_TRUE(IsValidUtf8(message));
  EXPECT_THAT(message, HasSubstr("stdout:1: benchmark and metric names must be UTF-8, got 'caf\\xC3,wall_s,1'"));
  values = ParsePytorchResults("\xff\xfe,x\n", "stdout");
  ASSERT_FALSE(values.ok());
  EXPECT_TRUE(IsValidUtf8(values.status().message()));
}

// Each of these aborted the agent with nlohmann::json::type_error before.
TEST(GbenchJsonTest, WrongTypedFieldsAreErrorsNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"benchmarks": [{"name": "BM_x", "error_occurred": "yes"}]})", "field 'error_occurred' must be true or false"},
      {R"({"benchmarks": [{"name": "BM_x", "run_type": 3, "real_time": 1, "cpu_time": 1}]})",
       "field 'run_type' must be a string, got number"},
      {R"({"benchmarks": [{"name": "BM_x", "run_name": [], "real_time": 1, "cpu_time": 1}]})",
       "field 'run_name' must be a string, got array"},
      {R"({"benchmarks": [{"name": "BM_x", "time_unit": null, "real_time": 1, "cpu_time": 1}]})",
       "field 'time_unit' must be a string, got null"},
      {R"({"benchmarks": [{"name": "BM_x", "real_time": "1", "cpu_time": 1}]})",
       "field 'real_time' must be a number, got string"},
      {R"({"benchmarks": [{"name": "BM_x", "repetition_index": -1, "real_time": 1, "cpu_time": 1}]})",
       "field 'repetition_index' must be a whole number >= 0"},
      {R"({"benchmarks": [{"name": "BM_x", "real_time": -1, "cpu_time": 1}]})", "'real_time' must be a finite time"},
      {R"({"benchmarks": [{"name": "BM_x", "cpu_time": 1}]})", "missing number 'real_time'"},
      {R"({"benchmarks": [7]})", "benchmarks[0]: entry is not an object"},
  };
  for (const auto& [json, expected] : cases) {
    auto values = ParseGbenchJson(json, "out.json");
    ASSERT_FALSE(values.ok()) << json;
    EXPECT_THAT(std::string(values.status().message()), HasSubstr(expected)) << json;
    EXPECT_THAT(std::string(values.status().message()), HasSubstr("out.json: benchmarks[0]")) << json;
  }
  // nlohmann::json throws out_of_range, not parse_error, on this one.
  auto overflow = ParseGbenchJson(R"({"benchmarks": [{"name": "BM_x", "real_time": 1e999, "cpu_time": 1}]})", "o");
  ASSERT_FALSE(overflow.ok());
  EXPECT_THAT(std::string(overflow.status().message()), HasSubstr("o: not Google Benchmark JSON"));
}

TEST(GbenchJsonTest, RepetitionsAreSamplesButARepeatedRepetitionIsAnError) {
  const std::string rep0 = R"({"name": "BM_x", "repetition_index": 0, "real_time": 1, "cpu_time": 1})";
  const std::string rep1 = R"({"name": "BM_x", "repetition_index": 1, "real_time": 2, "cpu_time": 2})";
  auto values = ParseGbenchJson(R"({"benchmarks": [)" + rep0 + "," + rep1 + "]}", "out.json");
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(values->size(), 4u);
  values = ParseGbenchJson(R"({"benchmarks": [)" + rep0 + "," + rep1 + "," + rep0 + "]}", "out.json");
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()),
              HasSubstr("benchmarks[2] (BM_x): duplicate entry with repetition_index 0 (first at out.json: "
                        "benchmarks[0] (BM_x))"));
}

TEST(GbenchJsonTest, RateCountersCarryTheirUnits) {
  auto values = ParseGbenchJson(
      R"({"benchmarks": [{"name": "BM_x", "real_time": 5, "cpu_time": 4, "time_unit": "us",
          "bytes_per_second": 1e9, "items_per_second": 2e6, "elem_rate": 3}]})",
      "out.json");
  ASSERT_TRUE(values.ok()) << values.status();
  std::map<std::string, std::string> unit;
  for (const auto& v : *values) unit[v.metric()] = v.unit();
  EXPECT_EQ(unit["real_time"], "s");
  EXPECT_EQ(unit["bytes_per_second"], "B/s");
  EXPECT_EQ(unit["items_per_second"], "1/s");
  EXPECT_EQ(unit["elem_rate"], "") << "the JSON does not say what a user counter counts";
}

// A case's 64 MiB of '[' once made the agent build 67 million nested arrays
// (5 GB); the shape is checked before the parser builds anything.
// The parser keeps the last of two values of one key, silently.
TEST(GbenchJsonTest, AKeyTwiceInOneEntryIsAnError) {
  auto values = ParseGbenchJson(
      R"({"benchmarks": [{"name": "BM_x", "real_time": 1000, "cpu_time": 1000, "real_time": 1, "cpu_time": 1}]})",
      "out.json");
  ASSERT_FALSE(values.ok());
  EXPECT_THAT(std::string(values.status().message()), HasSubstr("out.json: key 'real_time' twice in one object"));
  EXPECT_TRUE(ParseGbenchJson(R"({"benchmarks": [{"name": "a", "real_time": 1, "cpu_time": 1},)"
                              R"( {"name": "b", "real_time": 1, "cpu_time": 1}]})",
                              "out.json")
                  .ok())
      << "the same key in two objects is no duplicate";
}

TEST(GbenchJsonTest, DeepOrHugeJsonIsRefusedBeforeItIsBuilt) {
  const std::string deep = std::string(1 << 20, '[');
  EXPECT_THAT(std::string(ParseGbenchJson(deep, "results").status().message()),
              HasSubstr("results: JSON nested more than 64 deep"));
  std::string many = R"({"benchmarks": [)";
  for (int i = 0; i < 2'000'001; ++i) many += "1,";
  EXPECT_THAT(std::string(ParseGbenchJson(many, "results").status().message()),
              HasSubstr("more than 2000000 JSON values"));
  // Brackets inside strings are text, escaped quotes included.
  const std::string name = "BM_\\\"" + std::string(100, '[');
  auto values = ParseGbenchJson(R"({"benchmarks": [{"name": ")" + name + R"(", "real_time": 1, "cpu_time": 1}]})",
                                "out.json");
  ASSERT_TRUE(values.ok()) << values.status();
}

TEST(Utf8Test, EscapesExactlyTheBytesThatAreNotUtf8) {
  EXPECT_EQ(EscapeInvalidUtf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(EscapeInvalidUtf8("cut \xe2\x82"), "cut \\xE2\\x82");
  EXPECT_EQ(EscapeInvalidUtf8("\xc0\xaf"), "\\xC0\\xAF") << "overlong";
  EXPECT_EQ(EscapeInvalidUtf8("\xed\xa0\x80"), "\\xED\\xA0\\x80") << "surrogate";
  EXPECT_EQ(EscapeInvalidUtf8("a\\x41"), "a\\\\x41") << "a literal backslash stays distinguishable";
  EXPECT_EQ(FirstInvalidUtf8(std::string("ab\xff") + "c"), 2u);
  EXPECT_TRUE(IsValidUtf8(std::string("nul\0ok", 6)));
}

TEST(BoundedReadTest, EndlessAndHugeFilesStopAtTheCap) {
  auto zero = ReadFileBounded("/dev/zero", 1 << 20, "result file");
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(std::string(zero.status().message()), HasSubstr("/dev/zero: result file is larger than the limit"));

  testing::TempDir dir;
  const std::string sparse = dir.File("sparse");
  const int fd = open(sparse.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 8ll << 30), 0) << "an 8 GiB sparse file takes no disk";
  close(fd);
  auto big = ReadFileBounded(sparse, 1 << 20, "result file");
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("is larger than the limit of 1.00 MiB"));

  std::ofstream(dir.File("small")) << "abc";
  auto small = ReadFileBounded(dir.File("small"), 3, "result file");
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_EQ(*small, "abc");
  EXPECT_TRUE(absl::IsNotFound(ReadFileBounded(dir.File("absent"), 3, "x").status()));
}

// `perfgate run fifo.yaml` (and --baseline, --config, --token-file) waited
// for a writer for ever, with SIGINT and SIGTERM not yet handled.
TEST(BoundedReadTest, AFifoNothingWritesToIsAnErrorAndOneWithAWriterIsRead) {
  testing::TempDir dir;
  const std::string fifo = dir.File("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto idle = ReadFileBounded(fifo, 1 << 20, "suite file");
  ASSERT_FALSE(idle.ok());
  EXPECT_THAT(std::string(idle.status().message()),
              HasSubstr("fifo: suite file is a FIFO that nothing wrote to within 10 s"));

  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  ASSERT_EQ(write(pipe_fds[1], "suite: s\n", 9), 9);
  close(pipe_fds[1]);
  auto piped = ReadFileBounded("/proc/self/fd/" + std::to_string(pipe_fds[0]), 1 << 20, "suite file");
  close(pipe_fds[0]);
  ASSERT_TRUE(piped.ok()) << piped.status();
  EXPECT_EQ(*piped, "suite: s\n") << "what <(...) gives is read";
}

TEST(BoundedReadTest, FifoWhoseWriterNeverStopsEndsAtTheCap) {
  testing::TempDir dir;
  const std::string fifo = dir.File("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  testing::Subprocess writer({"/bin/sh", "-c", "exec cat /dev/zero > " + fifo});
  auto text = ReadFileBounded(fifo, 1 << 20, "expected-results file");
  ASSERT_FALSE(text.ok());
  EXPECT_THAT(std::string(text.status().message()), HasSubstr("larger than the limit"));
}

TEST(BoundedReadTest, ExpectedAndSuiteFilesRefuseDevZero) {
  auto expected = LoadExpectedFile("/dev/zero");
  ASSERT_FALSE(expected.ok());
  EXPECT_THAT(std::string(expected.status().message()),
              HasSubstr("/dev/zero: expected-results file is larger than the limit of 16.0 MiB"));
  auto suite = LoadSuiteFile("/dev/zero");
  ASSERT_FALSE(suite.ok());
  EXPECT_THAT(std::string(suite.status().message()), HasSubstr("/dev/zero: suite file is larger than the limit"));
}

TEST(SuiteUtf8Test, NonUtf8SuiteIsAnErrorWithLineAndColumn) {
  auto suite = ParseSuite("suite: s\ncases:\n  - name: a\n    command: [\"x\xff\"]\n", "s.yaml", "/");
  ASSERT_FALSE(suite.ok());
  EXPECT_THAT(std::string(suite.status().message()), HasSubstr("s.yaml:4:17: byte 0xff is not allowed"));
  // yaml-cpp reads a NUL as a guess at another encoding; it once let a lone 0xA0 into an error message.
  suite = ParseSuite(std::string("suite: s\ngate:\n  fai\0_on: [x]\n", 30), "s.yaml", "/");
  ASSERT_FALSE(suite.ok());
  EXPECT_THAT(std::string(suite.status().message()), HasSubstr("s.yaml:3:6: byte 0x00 is not allowed"));
}

// yaml-cpp writes the escapes \_ and \N as the lone bytes 0xA0 and 0x85 (not
// UTF-8) although the file's text is UTF-8; a fuzzer found such a suite that
// loaded and then could not be sent to the coordinator.
TEST(SuiteUtf8Test, EscapesThatYamlCppWritesAsLoneBytesAreErrorsWithLineAndColumn) {
  struct Bad {
    std::string text, expected;
  };
  const std::vector<Bad> cases = {
      {"suite: s\ncases:\n  - name: a\n    command: [x, \"${PERFGATE_RESUL\\_FILE}\"]\n",
       "s.yaml:4:18: each command argument '${PERFGATE_RESUL\\xA0FILE}' is not UTF-8 text"},
      {"suite: s\ncases:\n  - name: a\n    command: [x]\n    env: {\"A\\N\": b}\n", "s.yaml:5:11: a key in env"},
      {"suite: s\ngate:\n  expected: {\"\\_\": f.csv}\ncases:\n  - {name: a, command: [x]}\n",
       "s.yaml:3:14: a key in gate.expected"},
      {"suite: s\nmetrics:\n  \"m\\N\": {better: lower}\ncases:\n  - {name: a, command: [x]}\n",
       "s.yaml:3:3: a key in metrics"},
      {"suite: s\ncases:\n  - {name: a, command: [x], \"\\_\": 1}\n", "s.yaml:3:29: a key in case 'a'"},
  };
  for (const auto& bad : cases) {
    auto suite = ParseSuite(bad.text, "s.yaml", "/");
    ASSERT_FALSE(suite.ok()) << bad.text;
    EXPECT_THAT(std::string(suite.status().message()), HasSubstr(bad.expected)) << bad.text;
    EXPECT_TRUE(IsValidUtf8(suite.status().message())) << bad.text;
  }
}

// Binary output and a cut multi-byte character: the result
// is delivered (it survives the wire) and the JSON report shows it escaped.
TEST(NonUtf8OutputTest, BinaryOutputIsDeliveredAndEscapedInTheJsonReport) {
  v1::CaseSpec spec;
  spec.set_name("binary");
  spec.add_argv("/bin/sh");
  spec.add_argv("-c");
  // 0xff 0xfe is never UTF-8; e2 82 is a euro sign (e2 82 ac) cut as the output cap cuts it.
  spec.add_argv("printf 'ab\\377\\376caf\\342\\202'; printf 'err\\200' >&2");
  spec.set_repeats(1);
  v1::CaseResult result = RunCase(spec, ProbeHost(), {});
  ASSERT_EQ(result.outcome(), v1::CaseResult::OUTCOME_OK) << result.error();
  ASSERT_FALSE(IsValidUtf8(result.stdout_tail())) << "the test needs output that is not UTF-8";

  v1::Run run;
  run.set_run_id("r1");
  auto* status = run.add_cases();
  status->set_name("binary");
  status->set_state(v1::CASE_STATE_DONE);
  *status->mutable_result() = result;
  std::string wire;
  ASSERT_TRUE(run.SerializeToString(&wire));
  v1::Run delivered;
  ASSERT_TRUE(delivered.ParseFromString(wire)) << "a string field with invalid UTF-8 fails to parse";
  EXPECT_EQ(delivered.cases(0).result().stdout_tail(), result.stdout_tail());

  std::ostringstream out;
  JsonReporter().Write(BuildGateReport(delivered, Baselines{}, Policy{}), out);
  auto doc = nlohmann::json::parse(out.str());
  EXPECT_EQ(doc["cases"][0]["stdout_tail"], "ab\\xFF\\xFEcaf\\xE2\\x82");
  EXPECT_EQ(doc["cases"][0]["stderr_tail"], "err\\x80");
}

// The same through the binary: `perfgate run --json` and an embedded gate
// run. Before, the result could not be delivered and --json aborted.
TEST(NonUtf8OutputTest, RunAndGateDeliverBinaryOutputAndTheJsonReportEscapesIt) {
  testing::TempDir dir;
  const std::string suite = dir.Write("binary.yaml",
                                      "suite: s\ndefaults: {repeats: 1, warmup: 0}\ncases:\n"
                                      "  - name: binary\n"
                                      "    command: [/bin/sh, -c, \"printf 'ab\\\\377\\\\376caf\\\\342\\\\202'; "
                                      "printf 'err\\\\200' >&2\"]\n");
  const std::vector<std::vector<std::string>> commands = {
      {testing::PerfgateBinary(), "run", suite, "--json", dir.File("run.json")},
      {testing::PerfgateBinary(), "gate", "--suite", suite, "--state-dir", dir.File("state"), "--json",
       dir.File("gate.json")}};
  for (const auto& command : commands) {
    auto result = testing::RunCommand(command);
    EXPECT_EQ(result.exit_code, 0) << command[1] << ": " << result.output;
    std::ifstream in(command.back());
    auto doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(doc.is_discarded()) << command[1] << ": the JSON report is missing or not JSON";
    ASSERT_EQ(doc["cases"].size(), 1u) << command[1];
    EXPECT_EQ(doc["cases"][0]["outcome"], "ok") << command[1];
    EXPECT_EQ(doc["cases"][0]["stdout_tail"], "ab\\xFF\\xFEcaf\\xE2\\x82") << command[1];
    EXPECT_EQ(doc["cases"][0]["stderr_tail"], "err\\x80") << command[1];
  }
}

}  // namespace
}  // namespace perfgate
