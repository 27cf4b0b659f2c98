// A real Prometheus scraping a real coordinator: the values it sees after a
// gate run, and that every metric the dashboard and the rules use exists.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "tests/test_util.h"

namespace perfgate {
namespace {

using ::testing::HasSubstr;
using testing::PerfgateBinary;
using testing::RunCommand;
using testing::Subprocess;

std::string Dashboards() { return testing::SourceDir() + "/dashboards"; }

std::string ReadAll(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path).rdbuf();
  return s.str();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(PrometheusRulesTest, RulesAreValidAndTheirUnitTestsPass) {
  auto check = RunCommand({"/usr/bin/promtool", "check", "rules", Dashboards() + "/prometheus/rules.yml"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_THAT(check.output, HasSubstr("SUCCESS"));
  auto unit = RunCommand({"/usr/bin/promtool", "test", "rules", Dashboards() + "/prometheus/rules_test.yml"});
  EXPECT_EQ(unit.exit_code, 0) << unit.output;
  EXPECT_THAT(unit.output, HasSubstr("SUCCESS"));
}

// Each `alert:` of rules.yml has an alert_rule_test in rules_test.yml.
TEST(PrometheusRulesTest, EveryAlertHasAUnitTest) {
  const std::string rules = ReadAll(Dashboards() + "/prometheus/rules.yml");
  const std::string tests = ReadAll(Dashboards() + "/prometheus/rules_test.yml");
  const std::regex alert("- alert: ([A-Za-z]+)");
  int alerts = 0;
  for (std::sregex_iterator it(rules.begin(), rules.end(), alert), end; it != end; ++it, ++alerts) {
    const std::string name = (*it)[1];
    EXPECT_THAT(tests, HasSubstr("alertname: " + name + "\n        exp_alerts:\n          - exp_labels"))
        << name << " has no test that it fires";
  }
  EXPECT_GE(alerts, 7);
}

// The Grafana unit of each unit label value perfgate exports.
const std::map<std::string, std::string> kGrafanaUnits = {{"seconds", "s"},      {"bytes", "bytes"},
                                                          {"count", "short"},    {"bytes_per_second", "Bps"},
                                                          {"per_second", "ops"}, {"none", "none"}};

// A panel of benchmark values shows one unit, and says which: seconds are
// never drawn on a bytes axis.
TEST(DashboardTest, BenchmarkPanelsShowOneUnitEach) {
  const auto dashboard = nlohmann::json::parse(ReadAll(Dashboards() + "/grafana/perfgate.json"));
  std::set<std::string> shown;
  const std::regex unit_matcher("unit=\"([a-z_]+)\"");
  // The one panel of the units a suite declares beyond these leaves out exactly these.
  std::string known;
  for (const auto& [unit, grafana] : kGrafanaUnits) absl::StrAppend(&known, known.empty() ? "" : "|", unit);
  bool other_units = false;
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& target : panel["targets"]) {
      const std::string expr = target["expr"];
      if (expr.find("perfgate_benchmark_value") == std::string::npos) continue;
      if (expr.find("unit!~") != std::string::npos) {
        std::smatch left_out;
        ASSERT_TRUE(std::regex_search(expr, left_out, std::regex("unit!~\"([a-z_|]+)\"")));
        std::vector<std::string> units = absl::StrSplit(std::string(left_out[1]), '|');
        std::sort(units.begin(), units.end());
        EXPECT_EQ(absl::StrJoin(units, "|"), known) << panel["title"];
        EXPECT_THAT(std::string(target["legendFormat"]), HasSubstr("{{unit}}")) << panel["title"];
        other_units = true;
        continue;
      }
      std::smatch m;
      ASSERT_TRUE(std::regex_search(expr, m, unit_matcher)) << panel["title"] << " mixes units: " << expr;
      ASSERT_TRUE(kGrafanaUnits.count(m[1])) << expr;
      EXPECT_EQ(panel["fieldConfig"]["defaults"]["unit"], kGrafanaUnits.at(m[1])) << panel["title"];
      shown.insert(m[1]);
    }
  }
  EXPECT_EQ(shown.size(), kGrafanaUnits.size()) << "a unit perfgate exports has no panel";
  EXPECT_TRUE(other_units) << "the units suites declare beyond these have no panel";
}

// The verdict table's expression is the one rules_test.yml checks with
// promtool (its $suite as .*): a case's first verdict, a counter born at 1,
// was missing from it.
TEST(DashboardTest, TheVerdictTableIsTheExpressionPromtoolTests) {
  const auto dashboard = nlohmann::json::parse(ReadAll(Dashboards() + "/grafana/perfgate.json"));
  const std::string tests = ReadAll(Dashboards() + "/prometheus/rules_test.yml");
  bool found = false;
  for (const auto& panel : dashboard["panels"]) {
    if (panel["title"] != "Gate verdicts per case (24h)") continue;
    found = true;
    const std::string expr = absl::StrReplaceAll(std::string(panel["targets"][0]["expr"]), {{"$suite", ".*"}});
    EXPECT_THAT(tests, HasSubstr("expr: round(" + expr + ")"));
  }
  EXPECT_TRUE(found);
}

// A restarted coordinator serves the latest main-branch values from its
// store at once, not only after the next main-branch run.
TEST(MetricsRestartTest, BenchmarkValuesComeBackFromTheStoreAfterARestart) {
  testing::TempDir dir;
  auto start = [&] {
    return std::make_unique<Subprocess>(std::vector<std::string>{PerfgateBinary(), "coordinator", "--listen",
                                                                 "127.0.0.1:0", "--db", dir.File("db"),
                                                                 "--metrics-listen", "127.0.0.1:0"});
  };
  auto coordinator = start();
  const std::string address = testing::CoordinatorAddress(*coordinator);
  auto metrics = coordinator->WaitForLine("metrics on", 30'000);
  ASSERT_TRUE(!address.empty() && metrics) << coordinator->output();
  Subprocess agent({PerfgateBinary(), "agent", "--coordinator", address, "--insecure", "--id", "a1", "--pool", "lab"});
  ASSERT_TRUE(agent.WaitForLine("registered", 30'000));
  const std::string suite = dir.Write("s.yaml",
                                      "suite: prom\ndefaults: {repeats: 2, warmup: 0}\ncases:\n  - name: spin0\n"
                                      "    command: [\"" +
                                          testing::CaseBinary("spin") + "\", \"1000\"]\n");
  auto gate = RunCommand(
      {PerfgateBinary(), "gate", "--coordinator", address, "--insecure", "--suite", suite, "--branch", "main"});
  ASSERT_EQ(gate.exit_code, 0) << gate.output;
  // A PR run afterwards must not be what comes back.
  ASSERT_EQ(
      RunCommand({PerfgateBinary(), "gate", "--coordinator", address, "--insecure", "--suite", suite, "--branch", "pr"})
          .exit_code,
      0);
  coordinator->Signal(SIGTERM);
  ASSERT_EQ(coordinator->Wait(30'000), 0) << coordinator->output();

  coordinator = start();
  ASSERT_FALSE(testing::CoordinatorAddress(*coordinator).empty()) << coordinator->output();
  metrics = coordinator->WaitForLine("metrics on", 30'000);
  ASSERT_TRUE(metrics) << coordinator->output();
  const std::string body = testing::HttpGet(testing::AddressAfter(*metrics, "http://"), "/metrics");
  EXPECT_THAT(body, ::testing::ContainsRegex("perfgate_benchmark_value\\{[^}]*case=\"spin0\"[^}]*metric=\"wall_time\""
                                             "[^}]*testbed=\"lab\"[^}]*unit=\"seconds\"\\} [0-9.e-]+"))
      << body;
  EXPECT_THAT(body, ::testing::ContainsRegex("perfgate_benchmark_samples\\{[^}]*case=\"spin0\"[^}]*metric=\"wall_time\""
                                             "[^}]*\\} 2\n"))
      << body;
}

class PrometheusE2eTest : public ::testing::Test {
 protected:
  // One instant query; the sample values of its vector result.
  std::vector<double> Query(const std::string& expr) {
    auto r = RunCommand({"/usr/bin/promtool", "query", "instant", "-o", "json", prometheus_url_, expr});
    std::vector<double> values;
    if (r.exit_code != 0) return values;
    auto doc = nlohmann::json::parse(r.output, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_array()) return values;
    for (const auto& sample : doc) values.push_back(std::stod(sample["value"][1].get<std::string>()));
    return values;
  }
  // Polls Prometheus (which scrapes every second) until `expr` gives `want`.
  bool WaitFor(const std::string& expr, double want, int timeout_s = 60) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      auto v = Query(expr);
      if (v.size() == 1 && v[0] == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return false;
  }
  std::string prometheus_url_;
};

TEST_F(PrometheusE2eTest, RealPrometheusSeesTheRunAndEveryDashboardMetricExists) {
  testing::TempDir dir;
  Subprocess coordinator({PerfgateBinary(), "coordinator", "--listen", "127.0.0.1:0", "--db", dir.File("db"),
                          "--metrics-listen", "127.0.0.1:0"});
  const std::string address = testing::CoordinatorAddress(coordinator);
  auto metrics = coordinator.WaitForLine("metrics on", 30'000);
  ASSERT_TRUE(!address.empty() && metrics) << coordinator.output();
  const std::string metrics_address = testing::AddressAfter(*metrics, "http://");
  Subprocess agent1({PerfgateBinary(), "agent", "--coordinator", address, "--insecure", "--id", "p1", "--pool", "lab"});
  Subprocess agent2({PerfgateBinary(), "agent", "--coordinator", address, "--insecure", "--id", "p2", "--pool", "lab"});
  ASSERT_TRUE(agent1.WaitForLine("registered", 30'000));
  ASSERT_TRUE(agent2.WaitForLine("registered", 30'000));

  const int port = FreePort();
  prometheus_url_ = "http://127.0.0.1:" + std::to_string(port);
  const std::string config = dir.Write(
      "prometheus.yml", "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [\"" + Dashboards() +
                            "/prometheus/rules.yml\"]\nscrape_configs:\n  - job_name: perfgate\n"
                            "    static_configs: [{targets: [\"" +
                            metrics_address + "\"]}]\n");
  Subprocess prometheus({"/usr/bin/prometheus", "--config.file=" + config, "--storage.tsdb.path=" + dir.File("tsdb"),
                         "--web.listen-address=127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(prometheus.WaitForLine("Server is ready to receive web requests", 60'000)) << prometheus.output();

  std::string suite = "suite: prom\ndefaults: {repeats: 2, warmup: 0}\ncases:\n";
  for (int i = 0; i < 3; ++i) {
    suite +=
        "  - name: spin" + std::to_string(i) + "\n    command: [\"" + testing::CaseBinary("spin") + "\", \"1000\"]\n";
  }
  auto gate = RunCommand({PerfgateBinary(), "gate", "--coordinator", address, "--insecure", "--suite",
                          dir.Write("s.yaml", suite), "--branch", "main"});
  ASSERT_EQ(gate.exit_code, 0) << gate.output;

  EXPECT_TRUE(WaitFor("sum(perfgate_results_total{disposition=\"counted\"})", 3));
  EXPECT_TRUE(WaitFor("sum(perfgate_gate_runs_total{suite=\"prom\",result=\"passed\"})", 1));
  EXPECT_TRUE(WaitFor("perfgate_agents{pool=\"lab\"}", 2));
  EXPECT_TRUE(WaitFor("count(perfgate_benchmark_value{suite=\"prom\",metric=\"wall_time\",testbed=\"lab\"})", 3));
  EXPECT_TRUE(WaitFor("sum(perfgate_case_verdicts_total{suite=\"prom\",verdict=\"no_baseline\"})", 3));
  EXPECT_TRUE(WaitFor("count(perfgate_benchmark_value{suite=\"prom\",metric=\"peak_rss\",unit=\"bytes\"})", 3));
  // Words from closed sets are label values without spaces.
  EXPECT_TRUE(WaitFor("count({__name__=~\"perfgate_.+\",verdict=~\".* .*\"}) or vector(0)", 0));
  EXPECT_TRUE(WaitFor("sum(perfgate_leases_granted_total{pool=\"lab\"})", 3));
  EXPECT_TRUE(WaitFor("sum(perfgate_case_duration_seconds_count{pool=\"lab\"})", 3));
  // The store's two files, read from the disk at each scrape.
  EXPECT_TRUE(WaitFor("count(perfgate_store_bytes{file=~\"database|wal\"} > 0)", 2));
  auto values = Query("perfgate_benchmark_value{case=\"spin0\",metric=\"wall_time\",unit=\"seconds\"}");
  ASSERT_EQ(values.size(), 1u);
  EXPECT_GT(values[0], 0);
  EXPECT_LT(values[0], 5) << "seconds, the base unit";

  // Every perfgate_ metric the dashboard or the rules name is one Prometheus has scraped.
  auto r = RunCommand({"/usr/bin/promtool", "query", "instant", "-o", "json", prometheus_url_,
                       "group by (__name__) ({__name__=~\"perfgate_.+\"})"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::set<std::string> scraped;
  for (const auto& s : nlohmann::json::parse(r.output)) scraped.insert(s["metric"]["__name__"].get<std::string>());
  const std::regex name("perfgate_[a-z_]+");
  for (const std::string file : {"/grafana/perfgate.json", "/prometheus/rules.yml"}) {
    const std::string text = ReadAll(Dashboards() + file);
    int used = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), name), end; it != end; ++it, ++used) {
      EXPECT_TRUE(scraped.count(it->str()))
          << file << " uses " << it->str() << ", which the coordinator does not export";
    }
    EXPECT_GT(used, 5) << file;
  }
  // The recording rules evaluate against the real series.
  EXPECT_TRUE(WaitFor("count(perfgate:leases_lost:ratio_rate1h{pool=\"lab\"})", 1));
  EXPECT_TRUE(WaitFor("count(perfgate:case_duration_seconds:p95_1h{pool=\"lab\"})", 1));
}

}  // namespace
}  // namespace perfgate
