// Dispatch throughput and makespan: a run of trivial cases through a real
// coordinator and real agents (in-process, gRPC over loopback, SQLite on
// disk), against the same cases run back to back by the bare executor. The
// ratio is the price of leasing, heartbeats, storing every sample and
// watching the run.
//
//   dispatch [--cases N] [--agents N] [--json FILE]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/executor.h"
#include "agent/host_fingerprint.h"
#include "agent/worker.h"
#include "gate/gate_client.h"
#include "coordinator/coordinator.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

}  // namespace

int main(int argc, char** argv) {
  int cases = 200, agents = 2;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--cases") && i + 1 < argc) cases = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--agents") && i + 1 < argc) agents = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else {
      std::fprintf(stderr, "usage: dispatch [--cases N] [--agents N] [--json FILE]\n");
      return 2;
    }
  }
  const std::string dir = std::filesystem::temp_directory_path() / ("perfgate-dispatch-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);

  // Baseline: the same work with no coordinator, one process after another.
  perfgate::ExecSpec trivial;
  trivial.argv = {"/bin/true"};
  auto start = Clock::now();
  double case_seconds = 0;
  for (int i = 0; i < cases; ++i) case_seconds += perfgate::Execute(trivial).wall_s;
  const double serial_s = Seconds(start);

  perfgate::CoordinatorOptions options;
  options.db_path = dir + "/perfgate.db";
  auto coordinator = perfgate::Coordinator::Start(options);
  if (!coordinator.ok()) {
    std::fprintf(stderr, "dispatch: %s\n", std::string(coordinator.status().message()).c_str());
    return 3;
  }
  const auto host = perfgate::ProbeHost();
  std::vector<std::unique_ptr<perfgate::AgentWorker>> workers;
  std::vector<std::thread> threads;
  for (int i = 0; i < agents; ++i) {
    perfgate::WorkerOptions w;
    w.coordinator = (*coordinator)->address();
    w.agent_id = "bench-" + std::to_string(i);
    w.log = [](const std::string&) {};
    workers.push_back(std::make_unique<perfgate::AgentWorker>(w, host));
  }
  for (auto& w : workers) threads.emplace_back([p = w.get()] { p->Run(); });
  (*coordinator)->scheduler().WaitForAgents(static_cast<size_t>(agents), 30'000);

  perfgate::v1::SubmitRunRequest request;
  request.mutable_suite()->set_name("dispatch");
  for (int i = 0; i < cases; ++i) {
    auto* c = request.mutable_suite()->add_cases();
    c->set_name("true" + std::to_string(i));
    c->add_argv("/bin/true");
    c->set_repeats(1);
    c->set_warmup(0);
    c->set_timeout_ms(10'000);
  }
  perfgate::GateClientOptions client;
  client.coordinator = (*coordinator)->address();
  start = Clock::now();
  auto run = perfgate::SubmitAndWatch(client, request, nullptr);
  const double makespan_s = Seconds(start);
  for (auto& w : workers) w->Stop();
  for (auto& t : threads) t.join();
  (*coordinator)->Shutdown();
  std::filesystem::remove_all(dir);
  if (!run.ok()) {
    std::fprintf(stderr, "dispatch: %s\n", std::string(run.status().message()).c_str());
    return 3;
  }

  const double ideal_s = case_seconds / agents;  // perfect packing of the measured case time
  std::printf("dispatch: %d trivial cases (/bin/true, 1 sample each), %d in-process agents, SQLite on disk\n\n",
              cases, agents);
  std::printf("%-44s %12s\n", "", "value");
  std::printf("%-44s %10.3f s\n", "serial, bare executor", serial_s);
  std::printf("%-44s %10.3f s\n", "through coordinator + agents (makespan)", makespan_s);
  std::printf("%-44s %10.1f /s\n", "dispatch throughput", cases / makespan_s);
  std::printf("%-44s %10.2f ms\n", "coordination cost per case", (makespan_s - ideal_s) * 1e3 * agents / cases);
  std::printf("%-44s %10.2fx\n", "makespan vs ideal (case time / agents)", makespan_s / ideal_s);
  if (!json_path.empty()) {
    nlohmann::json doc = {{"benchmark", "dispatch"},          {"cases", cases},
                          {"agents", agents},                 {"serial_s", serial_s},
                          {"makespan_s", makespan_s},         {"ideal_s", ideal_s},
                          {"cases_per_second", cases / makespan_s},
                          {"makespan_vs_ideal", makespan_s / ideal_s}};
    std::ofstream(json_path) << doc.dump(2) << "\n";
    std::printf("wrote %s\n", json_path.c_str());
  }
  return 0;
}
