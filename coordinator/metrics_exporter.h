// /metrics for Prometheus (prometheus-cpp). Counters and histograms follow
// scheduler events; live gauges (agents, queue) are read from the scheduler
// at scrape time. Labels are bounded: suite, case, benchmark and metric names
// from suites, pools, verdicts and outcomes; never run ids, commits, lease
// ids or host names. Label values are snake_case words (`no_baseline`), and
// every benchmark value carries its `unit`, so a panel never mixes seconds
// and bytes.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/scheduler.h"
#include "coordinator/scheduler_listener.h"
#include "coordinator/store.h"

namespace prometheus {
class Collectable;
class Exposer;
class Registry;
}  // namespace prometheus

namespace perfgate {

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

  void OnLeaseGranted(const std::string& pool) override;
  void OnLeaseLost(const std::string& pool) override;
  void OnResult(const std::string& suite, const std::string& branch, const std::string& pool,
                const std::string& disposition, const std::string& case_name, const v1::CaseResult& result,
                double lease_seconds) override;
  void OnRunFinished(const std::string& suite, v1::RunState state) override;
  void OnVerdict(const std::string& suite, const v1::ReportVerdictRequest& verdict) override;
  // A call refused for its credential; `reason` is one of AuthFailureName's.
  void OnAuthFailure(const char* reason);

 private:
  struct Families;
  MetricsExporter() = default;
  // perfgate_benchmark_value and _samples of each plain series of `result`.
  void SetBenchmarkValues(const std::string& suite, const std::string& pool, const std::string& case_name,
                          const v1::CaseResult& result);

  std::string main_branch_;
  std::string address_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> live_;
  std::unique_ptr<Families> families_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace perfgate
