#include "coordinator/metrics_exporter.h"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "coordinator/auth.h"
#include "core/metric_traits.h"
#include "core/names.h"
#include "core/series.h"
#include "core/stats.h"
#include "core/utf8.h"
#include "core/verdict.h"

namespace perfgate {
namespace {

// A benchmark value as exported: its `unit` label in Prometheus's base-unit
// words (seconds, bytes, bytes_per_second, per_second, count; none when the
// metric has no unit) and what turns the value into that unit. A suite may
// declare `ms` or `MiB`: exported as such, 12.5 ms read as 12.5 seconds
// beside the others, or sat on no panel. Other declared units keep their
// text as snake_case, on the dashboard's panel of other units.
struct ExportedUnit {
  std::string label;
  double scale = 1;
};

ExportedUnit ExportUnit(const std::string& unit) {
  static const std::map<std::string, ExportedUnit> kKnown = {
      {"s", {"seconds", 1}},
      {"ms", {"seconds", 1e-3}},
      {"us", {"seconds", 1e-6}},
      {"\u00b5s", {"seconds", 1e-6}},
      {"ns", {"seconds", 1e-9}},
      {"min", {"seconds", 60}},
      {"h", {"seconds", 3600}},
      {"bytes", {"bytes", 1}},
      {"B", {"bytes", 1}},
      {"kB", {"bytes", 1e3}},
      {"KB", {"bytes", 1e3}},
      {"MB", {"bytes", 1e6}},
      {"GB", {"bytes", 1e9}},
      {"KiB", {"bytes", 1024.0}},
      {"MiB", {"bytes", 1024.0 * 1024}},
      {"GiB", {"bytes", 1024.0 * 1024 * 1024}},
      {"B/s", {"bytes_per_second", 1}},
      {"bytes/s", {"bytes_per_second", 1}},
      {"kB/s", {"bytes_per_second", 1e3}},
      {"MB/s", {"bytes_per_second", 1e6}},
      {"GB/s", {"bytes_per_second", 1e9}},
      {"KiB/s", {"bytes_per_second", 1024.0}},
      {"MiB/s", {"bytes_per_second", 1024.0 * 1024}},
      {"GiB/s", {"bytes_per_second", 1024.0 * 1024 * 1024}},
      {"1/s", {"per_second", 1}},
      {"count", {"count", 1}},
      {"", {"none", 1}},
  };
  if (auto it = kKnown.find(unit); it != kKnown.end()) return it->second;
  std::string label;
  for (unsigned char ch : unit) label += std::isalnum(ch) ? static_cast<char>(std::tolower(ch)) : '_';
  return {label, 1};
}

// A verdict as the gate reported it ("no baseline") as a label value
// ("no_baseline"); the set stays bounded whatever a submitter sends.
std::string VerdictLabel(const std::string& verdict) {
  const std::optional<Verdict> v = ParseVerdict(verdict);
  return v ? LabelValue(VerdictName(*v)) : "unknown";
}

// The bytes a file holds on disk now; nullopt if it is missing.
std::optional<double> FileBytes(const std::string& path) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) return std::nullopt;
  return static_cast<double>(size);
}

// Gauges read from the scheduler and the disk at scrape time, so they are never stale.
class LiveState final : public prometheus::Collectable {
 public:
  LiveState(Scheduler* scheduler, std::string db_path) : scheduler_(scheduler), db_path_(std::move(db_path)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    const SchedulerStats stats = scheduler_->Stats();
    prometheus::MetricFamily agents{"perfgate_agents", "Agents with a live session, by pool (testbed).",
                                    prometheus::MetricType::Gauge, {}};
    for (const auto& [pool, n] : stats.sessions_by_pool) {
      prometheus::ClientMetric m;
      m.label = {{"pool", pool}};
      m.gauge.value = static_cast<double>(n);
      agents.metric.push_back(m);
    }
    prometheus::MetricFamily cases{"perfgate_cases", "Cases of unfinished runs, by state.",
                                   prometheus::MetricType::Gauge, {}};
    for (auto [state, n] : {std::pair{"pending", stats.pending_cases}, std::pair{"running", stats.running_cases}}) {
      prometheus::ClientMetric m;
      m.label = {{"state", state}};
      m.gauge.value = static_cast<double>(n);
      cases.metric.push_back(m);
    }
    prometheus::MetricFamily store_errors{"perfgate_store_errors_total",
                                          "Failed writes to the coordinator's store (each logged).",
                                          prometheus::MetricType::Counter, {prometheus::ClientMetric{}}};
    store_errors.metric[0].counter.value = static_cast<double>(stats.store_errors);
    return {agents, cases, store_errors, StoreBytes()};
  }

