// /metrics for Prometheus (prometheus-cpp). Counters and histograms follow
// scheduler events; live gauges (agents, queue) are read from the scheduler
// at scrape time. Labels are bounded: suite, case, benchmark and metric names
// from suites, pools, verdicts and outcomes; never run ids, commits, lease
// ids or host names; names from suites have a budget each (label_budget.h:
// 1,000 suites, 50,000 cases, 100,000 benchmark series in 16 MiB of label
// text and at most 10,000 of them a suite's), past which new names count as
// `_other_` (a benchmark value past it is not exported).
// Label values are snake_case words (`no_baseline`), and
// every benchmark value carries its `unit`, so a panel never mixes seconds
// and bytes.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "coordinator/label_budget.h"
#include "coordinator/scheduler.h"
#include "coordinator/scheduler_listener.h"
#include "coordinator/store.h"
#include "core/metric_traits.h"

namespace prometheus {
class Collectable;
class Exposer;
class Registry;
}  // namespace prometheus

namespace perfgate {

// The benchmark series one suite may export: one suite of main-branch runs
// that reported 100,000 series took every place, and after a restart the
// restore gave them to it again before the other suites.
inline constexpr size_t kMaxBenchmarkSeriesPerSuite = 10'000;
// All suites' benchmark series, in number and in label text (a /metrics of
// 100,000 series of 500-byte names was 121 MB and took seconds to scrape),
// and one suite's share of that text.
inline constexpr size_t kMaxBenchmarkSeries = 100'000;
inline constexpr size_t kMaxBenchmarkSeriesBytes = 16 << 20;
inline constexpr size_t kMaxBenchmarkSeriesBytesPerSuite = kMaxBenchmarkSeriesBytes / 8;

// Main-branch suites whose declared units (`metrics:`) are kept. Apart from
// the suite label's budget: past it a suite's values are still exported
// (their suite label is theirs), and without its units a value declared in
// ms read as 250 with unit "none", and 0.25 seconds after a restart.
inline constexpr size_t kMaxDeclaringSuites = 10'000;

class MetricsExporter final : public SchedulerListener {
 public:
  // Serves /metrics on `listen` (host:port; port 0 picks one). Latest
  // benchmark values are exported for runs of `main_branch` only, starting
  // with the newest ones in `store` (so a restart does not empty the
  // dashboard until the next main-branch run). The sizes of the store's
  // files at `db_path` are read at each scrape.
  // REQUIRES: scheduler outlives the exporter.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(const std::string& listen, Scheduler* scheduler,
                                                                const std::string& main_branch, Store* store,
                                                                const std::string& db_path);
  ~MetricsExporter() override;

  // host:port it listens on.
  const std::string& address() const { return address_; }

  void OnAgentRegistered(const std::string& pool) override;
  void OnLeaseGranted(const std::string& pool) override;
  void OnLeaseLost(const std::string& pool) override;
  void OnResult(const std::string& suite, const std::string& branch, const std::string& pool,
                const std::string& disposition, const std::string& case_name, const v1::CaseResult& result,
                double case_seconds) override;
  void OnRunSubmitted(const v1::Suite& suite, const std::string& branch) override;
  void OnRunFinished(const std::string& suite, v1::RunState state) override;
  void OnVerdict(const std::string& suite, const v1::ReportVerdictRequest& verdict) override;
  // A call refused for its credential; `reason` is one of AuthFailureName's.
  void OnAuthFailure(const char* reason);

 private:
  struct Families;
  MetricsExporter() = default;
  // perfgate_benchmark_value and _samples of each plain series of `result`.
  void SetBenchmarkValues(const std::string& suite, const std::string& pool, const std::string& case_name,
                          const v1::CaseResult& result, const MetricDeclarations& declared);
  // The units `suite` declares (`metrics:`), as its newest run submitted on
  // the main branch said: the runs whose values are exported.
  MetricDeclarations DeclaredBy(const std::string& suite) ABSL_LOCKS_EXCLUDED(declared_mu_);
  // Keeps `declared` as `suite`'s (in place of what it had if `replace`),
  // within kMaxDeclaringSuites.
  void KeepDeclared(const std::string& suite, MetricDeclarations declared, bool replace)
      ABSL_LOCKS_EXCLUDED(declared_mu_);

  // The pool label of `pool` (from agents, which name their own), within its budget.
  std::string PoolLabel(const std::string& pool);
  // The suite label of `suite`, and the case label of `case_name` in it, within their budgets.
  std::string SuiteLabel(const std::string& suite);
  std::string CaseLabel(const std::string& suite, const std::string& case_name);
  // `value` as `budget` admits it (kOtherLabel past it), counting and, the
  // first time, logging a value it refuses.
  std::string Admit(LabelBudget& budget, const char* label, const std::string& value);
  // Whether the benchmark series `key` of `suite` has a place: within the
  // suite's share and the budget of all suites' series.
  bool AdmitBenchmarkSeries(const std::string& suite, const std::string& key) ABSL_LOCKS_EXCLUDED(series_mu_);
  // Refused for its suite's share (the suite by its label): counted, and said once a suite.
  void RefuseForItsSuite(const std::string& suite_label) ABSL_EXCLUSIVE_LOCKS_REQUIRED(series_mu_);
  // The newest main-branch values in `store`, smallest suites first, so that
  // a suite of many series cannot take the places of the others at a restart.
  void RestoreBenchmarkValues(Store* store);

  std::string main_branch_;
  std::string address_;
  LabelBudget pools_{1'000};
  LabelBudget suites_{1'000};
  LabelBudget cases_{50'000};              // suite and case
  LabelBudget benchmark_series_{kMaxBenchmarkSeries, kMaxBenchmarkSeriesBytes};  // every label of a benchmark value
  std::mutex series_mu_;
  // Benchmark series admitted, and their label text, by suite label (so
  // that there are at most as many as the suite label's budget); and suites
  // told of their share's end.
  struct SuiteShare {
    size_t series = 0;
    size_t bytes = 0;
  };
  std::map<std::string, SuiteShare> share_of_suite_ ABSL_GUARDED_BY(series_mu_);
  std::set<std::string> suites_told_ ABSL_GUARDED_BY(series_mu_);
  std::mutex declared_mu_;
  // By suite name, of main-branch runs: at most kMaxDeclaringSuites.
  std::map<std::string, MetricDeclarations> declared_ ABSL_GUARDED_BY(declared_mu_);
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> live_;
  std::unique_ptr<Families> families_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace perfgate
