// Label values from suites (suite and case names) have a budget each: every
// new name is a series Prometheus keeps for good.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>

#include "absl/strings/str_cat.h"
#include "coordinator/label_budget.h"
#include "coordinator/metrics_exporter.h"
#include "coordinator/scheduler.h"
#include "coordinator/store.h"
#include "core/time_source.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;

TEST(LabelBudgetTest, KeepsTheFirstValuesAndLumpsTheRest) {
  LabelBudget budget(2);
  EXPECT_EQ(budget.Admit("a"), "a");
  EXPECT_EQ(budget.Admit("b"), "b");
  EXPECT_EQ(budget.Admit("c"), kOtherLabel);
  EXPECT_EQ(budget.Admit("a"), "a") << "a value it has stays";
  EXPECT_TRUE(budget.Admits("b"));
  EXPECT_FALSE(budget.Admits("d"));
}

TEST(LabelBudgetTest, BoundsTheBytesOfItsValuesToo) {
  LabelBudget budget(100, 10);
  EXPECT_EQ(budget.Admit("abcdef"), "abcdef");
  EXPECT_EQ(budget.Admit("ghijk"), kOtherLabel) << "11 bytes in all";
  EXPECT_EQ(budget.Admit("ghij"), "ghij");
  EXPECT_TRUE(budget.Contains("ghij"));
  EXPECT_FALSE(budget.Contains("ghijk"));
}

size_t Count(const std::string& text, const std::regex& pattern) {
  return static_cast<size_t>(
      std::distance(std::sregex_iterator(text.begin(), text.end(), pattern), std::sregex_iterator()));
}

// An exporter on port 0 over a real store and scheduler.
class MetricsLabelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenSqliteStore(dir_.File("perfgate.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    scheduler_ = std::make_unique<Scheduler>(store_.get(), &clock_);
    auto exporter =
        MetricsExporter::Start("127.0.0.1:0", scheduler_.get(), "main", store_.get(), dir_.File("perfgate.db"));
    ASSERT_TRUE(exporter.ok()) << exporter.status();
    exporter_ = *std::move(exporter);
  }

  // The exporter hears the scheduler, which has recovered; agent a1 of pool
  // lab registers. Its session id.
  std::string ListenAndRegister() {
    scheduler_->SetListener(exporter_.get());
    EXPECT_TRUE(scheduler_->Recover().ok());
    v1::RegisterRequest agent;
    agent.set_agent_id("a1");
    agent.set_pool("lab");
    auto session = scheduler_->Register(agent);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? session->session_id() : "";
  }

  // A new exporter over the same store, as a restarted coordinator starts
  // one, in the old one's place; its first scrape.
  std::string RestartAndScrape() {
    exporter_.reset();
    auto restarted =
        MetricsExporter::Start("127.0.0.1:0", scheduler_.get(), "main", store_.get(), dir_.File("perfgate.db"));
    EXPECT_TRUE(restarted.ok()) << restarted.status();
    if (!restarted.ok()) return "";
    scheduler_->SetListener(restarted->get());
    exporter_ = *std::move(restarted);
    return testing::HttpGet(exporter_->address(), "/metrics");
  }

  testing::TempDir dir_;
  RealTimeSource clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<MetricsExporter> exporter_;
};

