#include "coordinator/coordinator.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "coordinator/metrics_exporter.h"
#include "coordinator/services.h"

namespace perfgate {

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Start(const CoordinatorOptions& options) {
  std::unique_ptr<Coordinator> c(new Coordinator());
  auto store = OpenSqliteStore(options.db_path);
  if (!store.ok()) return store.status();
  c->store_ = *std::move(store);
  c->scheduler_ = std::make_unique<Scheduler>(c->store_.get(), &c->clock_, options.scheduler);
  if (!options.metrics_listen.empty()) {
    auto metrics = MetricsExporter::Start(options.metrics_listen, c->scheduler_.get(), options.main_branch);
    if (!metrics.ok()) return metrics.status();
    c->metrics_ = *std::move(metrics);
    c->scheduler_->SetListener(c->metrics_.get());
  }
  if (auto s = c->scheduler_->Recover(); !s.ok()) return s;
  c->agent_service_ = std::make_unique<AgentServiceImpl>(c->scheduler_.get());
  c->gate_service_ = std::make_unique<GateServiceImpl>(c->scheduler_.get());
  c->sweep_interval_ms_ = options.sweep_interval_ms;

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(c->agent_service_.get());
  builder.RegisterService(c->gate_service_.get());
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  // Notice dead peers on idle streams.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  c->server_ = builder.BuildAndStart();
  if (!c->server_ || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, " (address in use, or not host:port?)"));
  }
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  c->address_ = absl::StrCat(host, ":", port);
  c->sweeper_ = std::thread([raw = c.get()] { raw->SweepLoop(); });
  return c;
}

Coordinator::~Coordinator() { Shutdown(); }

std::string Coordinator::metrics_address() const { return metrics_ ? metrics_->address() : ""; }

void Coordinator::SweepLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(sweep_interval_ms_));
    if (stopping_) break;
    lock.unlock();
    scheduler_->Sweep();
    lock.lock();
  }
}

void Coordinator::Shutdown() {
  // Later callers block until the first has finished, so nothing is torn
  // down while another thread is still shutting it down.
  std::call_once(shutdown_once_, [this] {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    if (sweeper_.joinable()) sweeper_.join();
    if (scheduler_) scheduler_->Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    stop_cv_.notify_all();
  });
}

void Coordinator::Wait() {
  std::unique_lock lock(mu_);
  stop_cv_.wait(lock, [&] { return stopped_; });
}

}  // namespace perfgate