 private:
  // The database file and its write-ahead log, which starts over at 64 MiB
  // unless a reader holds an old snapshot (wal_checkpointer.h).
  prometheus::MetricFamily StoreBytes() const {
    prometheus::MetricFamily bytes{"perfgate_store_bytes",
                                   "Bytes on disk of the coordinator's store, by file (database, wal).",
                                   prometheus::MetricType::Gauge, {}};
    for (auto [file, path] : {std::pair{"database", db_path_}, std::pair{"wal", db_path_ + "-wal"}}) {
      const std::optional<double> size = FileBytes(path);
      if (!size) continue;
      prometheus::ClientMetric m;
      m.label = {{"file", file}};
      m.gauge.value = *size;
      bytes.metric.push_back(m);
    }
    return bytes;
  }

  Scheduler* scheduler_;
  const std::string db_path_;
};

}  // namespace

struct MetricsExporter::Families {
  explicit Families(prometheus::Registry& r)
      : leases_granted(prometheus::BuildCounter()
                           .Name("perfgate_leases_granted_total")
                           .Help("Case attempts leased to agents.")
                           .Register(r)),
        leases_lost(prometheus::BuildCounter()
                        .Name("perfgate_leases_lost_total")
                        .Help("Leases that expired without a result (agent dead, hung or cut off).")
                        .Register(r)),
        results(prometheus::BuildCounter()
                    .Name("perfgate_results_total")
                    .Help("Results received, by disposition: counted, stale (lease lost or cancelled), duplicate.")
                    .Register(r)),
        outcomes(prometheus::BuildCounter()
                     .Name("perfgate_case_outcomes_total")
                     .Help("Counted case results by outcome (ok, failed, crashed, timed_out, error, cancelled).")
                     .Register(r)),
        case_seconds(prometheus::BuildHistogram()
                         .Name("perfgate_case_duration_seconds")
                         .Help("How long an agent was busy with a counted case (warm-up and samples), by its own "
                               "account, at most the lease's span; not the wait of a case held ahead on the agent.")
                         .Register(r)),
        runs_finished(prometheus::BuildCounter()
                          .Name("perfgate_runs_finished_total")
                          .Help("Runs that reached a final state, by state (finished, cancelled).")
                          .Register(r)),
        gate_runs(prometheus::BuildCounter()
                      .Name("perfgate_gate_runs_total")
                      .Help("Gate verdicts on runs, by result (passed, failed).")
                      .Register(r)),
        case_verdicts(prometheus::BuildCounter()
                          .Name("perfgate_case_verdicts_total")
                          .Help("Gate verdicts per case (pass, regression, improvement, error, no_baseline, ...).")
                          .Register(r)),
        benchmark_value(prometheus::BuildGauge()
                            .Name("perfgate_benchmark_value")
                            .Help("Latest median of each measured metric on the main branch, in the base unit "
                                  "its `unit` label names (seconds, bytes, count, ...).")
                            .Register(r)),
        benchmark_samples(prometheus::BuildGauge()
                              .Name("perfgate_benchmark_samples")
                              .Help("Number of samples behind perfgate_benchmark_value.")
                              .Register(r)),
        labels_over_budget(prometheus::BuildCounter()
                               .Name("perfgate_metric_labels_over_budget_total")
                               .Help("Label values refused as past their budget, by label, each time one is "
                                     "looked up (suite, case: counted as _other_; benchmark_series: its latest "
                                     "value not exported).")
                               .Register(r)),
        auth_failures(prometheus::BuildCounter()
                          .Name("perfgate_auth_failures_total")
                          .Help("Calls refused for their credential, by reason: missing_token, unknown_token "
                                "(UNAUTHENTICATED), wrong_role (PERMISSION_DENIED).")
                          .Register(r)) {}

