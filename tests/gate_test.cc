// RunGate called directly, as bench/ and other programs do: the embedded
// default (a real coordinator and agent over loopback gRPC, a SQLite file)
// runs a real case, and the report is judged against a real expected file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "core/exit_codes.h"
#include "gate/requests.h"
#include "gate/run_gate.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

class RunGateTest : public ::testing::Test {
 protected:
  // The bundled pytorch_style case reports `iterations` (2M - 1, or that
  // plus `slowdown_pct` percent of 20k each), judged against an expected
  // 1999000 with a 5% margin: deterministic, so no verdict depends on timing.
  GateOptions Options(int slowdown_pct, const std::string& expected_pool = "local") {
    dir_.Write("expected.csv", "harmonic_sum,iterations,1999000,0.05\n");
    const std::string suite = dir_.Write("suite.yaml", absl::StrCat(R"(suite: gate_test
gate:
  expected: {)", expected_pool, R"(: expected.csv}
metrics:
  iterations: {better: lower, unit: count}
defaults: {warmup: 0, repeats: 1}
cases:
  - name: harmonic
    command: [")", testing::CaseBinary("pytorch_style"), R"(", "${PERFGATE_RESULT_FILE}"]
    results: pytorch
    results_from: file
    env: {PERFGATE_SLOWDOWN_PCT: ")", slowdown_pct, R"("}
)"));
    GateOptions options;
    options.suite_path = suite;
    options.commit = "abc123";
    options.branch = "feature";
    options.embedded.state_dir = dir_.File("state");
    options.embedded.agents = 1;
    options.log = [this](const std::string& line) { log_.push_back(line); };
    return options;
  }

  const MetricReport* Iterations(const GateReport& report) {
    for (const auto& c : report.cases) {
      for (const auto& m : c.metrics) {
        if (m.series.metric == "iterations") return &m;
      }
    }
    return nullptr;
  }

  testing::TempDir dir_;
  std::vector<std::string> log_;
};

TEST_F(RunGateTest, PassesWithinTheExpectedMargin) {
  auto report = RunGate(Options(0), nullptr);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->exit_code, kExitPassed);
  EXPECT_TRUE(report->passed);
  const MetricReport* m = Iterations(*report);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->verdict, Verdict::kPass);
  EXPECT_EQ(report->run.commit(), "abc123");
  EXPECT_THAT(log_, Contains(HasSubstr("embedded coordinator on 127.0.0.1:")));
}

TEST_F(RunGateTest, FailsOnARegressionConfirmedByReMeasurement) {
  auto report = RunGate(Options(10), nullptr);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->exit_code, kExitGateFailed);
  EXPECT_FALSE(report->passed);
  EXPECT_THAT(report->failed_rules, Contains(HasSubstr("regression fails the gate: 1 case (harmonic)")));
  const MetricReport* m = Iterations(*report);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->verdict, Verdict::kRegression);
  ASSERT_EQ(m->confirmations.size(), 1u) << "the default policy re-measures once";
  EXPECT_THAT(m->note, HasSubstr("confirmed by re-measurement"));
  EXPECT_THAT(log_, Contains(HasSubstr("re-measuring 1 case(s) with a suspected regression: harmonic")));
}

TEST_F(RunGateTest, AnInterruptCancelsTheRun) {
  Interrupt interrupt;
  interrupt.Fire();  // before the run exists: it is cancelled as soon as it is submitted
  auto report = RunGate(Options(0), &interrupt);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->run.state(), v1::RUN_STATE_CANCELLED);
  EXPECT_EQ(report->exit_code, kExitInterrupted);
}

TEST_F(RunGateTest, AnExpectedFileForAPoolNoAgentHasIsBadInput) {
  auto report = RunGate(Options(0, "gpu-a100"), nullptr);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(report.status().message(), HasSubstr("pool 'gpu-a100'"));
}

TEST_F(RunGateTest, ABadSuiteIsBadInputNamingTheFile) {
  GateOptions options = Options(0);
  options.suite_path = dir_.Write("broken.yaml", "suite: x\ncases:\n  - name: a\n    comand: [\"/bin/true\"]\n");
  auto report = RunGate(options, nullptr);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(report.status().message(), HasSubstr("broken.yaml"));
}

// Each call within the request limit, each one's largest reply within the
// reply limit, every key once and in order, and one call even without keys.
TEST(HistoryRequestTest, SplitsKeysByBytesAsWellAsByTheirReplies) {
  v1::HistoryRequest all;
  all.set_branch("main");
  all.set_max_runs(30);
  for (int i = 0; i < 8'000; ++i) {
    auto* key = all.add_keys();
    key->set_pool("lab");
    key->set_benchmark(std::string(490, 'b') + std::to_string(i));
    key->set_metric("instructions");
    key->set_source("agent:perf");
  }
  constexpr uint64_t kRequest = 4 * kMiB - 4 * kMiB / 16, kReply = 32 * kMiB;
  const std::vector<v1::HistoryRequest> calls = SplitHistoryRequest(all, kRequest, kReply);
  ASSERT_GT(calls.size(), 1u) << "4.2 MB of keys";
  int next = 0;
  for (const auto& call : calls) {
    EXPECT_LE(call.ByteSizeLong(), kRequest);
    EXPECT_LE(call.ByteSizeLong() + call.keys_size() * (9 * 30 + 8), kReply);
    EXPECT_EQ(call.branch(), "main");
    EXPECT_EQ(call.max_runs(), 30u);
    for (const auto& key : call.keys()) EXPECT_EQ(key.benchmark(), all.keys(next++).benchmark());
  }
  EXPECT_EQ(next, 8'000);
  // A long window: the replies bound the calls, not the requests.
  all.set_max_runs(1'000);
  for (const auto& call : SplitHistoryRequest(all, kRequest, kReply)) {
    EXPECT_LE(call.ByteSizeLong() + call.keys_size() * (9 * 1'000 + 8), kReply);
  }
  all.clear_keys();
  EXPECT_EQ(SplitHistoryRequest(all, kRequest, kReply).size(), 1u) << "asked even without keys";
}

// A re-measurement doubles the repeats only as far as its result can carry
// them: 8 repeats of a 30 MB result asked for 16, a 60 MB result the agent
// could not send, and a regression that was noise stood.
TEST(HistoryRequestTest, AConfirmationDoublesRepeatsOnlyAsFarAsItsResultCanCarryThem) {
  v1::CaseSpec c;
  c.set_repeats(8);
  constexpr uint64_t kLimit = 32 * kMiB;
  EXPECT_EQ(ConfirmationRepeats(c, 1'000, kLimit), 16u) << "a small result doubles";
  const uint32_t big = ConfirmationRepeats(c, 30'000'000, kLimit);
  EXPECT_EQ(big, 8u) << "30 MB of 8 repeats: no room to add any";
  EXPECT_LE(uint64_t{30'000'000} / 8 * big, kLimit);
  EXPECT_EQ(ConfirmationRepeats(c, 15'000'000, kLimit), 13u) << "as many as fit three quarters of the limit";
  c.set_repeats(60'000);
  EXPECT_EQ(ConfirmationRepeats(c, 1'000, kLimit), 100'000u) << "the samples a coordinator takes";
  c.add_variants()->set_name("base");
  c.add_variants()->set_name("head");
  c.set_repeats(30'000);
  EXPECT_EQ(ConfirmationRepeats(c, 1'000, kLimit), 50'000u);
}

}  // namespace
}  // namespace perfgate