// 2,000 suites of new names, as a submitter may send: the series stop at the
// budget, and what is past it is still counted, as _other_.
TEST_F(MetricsLabelsTest, NewSuiteNamesPastTheBudgetCountAsOther) {
  for (int i = 0; i < 2'000; ++i) {
    const std::string suite = absl::StrCat("suite-", i);
    exporter_->OnRunFinished(suite, v1::RUN_STATE_FINISHED);
    v1::ReportVerdictRequest verdict;
    verdict.set_passed(true);
    auto* c = verdict.add_cases();
    c->set_case_name(absl::StrCat("case-", i));
    c->set_verdict("pass");
    exporter_->OnVerdict(suite, verdict);
  }
  const std::string body = testing::HttpGet(exporter_->address(), "/metrics");
  EXPECT_EQ(Count(body, std::regex("\nperfgate_runs_finished_total\\{")), 1'001u) << "1,000 suites and _other_";
  EXPECT_THAT(body, HasSubstr("perfgate_runs_finished_total{state=\"finished\",suite=\"_other_\"} 1000"));
  EXPECT_THAT(body, HasSubstr("perfgate_runs_finished_total{state=\"finished\",suite=\"suite-0\"} 1"));
  EXPECT_EQ(Count(body, std::regex("\nperfgate_case_verdicts_total\\{")), 1'001u);
  EXPECT_THAT(body,
              HasSubstr("perfgate_case_verdicts_total{case=\"_other_\",suite=\"_other_\",verdict=\"pass\"} 1000"));
  // Past the budget is said, not silent: each lumped event counts.
  EXPECT_THAT(body, ::testing::ContainsRegex("perfgate_metric_labels_over_budget_total\\{label=\"suite\"\\} [1-9]"));
  EXPECT_THAT(body, HasSubstr("perfgate_metric_labels_over_budget_total{label=\"benchmark_series\"} 0"));
}

// A counter created by its first event starts at 1, and increase() reads
// no change: a suite's first failed gate read as a 100% pass rate. Its
// counters exist at zero once a run of it is submitted.
TEST_F(MetricsLabelsTest, ASuitesCountersAreZeroFromItsFirstSubmission) {
  scheduler_->SetListener(exporter_.get());
  ASSERT_TRUE(scheduler_->Recover().ok());
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("fresh");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("a");
  c->add_argv("/bin/true");
  ASSERT_TRUE(scheduler_->Submit(request).ok());
  const std::string body = testing::HttpGet(exporter_->address(), "/metrics");
  EXPECT_THAT(body, HasSubstr("perfgate_gate_runs_total{result=\"failed\",suite=\"fresh\"} 0"));
  EXPECT_THAT(body, HasSubstr("perfgate_gate_runs_total{result=\"passed\",suite=\"fresh\"} 0"));
  EXPECT_THAT(body, HasSubstr("perfgate_runs_finished_total{state=\"finished\",suite=\"fresh\"} 0"));
}

// A unit the suite declares (`metrics: {kernel_cpu_min: {unit: s}}`) is the
// series' unit label, as the gate reports it: it was "none", and the metric
// sat in the dashboard's panel of metrics without a unit. Also after a
// restart, from the stored suite.
TEST_F(MetricsLabelsTest, UnitsTheSuiteDeclaresAreTheUnitLabelAlsoAfterARestart) {
  const std::string session_id = ListenAndRegister();
  v1::SubmitRunRequest request;
  request.set_branch("main");
  request.mutable_suite()->set_name("declared");
  (*request.mutable_suite()->mutable_metrics())["kernel_cpu_min"].set_unit("s");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("k");
  c->add_argv("/bin/true");
  ASSERT_TRUE(scheduler_->Submit(request).ok());
  v1::WorkItem item;
  auto wait = scheduler_->NextWorkItem(session_id, 0, &item);
  ASSERT_TRUE(wait.ok() && *wait == Scheduler::Wait::kItem && item.has_lease());
  // A PR's run of the suite that declares another unit labels none of main's values.
  v1::SubmitRunRequest pr = request;
  pr.set_branch("pr-1");
  (*pr.mutable_suite()->mutable_metrics())["kernel_cpu_min"].set_unit("ms");
  ASSERT_TRUE(scheduler_->Submit(pr).ok());
  v1::CompleteLeaseRequest done;
  done.set_session_id(session_id);
  done.set_lease_id(item.lease().lease_id());
  done.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  auto* value = done.mutable_result()->add_samples()->add_values();
  value->set_benchmark("k");
  value->set_metric("kernel_cpu_min");
  value->set_value(0.25);
  value->set_source("case:pytorch");
  ASSERT_TRUE(scheduler_->Complete(done).ok());
  const std::string series = "metric=\"kernel_cpu_min\",suite=\"declared\",testbed=\"lab\",unit=\"seconds\"} 0.25";
  EXPECT_THAT(testing::HttpGet(exporter_->address(), "/metrics"), HasSubstr(series));

  EXPECT_THAT(RestartAndScrape(), HasSubstr(series));
}

// A pool's lease counters exist at zero from its first agent: born at their
// first event, at 1, rate() missed it and the lost-lease ratio read 289,753.
// The running gauge counts leased cases (held ahead on an agent too), as
// the gate shows them running, not agents with a lease (3 against 48 at
// once in a review's run).
TEST_F(MetricsLabelsTest, APoolsCountersAreZeroFromItsFirstAgentAndRunningCountsLeases) {
  const std::string session_id = ListenAndRegister();
  std::string body = testing::HttpGet(exporter_->address(), "/metrics");
  EXPECT_THAT(body, HasSubstr("perfgate_leases_granted_total{pool=\"lab\"} 0"));
  EXPECT_THAT(body, HasSubstr("perfgate_leases_lost_total{pool=\"lab\"} 0"));
  EXPECT_THAT(body, HasSubstr("perfgate_results_total{disposition=\"counted\",pool=\"lab\"} 0"));
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("three");
  for (const char* name : {"a", "b", "c"}) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name(name);
    c->add_argv("/bin/true");
  }
  ASSERT_TRUE(scheduler_->Submit(request).ok());
  v1::RegisterRequest second;
  second.set_agent_id("a2");
  second.set_pool("lab");
  auto other = scheduler_->Register(second);
  ASSERT_TRUE(other.ok()) << other.status();
  for (const std::string& session : {session_id, other->session_id()}) {
    v1::WorkItem item;
    auto wait = scheduler_->NextWorkItem(session, 0, &item);
    ASSERT_TRUE(wait.ok() && *wait == Scheduler::Wait::kItem && item.has_lease());
  }
  body = testing::HttpGet(exporter_->address(), "/metrics");
  EXPECT_THAT(body, HasSubstr("perfgate_cases{state=\"running\"} 2"));
  EXPECT_THAT(body, HasSubstr("perfgate_cases{state=\"pending\"} 1"));
  EXPECT_THAT(body, HasSubstr("perfgate_leases_granted_total{pool=\"lab\"} 2"));
}

// The duration histogram observes how long the agent was busy with a case,
// not the lease's span, which holds the wait of a case held ahead: cases of
// 30 ms read 10x that on the dashboard.
TEST_F(MetricsLabelsTest, CaseDurationIsTheAgentsBusyTimeNotTheLeasesSpan) {
  testing::TempDir dir;
  SimulatedTimeSource clock(1'000'000);
  auto store = OpenSqliteStore(dir.File("d.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  Scheduler scheduler(store->get(), &clock);
  auto exporter = MetricsExporter::Start("127.0.0.1:0", &scheduler, "main", store->get(), dir.File("d.db"));
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  scheduler.SetListener(exporter->get());
  ASSERT_TRUE(scheduler.Recover().ok());
  v1::RegisterRequest agent;
  agent.set_agent_id("a1");
  agent.set_pool("lab");
  auto session = scheduler.Register(agent);
  ASSERT_TRUE(session.ok()) << session.status();
  v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("held");
  auto* c = request.mutable_suite()->add_cases();
  c->set_name("a");
  c->add_argv("/bin/true");
  ASSERT_TRUE(scheduler.Submit(request).ok());
  v1::WorkItem item;
  auto wait = scheduler.NextWorkItem(session->session_id(), 0, &item);
  ASSERT_TRUE(wait.ok() && *wait == Scheduler::Wait::kItem && item.has_lease());
  clock.Advance(3'000);  // held ahead 2.97 s behind another case, then busy 30 ms
  v1::CompleteLeaseRequest done;
  done.set_session_id(session->session_id());
  done.set_lease_id(item.lease().lease_id());
  done.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  done.mutable_result()->set_busy_us(30'000);
  auto* value = done.mutable_result()->add_samples()->add_values();
  value->set_benchmark("a");
  value->set_metric("wall_time");
  value->set_value(0.03);
  value->set_source("agent:clock");
  ASSERT_TRUE(scheduler.Complete(done).ok());
  const std::string body = testing::HttpGet((*exporter)->address(), "/metrics");
  EXPECT_THAT(body, HasSubstr("perfgate_case_duration_seconds_sum{pool=\"lab\"} 0.03\n")) << body;
  EXPECT_THAT(body, HasSubstr("perfgate_case_duration_seconds_bucket{pool=\"lab\",le=\"0.1\"} 1"));
  scheduler.SetListener(nullptr);
}

// A value of benchmark `benchmark`, as a PyTorch-style case reports it.
v1::MetricValue Value(const std::string& benchmark, const std::string& metric, double value) {
  v1::MetricValue v;
  v.set_benchmark(benchmark);
  v.set_metric(metric);
  v.set_value(value);
  v.set_source("case:pytorch");
  return v;
}

// Submits a main-branch run of `suite` (one case, "c") and completes its
// lease with one sample of `values`.
void CompleteMainRun(Scheduler* scheduler, const std::string& session_id, v1::Suite suite,
                     const std::vector<v1::MetricValue>& values) {
  v1::SubmitRunRequest request;
  request.set_branch("main");
  auto* c = suite.add_cases();
  c->set_name("c");
  c->add_argv("/bin/true");
  *request.mutable_suite() = std::move(suite);
  ASSERT_TRUE(scheduler->Submit(request).ok());
  v1::WorkItem item;
  auto wait = scheduler->NextWorkItem(session_id, 0, &item);
  ASSERT_TRUE(wait.ok() && *wait == Scheduler::Wait::kItem && item.has_lease());
  v1::CompleteLeaseRequest done;
  done.set_session_id(session_id);
  done.set_lease_id(item.lease().lease_id());
  done.mutable_result()->set_outcome(v1::CaseResult::OUTCOME_OK);
  auto* sample = done.mutable_result()->add_samples();
  for (const auto& value : values) *sample->add_values() = value;
  auto completed = scheduler->Complete(done);
  ASSERT_TRUE(completed.ok()) << completed.status();
}

// A main-branch run of `suite` that reports `series` benchmark series of one
// value each, their names `name_bytes` long where that is longer.
void RunMainSuite(Scheduler* scheduler, const std::string& session_id, const std::string& suite, int series,
                  size_t name_bytes = 0) {
  v1::Suite named;
  named.set_name(suite);
  std::vector<v1::MetricValue> values;
  for (int i = 0; i < series; ++i) {
    const std::string name = absl::StrCat("bench_", i);
    values.push_back(
        Value(name + std::string(name_bytes > name.size() ? name_bytes - name.size() : 0, 'x'), "time_s", 1));
  }
  CompleteMainRun(scheduler, session_id, named, values);
}

// Past the suite label's budget (a submitter's 1,000 junk suites), a
// main-branch suite's declared units still label its values: they read 250
// with unit "none", and 0.25 seconds after a restart.
TEST_F(MetricsLabelsTest, UnitsTheSuiteDeclaresHoldPastTheSuiteLabelsBudget) {
  for (int i = 0; i < 1'000; ++i) exporter_->OnRunFinished(absl::StrCat("junk-", i), v1::RUN_STATE_FINISHED);
  const std::string session_id = ListenAndRegister();
  v1::Suite suite;
  suite.set_name("s1");
  (*suite.mutable_metrics())["lat"].set_unit("ms");
  CompleteMainRun(scheduler_.get(), session_id, suite, {Value("c", "lat", 250)});
  const std::string series = "metric=\"lat\",suite=\"s1\",testbed=\"lab\",unit=\"seconds\"} 0.25";
  const std::string body = testing::HttpGet(exporter_->address(), "/metrics");
  EXPECT_THAT(body, HasSubstr("perfgate_gate_runs_total{result=\"passed\",suite=\"_other_\"}")) << "past the budget";
  EXPECT_THAT(body, HasSubstr(series));
  EXPECT_THAT(RestartAndScrape(), HasSubstr(series));
}

// One suite that reported 12,000 series exports its share, 10,000, and the
// others keep their places, also once a restart has restored them all (one
// suite of 100,000 series took every place, and then every place again at
// each restart).
TEST_F(MetricsLabelsTest, OneSuitesBenchmarkSeriesCannotTakeThePlacesOfOthers) {
  const std::string session_id = ListenAndRegister();
  RunMainSuite(scheduler_.get(), session_id, "big", 12'000);
  RunMainSuite(scheduler_.get(), session_id, "small", 3);
  const std::regex big("\nperfgate_benchmark_value\\{[^}]*suite=\"big\"");
  const std::regex small("\nperfgate_benchmark_value\\{[^}]*suite=\"small\"");
  std::string body = testing::HttpGet(exporter_->address(), "/metrics");
  EXPECT_EQ(Count(body, big), kMaxBenchmarkSeriesPerSuite);
  EXPECT_EQ(Count(body, small), 3u);
  EXPECT_THAT(body, ::testing::ContainsRegex(
                        "perfgate_metric_labels_over_budget_total\\{label=\"benchmark_series\"\\} [1-9][0-9]{3}"));

  body = RestartAndScrape();
  EXPECT_EQ(Count(body, big), kMaxBenchmarkSeriesPerSuite);
  EXPECT_EQ(Count(body, small), 3u);
}

// A suite may declare a scaled unit (`ms`, `MiB`): exported as it was, 12.5
// ms read as 12.5 seconds, or sat on no panel. Values are in base units; a
// unit with none keeps its text.
TEST_F(MetricsLabelsTest, ScaledUnitsAreExportedInBaseUnits) {
  const std::string session_id = ListenAndRegister();
  v1::Suite suite;
  suite.set_name("scaled");
  (*suite.mutable_metrics())["lat"].set_unit("ms");
  (*suite.mutable_metrics())["heap"].set_unit("MiB");
  (*suite.mutable_metrics())["hit"].set_unit("%");
  CompleteMainRun(scheduler_.get(), session_id, suite,
                  {Value("k", "lat", 12.5), Value("k", "heap", 2), Value("k", "hit", 97)});
  const std::string body = testing::HttpGet(exporter_->address(), "/metrics");
  EXPECT_THAT(body, HasSubstr("metric=\"lat\",suite=\"scaled\",testbed=\"lab\",unit=\"seconds\"} 0.0125"));
  EXPECT_THAT(body, HasSubstr("metric=\"heap\",suite=\"scaled\",testbed=\"lab\",unit=\"bytes\"} 2097152"));
  EXPECT_THAT(body, HasSubstr("metric=\"hit\",suite=\"scaled\",testbed=\"lab\",unit=\"_\"} 97"));
}

// Suites of long names fill the label text of all benchmark series, each
// within its own share; then a small suite gets no place. After a restart
// the small suite's values are restored first, and so keep their place.
TEST_F(MetricsLabelsTest, ARestartRestoresTheSmallestSuitesFirst) {
  const std::string session_id = ListenAndRegister();
  for (int i = 0; i < 9; ++i) RunMainSuite(scheduler_.get(), session_id, absl::StrCat("big-", i), 4'000, 500);
  RunMainSuite(scheduler_.get(), session_id, "small", 3, 500);
  const std::regex small("\nperfgate_benchmark_value\\{[^}]*suite=\"small\"");
  EXPECT_EQ(Count(testing::HttpGet(exporter_->address(), "/metrics"), small), 0u) << "no place left";

  EXPECT_EQ(Count(RestartAndScrape(), small), 3u);
}

// A connection to host:port, or -1.
int Connect(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(host_port.substr(colon + 1))));
  inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &addr.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One client that sends half a request and waits held the exporter's only
// thread for 30 s: every scrape meanwhile went unanswered. Now as many such
// clients as it has threads hold a scrape off for the 5 s request timeout.
TEST_F(MetricsLabelsTest, HalfSentRequestsDoNotHoldOffAScrape) {
  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {  // every exporter thread
    idle.push_back(Connect(exporter_->address()));
    ASSERT_GE(idle.back(), 0);
    const std::string half = "GET /metrics HTTP/1.1\r\n";
    ASSERT_EQ(write(idle.back(), half.data(), half.size()), static_cast<ssize_t>(half.size()));
  }
  // A scrape answered within 20 s (5 s with the timeout; a stalled one
  // waited 30 s): the separation holds on a loaded machine.
  const int scrape = Connect(exporter_->address());
  ASSERT_GE(scrape, 0);
  timeval patience{20, 0};
  setsockopt(scrape, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  const std::string request = "GET /metrics HTTP/1.0\r\n\r\n";
  ASSERT_EQ(write(scrape, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = read(scrape, buffer, sizeof buffer)) > 0;) response.append(buffer, static_cast<size_t>(n));
  close(scrape);
  for (int fd : idle) close(fd);
  EXPECT_THAT(response, HasSubstr("perfgate_auth_failures_total"));
}

}  // namespace
}  // namespace perfgate