  prometheus::Family<prometheus::Counter>& leases_granted;
  prometheus::Family<prometheus::Counter>& leases_lost;
  prometheus::Family<prometheus::Counter>& results;
  prometheus::Family<prometheus::Counter>& outcomes;
  prometheus::Family<prometheus::Histogram>& case_seconds;
  prometheus::Family<prometheus::Counter>& runs_finished;
  prometheus::Family<prometheus::Counter>& gate_runs;
  prometheus::Family<prometheus::Counter>& case_verdicts;
  prometheus::Family<prometheus::Gauge>& benchmark_value;
  prometheus::Family<prometheus::Gauge>& benchmark_samples;
  prometheus::Family<prometheus::Counter>& labels_over_budget;
  prometheus::Family<prometheus::Counter>& auth_failures;
};

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(const std::string& listen,
                                                                        Scheduler* scheduler,
                                                                        const std::string& main_branch,
                                                                        Store* store,
                                                                        const std::string& db_path) {
  std::unique_ptr<MetricsExporter> e(new MetricsExporter());
  e->main_branch_ = main_branch;
  e->registry_ = std::make_shared<prometheus::Registry>();
  e->families_ = std::make_unique<Families>(*e->registry_);
  // Exported at zero from the start, so the first refused call is an
  // increase an alert sees, not a new series.
  for (auto failure : {AuthFailure::kMissingToken, AuthFailure::kUnknownToken, AuthFailure::kWrongRole}) {
    e->families_->auth_failures.Add({{"reason", AuthFailureName(failure)}});
  }
  for (const char* label : {"suite", "case", "benchmark_series"})
    e->families_->labels_over_budget.Add({{"label", label}});
  e->RestoreBenchmarkValues(store);
  e->live_ = std::make_shared<LiveState>(scheduler, db_path);
  try {
    // Four threads, and a request must arrive within 5 s (civetweb waits
    // 30 s): with one thread, one connection that sent half a request kept
    // every scrape out for 30 s, and reconnecting kept monitoring down.
    e->exposer_ = std::make_unique<prometheus::Exposer>(
        std::vector<std::string>{"listening_ports", listen, "num_threads", "4", "request_timeout_ms", "5000"});
  } catch (const std::exception& ex) {
    return absl::UnavailableError(absl::StrCat("cannot serve /metrics on ", listen, ": ", ex.what()));
  }
  e->exposer_->RegisterCollectable(e->registry_);
  e->exposer_->RegisterCollectable(e->live_);
  const auto ports = e->exposer_->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError(absl::StrCat("cannot serve /metrics on ", listen));
  e->address_ = absl::StrCat(listen.substr(0, listen.rfind(':')), ":", ports.front());
  return e;
}

MetricsExporter::~MetricsExporter() = default;

void MetricsExporter::RestoreBenchmarkValues(Store* store) {
  absl::StatusOr<std::vector<LatestResult>> latest = store->LatestResults(main_branch_);
  if (!latest.ok()) {
    // The dashboard fills again with the next main-branch run; serving goes on.
    std::cerr << "perfgate coordinator: cannot restore benchmark values for /metrics: " << latest.status().message()
              << "\n";
    return;
  }
  std::map<std::string, std::vector<const LatestResult*>> by_suite;
  std::map<std::string, size_t> values_of_suite;
  for (const auto& r : *latest) {
    by_suite[r.suite].push_back(&r);
    if (r.result.samples_size() > 0) values_of_suite[r.suite] += r.result.samples(0).values_size();
  }
  std::vector<std::string> order;
  for (const auto& [suite, rows] : by_suite) order.push_back(suite);
  std::stable_sort(order.begin(), order.end(),
                   [&](const std::string& a, const std::string& b) { return values_of_suite[a] < values_of_suite[b]; });
  for (const std::string& suite : order) {
    for (const LatestResult* r : by_suite[suite]) {
      MetricDeclarations declared;
      for (const auto& [metric, unit] : r->declared_units) declared[metric].unit = unit;
      SetBenchmarkValues(r->suite, r->pool, r->case_name, r->result, declared);
      KeepDeclared(r->suite, declared, /*replace=*/false);  // every row of a suite declares the same
    }
  }
}

