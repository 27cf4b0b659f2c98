// `perfgate baseline update` writes what PyTorch's check_results.py writes.
// The reference outputs in tests/data/ come from baseline_update_reference.py
// (our restatement of check_results.py's rules, run with python3).
#include "core/baseline_update.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/whole_file.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

std::string ReadData(const std::string& name) {
  std::ifstream in(testing::SourceDir() + "/tests/data/" + name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(BaselineUpdateTest, ChangesExactlyTheRowsCheckResultsChanges) {
  const std::string table = ReadData("baseline_update_table.csv");
  int rows = 0, differs_from_plain_ratio = 0;
  for (absl::string_view line : absl::StrSplit(table, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    std::vector<std::string> f = absl::StrSplit(line, ',');
    ASSERT_EQ(f.size(), 4u) << line;
    double e, r, m, want;
    ASSERT_TRUE(absl::SimpleAtod(f[0], &e) && absl::SimpleAtod(f[1], &r) && absl::SimpleAtod(f[2], &m) &&
                absl::SimpleAtod(f[3], &want));
    const BaselineUpdate update = UpdateExpectedRows({{"b", "m", e, m, 1}}, {{"b,m", r}}, {});
    ASSERT_EQ(update.rows.size(), 1u);
    EXPECT_EQ(update.rows[0].expected, want) << "expected " << f[0] << ", result " << f[1] << ", margin " << f[2];
    ++rows;
    differs_from_plain_ratio += (std::fabs(r - e) / std::fabs(e) > m / 3) != (update.changed == 1);
  }
  EXPECT_GT(rows, 500);
  // The table holds the margins (0.003, 0.006, 0.012, 0.15, 0.3) where
  // |R - E| / |E| > m / 3 gives another answer.
  EXPECT_GT(differs_from_plain_ratio, 20);
}

TEST(BaselineUpdateTest, EdgeMarginsFollowPytorchsFloatingPointSteps) {
  // abs(float(R - E) * 100 / E) > m * 100 / 3: at a third of these margins
  // PyTorch changes the row, the plain ratio does not, or the other way round.
  EXPECT_TRUE(MovedMoreThanAThirdOfMargin(1000, 1001, 0.003));
  EXPECT_TRUE(MovedMoreThanAThirdOfMargin(1000, 998, 0.006));
  EXPECT_TRUE(MovedMoreThanAThirdOfMargin(3000, 3012, 0.012));
  EXPECT_FALSE(MovedMoreThanAThirdOfMargin(1000, 1050, 0.15));
  EXPECT_FALSE(MovedMoreThanAThirdOfMargin(3000, 2700, 0.3));
  EXPECT_FALSE(MovedMoreThanAThirdOfMargin(1000, 1005, 0.015));
  EXPECT_TRUE(MovedMoreThanAThirdOfMargin(1000, 1006, 0.015));
  // PyTorch divides by zero there; perfgate changes a zero row when the result is not zero.
  EXPECT_FALSE(MovedMoreThanAThirdOfMargin(0, 0, 0.1));
  EXPECT_TRUE(MovedMoreThanAThirdOfMargin(0, 1, 0.1));
}

TEST(BaselineUpdateTest, KeepsTheLeadingFourDigitsWithPythonsFloorDivision) {
  EXPECT_EQ(KeepLeadingFourDigits(3058123456), 3058000000);
  EXPECT_EQ(KeepLeadingFourDigits(29389999999), 29380000000);
  EXPECT_EQ(KeepLeadingFourDigits(1234), 1234);
  EXPECT_EQ(KeepLeadingFourDigits(12), 12);
  EXPECT_EQ(KeepLeadingFourDigits(-12345), -12350);  // -12345 // 10 * 10 in Python
  EXPECT_EQ(KeepLeadingFourDigits(-12340), -12340);
  // Not integers (PyTorch's files hold only integers): four significant digits the same way.
  EXPECT_EQ(KeepLeadingFourDigits(0.0123456), 0.01234);
  EXPECT_EQ(KeepLeadingFourDigits(0.29), 0.29);
  EXPECT_EQ(KeepLeadingFourDigits(12345.5), 12340);
  EXPECT_EQ(KeepLeadingFourDigits(-1.23456), -1.235);
}

TEST(BaselineUpdateTest, WritesMarginsAsPythonPrintsFloats) {
  // python3 -c 'print(repr(x))' for each.
  const std::vector<std::pair<double, std::string>> cases = {{0.015, "0.015"},
                                                             {0.1, "0.1"},
                                                             {1.0, "1.0"},
                                                             {0.0, "0.0"},
                                                             {1e-05, "1e-05"},
                                                             {0.0001, "0.0001"},
                                                             {0.00012, "0.00012"},
                                                             {1e16, "1e+16"},
                                                             {1e15, "1000000000000000.0"},
                                                             {123456789.125, "123456789.125"},
                                                             {0.3, "0.3"},
                                                             {2.5e-07, "2.5e-07"},
                                                             {1e100, "1e+100"},
                                                             {-0.5, "-0.5"}};
  for (const auto& [value, repr] : cases) EXPECT_EQ(PythonFloatRepr(value), repr);
}

// A spreadsheet's byte-order mark was read into the first row's name, and
// the gate then failed on a "missing result" whose name looked right.
TEST(BaselineUpdateTest, AByteOrderMarkIsNotPartOfTheFirstName) {
  auto rows = ParseExpectedFile("\xEF\xBB\xBF" "add_loop,instruction_count,1000,0.01\r\n", "expected.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ((*rows)[0].benchmark, "add_loop");
  // A second mark (or one quoted) would be the name's, and lost when the file is written back (fuzz_expected_file).
  for (const char* text : {"\xEF\xBB\xBF\xEF\xBB\xBF"
                           "a%,a%,0,10\n",
                           "\"\xEF\xBB\xBF"
                           "a\",m,1,0.1\n"}) {
    auto marked = ParseExpectedFile(text, "expected.csv");
    ASSERT_FALSE(marked.ok()) << text;
    EXPECT_THAT(std::string(marked.status().message()),
                ::testing::HasSubstr("expected.csv:1: the benchmark name begins with a byte-order mark"));
  }
}

// What check_results.py refuses is refused, naming the line: Python's int()
// and float() read no hexadecimal, and a metric with a comma would give the
// row of "a,b" and metric m the key of benchmark a and metric "b,m".
TEST(BaselineUpdateTest, HexadecimalNumbersAndMetricsWithACommaAreRefused) {
  for (const std::string& line :
       {std::string("a,instruction_count,0x400,0.01\n"), std::string("a,instruction_count,1000,0x1p-3\n"),
        std::string("a,\"b,instruction_count\",1000,0.01\n")}) {
    auto rows = ParseExpectedFile(line, "expected.csv");
    ASSERT_FALSE(rows.ok()) << line;
    EXPECT_THAT(std::string(rows.status().message()), ::testing::HasSubstr("expected.csv:1")) << line;
  }
  EXPECT_TRUE(ParseExpectedFile("\"a,b\",instruction_count,1000,0.01\n", "expected.csv").ok());
}

TEST(BaselineUpdateTest, WholeFileIsByteForByteWhatCheckResultsWrites) {
  auto rows = ParseExpectedFile(ReadData("baseline_update_in.csv"), "baseline_update_in.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::vector<std::pair<std::string, double>> results;
  for (absl::string_view line : absl::StrSplit(ReadData("baseline_update_results.csv"), '\n', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(line, ',');
    double v;
    ASSERT_TRUE(absl::SimpleAtod(f[2], &v));
    results.emplace_back(f[0] + "," + f[1], v);
  }
  const BaselineUpdate update = UpdateExpectedRows(*rows, results, {});
  EXPECT_TRUE(update.without_result.empty());
  EXPECT_EQ(FormatExpectedFile(update.rows), ReadData("baseline_update_out.csv"));
  EXPECT_EQ(update.changed, 4);
  // Our own reader takes the file back as it was written.
  auto back = ParseExpectedFile(FormatExpectedFile(update.rows), "again");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->size(), rows->size());
}

TEST(BaselineUpdateTest, RowsWithoutAResultAreReportedAndResultsWithoutARowAreNotAdded) {
  const std::vector<ExpectedRow> rows = {{"a", "instr", 1000, 0.1, 1}, {"b", "instr", 2000, 0.1, 5}};
  const BaselineUpdate update = UpdateExpectedRows(rows, {{"a,instr", 1500}, {"c,instr", 7}}, {});
  ASSERT_EQ(update.without_result.size(), 1u);
  EXPECT_EQ(update.without_result[0].Key(), "b,instr");
  ASSERT_EQ(update.rows.size(), 2u);  // c has no row, and PyTorch adds none
  EXPECT_EQ(update.rows[0].expected, 1500);
  EXPECT_EQ(update.rows[1].expected, 2000);
  // perfgate's --add: new rows for chosen metrics, after the old ones.
  BaselineUpdateOptions add;
  add.add_metrics = {"instr"};
  add.new_margin = 0.02;
  const BaselineUpdate added = UpdateExpectedRows(rows, {{"a,instr", 1000}, {"c,instr", 123456}}, add);
  ASSERT_EQ(added.rows.size(), 3u);
  EXPECT_EQ(FormatExpectedRow(added.rows[2]), "c,instr,123400,0.02");
  EXPECT_EQ(added.added, 1);
}

TEST(BaselineUpdateTest, QuotesFieldsAsCsvWriterDoes) {
  EXPECT_EQ(FormatExpectedRow({"a\"b", "m", 5, 0.5, 0}), "\"a\"\"b\",m,5,0.5");
  EXPECT_EQ(FormatExpectedRow({"a", "m", 0.5, 0.25, 0}), "a,m,0.5,0.25");
}

// Found by fuzz_expected_file: a name with a quote or a comma was written
// quoted (as csv.writer does) but read back with the quotes in it.
TEST(BaselineUpdateTest, QuotedNamesReadBackAsWritten) {
  const std::vector<ExpectedRow> rows = {{"a\"b,c", "m", 5, 0.5, 0}, {"plain", "x\"", 7, 0.25, 0}};
  auto again = ParseExpectedFile(FormatExpectedFile(rows), "rewritten.csv");
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->size(), 2u);
  EXPECT_EQ((*again)[0].benchmark, "a\"b,c");
  EXPECT_EQ((*again)[0].metric, "m");
  EXPECT_EQ((*again)[1].metric, "x\"");
  // As PyTorch reads it: csv.reader, then each name stripped.
  auto spaced = ParseExpectedFile("\" a \", b ,5, 0.5\n", "spaced.csv");
  ASSERT_TRUE(spaced.ok()) << spaced.status();
  EXPECT_EQ((*spaced)[0].benchmark, "a");
  EXPECT_EQ((*spaced)[0].metric, "b");
}

// The expected file is replaced whole: a Ctrl-C or a full disk halfway
// through left it cut short. Its link and its permission bits stay.
TEST(WriteFileWholeTest, ReplacesTheFileBehindItsLinkKeepingItsModeAndLeavesNothingElse) {
  testing::TempDir dir;
  const std::string real = dir.Write("real.csv", "old\n");
  ASSERT_EQ(chmod(real.c_str(), 0640), 0);
  const std::string link = dir.File("expected.csv");
  std::filesystem::create_symlink(real, link);
  ASSERT_TRUE(WriteFileWhole(link, "new\n").ok());
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  std::ifstream in(real);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "new");
  struct stat st;
  ASSERT_EQ(stat(real.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 2) << "no temporary file left";
  // A folder that is not there: an error naming the path, and nothing written.
  const absl::Status nowhere = WriteFileWhole(dir.File("gone/expected.csv"), "x");
  EXPECT_FALSE(nowhere.ok());
  EXPECT_THAT(std::string(nowhere.message()), ::testing::HasSubstr(dir.File("gone/expected.csv")));
}

// Renamed over, /dev/null (or a FIFO a reader waits on, or the file behind
// /dev/stdout) would be replaced by a regular file: such a target is
// written into. A link to a file not there yet makes that file.
TEST(WriteFileWholeTest, AFifoIsWrittenIntoAndADanglingLinkMakesItsTarget) {
  testing::TempDir dir;
  const std::string fifo = dir.File("out.fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    std::ifstream in(fifo);
    std::stringstream text;
    text << in.rdbuf();
    got = text.str();
  });
  const absl::Status written = WriteFileWhole(fifo, "rows\n");
  reader.join();
  ASSERT_TRUE(written.ok()) << written;
  EXPECT_EQ(got, "rows\n");
  struct stat st;
  ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  const std::string link = dir.File("expected.csv");
  std::filesystem::create_symlink("made.csv", link);
  ASSERT_TRUE(WriteFileWhole(link, "x").ok());
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  std::ifstream made(dir.File("made.csv"));
  std::string line;
  std::getline(made, line);
  EXPECT_EQ(line, "x");
}

}  // namespace
}  // namespace perfgate