void MetricsExporter::OnAuthFailure(const char* reason) {
  families_->auth_failures.Add({{"reason", reason}}).Increment();
}

// A pool's counters exist at zero from its first agent: born at their first
// event, at 1, rate() never saw that event, and the lost-lease ratio read
// 289,753 for one lease lost of one granted.
void MetricsExporter::OnAgentRegistered(const std::string& pool) {
  const std::string label = PoolLabel(pool);
  families_->leases_granted.Add({{"pool", label}});
  families_->leases_lost.Add({{"pool", label}});
  for (Disposition disposition : {Disposition::kCounted, Disposition::kStale, Disposition::kDuplicate}) {
    families_->results.Add({{"pool", label}, {"disposition", DispositionName(disposition)}});
  }
}

void MetricsExporter::OnLeaseGranted(const std::string& pool) {
  families_->leases_granted.Add({{"pool", PoolLabel(pool)}}).Increment();
}

void MetricsExporter::OnLeaseLost(const std::string& pool) {
  families_->leases_lost.Add({{"pool", PoolLabel(pool)}}).Increment();
}

void MetricsExporter::OnResult(const std::string& suite, const std::string& branch, const std::string& pool,
                               const std::string& disposition, const std::string& case_name,
                               const v1::CaseResult& result, double case_seconds) {
  families_->results.Add({{"pool", PoolLabel(pool)}, {"disposition", disposition}}).Increment();
  if (disposition != DispositionName(Disposition::kCounted)) return;
  const std::string outcome = LabelValue(OutcomeName(result.outcome()));
  families_->outcomes.Add({{"suite", SuiteLabel(suite)}, {"case", CaseLabel(suite, case_name)}, {"outcome", outcome}})
      .Increment();
  static const std::vector<double> kBuckets = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
  families_->case_seconds.Add({{"pool", PoolLabel(pool)}}, kBuckets).Observe(case_seconds);
  if (branch != main_branch_ || result.outcome() != v1::CaseResult::OUTCOME_OK) return;
  SetBenchmarkValues(suite, pool, case_name, result, DeclaredBy(suite));
}

void MetricsExporter::KeepDeclared(const std::string& suite, MetricDeclarations declared, bool replace) {
  std::lock_guard lock(declared_mu_);
  if (auto it = declared_.find(suite); it != declared_.end()) {
    if (replace) it->second = std::move(declared);
  } else if (declared_.size() < kMaxDeclaringSuites) {
    declared_.emplace(suite, std::move(declared));
  }
}

MetricDeclarations MetricsExporter::DeclaredBy(const std::string& suite) {
  std::lock_guard lock(declared_mu_);
  auto it = declared_.find(suite);
  return it == declared_.end() ? MetricDeclarations{} : it->second;
}

void MetricsExporter::SetBenchmarkValues(const std::string& suite, const std::string& pool,
                                         const std::string& case_name, const v1::CaseResult& result,
                                         const MetricDeclarations& declared) {
  for (const auto& series : CollectSeries(result)) {
    if (!series.variant.empty()) continue;
    const ExportedUnit unit = ExportUnit(UnitOf(series.metric, series.unit, declared));
    const prometheus::Labels labels = {{"suite", suite},          {"case", case_name}, {"benchmark", series.benchmark},
                                       {"metric", series.metric}, {"testbed", pool},   {"unit", unit.label}};
    std::string key;
    for (const auto& [name, value] : labels) absl::StrAppend(&key, value, absl::string_view("\0", 1));
    if (!AdmitBenchmarkSeries(suite, key)) continue;  // a latest value cannot be lumped
    families_->benchmark_value.Add(labels).Set(Summarize(series.values).median * unit.scale);
    families_->benchmark_samples.Add(labels).Set(static_cast<double>(series.values.size()));
  }
}

// The suite's counters exist at zero before its first verdict or end:
// created at their first event, at 1, they would show no increase() to a
// dashboard or an alert (a failed gate read as a 100% pass rate).
void MetricsExporter::OnRunSubmitted(const v1::Suite& suite, const std::string& branch) {
  const std::string label = SuiteLabel(suite.name());
  // A PR's declarations label none of main's values.
  if (branch == main_branch_) KeepDeclared(suite.name(), DeclaredMetrics(suite), /*replace=*/true);
  for (const char* result : {"passed", "failed"}) families_->gate_runs.Add({{"suite", label}, {"result", result}});
  for (const char* state : {"finished", "cancelled"})
    families_->runs_finished.Add({{"suite", label}, {"state", state}});
}

void MetricsExporter::OnRunFinished(const std::string& suite, v1::RunState state) {
  families_->runs_finished
      .Add({{"suite", SuiteLabel(suite)}, {"state", state == v1::RUN_STATE_CANCELLED ? "cancelled" : "finished"}})
      .Increment();
}

void MetricsExporter::OnVerdict(const std::string& suite, const v1::ReportVerdictRequest& verdict) {
  families_->gate_runs.Add({{"suite", SuiteLabel(suite)}, {"result", verdict.passed() ? "passed" : "failed"}})
      .Increment();
  for (const auto& c : verdict.cases()) {
    families_->case_verdicts
        .Add({{"suite", SuiteLabel(suite)},
              {"case", CaseLabel(suite, c.case_name())},
              {"verdict", VerdictLabel(c.verdict())}})
        .Increment();
  }
}

bool MetricsExporter::AdmitBenchmarkSeries(const std::string& suite, const std::string& key) {
  std::lock_guard lock(series_mu_);
  if (benchmark_series_.Contains(key)) return true;
  const std::string label = SuiteLabel(suite);
  SuiteShare& share = share_of_suite_[label];
  if (share.series >= kMaxBenchmarkSeriesPerSuite || key.size() > kMaxBenchmarkSeriesBytesPerSuite - share.bytes) {
    RefuseForItsSuite(label);
    return false;
  }
  if (Admit(benchmark_series_, "benchmark_series", key) != key) return false;
  ++share.series;
  share.bytes += key.size();
  return true;
}

void MetricsExporter::RefuseForItsSuite(const std::string& suite_label) {
  families_->labels_over_budget.Add({{"label", "benchmark_series"}}).Increment();
  // At most one line per suite within the suite label's budget, and one for all others.
  if (!suites_told_.insert(suite_label).second) return;
  std::cerr << "perfgate coordinator: /metrics: suite '" << EscapeControls(suite_label) << "' has reached its share of "
            << kMaxBenchmarkSeriesPerSuite << " benchmark series in " << kMaxBenchmarkSeriesBytesPerSuite
            << " bytes of labels; later ones are not exported (perfgate_metric_labels_over_budget_total)\n";
}

std::string MetricsExporter::SuiteLabel(const std::string& suite) { return Admit(suites_, "suite", suite); }

std::string MetricsExporter::PoolLabel(const std::string& pool) { return Admit(pools_, "pool", pool); }

std::string MetricsExporter::CaseLabel(const std::string& suite, const std::string& case_name) {
  if (SuiteLabel(suite) == kOtherLabel) return kOtherLabel;
  const std::string key = absl::StrCat(suite, absl::string_view("\0", 1), case_name);
  return Admit(cases_, "case", key) == key ? case_name : kOtherLabel;
}

std::string MetricsExporter::Admit(LabelBudget& budget, const char* label, const std::string& value) {
  std::string admitted = budget.Admit(value);
  if (admitted == value) return admitted;
  families_->labels_over_budget.Add({{"label", label}}).Increment();
  if (budget.FirstRefusal()) {
    std::cerr << "perfgate coordinator: /metrics: the " << label << " label has reached its budget of "
              << budget.Bound() << "; later ones are "
              << (std::string_view(label) == "benchmark_series" ? "not exported" : "counted as _other_")
              << " (perfgate_metric_labels_over_budget_total)\n";
  }
  return admitted;
}

}  // namespace perfgate
